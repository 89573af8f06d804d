"""Batch samplers: coverage, determinism, sharding, resume, padding; and the collate function."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nmt.data.batching import LengthBatchSampler, OversizedExampleError
from nmt.data.collate import ArrowPairs, collate, make_loader
from nmt.data.store import load_prepared
from nmt.data.vocab import EOS_ID, PAD_ID, SOS_ID

lengths = st.lists(st.tuples(st.integers(0, 60), st.integers(2, 60)), min_size=1, max_size=300)
configs = st.fixed_dictionaries({
    "kind": st.sampled_from(["bucket", "tokens"]),
    "batch_size": st.integers(1, 40),
    "max_tokens": st.integers(20, 400),
    "bucket_width": st.integers(1, 5),
    "pool_size": st.integers(1, 10),
    "seed": st.integers(0, 5),
})


def sampler(lens, world_size=1, rank=0, **cfg):
    src, tgt = zip(*lens)
    return LengthBatchSampler(np.array(src), np.array(tgt), world_size=world_size, rank=rank, **cfg)


@settings(max_examples=150, deadline=None)
@given(lens=lengths, cfg=configs, world_size=st.integers(1, 4), epoch=st.integers(0, 3))
def test_every_example_exactly_once_across_ranks_with_equal_counts(lens, cfg, world_size, epoch):
    if world_size > len(lens):
        world_size = 1
    shares = []
    for rank in range(world_size):
        s = sampler(lens, world_size, rank, **cfg)
        s.set_epoch(epoch)
        shares.append(list(s))
    assert len({len(b) for b in shares}) == 1  # equal batch counts on every rank
    seen = sorted(i for share in shares for b in share for i in b)
    assert seen == list(range(len(lens)))
    if cfg["kind"] == "tokens" and world_size == 1:
        for share in shares:
            for b in share:
                longest = max(max(lens[i]) for i in b)
                assert len(b) * longest <= cfg["max_tokens"] or len(b) == 1


@settings(max_examples=50, deadline=None)
@given(lens=lengths, cfg=configs, k=st.integers(0, 20))
def test_deterministic_per_seed_and_epoch_and_resumable(lens, cfg, k):
    a, b = sampler(lens, **cfg), sampler(lens, **cfg)
    a.set_epoch(2)
    b.set_epoch(2)
    full = list(a)
    assert full == list(b)
    k = min(k, len(full))
    b.set_epoch(2, start_batch=k)
    assert list(b) == full[k:] and len(b) == len(full) - k
    c = sampler(lens, **cfg)
    c.load_state_dict(b.state_dict())
    assert list(c) == full[k:]


def test_epochs_differ_and_batch_order_is_not_by_length():
    rng = np.random.default_rng(0)
    lens = list(zip(rng.integers(1, 40, 2000).tolist(), rng.integers(2, 40, 2000).tolist()))
    s = sampler(lens, kind="bucket", batch_size=32)
    e0, e1 = s.epoch_batches(0), s.epoch_batches(1)
    assert [b.tolist() for b in e0] != [b.tolist() for b in e1]
    first_len = [lens[b[0]][0] for b in e0]
    assert np.corrcoef(first_len, np.arange(len(first_len)))[0, 1] < 0.3  # shuffled, not sorted


def test_oversized_example_single_or_error():
    lens = [(5, 5), (500, 6), (4, 4)]
    s = sampler(lens, kind="tokens", max_tokens=100)
    assert [1] in list(s)
    with pytest.raises(OversizedExampleError, match="max_tokens"):
        list(sampler(lens, kind="tokens", max_tokens=100, oversized="error"))


def test_eval_order_is_by_length():
    lens = [(7, 3), (2, 3), (9, 3), (1, 3), (5, 3)]
    s = sampler(lens, kind="bucket", batch_size=2, shuffle=False)
    batches = list(s)
    assert [lens[i][0] for b in batches for i in b] == [1, 2, 5, 7, 9]


def ex(i, src, tgt):
    return (i, torch.tensor(src), torch.tensor([SOS_ID, *tgt, EOS_ID]))


def test_collate_shapes_padding_sorting_and_restore():
    examples = [ex(10, [5, 6], [7]), ex(11, [5, 6, 7, 8], [9, 9, 9]), ex(12, [4], [8, 8])]
    b = collate(examples, pad_id=PAD_ID)
    assert b.src.shape == (3, 4) and b.src.dtype == torch.long
    assert b.src_lengths.tolist() == [4, 2, 1]
    assert b.indices.tolist() == [11, 10, 12]
    assert b.tgt_in.tolist() == [[SOS_ID, 9, 9, 9], [SOS_ID, 7, PAD_ID, PAD_ID], [SOS_ID, 8, 8, PAD_ID]]
    assert b.tgt_out.tolist() == [[9, 9, 9, EOS_ID], [7, EOS_ID, PAD_ID, PAD_ID], [8, 8, EOS_ID, PAD_ID]]
    assert b.src[2].tolist() == [4, PAD_ID, PAD_ID, PAD_ID]
    assert b.n_tokens == 4 + 2 + 3
    assert b.indices[b.restore].tolist() == [10, 11, 12]


def test_collate_uses_the_given_pad_id():
    b = collate([ex(0, [5], [6]), ex(1, [5, 5], [6, 6])], pad_id=99)
    assert b.src[1, 1] == 99 and b.tgt_out[1, 2] == 99 and b.n_tokens == 5


def test_loader_over_real_prepared_multi30k(prepared_spm):
    dd, meta, (sv, tv) = load_prepared(prepared_spm)
    s = LengthBatchSampler(dd["valid"].data.column("src_len").to_numpy(),
                           dd["valid"].data.column("tgt_len").to_numpy(), kind="tokens", max_tokens=1500)
    seen = []
    for b in make_loader(dd["valid"], s, pad_id=tv.pad_id):
        assert b.src.size(1) == int(b.src_lengths.max())
        row = dd["valid"][int(b.indices[0])]
        assert b.src[0, : row["src_len"]].tolist() == row["src_ids"]
        assert b.tgt_in[0, : row["tgt_len"] - 1].tolist() == row["tgt_ids"][:-1]
        seen += b.indices.tolist()
    assert sorted(seen) == list(range(len(dd["valid"])))
    assert len(ArrowPairs(dd["valid"])) == 1014


@settings(max_examples=100, deadline=None)
@given(lens=lengths, seed=st.integers(0, 9), width=st.integers(1, 5))
def test_packed_key_sort_is_lexsort(lens, seed, width):
    from nmt.data.batching import _sort_by_keys

    src, tgt = (np.array(x) // width for x in zip(*lens))
    tiebreak = np.random.default_rng(seed).permutation(len(src))
    keys = (tgt, src, np.maximum(src, tgt))
    assert _sort_by_keys(tiebreak, *keys).tolist() == np.lexsort((tiebreak, *keys)).tolist()
    huge = (tgt, src + 2**40)  # too wide to pack: falls back to lexsort itself
    assert _sort_by_keys(tiebreak, *huge).tolist() == np.lexsort((tiebreak, *huge)).tolist()
