"""Quality on a time budget: score training runs and their ensemble on val and test_2016_flickr
with sacreBLEU (BLEU and chrF, signatures printed), choosing everything on val.

    python bench/quality.py --runs outputs/q17/a outputs/q17/b outputs/q17/c --ensemble outputs/q17/a outputs/q17/b \
        [--length-penalties 0.6 1.0 1.4] [--avg-windows 3 5 8]

For each run: val BLEU (greedy, as training validates, and beam 5) of `best.pt` and of the
`avg.pt` that `train.average_last` wrote; test BLEU and chrF (greedy and beam 5) of the
checkpoint the run recommends on val, at length penalty 1.0 and at the one `nmt.train` chose on
val and stored in it (what translate uses by default). `--length-penalties`: beam 5 on val with each penalty,
and test with the one val prefers. `--avg-windows`: the mean of the last K step copies
(`train.keep_last`) for each K, scored on val (greedy). `--ensemble RUN ...`: those runs'
recommended checkpoints decoded together (ckpt=[...]), val and test, beam 5. Prints a markdown table, then
one JSON object (also written to `quality.json` in the first run's folder).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nmt.runs.run_folder import RunSummary, recommended_checkpoint  # noqa: E402


def scores(hyps: list[str], refs: list[list[str]]) -> dict:
    from nmt.analysis.scoring import score_corpus

    out = {}
    for name, s in zip(("bleu", "chrf"), score_corpus(hyps, refs, ("bleu", "chrf"))):
        out[name], out[f"{name}_signature"] = round(s["score"], 2), s["signature"]
    return out


class Scorer:
    """Decodes prepared splits with Translators (loaded once per checkpoint list) and scores them."""

    def __init__(self):
        self.translators, self.jobs = {}, {}

    def translator(self, ckpts: tuple[Path, ...]):
        from nmt import Translator

        if ckpts not in self.translators:
            self.translators[ckpts] = Translator.from_checkpoint(list(ckpts), decode="beam")
        return self.translators[ckpts]

    def score(self, ckpts: tuple[Path, ...], split: str, beam: int, length_penalty: float = 1.0) -> dict:
        from nmt.inference.translate_job import split_job
        from nmt.inference.translator import search_options

        tr = self.translator(ckpts)
        key = (str(tr.prepared_dir), split)  # runs on other vocabularies read their own prepared ids
        if key not in self.jobs:
            self.jobs[key] = split_job(tr, split, tr.prepared_dir)
        job = self.jobs[key]
        started = time.time()
        opts = search_options(tr.options, beam_size=beam, length_penalty=length_penalty)
        hyps = tr.detokenize(tr.translate_ids(job.sources, opts))
        return {"split": split, "beam": beam, "length_penalty": length_penalty,
                "seconds": round(time.time() - started, 1), **scores(hyps, job.refs)}


def average_window(run: Path, k: int) -> Path | None:
    """checkpoints/avg_last{k}.pt: the mean of the newest k step copies (None if fewer are kept)."""
    from nmt.runs.average import average_checkpoints

    steps = sorted((run / "checkpoints").glob("step_*.pt"))
    if len(steps) < k:
        return None
    out = run / "checkpoints" / f"avg_last{k}.pt"
    if not out.exists():
        average_checkpoints(steps[-k:]).save(out)
    return out


def pick_length_penalty(scorer: Scorer, ckpts: tuple[Path, ...], penalties: list[float], record: dict) -> float:
    """The beam-5 length penalty with the best val BLEU, by nmt.train's rule."""
    from nmt.inference.translator import best_length_penalty

    val = {lp: scorer.score(ckpts, "valid", 5, lp)["bleu"] for lp in penalties}
    record["val_beam5_by_length_penalty"] = val
    return best_length_penalty(val)


