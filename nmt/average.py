"""`python -m nmt.average`: the program is nmt.cli.average."""
from nmt.cli.average import main

if __name__ == "__main__":
    main()
