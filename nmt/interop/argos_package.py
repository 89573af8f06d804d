"""An nmt Transformer as an Argos Translate package (`.argosmodel`), the format that Argos
Translate (`argostranslate.package.install_from_path`, its desktop app and CLI) and LibreTranslate
install:

    nmt_de_en/                   one top-level folder (the name it is installed under)
        metadata.json            from/to codes and names, package and Argos versions, type
        model/                   the CTranslate2 directory (nmt.interop.ctranslate2_model)
        sentencepiece.model      the joint SentencePiece model: Argos encodes the source and
                                 decodes the translation's pieces with it
        spacy/                   a blank spaCy pipeline of the source language: with
                                 ARGOS_CHUNK_TYPE=SPACY Argos splits sentences with it (a rule-based
                                 sentencizer) and downloads nothing
        README.md                what the model is, its scores, how to install and run it offline

Argos detokenizes the target pieces with the one `sentencepiece.model` (decode_pieces, then every
word-boundary mark and `_` becomes a space), so a package needs one vocabulary for both languages
(`vocab=joint`); a model of separate source and target vocabularies is refused, with the way to
get a joint one (prepare with vocab=joint, or distill the model into a student that has one:
docs/interop.md).
"""
from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

from nmt.interop.ctranslate2_model import DEFAULT_MAX_POSITIONS, ExportError, check_exportable, write_ctranslate2
from nmt.languages import language_name
from nmt.runs.checkpoint import Checkpoint

ARGOS_VERSION = "1.9.0"  # the package format version Argos Translate 1.9-1.11 read


def package_name(from_code: str, to_code: str) -> str:
    return f"nmt_{from_code}_{to_code}"


def check_packageable(ckpt: Checkpoint) -> tuple[str, str]:
    """The (from, to) language codes; refuses a model Argos cannot run as nmt does."""
    where = ckpt.source or "the checkpoint"
    check_exportable(ckpt)
    kind = (ckpt.prepared.get("vocab") or {}).get("kind")
    if kind != "spm":
        raise ExportError(f"{where}: a {kind} vocabulary; an Argos package tokenizes with a SentencePiece model "
                          "(sentencepiece.model). Fix: prepare the data with vocab=spm and train again, or "
                          "export.format=ctranslate2 (the caller tokenizes)")
    if not (ckpt.prepared.get("vocab") or {}).get("joint"):
        raise ExportError(f"{where}: separate source and target SentencePiece vocabularies, and an Argos package "
                          "carries one sentencepiece.model that both encodes the source and decodes the translation. "
                          "Fix: python -m nmt.prepare vocab=joint (one model for both languages, vocab.joint=true) "
                          "and train on it, or distill this model into a student that has one (python -m nmt.distill "
                          "distill.teacher=THIS_RUN model=transformer vocab=joint), or export.format=ctranslate2 (it "
                          "keeps both vocabularies)")
    if (ckpt.preprocess or {}).get("lowercase"):
        raise ExportError(f"{where}: trained on lowercased text (preprocess.lowercase=true), and Argos Translate "
                          "passes text as written. Fix: train on cased text, or export.format=ctranslate2")
    langs = ckpt.languages or {}
    src, tgt = langs.get("src"), langs.get("tgt")
    if not src or not tgt:
        raise ExportError(f"{where}: its languages are not recorded, and a package names them. Fix: export a "
                          "checkpoint written by nmt.train (it stores data.src_lang and data.tgt_lang)")
    return str(src), str(tgt)


def metadata(src: str, tgt: str, version: str) -> dict:
    return {"package_version": version, "argos_version": ARGOS_VERSION, "type": "translate",
            "from_code": src, "from_name": language_name(src),
            "to_code": tgt, "to_name": language_name(tgt), "links": []}


def write_blank_spacy(code: str, folder: Path) -> None:
    """A blank spaCy pipeline for `code` (its tokenizer rules only, about 100 KB), or the
    multi-language one where spaCy has no class for the language."""
    try:
        import spacy
    except ImportError:
        raise ExportError("spaCy is not installed, and the package ships a spaCy pipeline for offline sentence "
                          "splitting. Fix: pip install -e '.[interop]'") from None
    try:
        nlp = spacy.blank(code)
    except ImportError:  # spaCy raises ImportError for a language code it has no class for
        nlp = spacy.blank("xx")
    nlp.to_disk(folder)


def package_readme(src: str, tgt: str, name: str, card: str) -> str:
    return f"""# {language_name(src)} -> {language_name(tgt)}, trained with nmt

A Transformer trained with nmt (`python -m nmt.train model=transformer`),
exported with `python -m nmt.export export.format=argos`. The translation model is a CTranslate2
directory (`model/`); `sentencepiece.model` tokenizes the {src} input.

## Install and translate offline

    pip install argostranslate
    python -c "import argostranslate.package as p; p.install_from_path('THIS_PACKAGE.argosmodel')"
    ARGOS_CHUNK_TYPE=SPACY argos-translate --from {src} --to {tgt} "..."

`ARGOS_CHUNK_TYPE=SPACY` makes Argos split sentences with the blank spaCy pipeline in `spacy/`
(rule-based, shipped here); by default it would download a MiniSBD model on first use.

{card}
"""


def write_argos_package(ckpt: Checkpoint, output: Path, version: str = "1.0", card: str = "",
                        max_positions: int = DEFAULT_MAX_POSITIONS, quantization: str | None = None) -> Path:
    """Write the `.argosmodel` zip to `output` (a scratch file beside it, then a rename)."""
    from nmt.files import atomic_file

    src, tgt = check_packageable(ckpt)
    src_vocab, _ = ckpt.vocabs()
    blob = ckpt.vocab_files[Path(src_vocab.model_file).name]  # the joint SentencePiece model
    name = package_name(src, tgt)
    output = Path(output)
    with tempfile.TemporaryDirectory(prefix=".argos-", dir=output.parent) as tmp:
        root = Path(tmp) / name
        (root / "model").mkdir(parents=True)
        write_ctranslate2(ckpt, root / "model", quantization, max_positions)
        (root / "sentencepiece.model").write_bytes(blob)
        write_blank_spacy(src, root / "spacy")
        (root / "metadata.json").write_text(json.dumps(metadata(src, tgt, version), indent=2) + "\n")
        (root / "README.md").write_text(package_readme(src, tgt, name, card), encoding="utf-8")
        with atomic_file(output) as scratch, zipfile.ZipFile(scratch, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(root.rglob("*")):
                zf.write(path, path.relative_to(tmp))
    return output
