"""The end of a training run, after the loop: average the last saves into avg.pt, recommend
best.pt or avg.pt by val BLEU with the search translate will use, then choose the length
penalty on val and store it in both. A mixin of `Trainer` (it reads the run's config, its
checkpoint folder, validation data and vocabularies, and writes to its log)."""
from __future__ import annotations

from pathlib import Path

from nmt.runs.checkpoint import Checkpoint
from nmt.config.schema import SearchKind, StopMetric
from nmt.inference.translator import Translator, best_length_penalty, search_options
from nmt.model import build_model
from nmt.training.validation import validate


class FinalChoice:
    """`Trainer.finish`'s last steps: `average_final`, then `choose_length_penalty`."""

    def average_final(self) -> dict:
        """train.average_last=K: average the newest K step_N.pt copies into checkpoints/avg.pt,
        validate it as best.pt was validated (greedy), then score both on val with the search
        that translate will use (the decode group: beam 5 by default) and recommend the better.
        Returns the summary's averaging entries ({} when off or fewer than 2 copies)."""
        from nmt.runs.averaging import average_checkpoints

        k, metric = self.tcfg.average_last, self.tcfg.early_stopping_metric
        paths = sorted(self.ckpt_dir.glob("step_*.pt"))[-k:] if k else []
        if len(paths) < 2:
            if k:
                self.say(f"train: note: {len(paths)} step checkpoint(s), so no avg.pt (train.average_last={k} "
                         f"averages the saves made every train.checkpoint_every={self.tcfg.checkpoint_every} steps)")
            return {}
        averaged = average_checkpoints(paths)
        averaged.save(self.ckpt_dir / "avg.pt")
        steps = [int(p.stem.split("_")[1]) for p in paths]
        greedy = self.score_weights(averaged.weights, "greedy")
        self.log.write("valid_avg", self.progress.step, **greedy, averaged_steps=steps)
        candidates = {"avg.pt": averaged.weights}
        if (self.ckpt_dir / "best.pt").is_file():
            candidates["best.pt"] = Checkpoint.load(self.ckpt_dir / "best.pt").weights
        selection = {name: self.score_weights(weights, self.cfg.decode)[metric] for name, weights in candidates.items()}
        pick = (max if metric == StopMetric.bleu else min)(selection, key=selection.get)
        search = f"beam {self.cfg.decode.beam_size}" if self.cfg.decode.kind == "beam" else "greedy"
        self.say(f"train: averaged {len(paths)} checkpoints (steps {steps[0]}-{steps[-1]}) into avg.pt: val {metric} "
                 f"{greedy[metric]:.3f} greedy (best.pt {self.progress.best_score:.3f}); with {search}: "
                 + ", ".join(f"{n} {v:.3f}" for n, v in selection.items()) + f"; recommended: {self.ckpt_dir / pick}")
        return {f"avg_{metric}": greedy[metric], "averaged_steps": steps,
                "selection": {"search": search, "metric": str(metric), **selection},
                "recommended": str(self.ckpt_dir / pick)}

    def choose_length_penalty(self, recommended: Path, selection: dict) -> dict:
        """train.length_penalties: beam search on val with each penalty for the recommended
        checkpoint; the best BLEU (ties: the penalty nearer 1.0) goes into best.pt's and avg.pt's
        decode defaults, which translate, serve and Translator use while decode.length_penalty
        is unset. Returns the summary's entry ({} when off: greedy search, no val BLEU, a
        length penalty fixed in the decode group, or no checkpoint to score)."""
        grid, decode = list(self.tcfg.length_penalties), self.cfg.decode
        if (not grid or decode.kind != SearchKind.beam or not self.tcfg.val_bleu
                or decode.length_penalty is not None or not recommended.is_file()):
            return {}
        weights = Checkpoint.load(recommended).weights
        scores = {}
        for lp in grid:  # the selection above already scored the recommended checkpoint at 1.0
            known = selection.get(recommended.name) if lp == 1.0 and selection.get("metric") == "bleu" else None
            scores[lp] = known if known is not None else self.score_weights(
                weights, search_options(decode, length_penalty=lp))["bleu"]
        chosen = best_length_penalty(scores)
        search = f"beam {decode.beam_size}"
        stored = []
        for name in ("best.pt", "avg.pt"):
            if (self.ckpt_dir / name).is_file():
                ckpt = Checkpoint.load(self.ckpt_dir / name)
                ckpt.decode_defaults = {"length_penalty": chosen, "chosen_on": f"val BLEU, {search}, {recommended.name}"}
                ckpt.save(self.ckpt_dir / name)
                stored.append(name)
        self.say(f"train: length penalty on val ({search}, {recommended.name}): "
                 + ", ".join(f"{lp:g} {v:.2f}" for lp, v in scores.items())
                 + f"; chosen {chosen:g}, stored in {' and '.join(stored)} (decode.length_penalty=X overrides it)")
        return {"length_penalty": {"chosen": chosen, "search": search, "checkpoint": recommended.name,
                                   "val_bleu": {f"{lp:g}": v for lp, v in scores.items()}}}

    def score_weights(self, weights: dict, decode) -> dict:
        """{loss, ppl[, bleu]} on val of this model with `weights`, BLEU with the search `decode`."""
        model = build_model(self.cfg.model, self.validator.src_vocab.size, self.tgt_vocab.size, self.tgt_vocab.pad_id)
        model.load_state_dict(weights)
        translator = Translator(model.to(self.device), self.validator.src_vocab, self.tgt_vocab,
                                self.validator.preprocess, decode=decode, device=self.device)
        return validate(translator, self.data["valid"], self.tcfg.val_max_sentences, self.tcfg.val_bleu)
