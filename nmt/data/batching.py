"""Batching by length: the token budget (one rule, used by training's `kind=tokens` batches,
the Translator's decoding batches, validation and the server's dynamic batcher) and the
training batch sampler: length buckets or a token budget; shuffled, deterministic per (seed,
epoch), sharded per rank with equal counts, resumable mid-epoch."""
from __future__ import annotations

from functools import partial

import numpy as np
from torch.utils.data import Sampler

from nmt.config.choices import BatchKind, Oversized
from nmt.config.rules import choice
from nmt.errors import NmtError

Batches = list[np.ndarray]  # each batch: the example indices it holds, a view into one index array


class BatchingError(NmtError, ValueError):
    """Examples that cannot be batched as asked: the message names the setting to change."""


class OversizedExampleError(BatchingError):
    """An example over the token budget with train.batching.oversized=error."""


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """One random stream per (seed, epoch): the same pair always gives the same batches."""
    return np.random.default_rng([seed, epoch])


def bucket_batches(src_len: np.ndarray, tgt_len: np.ndarray, batch_size: int, bucket_width: int,
                   rng: np.random.Generator | None) -> Batches:
    """Group examples by their `(src_len, tgt_len) // bucket_width` bucket (random order inside a
    bucket), lay the buckets out by their longer side, then source, then target length, and cut
    the run into batches of `batch_size`: a batch holds one bucket, or the tail of one and the
    head of a neighbour, so nearly every batch is full and both sides are evenly long."""
    n = len(src_len)
    tiebreak = rng.permutation(n) if rng is not None else np.arange(n)
    src_key, tgt_key = src_len // bucket_width, tgt_len // bucket_width
    order = _sort_by_keys(tiebreak, tgt_key, src_key, np.maximum(src_key, tgt_key))
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def _sort_by_keys(tiebreak: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """`np.lexsort((tiebreak, *keys))` (last key primary) for a `tiebreak` permutation of
    0..n-1: one argsort of the keys packed into an int64 where they fit (about 8x faster at
    10M examples), the same order."""
    n = len(tiebreak)
    bits = [int(k.max()).bit_length() if n else 0 for k in keys]
    if n == 0 or sum(bits) + n.bit_length() > 62 or min(int(k.min()) for k in keys) < 0:
        return np.lexsort((tiebreak, *keys))
    packed = np.zeros(n, dtype=np.int64)
    for key, b in zip(reversed(keys), reversed(bits)):  # primary key in the highest bits
        packed <<= b
        packed |= key
    packed <<= n.bit_length()
    packed |= tiebreak
    return np.argsort(packed)


def token_batches(src_len: np.ndarray, tgt_len: np.ndarray, max_tokens: int, pool_size: int,
                  rng: np.random.Generator | None, oversized: str = "single") -> Batches:
    """Shuffle, sort by length inside pools, and cut so that `len(batch) * longest` (source or
    target, padded) stays within `max_tokens`. An example longer than the budget gets a batch of
    its own (`oversized="single"`) or raises (`"error"`); none is dropped."""
    n = len(src_len)
    longest = np.maximum(src_len, tgt_len)
    perm = rng.permutation(n) if rng is not None else np.arange(n)
    mean_len = max(float(longest.mean()), 1.0) if n else 1.0
    pool = max(int(pool_size * max_tokens / mean_len), 1)  # about pool_size batches' worth
    batches: Batches = []
    for start in range(0, n, pool):
        idx = perm[start:start + pool]
        idx = idx[np.lexsort((tgt_len[idx], src_len[idx], longest[idx]))]
        batches += cut_by_token_budget(idx, longest[idx], max_tokens, oversized)
    return batches


def fits_token_budget(n_sentences: int, longest: int, max_tokens: int) -> bool:
    """The token budget: `n_sentences` padded to `longest` tokens hold at most `max_tokens`."""
    return n_sentences * longest <= max_tokens


def cut_by_token_budget(idx: np.ndarray, longest: np.ndarray, max_tokens: int,
                        oversized: str = Oversized.single) -> Batches:
    """Cut examples sorted by ascending `longest` greedily into batches that fit the token
    budget (the last of a batch is its longest: the sort). One Python search per batch, not a
    step per example; examples over the budget come last, one batch each (`oversized="single"`)
    or raise (`"error"`)."""
    batches: Batches = []
    n, start = len(idx), 0
    fits = int(np.searchsorted(longest, max_tokens, side="right"))  # idx[:fits] are within the budget
    while start < fits:
        # the largest end with (end - start) * longest[end - 1] <= max_tokens: that product grows
        # with end, so a binary search between one example and what the first one's length allows
        lo, hi = start + 1, min(start + max(max_tokens // max(int(longest[start]), 1), 1), fits)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits_token_budget(mid - start, int(longest[mid - 1]), max_tokens) else (lo, mid - 1)
        batches.append(idx[start:lo])
        start = lo
    if fits < n and oversized == "error":
        i, length = int(idx[fits]), int(longest[fits])
        raise OversizedExampleError(
            f"example {i} has {length} tokens, over train.batching.max_tokens={max_tokens}. "
            "Fix: raise max_tokens, lower preprocess.max_len, or set train.batching.oversized=single")
    batches += [idx[i:i + 1] for i in range(fits, n)]
    return batches


def decoding_batches(lengths: list[int], max_tokens: int) -> Batches:
    """Indices of sentences to decode, in batches of similar length within the token budget
    (for translation: sorted by length, no shuffling, nothing dropped)."""
    lengths_arr = np.asarray(lengths, dtype=np.int64)
    idx = np.argsort(lengths_arr, kind="stable")
    return cut_by_token_budget(idx, lengths_arr[idx], max_tokens)


def shard(batches: Batches, rank: int, world_size: int) -> Batches:
    """Rank `rank`'s share: every rank gets the same number of batches (unequal counts hang
    DDP) and every example appears in exactly one rank's share. When the count does not divide,
    the largest batches are split in two until it does; where only single-example batches are
    left to split, the two smallest batches are merged instead (a merged pair may exceed a token
    budget: it only happens when nearly every batch holds one example)."""
    if world_size == 1:
        return batches
    n_examples = sum(map(len, batches))
    if n_examples < world_size:
        raise BatchingError(f"{n_examples} examples cannot give each of {world_size} ranks a batch. "
                            "Fix: fewer processes (torchrun --nproc-per-node), or more data")
    batches = list(batches)
    if n_examples - len(batches) >= (-len(batches)) % world_size:  # enough examples to split off
        while len(batches) % world_size:
            j = max(range(len(batches)), key=lambda k: len(batches[k]))
            b = batches[j]
            batches[j:j + 1] = [b[:len(b) // 2], b[len(b) // 2:]]
    else:
        while len(batches) % world_size:
            batches.sort(key=len)
            batches = batches[2:] + [np.concatenate([batches[0], batches[1]])]
    return batches[rank::world_size]


class LengthBatchSampler(Sampler[list[int]]):
    """A `batch_sampler` for DataLoader over one split.

    `kind="bucket"`: `batch_size` sentences of similar lengths; `kind="tokens"`: a token budget.
    Each epoch's batch list is shuffled with `(seed, epoch)`; `set_epoch` picks the epoch and
    `start_batch` skips the first k batches of it (exact resume). `shuffle=False` keeps a
    deterministic length order (evaluation)."""

    def __init__(self, src_len, tgt_len, kind: str = "bucket", batch_size: int = 64, max_tokens: int = 2000,
                 bucket_width: int = 1, pool_size: int = 1000, shuffle: bool = True, seed: int = 1,
                 oversized: str = "single", rank: int = 0, world_size: int = 1, lengths_for_epoch=None):
        kind = choice(BatchKind, kind, "train.batching.kind")
        oversized = choice(Oversized, oversized, "train.batching.oversized")
        self.src_len = np.asarray(src_len, dtype=np.int32)  # 4 bytes an example: 40 MB a side at 10M
        self.tgt_len = np.asarray(tgt_len, dtype=np.int32)
        self.kind, self.batch_size, self.max_tokens = kind, batch_size, max_tokens
        self.bucket_width, self.pool_size, self.shuffle, self.seed = bucket_width, pool_size, shuffle, seed
        self.oversized, self.rank, self.world_size = oversized, rank, world_size
        self.epoch, self.start_batch = 0, 0
        self._cache: tuple[int, Batches] | None = None
        # epoch -> (src_len, tgt_len) of the epoch's segmentation (subword sampling); None: the stored lengths
        self.lengths_for_epoch = lengths_for_epoch

    @classmethod
    def from_config(cls, split, cfg, rank: int = 0, world_size: int = 1, shuffle: bool | None = None,
                    resegment=None):
        """Build from a prepared split (`src_len`/`tgt_len` columns) and `train.batching`; with a
        `subword_sampling.Resegmenter`, each epoch is batched by its own segmented lengths."""
        from nmt.data.store import split_table

        table = split_table(split)
        stored = (table.column("src_len").to_numpy(), table.column("tgt_len").to_numpy())
        lengths_for_epoch = None if resegment is None else partial(resegment.epoch_lengths, table, stored)
        return cls(*stored, kind=cfg.kind, batch_size=cfg.batch_size, max_tokens=cfg.max_tokens,
                   bucket_width=cfg.bucket_width, pool_size=cfg.pool_size,
                   shuffle=cfg.shuffle if shuffle is None else shuffle, seed=cfg.seed,
                   oversized=cfg.oversized, rank=rank, world_size=world_size, lengths_for_epoch=lengths_for_epoch)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def epoch_batches(self, epoch: int | None = None) -> Batches:
        """All of this rank's batches for an epoch, in order (before `start_batch`)."""
        epoch = self.epoch if epoch is None else epoch
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = epoch_rng(self.seed, epoch) if self.shuffle else None
        src_len, tgt_len = self.lengths_for_epoch(epoch) if self.lengths_for_epoch else (self.src_len, self.tgt_len)
        if self.kind == BatchKind.bucket:
            batches = bucket_batches(src_len, tgt_len, self.batch_size, self.bucket_width, rng)
        else:
            batches = token_batches(src_len, tgt_len, self.max_tokens, self.pool_size, rng, self.oversized)
        if rng is not None:  # a batch's place in the epoch must not depend on its length
            batches = [batches[i] for i in rng.permutation(len(batches))]
        batches = shard(batches, self.rank, self.world_size)
        self._cache = (epoch, batches)
        return batches

    def __iter__(self):
        for batch in self.epoch_batches()[self.start_batch:]:
            yield batch.tolist()

    def __len__(self) -> int:
        return len(self.epoch_batches()) - self.start_batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "start_batch": self.start_batch, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.seed = state["seed"]
        self.set_epoch(state["epoch"], state["start_batch"])
