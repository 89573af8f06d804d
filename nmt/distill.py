"""`python -m nmt.distill`: the program is nmt.cli.distill."""
from nmt.cli.distill import main

if __name__ == "__main__":
    main()
