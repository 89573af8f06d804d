"""`python -m nmt.calibrate`: the program is nmt.cli.calibrate."""
from nmt.cli.calibrate import main

if __name__ == "__main__":
    main()
