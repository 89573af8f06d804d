"""nmt: raw parallel text to a scored RNN translation model.

The package's front door: `Translator` (imported on first use, so entry points stay light).

    from nmt import Translator
    tr = Translator.from_checkpoint("RUN/checkpoints/best.pt", decode="beam", beam_size=5)
    tr.translate(["Ein Hund rennt."])
"""

__version__ = "0.1.0"
__all__ = ["Translator", "Translation"]


def __getattr__(name: str):
    # imported on first use, so `import nmt` (and every entry point) stays light
    if name in __all__:
        from nmt.inference import translator

        return getattr(translator, name)
    raise AttributeError(f"module 'nmt' has no attribute {name!r}")
