"""`python -m nmt.prepare`: the program is nmt.cli.prepare."""
from nmt.cli.prepare import main

if __name__ == "__main__":
    main()
