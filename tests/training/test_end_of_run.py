"""The end of a training run: avg.pt scored on val, the recommendation, the length penalty chosen on val."""
import json

import pytest
import torch

from conftest import TINY_DE, TINY_MODEL, make_cfg
from nmt import Translator
from nmt.cli.train import run as train
from nmt.runs.checkpoint import Checkpoint
from nmt.runs.run_folder import RunSummary


def test_training_ends_with_avg_pt_scored_on_val_and_a_recommendation(tiny_prepared, tmp_path):
    """train.average_last=3: the newest 3 step copies averaged into checkpoints/avg.pt, scored on
    val like best.pt, the better of the two recommended in train_summary.json."""
    summary = train(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, "train.max_steps=20",
                             "train.checkpoint_every=4", "train.average_last=3", "train.length_penalties=[0.6,1.0,2.0]"),
                    tmp_path)
    ckpts = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("step_*.pt")) == ["step_00000012.pt", "step_00000016.pt", "step_00000020.pt"]
    avg = Checkpoint.load(ckpts / "avg.pt")
    states = [Checkpoint.load(ckpts / f"step_{s:08d}.pt").weights for s in (12, 16, 20)]
    for k, v in avg.weights.items():
        if v.is_floating_point():
            assert torch.allclose(v, sum(s[k] for s in states) / 3, atol=1e-7), k
    assert summary.averaging.steps == [12, 16, 20]
    selection = summary.averaging.selection  # both scored on val with the decode group's search (beam 5)
    assert selection.search == "beam 5" and selection.metric == "bleu"
    avg_wins = selection.scores["avg.pt"] > selection.scores["best.pt"]
    assert summary.recommended == ("avg.pt" if avg_wins else "best.pt")
    assert RunSummary.load(tmp_path) == summary  # what train_summary.json holds
    # the score is avg.pt's own: validating it again gives the same BLEU
    from nmt.data.store import load_prepared
    from nmt.training.validation import validate

    data, _, _ = load_prepared(tiny_prepared)
    again = validate(Translator.from_checkpoint(ckpts / "avg.pt", decode="greedy"), data["valid"], 0, True)
    assert again["bleu"] == pytest.approx(summary.averaging.score)
    for name in ("avg.pt", "best.pt"):  # the selection searched with the decode group's length penalty, unset: 1.0
        beam = validate(Translator.from_checkpoint(ckpts / name, decode="beam", length_penalty=1.0), data["valid"], 0, True)
        assert beam["bleu"] == pytest.approx(selection.scores[name])
    # then each train.length_penalties value on val for the recommended checkpoint; the best is
    # stored in both checkpoints and is what an unset decode.length_penalty means from then on
    chosen = summary.length_penalty
    assert chosen.checkpoint == ("avg.pt" if avg_wins else "best.pt") and chosen.search == "beam 5"
    assert list(chosen.val_bleu) == ["0.6", "1", "2"]
    for lp, bleu in chosen.val_bleu.items():
        tr = Translator.from_checkpoint(ckpts / summary.recommended, decode="beam", length_penalty=float(lp))
        assert validate(tr, data["valid"], 0, True)["bleu"] == pytest.approx(bleu)
    assert chosen.chosen == max((0.6, 1.0, 2.0), key=lambda lp: (round(chosen.val_bleu[f"{lp:g}"], 2), -abs(lp - 1)))
    for name in ("avg.pt", "best.pt"):
        assert Checkpoint.load(ckpts / name).decode_defaults["length_penalty"] == chosen.chosen
    assert Translator.from_checkpoint(tmp_path).options.length_penalty == chosen.chosen
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in logged].count("valid_avg") == 1
    # ckpt=RUN_DIR: the checkpoint the run recommends
    from nmt.runs.run_folder import recommended_checkpoint

    assert recommended_checkpoint(tmp_path) == ckpts / ("avg.pt" if avg_wins else "best.pt")
    by_run = Translator.from_checkpoint(tmp_path, decode="greedy")
    assert by_run.info["checkpoint"] == ("avg.pt" if avg_wins else "best.pt")
    assert by_run.translate(TINY_DE) == Translator.from_checkpoint(ckpts / summary.recommended, decode="greedy").translate(TINY_DE)
    from nmt.cli.export import export  # nmt.export ckpt=RUN_DIR: the same checkpoint, as a model folder

    folder = export(make_cfg(f"ckpt={tmp_path}", f"export.output={tmp_path / 'model'}", "export.score=false"))
    assert json.loads((folder / "config.json").read_text())["training"]["from"] == by_run.info["checkpoint"]


def test_average_last_zero_keeps_no_copies(tiny_prepared, tmp_path):
    summary = train(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, "train.max_steps=8",
                             "train.checkpoint_every=4", "train.average_last=0"), tmp_path)
    assert not list((tmp_path / "checkpoints").glob("step_*.pt")) and not (tmp_path / "checkpoints/avg.pt").exists()
    assert summary.averaging is None and summary.recommended == "best.pt"
    assert summary.length_penalty.checkpoint == "best.pt"  # chosen for best.pt alone


def test_no_length_penalty_search_when_the_decode_group_fixes_it_or_searches_greedily(tiny_prepared, tmp_path):
    for name, fixed in (("fixed", "decode.length_penalty=1.4"), ("greedy", "decode=greedy")):
        summary = train(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, "train.max_steps=4", fixed),
                        tmp_path / name)
        assert summary.length_penalty is None
        assert Checkpoint.load(tmp_path / name / "checkpoints/best.pt").decode_defaults == {}
