"""A trained nmt model in the formats other tools load: a CTranslate2 model directory
(`ctranslate2_model`) and an Argos Translate package (`argos_package`), which Argos Translate
and LibreTranslate install. Needs the `interop` extra (ctranslate2, argostranslate)."""
