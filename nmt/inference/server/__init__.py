"""`nmt.serve`: the HTTP application (`app`), its dynamic batcher (`batcher`), the bounds on what
clients can take (`limits`), LibreTranslate's API (`libretranslate`) and the page (`page`)."""
