"""Padded batches: collate (pairs, for training) and collate_sources (sources, for decoding) agree."""
import torch

from nmt.data.collate import collate, collate_sources
from nmt.data.vocab import EOS_ID, PAD_ID, SOS_ID


def test_sources_are_sorted_padded_and_restorable_as_in_training_batches():
    sources = [[5, 6], [7, 8, 9, 10], [], [11, 12, 13]]
    examples = [(i, torch.tensor(s, dtype=torch.long), torch.tensor([SOS_ID, 4, EOS_ID])) for i, s in enumerate(sources)]
    pairs = collate(examples)
    alone = collate_sources([(i, torch.tensor(s, dtype=torch.long)) for i, s in enumerate(sources)])
    for name in ("src", "src_lengths", "indices", "restore"):
        assert torch.equal(getattr(pairs, name), getattr(alone, name)), name
    assert alone.indices.tolist() == [1, 3, 0, 2] and alone.src_lengths.tolist() == [4, 3, 2, 1]  # empty reads one PAD
    assert alone.src[3].tolist() == [PAD_ID] * 4
    assert alone.indices[alone.restore].tolist() == [0, 1, 2, 3]
