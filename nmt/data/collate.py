"""Padded batches: the Arrow-backed pair dataset, the Batch type and its collate function (for
training and validation), SourceBatch and its collate function (sources alone, for decoding), and
the DataLoader over them."""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import partial

import numpy as np
import pyarrow as pa
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

from nmt.data.store import split_table
from nmt.data.vocab import PAD_ID

Example = tuple[int, torch.Tensor, torch.Tensor]  # (corpus index, src ids (S,), tgt ids [SOS]+y+[EOS] (T+1,))


class ArrowPairs(Dataset):
    """A prepared split, read row by row from the (memory-mapped) Arrow chunks of its id columns.

    Each row is a slice of a chunk's values between two offsets, so a batch touches only its
    own rows' pages: Arrow's `take` on a chunked list column would concatenate the whole column
    first (all of it read, and copied, for every batch: 10 ms and +190 MB at 1M pairs)."""

    def __init__(self, split, resegment=None):
        """`split`: a prepared `datasets.Dataset` or its pyarrow Table (`store.split_table`).
        `resegment`: a `subword_sampling.Resegmenter`; the sides it resamples are then read
        from the stored cleaned text (`src_text`, `tgt_text`) instead of the stored ids."""
        table = split if isinstance(split, pa.Table) else split_table(split)
        self.n = table.num_rows
        self.resegment = resegment
        self.sides = []  # per side: per chunk (offsets, values) as zero-copy numpy views
        for name in ("src_ids", "tgt_ids"):
            chunks = table.column(name).chunks
            self.sides.append([(c.offsets.to_numpy(), c.values.to_numpy()) for c in chunks])
        self.texts = []  # per side: per chunk (offsets, utf-8 bytes), only where resegmented
        for name, on in zip(("src_text", "tgt_text"), resegment.needs_text if resegment else (False, False)):
            chunks = table.column(name).chunks if on else []
            self.texts.append([_string_buffers(c) for c in chunks])
        self.chunk_starts = np.cumsum([0] + [len(c) for c in table.column("src_ids").chunks])

    def set_epoch(self, epoch: int) -> None:
        """The epoch about to be read (it seeds the resegmentation)."""
        if self.resegment is not None:
            self.resegment.set_epoch(epoch)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Example:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: list[int]) -> list[Example]:
        idx = np.asarray(indices, dtype=np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"index out of range for a split of {self.n} rows")
        chunk = np.searchsorted(self.chunk_starts, idx, side="right") - 1
        local = idx - self.chunk_starts[chunk]
        where = list(zip(chunk.tolist(), local.tolist()))
        fresh = self.resegment(idx, tuple(self._texts(side, where) for side in self.texts)) \
            if self.resegment is not None else (None, None)
        rows = []
        for side, new_ids in zip(self.sides, fresh):
            if new_ids is not None:
                rows.append([torch.tensor(ids, dtype=torch.long) for ids in new_ids])
                continue
            ids = []
            for c, r in where:
                offsets, values = side[c]
                ids.append(torch.from_numpy(values[offsets[r]:offsets[r + 1]].astype(np.int64)))
            rows.append(ids)
        return [(i, s, t) for i, s, t in zip(idx.tolist(), rows[0], rows[1])]

    @staticmethod
    def _texts(side_chunks, where) -> list[str]:
        """The stored cleaned sentences at (chunk, row) positions of one side ([] if not read)."""
        if not side_chunks:
            return []
        out = []
        for c, r in where:
            offsets, data = side_chunks[c]
            out.append(str(data[offsets[r]:offsets[r + 1]], "utf-8"))
        return out


def _string_buffers(array) -> tuple[np.ndarray, memoryview]:
    """A pyarrow (large_)string array as zero-copy (offsets (n + 1,), utf-8 bytes)."""
    _, offsets, data = array.buffers()
    dtype = np.int64 if pa.types.is_large_string(array.type) else np.int32
    return np.frombuffer(offsets, dtype=dtype)[array.offset:array.offset + len(array) + 1], memoryview(data)


