"""`python -m nmt.serve`: the program is nmt.cli.serve."""
from nmt.cli.serve import main

if __name__ == "__main__":
    main()
