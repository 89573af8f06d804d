"""The Translator: a trained model used from Python. The `nmt.translate` CLI, validation during
training and the `nmt.serve` server all decode through it; there is no second decoding path.

    from nmt import Translator
    tr = Translator.from_checkpoint("RUN/checkpoints/best.pt", decode="beam", beam_size=5)
    tr.translate(["Ein Hund rennt.", "Zwei Männer im Park."])          # -> list[str]
    tr.translate_detailed(["Ein Hund rennt."], n_best=3, attention=True)  # -> list[Translation]
    tr.translate(["Ein Hund rennt. Eine Katze schläft.\nZwei Männer."])  # paragraphs come back as paragraphs

Each text is split into sentences (nmt.inference.sentences; `split_sentences=False` turns it off),
all sentences of a call are decoded together, and each text is joined back with its own
whitespace and line breaks.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from nmt.config.choices import Quantize, SearchKind
from nmt.config.rules import ConfigError, check_search, choice, ckpt_list
from nmt.config.schema import DecodeConfig, PreprocessConfig
from nmt.data.batching import decoding_batches
from nmt.data.collate import collate_sources
from nmt.data.corpus import clean_sentences
from nmt.data.store import split_table
from nmt.inference.confidence import Calibration, calibration_file, signals, weights_fingerprint
from nmt.inference.search import Hypothesis, search
from nmt.inference.sentences import TextLayout, split_text, whole_texts
from nmt.runs.checkpoint import MAX_PARAMS


@dataclass
class Translation:
    """One source sentence's result. `score`: the model's log-probability of `text` (EOS
    included); `n_best`: (text, score) best first, the first being `text` itself; `attention`:
    (len(target_pieces) + 1, len(source_pieces)) weights, one row per output piece and EOS.
    A text of several sentences: `text` is the paragraph, `score` the sum of its sentences',
    the k-th of `n_best` joins each sentence's k-th alternative (its best where it has fewer),
    `sentences` holds each sentence's own Translation, and pieces and attention are theirs;
    its confidence is the mean of theirs."""

    text: str
    score: float
    n_best: list[tuple[str, float]] = field(default_factory=list)
    source_pieces: list[str] = field(default_factory=list)
    target_pieces: list[str] = field(default_factory=list)
    attention: np.ndarray | None = None
    sentences: list["Translation"] = field(default_factory=list)
    confidence: float | None = None  # in [0, 1], calibrated on val (nmt.inference.confidence); None: no calibration


def paragraph(layout: TextLayout, sentences: list[Translation]) -> Translation:
    """The Translation of a text from its sentences' (one sentence: that sentence's own)."""
    if len(sentences) == 1:
        return sentences[0]
    ranks = max(len(t.n_best) for t in sentences)
    n_best = [(layout.join([t.n_best[min(k, len(t.n_best) - 1)][0] for t in sentences]),
               sum(t.n_best[min(k, len(t.n_best) - 1)][1] for t in sentences)) for k in range(ranks)]
    confidences = [t.confidence for t in sentences]
    confidence = None if None in confidences else sum(confidences) / len(confidences)
    return Translation(text=layout.join([t.text for t in sentences]), score=sum(t.score for t in sentences),
                       n_best=n_best, sentences=sentences, confidence=confidence)


def search_options(base: Any = None, **overrides) -> DecodeConfig:
    """Search options from a preset name ("beam" | "greedy"), a config node (conf/decode/*) or a
    DecodeConfig, with `overrides` (beam_size, n_best, length_penalty, ...) applied. The one rule
    for greedy or beam: an explicit beam_size decides it (1: greedy, more: beam)."""
    if base is None or isinstance(base, str):
        kind = choice(SearchKind, base or "beam", "decode")
        opts = DecodeConfig(kind=kind, beam_size=1 if kind == SearchKind.greedy else DecodeConfig.beam_size)
    elif isinstance(base, DecodeConfig):
        opts = base
    else:
        data = OmegaConf.to_container(base, resolve=True) if isinstance(base, DictConfig) else dict(base)
        opts = DecodeConfig(**{k: v for k, v in data.items() if k in DecodeConfig.__dataclass_fields__})
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - set(DecodeConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown decode option(s) {sorted(unknown)}: use {sorted(DecodeConfig.__dataclass_fields__)}")
    if "beam_size" in overrides and "kind" not in overrides:
        overrides["kind"] = SearchKind.greedy if overrides["beam_size"] == 1 else SearchKind.beam
    opts = dataclasses.replace(opts, **overrides)
    opts = dataclasses.replace(opts, kind=choice(SearchKind, opts.kind, "decode.kind"),
                               quantize=choice(Quantize, opts.quantize, "decode.quantize"))
    if opts.beam_size < 1 or opts.n_best < 1:
        raise ConfigError(f"beam_size={opts.beam_size}, n_best={opts.n_best}: need 1 <= n_best <= beam_size")
    check_search(opts.kind, opts.beam_size, opts.n_best)
    return opts


def with_length_penalty(options: DecodeConfig, length_penalty: float) -> DecodeConfig:
    """`options` with an unset length penalty (null: "the model's") set to `length_penalty`."""
    return options if options.length_penalty is not None else dataclasses.replace(options, length_penalty=length_penalty)


def best_length_penalty(val_bleu: dict[float, float]) -> float:
    """The length penalty with the best val BLEU (to 0.01; ties: the one nearer 1.0): the rule
    nmt.train and bench/quality.py choose by."""
    return max(val_bleu, key=lambda lp: (round(val_bleu[lp], 2), -abs(lp - 1.0)))


def tuned_length_penalty(ckpts) -> float:
    """The length penalty nmt.train chose on val for these checkpoints (their mean for an
    ensemble, 1.0 for a member without one), or 1.0."""
    values = [float(c.decode_defaults.get("length_penalty", 1.0)) for c in ckpts]
    return round(sum(values) / len(values), 3) if values else 1.0


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization for CPU inference: the weights of every Linear (the output
    projection included) and GRU/LSTM/RNN layer are stored as int8, activations are quantized
    on the fly per batch (torch.ao.quantization.quantize_dynamic, fbgemm/x86 kernels)."""
    import warnings

    with warnings.catch_warnings():  # torch 2.13 marks torch.ao.quantization deprecated (torchao is its successor)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        from torch.ao.quantization import quantize_dynamic

        modules = {torch.nn.Linear, torch.nn.GRU, torch.nn.LSTM}
        return quantize_dynamic(model.cpu(), modules, dtype=torch.qint8)


def _inference_model(ckpt, src_size: int, tgt_size: int, pad_id: int, device, quantize: Quantize,
                     max_params: int) -> torch.nn.Module:
    """A checkpoint's model for inference: on `device`, or int8 on the CPU."""
    model = ckpt.build_model(src_size, tgt_size, pad_id, "cpu" if quantize == Quantize.int8 else device, max_params)
    return quantize_int8(model) if quantize == Quantize.int8 else model


def _check_same_inputs(paths: list[Path], ckpts: list) -> None:
    """Members of an ensemble must read and write the same pieces: the same vocabulary files
    and the same preprocessing (cleaning, lowercasing) of the source."""
    from nmt.runs.checkpoint import CheckpointError

    for path, ckpt in zip(paths[1:], ckpts[1:]):
        if ckpt.vocab_fingerprint() != ckpts[0].vocab_fingerprint():
            raise CheckpointError(
                f"{path}: trained with other vocabulary files than {paths[0]}, so their predictions cannot be "
                "averaged. Fix: ensemble models trained on the same prepared data (same prepared_dir)")
        if dict(ckpt.preprocess) != dict(ckpts[0].preprocess):
            raise CheckpointError(f"{path}: other preprocessing than {paths[0]}. Fix: ensemble models trained "
                                  "on the same prepared data (same prepared_dir)")


class Translator:
    """A model with its vocabularies, preprocessing and search options (`options`).

    Sources are cleaned as prepare cleaned the training data (unicode form, whitespace,
    lowercasing) and never truncated (an RNN reads any length). Sentences are decoded in
    batches of similar length under a token budget, results come back in input order, and an
    empty source gives an empty translation without being decoded."""

    def __init__(self, model: torch.nn.Module, src_vocab, tgt_vocab, preprocess: Any = None,
                 decode: Any = "beam", device: str | torch.device = "cpu", max_tokens: int = 4000,
                 info: dict | None = None, prepared_dir: str | None = None, vocab_fingerprint: str | None = None,
                 split_sentences: bool = True):
        self.model, self.src_vocab, self.tgt_vocab = model, src_vocab, tgt_vocab
        pp = OmegaConf.structured(PreprocessConfig)
        self.preprocess = OmegaConf.merge(pp, preprocess) if preprocess is not None else pp
        self.options = with_length_penalty(search_options(decode), 1.0)
        self.device = torch.device(device)
        self.max_tokens = max_tokens
        self.info = info or {}
        self.prepared_dir = prepared_dir  # where the training data was prepared (for translate split=...)
        self.vocab_fingerprint = vocab_fingerprint  # of the vocabulary files it was trained with
        self.split_sentences = split_sentences  # split each text into sentences (and join them back)
        self.calibration = None  # nmt.inference.confidence.Calibration: confidence per sentence when set
        self.calibration_path: Path | None = None  # where nmt.calibrate writes it for this model
        self.fingerprints: list[str] = []  # of the weights (what a calibration is fitted for)

    @classmethod
    def from_checkpoint(cls, path: str | Path | Sequence[str | Path], decode: Any = "beam", device: str = "cpu",
                        quantize: str | None = None, max_tokens: int = 4000, max_params: int = MAX_PARAMS,
                        split_sentences: bool = True, fingerprint: bool = False, **decode_overrides) -> "Translator":
        """Load `path`, a checkpoint file, a model folder (nmt.export) or a training run dir (the
        checkpoint it recommends: best.pt or avg.pt; its members' for `train.members=N`), verified (no code runs, content hash,
        finite weights), for inference. A list of several: an ensemble
        (`model.ensemble`: log-probabilities averaged at every search step), which needs the same
        vocabularies and preprocessing in every member.
        `decode`: "beam" | "greedy" | a decode config; keyword options (beam_size, n_best,
        length_penalty, max_len_a, max_len_b, no_repeat_ngram) override it. A length penalty
        left unset is the one nmt.train chose on val and stored in the checkpoint (1.0 if none).
        `quantize="int8"`: int8 weights on the CPU. `max_params`: the largest model a file may
        describe (measured before anything is allocated). `split_sentences=False`: each text is
        taken as one sentence. The weights are hashed (`fingerprints`, what a confidence
        calibration is fitted for) when a calibration file is there or `fingerprint=True`."""
        from nmt.model.ensemble import Ensemble
        from nmt.runs.model_folder import read_model
        from nmt.runs.run_folder import run_checkpoints

        quantize = choice(Quantize, quantize or "none", "quantize")
        if quantize == Quantize.int8 and str(device) != "cpu":
            raise ConfigError("quantize=int8 runs on the CPU. Fix: device=cpu, or no quantization on a GPU")
        paths = [c for p in ([path] if isinstance(path, (str, Path)) else path) for c in run_checkpoints(Path(p))]
        if not paths:
            raise ConfigError("no checkpoint given. Fix: ckpt=RUN_DIR/checkpoints/best.pt or ckpt=[A.pt,B.pt]")
        ckpts = [read_model(p) for p in paths]
        _check_same_inputs(paths, ckpts)
        ckpt = ckpts[0]
        src_vocab, tgt_vocab = ckpt.vocabs()
        models = [_inference_model(c, src_vocab.size, tgt_vocab.size, tgt_vocab.pad_id, device, quantize, max_params)
                  for c in ckpts]
        model = models[0] if len(models) == 1 else Ensemble(models)
        info = {"checkpoint": " + ".join(p.name for p in paths), **ckpt.info(), "quantize": str(quantize)}  # names, never paths
        if len(ckpts) > 1:
            info["ensemble"] = [{"checkpoint": p.name, **c.info()} for p, c in zip(paths, ckpts)]
        options = with_length_penalty(search_options(decode, **decode_overrides), tuned_length_penalty(ckpts))
        translator = cls(model, src_vocab, tgt_vocab, ckpt.preprocess, options, device, max_tokens, info,
                         ckpt.prepared.get("dir"), ckpt.vocab_fingerprint(), split_sentences)
        translator.calibration_path = calibration_file(paths)
        if fingerprint or translator.calibration_path.is_file():  # hashing a large model's weights takes time
            translator.fingerprints = [weights_fingerprint(c.weights) for c in ckpts]
        translator.calibration = Calibration.load(translator.calibration_path, translator.fingerprints)
        translator.info["confidence"] = translator.calibration.meta if translator.calibration else None
        return translator

    @classmethod
    def from_pretrained(cls, folder: str | Path, decode: Any = "beam", device: str = "cpu",
                        quantize: str | None = None, **options) -> "Translator":
        """Load a model folder written by `nmt.export` (safetensors weights, JSON config, the
        vocabulary files): nothing is unpickled. Same options as `from_checkpoint`."""
        from nmt.runs.checkpoint import CheckpointError
        from nmt.runs.model_folder import CONFIG, is_model_folder

        if not is_model_folder(Path(folder)):
            raise CheckpointError(f"{folder}: no {CONFIG} there, so not a model folder. Fix: "
                                  "python -m nmt.export ckpt=RUN/checkpoints/best.pt export.output=DIR")
        return cls.from_checkpoint(folder, decode, device, quantize, **options)

    @classmethod
    def from_config(cls, cfg, ckpt: Any = None, fingerprint: bool = False) -> "Translator":
        """The Translator for `ckpt=` (or `ckpt`) with the `decode` group's options (decode.quantize
        included), on CUDA when there is one and train.device allows it (not for int8)."""
        paths = ckpt_list(cfg.ckpt if ckpt is None else ckpt)
        if not paths:
            raise ConfigError("no checkpoint given. Fix: ckpt=RUN_DIR/checkpoints/best.pt")
        quantize = Quantize(cfg.decode.quantize)
        cuda = torch.cuda.is_available() and cfg.train.device != "cpu" and quantize == Quantize.none
        return cls.from_checkpoint(paths, cfg.decode, "cuda" if cuda else "cpu", str(quantize),
                                   max_params=cfg.max_params, split_sentences=cfg.translate.split_sentences,
                                   fingerprint=fingerprint)

    # ------------------------------------------------------------------ text in, text out

    def encode(self, texts: Sequence[str]) -> tuple[list[list[int]], list[str]]:
        """Raw sentences -> (source ids, cleaned text), cleaned as in prepare, not truncated."""
        clean = clean_sentences(texts, self.preprocess)
        ids = self.src_vocab.encode_batch(clean)
        longer = sum(len(i) > self.preprocess.max_len for i in ids)
        if longer:
            cap = self.options.max_output_len
            print(f"translate: note: {longer} input line(s) are longer than the training length limit "
                  f"(preprocess.max_len={self.preprocess.max_len} tokens); they are read whole"
                  + (f", and their translations stop at decode.max_output_len={cap} pieces" if cap else ""),
                  file=sys.stderr)
        return ids, clean

    @property
    def source_language(self) -> str:
        """The source language's code (from the training data's config; "" when unknown)."""
        return (self.info.get("languages") or {}).get("src") or ""

    def layouts(self, texts: Sequence[str]) -> list[TextLayout]:
        """Each text cut into its sentences (or whole, with split_sentences off)."""
        if not self.split_sentences:
            return whole_texts(list(texts))
        return [split_text(t, self.source_language) for t in texts]

    def translate(self, texts: Sequence[str] | str, **options) -> list[str]:
        """Texts (a sentence or a paragraph each) -> their best translations (detokenized), in
        input order. `options` override the search options for this call (beam_size, ...)."""
        if isinstance(texts, str):
            texts = [texts]
        layouts = self.layouts(texts)
        ids, _ = self.encode([s for layout in layouts for s in layout.sentences])
        lines = iter(self.detokenize(self.translate_ids(ids, search_options(self.options, **options))))
        return [layout.join([next(lines) for _ in layout.sentences]) for layout in layouts]

    def translate_detailed(self, texts: Sequence[str] | str, n_best: int | None = None, attention: bool = False,
                           **options) -> list[Translation]:
        """Like `translate`, with scores, the `n_best` list (beam search) and, on request, the
        attention weights of the best hypothesis."""
        if isinstance(texts, str):
            texts = [texts]
        opts = search_options(self.options, n_best=n_best, **options)
        layouts = self.layouts(texts)
        ids, _ = self.encode([s for layout in layouts for s in layout.sentences])
        found = iter(self.translations(ids, opts, attention))
        return [paragraph(layout, [next(found) for _ in layout.sentences]) for layout in layouts]

    def translations(self, sources: Sequence[Sequence[int]], options: DecodeConfig | None = None,
                     attention: bool = False) -> list[Translation]:
        """Source ids -> Translations (with n-best lists, attention on request, and a confidence
        when the model is calibrated)."""
        search_attention = attention or bool(self.calibration and self.calibration.needs_attention)
        hyps = self.translate_ids(sources, options, search_attention)
        confidence = self.confidences(sources, hyps)
        return [self.translation(h, src, attention, c) for h, src, c in zip(hyps, sources, confidence)]

    def confidences(self, sources: Sequence[Sequence[int]], hyps: Sequence[Hypothesis]) -> list[float | None]:
        """Each hypothesis' confidence in [0, 1] (nmt.inference.confidence), None without a
        calibration (or for an empty source)."""
        if self.calibration is None:
            return [None] * len(hyps)
        rows = signals(self.model, sources, [h.tokens for h in hyps],
                       [h.attention for h in hyps] if self.calibration.needs_attention else None, self.device)
        return self.calibration.predict(rows)

    def translation(self, hyp: Hypothesis, src_ids: list[int], attention: bool = False,
                    confidence: float | None = None) -> Translation:
        """A hypothesis of `src_ids` as text, with its n-best list (and attention on request)."""
        alternatives = hyp.n_best or [hyp]
        return Translation(
            text=self.tgt_vocab.to_text(hyp.tokens), score=hyp.score,
            n_best=[(self.tgt_vocab.to_text(h.tokens), h.score) for h in alternatives],
            source_pieces=self.src_vocab.pieces(src_ids), target_pieces=self.tgt_vocab.pieces(hyp.tokens),
            attention=hyp.attention.numpy() if attention and hyp.attention is not None else None,
            confidence=confidence)

    def detokenize(self, hyps: Sequence[Hypothesis]) -> list[str]:
        return [self.tgt_vocab.to_text(h.tokens) for h in hyps]

    # ------------------------------------------------------------------ ids in, hypotheses out

    def translate_split(self, split, options: Any = None, attention: bool = False) -> list[Hypothesis]:
        """Every example of a prepared split (its `src_ids`), in corpus order."""
        sources = split_table(split).column("src_ids").to_pylist()
        return self.translate_ids(sources, search_options(options) if options is not None else self.options,
                                  attention)

    @torch.no_grad()
    def translate_ids(self, sources: Sequence[Sequence[int]], options: DecodeConfig | None = None,
                      attention: bool = False, progress: bool = False) -> list[Hypothesis]:
        """Source id sequences -> hypotheses in input order (greedy or beam search as `options`
        say), decoded in batches of similar length within `max_tokens` padded source tokens;
        an empty source gives an empty hypothesis without being decoded. `progress`: a tqdm bar
        on stderr (sentences)."""
        from tqdm import tqdm

        options = with_length_penalty(options or self.options, self.options.length_penalty)
        hyps: list[Hypothesis | None] = [None] * len(sources)
        todo = [i for i, s in enumerate(sources) if len(s)]
        for i, s in enumerate(sources):
            if not len(s):
                hyps[i] = Hypothesis([], 0.0, n_best=[Hypothesis([], 0.0)])
        was_training = self.model.training
        self.model.eval()
        bar = tqdm(total=len(todo), desc="translate", unit=" sentences", file=sys.stderr, disable=not progress)
        try:
            for batch_rows in decoding_batches([len(sources[i]) for i in todo], self.max_tokens):
                chunk = [todo[j] for j in batch_rows.tolist()]
                batch = collate_sources([(i, torch.as_tensor(sources[i], dtype=torch.long))
                                         for i in chunk]).to(self.device)
                found = search(self.model, batch.src, batch.src_lengths, options, attention)
                for i, h in zip(batch.indices.tolist(), found):
                    hyps[i] = h
                bar.update(len(chunk))
        finally:
            bar.close()
            self.model.train(was_training)
        return hyps  # type: ignore[return-value]
