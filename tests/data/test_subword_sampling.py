"""Subword regularization (train.subword_sampling): fresh segmentations of the stored text that
spell the same sentences, repeatable per (seed, epoch, row), batched by their own lengths;
training with it resumes exactly; word vocabularies are refused."""
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY_MODEL, make_cfg
from nmt.cli.train import run
from nmt.config.schema import BatchingConfig
from nmt.data.batching import LengthBatchSampler
from nmt.data.collate import ArrowPairs, make_loader
from nmt.data.store import load_prepared
from nmt.data.subword_sampling import Resegmenter, sentence_seeds
from nmt.data.vocab import EOS_ID, SOS_ID
from nmt.runs.checkpoint import Checkpoint


@pytest.fixture(scope="module")
def spm_data(prepared_spm):
    return load_prepared(prepared_spm)


def resegmenter(spm_data, alpha=0.1, **kw):
    _, meta, (sv, tv) = spm_data
    return Resegmenter(sv, tv, alpha, -1, max_len=kw.pop("max_len", meta.preprocess["max_len"]),
                       seed=kw.pop("seed", 1), **kw)


def test_fresh_segmentations_spell_the_same_sentences(spm_data):
    data, _, (sv, tv) = spm_data
    rows = list(range(0, 3000, 7))
    r = resegmenter(spm_data)
    fresh, stored = ArrowPairs(data["train"], r).__getitems__(rows), ArrowPairs(data["train"]).__getitems__(rows)
    changed = longer = 0
    for (i, s, t), (j, s0, t0) in zip(fresh, stored):
        assert i == j
        assert sv.to_text(s.tolist()) == sv.to_text(s0.tolist())
        assert tv.to_text(t.tolist()) == tv.to_text(t0.tolist())
        assert t[0] == SOS_ID and t[-1] == EOS_ID
        changed += not torch.equal(s, s0)
        longer += len(t) > len(t0)
    assert changed > len(rows) // 2 and longer > len(rows) // 2  # BPE-dropout splits words into more pieces
    # the same (seed, epoch, row) gives the same pieces, whatever batch the row is read in
    again = ArrowPairs(data["train"], r).__getitems__(rows[::-1])[::-1]
    assert all(torch.equal(a[1], b[1]) and torch.equal(a[2], b[2]) for a, b in zip(fresh, again))
    r.set_epoch(1)  # another epoch: other pieces
    other = ArrowPairs(data["train"], r).__getitems__(rows)
    assert sum(not torch.equal(a[1], b[1]) for a, b in zip(fresh, other)) > len(rows) // 2
    # the target side alone
    only_target = ArrowPairs(data["train"], resegmenter(spm_data, source=False)).__getitems__(rows)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(only_target, stored))


def test_truncation_as_prepare_stores_it(spm_data):
    data, _, _ = spm_data
    for _, s, t in ArrowPairs(data["train"], resegmenter(spm_data, alpha=0.3, max_len=6)).__getitems__(range(200)):
        assert len(s) <= 6 and len(t) <= 6 and t[0] == SOS_ID and t[-1] == EOS_ID


def test_batches_are_cut_by_the_segmented_lengths(spm_data):
    """Batching by the epoch's own segmented lengths keeps padding as low as without sampling;
    batching the same segmentations by the stored lengths pads far more."""
    data, _, _ = spm_data
    cfg = OmegaConf.structured(BatchingConfig)

    def padding(resegment, batch_by_segmented: bool) -> float:
        sampler = LengthBatchSampler.from_config(data["train"], cfg, resegment=resegment if batch_by_segmented else None)
        loader = make_loader(data["train"], sampler, 0, 0, resegment)
        real = padded = 0
        for k, batch in enumerate(loader):
            real, padded = real + batch.n_tokens, padded + batch.tgt_out.numel()
            if k == 40:
                break
        return padded / real - 1

    r = resegmenter(spm_data)
    assert padding(r, True) < 0.1 < 0.2 < padding(r, False)
    # the lengths the sampler batched by are those the loader then reads
    sampler = LengthBatchSampler.from_config(data["train"], cfg, resegment=r)
    src_len, tgt_len = sampler.lengths_for_epoch(0)
    batch = sampler.epoch_batches(0)[3]
    read = ArrowPairs(data["train"], r).__getitems__(batch.tolist())
    assert [len(s) for _, s, _ in read] == src_len[batch].tolist()
    assert [len(t) for _, _, t in read] == tgt_len[batch].tolist()


def test_sentence_seeds_differ_by_row_epoch_and_side():
    rows = np.arange(10000)
    a = sentence_seeds(1, 0, rows, 0)
    assert len(np.unique(a)) > 9990 and a.min() >= 0 and a.max() < 2**31 - 1
    assert (a != sentence_seeds(1, 1, rows, 0)).mean() > 0.99 and (a != sentence_seeds(1, 0, rows, 1)).mean() > 0.99
    assert np.array_equal(a, sentence_seeds(1, 0, rows, 0))


SPM_TINY_MODEL = [*TINY_MODEL, "train.val_max_sentences=20", "train.val_bleu=false", "train.early_stopping_metric=loss",
                  "train.subword_sampling.alpha=0.1", "train.checkpoint_every=4", "train.average_last=0"]


def test_training_with_sampling_resumes_exactly(prepared_spm, tmp_path):
    args = [f"prepared_dir={prepared_spm}", *SPM_TINY_MODEL]
    run(make_cfg(*args, "train.max_steps=10"), tmp_path / "a")
    run(make_cfg(*args, "train.max_steps=5"), tmp_path / "b")
    run(make_cfg(*args, "train.max_steps=10", f"train.resume={tmp_path / 'b'}"), tmp_path / "c")
    a = Checkpoint.load(tmp_path / "a/checkpoints/last.pt").weights
    c = Checkpoint.load(tmp_path / "c/checkpoints/last.pt").weights
    assert all(torch.equal(a[k], c[k]) for k in a)
    # and sampling changed what was learned: the same run without it ends elsewhere
    run(make_cfg(*args, "train.max_steps=10", "train.subword_sampling.alpha=0"), tmp_path / "d")
    d = Checkpoint.load(tmp_path / "d/checkpoints/last.pt").weights
    assert not all(torch.equal(a[k], d[k]) for k in a)


def test_a_word_vocabulary_is_refused_with_the_fix(tiny_prepared, tmp_path):
    with pytest.raises(ValueError, match="needs a SentencePiece vocabulary.*vocab=spm"):
        run(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, "train.subword_sampling.alpha=0.1"), tmp_path)
