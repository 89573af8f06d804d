"""Language names for ISO 639-1 codes, as LibreTranslate's /languages and Argos Translate's
package index show them: lingua's table of 75 languages (title-cased English names); a code it
does not know is shown as the code."""
from __future__ import annotations


def language_name(code: str) -> str:
    """"de" -> "German"; an unknown code -> the code itself."""
    from lingua import IsoCode639_1, Language

    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code)).name.title()
    except ValueError:
        return code
