"""`python -m nmt.diagnose`: the program is nmt.cli.diagnose."""
from nmt.cli.diagnose import main

if __name__ == "__main__":
    main()
