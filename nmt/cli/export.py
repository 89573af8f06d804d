"""`nmt.export`: a checkpoint as a shareable model folder (the format: nmt.runs.model_folder),
with its test scores in the model card.

    python -m nmt.export ckpt=RUN/checkpoints/best.pt export.output=models/de-en
    python -m nmt.export ckpt=RUN export.output=models/de-en      # the checkpoint the run recommends
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
    """The checkpoint `cfg.ckpt` as a model folder at `cfg.export.output`, with test scores on
    `cfg.export.split` of the prepared data when `cfg.export.score`."""
    from nmt.analysis.scoring import bleu_signature
    from nmt.config.rules import ckpt_list
    from nmt.files import check_output_dir, output_lock
    from nmt.runs.checkpoint import Checkpoint
    from nmt.runs.model_folder import (CARD, CONFIG, VOCAB, WEIGHTS, folder_config, is_model_folder, model_card,
                                       training_command, write_folder)
    from nmt.runs.run_folder import run_checkpoints

    paths = ckpt_list(cfg.ckpt)
    if not paths:
        raise ConfigError("no checkpoint given. Fix: ckpt=RUN/checkpoints/best.pt")
    if len(paths) > 1:
        raise ConfigError(f"ckpt={paths}: export writes one model. Fix: export each member, or average the "
                          "checkpoints of one run first (python -m nmt.average) and export that")
    if not cfg.export.output:
        raise ConfigError("no output folder given. Fix: export.output=DIR")
    output = check_output_dir(Path(cfg.export.output), "export.output", is_model_folder)  # an earlier export is replaced
    sources = run_checkpoints(Path(paths[0]))  # ckpt=RUN_DIR: the checkpoint the run recommends
    if len(sources) > 1:
        raise ConfigError(f"ckpt={paths[0]}: a run of {len(sources)} members (train.members), and export writes "
                          f"one model. Fix: export a member, ckpt={Path(paths[0]) / 'member_0'}")
    source = sources[0]
    ckpt = Checkpoint.load(source)
    scores = test_scores(cfg) if cfg.export.score else None
    config = folder_config(ckpt, source.name, scores, bleu_signature())
    command = " ".join(["python -m nmt.export", *map(shlex.quote, sys.argv[1:])])
    with output_lock(output):
        write_folder(ckpt, config, model_card(config, command, training_command(source)), output)
    print(f"export: wrote {output} ({WEIGHTS}, {CONFIG}, {VOCAB}/, {CARD})", file=sys.stderr)
    return output


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
