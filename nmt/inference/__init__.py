"""Using a trained model: the Translator (one decoding path), greedy and beam search, the HTTP
server, and the translate program's file and split jobs."""
from nmt.inference.translator import Translation, Translator, search_options

__all__ = ["Translator", "Translation", "search_options"]