@dataclass
class Batch:
    """A padded batch, sorted by source length (descending) so the encoder can pack.

    src (B, S) long, src_lengths (B,) long (at least 1: an empty source reads one PAD), tgt_in = [SOS] + y and tgt_out = y + [EOS]
    (B, T) long, all padded with the vocab's PAD id; indices (B,) the corpus index of each
    row; restore (B,) the permutation with `x[restore]` back in input order; n_tokens the
    number of non-pad target tokens."""

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    indices: torch.Tensor
    restore: torch.Tensor
    n_tokens: int

    def to(self, device, non_blocking: bool = False) -> "Batch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in moved.items():
            if isinstance(v, torch.Tensor) and k != "src_lengths":  # pack_padded_sequence wants CPU lengths
                moved[k] = v.to(device, non_blocking=non_blocking)
        return Batch(**moved)


@dataclass
class SourceBatch:
    """Padded sources to decode, sorted by length (descending): src (B, S) long, src_lengths (B,)
    (at least 1: an empty source reads one PAD), indices (B,) the caller's index of each row,
    restore (B,) the permutation with `x[restore]` back in the caller's order."""

    src: torch.Tensor
    src_lengths: torch.Tensor
    indices: torch.Tensor
    restore: torch.Tensor

    def to(self, device) -> "SourceBatch":
        """On `device`, but src_lengths (pack_padded_sequence wants CPU lengths)."""
        return SourceBatch(self.src.to(device), self.src_lengths, self.indices.to(device), self.restore.to(device))


def collate_sources(examples: list[tuple[int, torch.Tensor]], pad_id: int = PAD_ID) -> SourceBatch:
    """(index, source ids (S,)) pairs -> a SourceBatch: sorted by length descending, padded with `pad_id`."""
    src_lengths = torch.tensor([len(e[1]) for e in examples], dtype=torch.long)
    order = torch.argsort(src_lengths, descending=True, stable=True)
    src = pad_sequence([examples[i][1] for i in order.tolist()], batch_first=True, padding_value=pad_id)
    if src.size(1) == 0:  # every source empty: keep one pad column so shapes stay valid
        src = torch.full((len(examples), 1), pad_id, dtype=torch.long)
    indices = torch.tensor([examples[i][0] for i in order.tolist()], dtype=torch.long)
    return SourceBatch(src, src_lengths[order].clamp(min=1), indices, torch.argsort(order))


def collate(examples: list[Example], pad_id: int = PAD_ID) -> Batch:
    """Sort by source length descending, pad both sides with `pad_id`, shift the target."""
    sources = collate_sources([(e[0], e[1]) for e in examples], pad_id)
    examples = [examples[i] for i in torch.argsort(sources.restore).tolist()]  # in the sources' order
    tgt_in = pad_sequence([e[2][:-1] for e in examples], batch_first=True, padding_value=pad_id)
    tgt_out = pad_sequence([e[2][1:] for e in examples], batch_first=True, padding_value=pad_id)
    return Batch(src=sources.src, src_lengths=sources.src_lengths, tgt_in=tgt_in, tgt_out=tgt_out,
                 indices=sources.indices, restore=sources.restore, n_tokens=int((tgt_out != pad_id).sum()))


def make_loader(split, sampler, pad_id: int, num_workers: int = 0, resegment=None) -> DataLoader:
    """A DataLoader that reads each sampled batch from Arrow at once (resegmented when
    `resegment` is given) and collates it. It gets a generator of its own: a new iterator draws
    a seed from it, and drawing from the global RNG would make a resumed run's dropout differ
    from an uninterrupted one."""
    return DataLoader(ArrowPairs(split, resegment), batch_sampler=sampler, collate_fn=partial(collate, pad_id=pad_id),
                      num_workers=num_workers, generator=torch.Generator().manual_seed(0))
