"""Subword regularization for training (Kudo 2018; BPE-dropout, Provilkov et al. 2020): the
pairs of each training batch segmented afresh from the cleaned text stored beside their ids,
so that every epoch sees other segmentations of the same sentences.

Each sentence's segmentation is a function of (train seed, epoch, its row, its side): the
batch sampler measures the epoch's segmented lengths first (one pass over the text) and
batches sentences of similar *segmented* length together, and the loader then draws the same
segmentations again when it reads the batch. Batching by the stored deterministic lengths
instead would pad each batch by about 40% at alpha 0.1 (the lengths vary around the mean),
which costs more than the second pass. Nothing of the epoch is held but its lengths, and a
resumed run segments as an uninterrupted one would. Validation, test and serving read the
stored deterministic ids."""
from __future__ import annotations

import sys

import numpy as np

from nmt.config.rules import ConfigError
from nmt.data.encode import source_ids, target_ids
from nmt.data.vocab import Vocab

_MASK64 = (1 << 64) - 1


def sentence_seeds(seed: int, epoch: int, rows: np.ndarray, side: int) -> np.ndarray:
    """A 31-bit seed per row (splitmix64's finaliser over (seed, epoch, row, side)): rows of one
    epoch and side get unrelated seeds, and the same row always gets the same one."""
    with np.errstate(over="ignore"):
        x = (np.asarray(rows, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
             + np.uint64((seed * 0xBF58476D1CE4E5B9 + epoch * 0x94D049BB133111EB + side * 0xD6E8FEB86659FD93) & _MASK64))
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x & np.uint64(0x7FFFFFFF)).astype(np.int64)  # sentencepiece reads 2**32 - 1 as "seed from the clock"


class Resegmenter:
    """Segments sentences with SentencePiece sampling as prepare would have stored them (source
    cut to `max_len`, target `[SOS] + ... + [EOS]` within `max_len`)."""

    def __init__(self, src_vocab: Vocab, tgt_vocab: Vocab, alpha: float, nbest_size: int, source: bool = True,
                 target: bool = True, max_len: int = 100, seed: int = 1):
        for side, vocab, on in (("source", src_vocab, source), ("target", tgt_vocab, target)):
            if on and vocab.kind != "spm":
                raise ConfigError(f"train.subword_sampling on the {side} side needs a SentencePiece vocabulary; "
                                 f"this data was prepared with vocab kind {vocab.kind}. Fix: prepare with vocab=spm, "
                                 "or train.subword_sampling.alpha=0")
        self.vocabs, self.alpha, self.nbest_size = (src_vocab, tgt_vocab), alpha, nbest_size
        self.sides, self.max_len, self.seed = (source, target), max_len, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def needs_text(self) -> tuple[bool, bool]:
        """Which sides (source, target) are resegmented, so read as text."""
        return self.sides

    def segment(self, rows: np.ndarray, texts: list[str], side: int, epoch: int | None = None) -> list[list[int]]:
        """The ids of side `side` (0 source, 1 target) of corpus `rows` in `epoch` (default: the
        current one), from their cleaned `texts`."""
        import sentencepiece as spm

        sample, alpha, nbest_size, reseed = self.vocabs[side].sample, self.alpha, self.nbest_size, \
            spm.set_random_generator_seed
        seeds = sentence_seeds(self.seed, self.epoch if epoch is None else epoch, rows, side).tolist()
        pieces = []
        for s, text in zip(seeds, texts):  # one seed per sentence: the batch it is read in does not matter
            reseed(s)
            pieces.append(sample(text, alpha, nbest_size))
        return source_ids(pieces, self.max_len) if side == 0 else target_ids(pieces, self.max_len)

    def __call__(self, rows: np.ndarray, texts: tuple[list[str], list[str]]) -> tuple[list | None, list | None]:
        """(source ids, target ids) of the batch of corpus `rows` with these cleaned `texts`; None
        for a side that keeps its stored ids."""
        out = [self.segment(rows, text, side) if on else None for side, (on, text) in enumerate(zip(self.sides, texts))]
        return out[0], out[1]

    def epoch_lengths(self, table, stored: tuple[np.ndarray, np.ndarray], epoch: int,
                      chunk_rows: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """The (source, target) lengths of every row of `table` (a prepared split) as segmented
        in `epoch`: `stored` for a side that is not resegmented. Reads the text chunk by chunk."""
        from tqdm import tqdm

        out = []
        for side, (on, name) in enumerate(zip(self.sides, ("src_text", "tgt_text"))):
            if not on:
                out.append(stored[side])
                continue
            lengths = np.empty(table.num_rows, dtype=np.int32)
            column = table.column(name)
            with tqdm(total=table.num_rows, desc=f"segment epoch {epoch + 1} {name[:3]}", unit=" sentences",
                      file=sys.stderr, leave=False, mininterval=2) as bar:
                for start in range(0, table.num_rows, chunk_rows):
                    texts = column.slice(start, chunk_rows).to_pylist()
                    rows = np.arange(start, start + len(texts))
                    lengths[start:start + len(texts)] = [len(ids) for ids in self.segment(rows, texts, side, epoch)]
                    bar.update(len(texts))
            out.append(lengths)
        return out[0], out[1]


def resegmenter_from_config(scfg, vocabs: tuple[Vocab, Vocab], max_len: int, seed: int) -> Resegmenter | None:
    """The Resegmenter that `train.subword_sampling` asks for, or None when alpha is 0."""
    if not scfg.alpha:
        return None
    return Resegmenter(vocabs[0], vocabs[1], scfg.alpha, scfg.nbest_size, scfg.source, scfg.target, max_len, seed)
