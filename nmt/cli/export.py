"""`nmt.export`: a checkpoint as a shareable model folder (the format: nmt.runs.model_folder), a
CTranslate2 model directory or an Argos Translate package (nmt.interop), with its test scores in
the model card.

    python -m nmt.export ckpt=RUN/checkpoints/best.pt export.output=models/de-en
    python -m nmt.export ckpt=RUN export.output=models/de-en      # the checkpoint the run recommends
    python -m nmt.export ckpt=RUN export.format=ctranslate2 export.output=models/de-en-ct2
    python -m nmt.export ckpt=RUN export.format=argos export.output=models/de_en.argosmodel
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from nmt.cli.wrapper import entry_point
from nmt.config.rules import ConfigError


def run(cfg, run_dir: Path) -> Path:
    return export(cfg)


def export(cfg) -> Path:
    """The checkpoint `cfg.ckpt` in `cfg.export.format` at `cfg.export.output`: nmt's model folder,
    a CTranslate2 model directory or an Argos Translate package; with test scores on
    `cfg.export.split` of the prepared data in its card when `cfg.export.score`."""
    from nmt.analysis.scoring import bleu_signature
    from nmt.config.rules import ckpt_list
    from nmt.files import output_lock
    from nmt.runs.model_folder import folder_config, model_card, read_model, training_command
    from nmt.runs.run_folder import run_checkpoints

    paths = ckpt_list(cfg.ckpt)
    if not paths:
        raise ConfigError("no checkpoint given. Fix: ckpt=RUN/checkpoints/best.pt")
    if len(paths) > 1:
        raise ConfigError(f"ckpt={paths}: export writes one model. Fix: export each member, or average the "
                          "checkpoints of one run first (python -m nmt.average) and export that")
    if not cfg.export.output:
        raise ConfigError("no output given. Fix: export.output=DIR (export.format=argos: FILE.argosmodel)")
    fmt = str(cfg.export.format)
    output = checked_output(Path(cfg.export.output), fmt)
    sources = run_checkpoints(Path(paths[0]))  # ckpt=RUN_DIR: the checkpoint the run recommends
    if len(sources) > 1:
        raise ConfigError(f"ckpt={paths[0]}: a run of {len(sources)} members (train.members), and export writes "
                          f"one model. Fix: export a member, ckpt={Path(paths[0]) / 'member_0'}")
    source = sources[0]
    ckpt = read_model(source)
    check_format(ckpt, fmt)  # before the minutes that scoring takes
    scores = test_scores(cfg) if cfg.export.score else None
    config = folder_config(ckpt, source.name, scores, bleu_signature())
    command = " ".join(["python -m nmt.export", *map(shlex.quote, sys.argv[1:])])
    card = model_card(config, command, training_command(source), card_usage(ckpt, fmt))
    with output_lock(output):
        written = write_format(ckpt, fmt, config, card, output, cfg.export, calibration_of(source, ckpt))
    print(f"export: wrote {output} ({written})", file=sys.stderr)
    return output


def checked_output(output: Path, fmt: str) -> Path:
    """The output path, refused before any work when it cannot be (re)written as `fmt`."""
    from nmt.files import check_output_dir, check_output_file
    from nmt.interop.ctranslate2_model import is_ctranslate2_dir
    from nmt.runs.model_folder import is_model_folder

    if fmt == "argos":
        if output.suffix != ".argosmodel":
            raise ConfigError(f"export.output={output}: an Argos package is a .argosmodel file (Argos "
                              f"Translate's installers look for the suffix). Fix: export.output={output.with_suffix('.argosmodel')}")
        return check_output_file(output, "export.output")
    return check_output_dir(output, "export.output", is_ctranslate2_dir if fmt == "ctranslate2" else is_model_folder)


def card_usage(ckpt, fmt: str) -> list[str] | None:
    """The card's "Use" section: nmt's API (None), CTranslate2's, or none (the Argos package's README
    says how to install it)."""
    if fmt == "ctranslate2":
        from nmt.interop.ctranslate2_model import usage

        return usage(ckpt)
    return [] if fmt == "argos" else None


def check_format(ckpt, fmt: str) -> None:
    """Refuse a model the format cannot hold (an RNN for CTranslate2, a word vocabulary for Argos)."""
    if fmt == "ctranslate2":
        from nmt.interop.ctranslate2_model import check_exportable, require_ctranslate2

        check_exportable(ckpt)
        require_ctranslate2()
    elif fmt == "argos":
        from nmt.interop.argos_package import check_packageable
        from nmt.interop.ctranslate2_model import require_ctranslate2

        check_packageable(ckpt)
        require_ctranslate2()


def calibration_of(source: Path, ckpt) -> bytes | None:
    """The confidence calibration fitted for this checkpoint's weights (nmt.calibrate), if any."""
    from nmt.inference.confidence import Calibration, calibration_file, weights_fingerprint

    path = calibration_file([source])
    if not path.is_file():
        return None
    return path.read_bytes() if Calibration.load(path, [weights_fingerprint(ckpt.weights)]) else None


def write_format(ckpt, fmt: str, config: dict, card: str, output: Path, options, calibration: bytes | None = None) -> str:
    """Write `output` (a scratch path beside it, then a rename) and say what it holds (a model
    folder also carries the checkpoint's confidence calibration)."""
    from nmt.files import atomic_dir

    quantization = None if str(options.quantization) == "none" else str(options.quantization)
    if fmt == "ctranslate2":
        from nmt.interop.ctranslate2_model import write_ctranslate2

        with atomic_dir(output) as tmp:
            write_ctranslate2(ckpt, tmp, quantization, options.max_positions)
            for name, blob in ckpt.vocab_files.items():  # the tokenizers (SentencePiece models), as the card says
                (tmp / name).write_bytes(blob)
            (tmp / "README.md").write_text(card, encoding="utf-8")
        return "a CTranslate2 model: model.bin, config.json, vocabularies, nmt's tokenizer files, README.md"
    if fmt == "argos":
        from nmt.interop.argos_package import write_argos_package

        write_argos_package(ckpt, output, options.package_version, card, options.max_positions, quantization)
        return ("an Argos Translate package; install it with argostranslate.package.install_from_path, run it with "
                "ARGOS_CHUNK_TYPE=SPACY")
    from nmt.runs.model_folder import CARD, CONFIG, VOCAB, WEIGHTS, write_folder

    write_folder(ckpt, config, card, output, {"calibration.json": calibration} if calibration else None)
    return f"{WEIGHTS}, {CONFIG}, {VOCAB}/, {CARD}" + (", calibration.json" if calibration else "")


def test_scores(cfg) -> list[dict] | None:
    """BLEU and chrF of the checkpoint on the prepared split `cfg.export.split` with the decode
    group's search, or None (with a note) when the prepared data is not there."""
    from nmt.analysis.scoring import score_corpus
    from nmt.data.store import PreparedDataError
    from nmt.inference.translate_job import split_job
    from nmt.inference.translator import Translator

    tr = Translator.from_config(cfg)
    try:
        job = split_job(tr, cfg.export.split, cfg.prepared_dir)
    except PreparedDataError as err:
        print(f"export: note: no test scores in the card ({err})", file=sys.stderr)
        return None
    hyps = tr.detokenize(tr.translate_ids(job.sources, progress=True))
    search = f"beam {tr.options.beam_size}" if tr.options.beam_size > 1 else "greedy"
    return [{**s, "split": cfg.export.split, "search": search} for s in score_corpus(hyps, job.refs, ("bleu", "chrf"))]


main = entry_point("export", run)

if __name__ == "__main__":
    main()
