"""nmt.distill: a teacher trained on real Multi30k sentences translates the training source; the
distilled data holds exactly its translations (read back and compared with the teacher decoding
the same sentences), is cached by the teacher's weights and the search, continues an interrupted
pass, and a student trains on it."""
import os
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, TINY_MODEL, make_cfg
from nmt.data.encode import target_ids
from nmt.data.store import load_prepared, split_table
from nmt.inference.translator import Translator
from nmt.runs.checkpoint import Checkpoint
from nmt.runs.run_folder import recommended_checkpoint
from nmt.training.distilled_data import DistillError, build_distilled_data

PASS = ["distill.beam_size=2"]
STUDENT = [*TINY_MODEL, "train.max_steps=3", "train.val_bleu=false", "train.early_stopping_metric=loss",
           "train.average_last=0", "train.length_penalties=[]"]


@pytest.fixture(scope="module")
def teacher(m30k_pair_runs):
    """(the de->en teacher's run dir, the prepared folder it was trained on: 3,000 Multi30k pairs)."""
    run = m30k_pair_runs["de-en"]
    return run, run.parent / "prepared_de-en"


def distill(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nmt.distill", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)


def expected_targets(teacher_ckpt, sources, references, max_len: int) -> list[list[int]]:
    """What the distilled train split must hold: the teacher's beam-2 output as stored targets
    (SOS, pieces, EOS), the reference where the teacher wrote nothing."""
    tr = Translator.from_checkpoint(teacher_ckpt, beam_size=2, split_sentences=False)
    hyps = tr.translate_ids(sources)
    return [target_ids([h.tokens], max_len)[0] if h.tokens else ref for h, ref in zip(hyps, references)]


def test_the_student_trains_on_the_teacher_s_translations(teacher, tmp_path):
    run, prepared = teacher
    store = tmp_path / "distilled"
    args = [f"distill.teacher={run}", f"prepared_dir={prepared}", f"distill.dir={store}", *PASS, *STUDENT,
            f"hydra.run.dir={tmp_path / 'student'}"]
    r = distill(args, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "distill: teacher translates train" in r.stderr and "sentences/s" in r.stderr  # progress and rate
    (folder,) = store.glob("teacher-*")
    data, meta, _ = load_prepared(folder)
    original, original_meta, _ = load_prepared(prepared)
    got, src = split_table(data["train"]), split_table(original["train"])
    assert got.column("src_ids").to_pylist() == src.column("src_ids").to_pylist()
    want = expected_targets(recommended_checkpoint(run), src.column("src_ids").to_pylist(),
                            src.column("tgt_ids").to_pylist(), original_meta.preprocess["max_len"])
    assert got.column("tgt_ids").to_pylist() == want
    differ = sum(a != b for a, b in zip(want, src.column("tgt_ids").to_pylist()))
    assert differ > len(want) // 2  # a tiny teacher: its translations are not the references
    for split in ("valid", "test"):  # the teacher's val and test are not touched
        assert split_table(data[split]).equals(split_table(original[split]))
    assert meta.counts["train"] == len(want) and meta.config == original_meta.config

    student = Checkpoint.load(tmp_path / "student" / "checkpoints" / "last.pt")
    assert student.prepared["dir"] == str(folder) and student.progress["step"] == 3
    assert (tmp_path / "student" / "distill.json").is_file()

    again = distill([*args[:-1], f"hydra.run.dir={tmp_path / 'student2'}"], tmp_path)  # cached: no second pass
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing it" in again.stderr and "teacher translates train" not in again.stderr


def test_an_interrupted_pass_continues_where_it_stopped(teacher, tmp_path, monkeypatch):
    run, prepared = teacher
    cfg = make_cfg(f"distill.teacher={run}", f"prepared_dir={prepared}", f"distill.dir={tmp_path}", *PASS,
                   "distill.chunk=700", "distill.train=false")
    real = Translator.translate_ids
    calls = []

    def interrupted_after_two_chunks(self, sources, *args, **kwargs):
        calls.append(len(sources))
        if len(calls) == 3:
            raise KeyboardInterrupt  # as Ctrl-C in the middle of the third chunk
        return real(self, sources, *args, **kwargs)

    monkeypatch.setattr(Translator, "translate_ids", interrupted_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        build_distilled_data(cfg)
    (pass_dir,) = tmp_path.glob("pass-*")
    assert sorted(p.name for p in pass_dir.glob("chunk-*")) == ["chunk-00000.arrow", "chunk-00001.arrow"]
    assert not list(tmp_path.glob("teacher-*"))  # no dataset where a student would read it
    assert not [p for p in pass_dir.iterdir() if p.name.startswith(".")]  # no half-written chunk

    monkeypatch.setattr(Translator, "translate_ids", real)
    calls.clear()
    monkeypatch.setattr(Translator, "translate_ids", lambda self, s, *a, **k: calls.append(len(s)) or real(self, s, *a, **k))
    built = build_distilled_data(cfg)
    assert calls == [700, 700, 200]  # chunks 2, 3, 4 of 3,000 sentences; 0 and 1 were kept
    src = split_table(load_prepared(prepared)[0]["train"])
    want = expected_targets(recommended_checkpoint(run), src.column("src_ids").to_pylist(),
                            src.column("tgt_ids").to_pylist(), load_prepared(prepared)[1].preprocess["max_len"])
    assert split_table(load_prepared(built.prepared_dir)[0]["train"]).column("tgt_ids").to_pylist() == want


def test_a_changed_teacher_is_translated_again_and_mix_adds_the_references(teacher, tmp_path):
    run, prepared = teacher
    teacher_file = tmp_path / "teacher.pt"
    shutil.copy(recommended_checkpoint(run), teacher_file)
    common = [f"distill.teacher={teacher_file}", f"prepared_dir={prepared}", f"distill.dir={tmp_path / 'd'}",
              "distill.beam_size=1", "distill.train=false"]
    first = build_distilled_data(make_cfg(*common))
    assert not first.reused and build_distilled_data(make_cfg(*common)).reused

    ckpt = Checkpoint.load(teacher_file)
    ckpt.weights = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v for k, v in ckpt.weights.items()}
    ckpt.save(teacher_file)
    changed = build_distilled_data(make_cfg(*common))
    assert not changed.reused and changed.key != first.key and changed.prepared_dir != first.prepared_dir

    both = build_distilled_data(make_cfg(*common, "distill.mix=both"))
    assert both.key == changed.key  # the same pass, assembled with the original pairs too
    info = both.info
    assert info["train_pairs"] == 2 * info["sentences"] - info["teacher_equals_reference"] - info["teacher_empty"]
    targets = split_table(load_prepared(both.prepared_dir)[0]["train"]).column("tgt_ids").to_pylist()
    references = split_table(load_prepared(prepared)[0]["train"]).column("tgt_ids").to_pylist()
    assert set(map(tuple, references)) <= set(map(tuple, targets))


def test_a_teacher_of_another_pair_is_refused(teacher, m30k_pair_runs, tmp_path):
    _, prepared = teacher
    en_de = m30k_pair_runs["en-de"]
    r = distill([f"distill.teacher={en_de}", f"prepared_dir={prepared}", f"distill.dir={tmp_path}",
                 f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert r.returncode == 1
    assert "distill: error: " in r.stderr and "translates en->de" in r.stderr and "is de->en" in r.stderr
    assert str(en_de) in r.stderr and str(prepared) in r.stderr
    assert not list(tmp_path.glob("teacher-*")) and not list(tmp_path.glob("pass-*"))
    with pytest.raises(DistillError, match="Fix: a teacher of de->en"):
        build_distilled_data(make_cfg(f"distill.teacher={en_de}", f"prepared_dir={prepared}", f"distill.dir={tmp_path}"))


def test_distill_config_is_checked(tmp_path):
    from nmt.config.rules import ConfigError, check_config

    with pytest.raises(ConfigError, match="distill.teacher=3"):
        check_config(make_cfg("distill.teacher=3"))
    with pytest.raises(ConfigError, match="no teacher given"):
        build_distilled_data(make_cfg(f"distill.dir={tmp_path}"))
