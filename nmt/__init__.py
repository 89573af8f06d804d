"""nmt: raw parallel text to a scored RNN translation model."""

__version__ = "0.1.0"
