"""`python -m nmt.translate`: the program is nmt.cli.translate."""
from nmt.cli.translate import main

if __name__ == "__main__":
    main()
