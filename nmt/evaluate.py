"""`python -m nmt.evaluate`: the program is nmt.cli.evaluate."""
from nmt.cli.evaluate import main

if __name__ == "__main__":
    main()
