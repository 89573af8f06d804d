"""`NmtError`: the one base of the errors a user can fix (bad input, bad config, a missing or
damaged file, a busy folder). Each message names the file or key, what is wrong and the fix.
The programs print these as one line; anything else is a bug and keeps its traceback."""
from __future__ import annotations


class NmtError(Exception):
    """An error in what the user gave nmt, not in nmt: the message says what to change."""
