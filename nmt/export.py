"""`python -m nmt.export`: the program is nmt.cli.export."""
from nmt.cli.export import main

if __name__ == "__main__":
    main()
