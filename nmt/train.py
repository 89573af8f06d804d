"""`python -m nmt.train` (and under torchrun `-m nmt.train`): the program is nmt.cli.train."""
from nmt.cli.train import cli

if __name__ == "__main__":
    cli()