def report_run(scorer: Scorer, run: Path, penalties: list[float], windows: list[int]) -> dict:
    summary = RunSummary.load(run)
    ckpts = {"best": run / "checkpoints/best.pt", "avg": run / "checkpoints/avg.pt"}
    rec = recommended_checkpoint(run)  # by name inside `run`: run dirs get moved and copied
    record = {"run": str(run), "steps": summary.steps, "epochs": summary.epochs,
              "train_minutes": summary.train_minutes, "val_greedy": {}, "val_beam5": {},
              "recommended": rec.name, "summary": summary.model_dump()}
    for name, path in ckpts.items():
        if path.exists():
            record["val_greedy"][name] = scorer.score((path,), "valid", 1)["bleu"]
            record["val_beam5"][name] = scorer.score((path,), "valid", 5)["bleu"]
    for k in windows:
        path = average_window(run, k)
        if path is not None:
            record["val_greedy"][f"avg_last{k}"] = scorer.score((path,), "valid", 1)["bleu"]
    lp = pick_length_penalty(scorer, (rec,), penalties, record) if penalties else 1.0
    record["test_greedy"] = scorer.score((rec,), "test", 1)
    record["test_beam5"] = scorer.score((rec,), "test", 5)
    if lp != 1.0:
        record["test_beam5_val_length_penalty"] = scorer.score((rec,), "test", 5, lp)
    stored_penalty(scorer, (rec,), record)
    return record


def stored_penalty(scorer: Scorer, ckpts: tuple[Path, ...], record: dict) -> None:
    """The length penalty nmt.train stored (an ensemble: the members' mean; 1.0 if none): the
    val and test beam-5 scores translate gives by default."""
    lp = scorer.translator(ckpts).options.length_penalty
    record["stored_length_penalty"] = lp
    if lp != 1.0:
        record["val_beam5_stored_length_penalty"] = scorer.score(ckpts, "valid", 5, lp)["bleu"]
        record["test_beam5_stored_length_penalty"] = scorer.score(ckpts, "test", 5, lp)


def report_ensemble(scorer: Scorer, runs: list[Path], penalties: list[float]) -> dict:
    members = tuple(recommended_checkpoint(r) for r in runs)
    record = {"members": [str(m) for m in members], "val_beam5": scorer.score(members, "valid", 5)["bleu"]}
    lp = pick_length_penalty(scorer, members, penalties, record) if penalties else 1.0
    record["test_beam5"] = scorer.score(members, "test", 5)
    if lp != 1.0:
        record["test_beam5_val_length_penalty"] = scorer.score(members, "test", 5, lp)
    stored_penalty(scorer, members, record)
    return record


def table(runs: list[dict], ensemble: dict | None) -> str:
    rows = ["| run | steps | val greedy best / avg | val beam 5 best / avg | recommended | test greedy | test beam 5 | "
            "test chrF beam 5 | stored length penalty: val / test beam 5 / test chrF |",
            "|---|---|---|---|---|---|---|---|---|"]

    def at_stored(r: dict) -> str:
        test = r.get("test_beam5_stored_length_penalty")
        return (f"{r['stored_length_penalty']:g}: {r['val_beam5_stored_length_penalty']} / {test['bleu']} / {test['chrf']}"
                if test else "1 (as left)")

    for r in runs:
        g, b = r["val_greedy"], r["val_beam5"]
        rows.append(f"| {Path(r['run']).name} | {r['steps']:,} | {g.get('best')} / {g.get('avg')} | "
                    f"{b.get('best')} / {b.get('avg')} | {r['recommended']} | {r['test_greedy']['bleu']} | "
                    f"{r['test_beam5']['bleu']} | {r['test_beam5']['chrf']} | {at_stored(r)} |")
    if ensemble:
        rows.append(f"| ensemble of {len(ensemble['members'])} | | | {ensemble['val_beam5']} | | | "
                    f"{ensemble['test_beam5']['bleu']} | {ensemble['test_beam5']['chrf']} | {at_stored(ensemble)} |")
    return "\n".join(rows)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, nargs="+", required=True)
    ap.add_argument("--ensemble", type=Path, nargs="*", default=[], help="runs whose recommended checkpoints to ensemble")
    ap.add_argument("--length-penalties", type=float, nargs="*", default=[])
    ap.add_argument("--avg-windows", type=int, nargs="*", default=[])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    scorer = Scorer()
    runs = [report_run(scorer, run, args.length_penalties, args.avg_windows) for run in args.runs]
    ensemble = report_ensemble(scorer, args.ensemble, args.length_penalties) if len(args.ensemble) > 1 else None
    result = {"runs": runs, "ensemble": ensemble}
    out = args.runs[0] / "quality.json"
    out.write_text(json.dumps(result, indent=2))
    print(table(runs, ensemble))
    sig = runs[0]["test_beam5"]
    print(f"BLEU {sig['bleu_signature']}\nchrF {sig['chrf_signature']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
