"""Bad input and failures: each case gets a clear one-line error (file, line, fix), loses nothing
and leaves nothing behind. The numbers refer to the cases of the reliability issue (#9)."""
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import ENV, assert_one_line_error, cli

from conftest import ROOT, TINY_DE, TINY_EN, TINY_MODEL, make_cfg, write_lines
from nmt.cli.train import run as train
from nmt.cli.translate import run as translate
from nmt.config.rules import ConfigError, check_config
from nmt.data.corpus import CorpusError
from nmt.data.prepare import prepare
from nmt.data.store import load_prepared
from nmt.files import atomic_dir, remove_stale_scratch
from nmt.runs.checkpoint import Checkpoint, CheckpointError, content_hash
from nmt.training.divergence import DivergedError


def tiny_files(d, de=TINY_DE, en=TINY_EN):
    d.mkdir(parents=True, exist_ok=True)
    return write_lines(d / "de.txt", de), write_lines(d / "en.txt", en)


# ---------------------------------------------------------------- 1. stdin lines


STDIN_3_LINES = "Ein Hund\rläuft.\nZwei Männer\u2028im Park.\nEine Frau.\n".encode()


def test_1_stdin_file_mode_keeps_lines_aligned_on_cr_and_u2028(tiny_checkpoint, tmp_path):
    out = tmp_path / "o.txt"
    rc, _, err = cli("translate", f"ckpt={tiny_checkpoint}", "translate.input=-", f"translate.output={out}", "decode=greedy",
                     f"hydra.run.dir={tmp_path}/run", stdin=STDIN_3_LINES)
    assert rc == 0, err[-2000:]
    assert len(out.read_text(encoding="utf-8").split("\n")) == 3 + 1  # 3 lines, each ending in \n


def test_1_stdin_line_by_line_mode_keeps_lines_aligned(tiny_checkpoint, tmp_path):
    rc, out, err = cli("translate", f"ckpt={tiny_checkpoint}", "decode=greedy", f"hydra.run.dir={tmp_path}",
                       stdin=STDIN_3_LINES)
    assert rc == 0, err[-2000:]
    assert len(out.split("\n")) == 3 + 1


# ---------------------------------------------------------------- 2. damaged checkpoints


def test_2_overwritten_bytes_are_detected(tiny_checkpoint, tmp_path):
    bad = tmp_path / "best.pt"
    data = bytearray(tiny_checkpoint.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = b"\xff" * 64  # NaN floats, or any other change of content
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged checkpoint"):
        Checkpoint.load(bad)
    rc, _, err = cli("translate", f"ckpt={bad}", "split=test", "decode=greedy", f"hydra.run.dir={tmp_path}/run")
    assert_one_line_error(rc, err, str(bad), "damaged checkpoint", "Fix:")


def test_2_truncated_checkpoint_gives_one_line(tiny_checkpoint, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    last = run_dir / "checkpoints" / "last.pt"
    last.write_bytes(tiny_checkpoint.read_bytes()[: tiny_checkpoint.stat().st_size // 3])
    shutil.copy(tiny_checkpoint, run_dir / "checkpoints" / "best.pt")
    with pytest.raises(CheckpointError, match="torch.load failed"):
        Checkpoint.load(last)
    prepared = Checkpoint.load(tiny_checkpoint).prepared["dir"]
    rc, _, err = cli("train", f"prepared_dir={prepared}", *TINY_MODEL, f"train.resume={run_dir}",
                     f"hydra.run.dir={tmp_path}/resumed")
    assert_one_line_error(rc, err, str(last), "best.pt")


def test_2_non_finite_weights_are_never_saved_nor_loaded(tiny_checkpoint, tmp_path):
    ckpt = Checkpoint.load(tiny_checkpoint)
    name = next(k for k, v in ckpt.weights.items() if v.is_floating_point())
    ckpt.weights[name][0] = float("nan")
    with pytest.raises(CheckpointError, match="NaN"):
        ckpt.save(tmp_path / "nan.pt")
    assert not list(tmp_path.iterdir())
    # a file with NaN weights and a matching hash (written by something else) is refused too
    payload = ckpt.payload()
    torch.save({"checkpoint_version": 3, **payload, "content_sha256": content_hash(payload)}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="NaN/inf"):
        Checkpoint.load(tmp_path / "x.pt")


# ---------------------------------------------------------------- 3. divergence


def test_3_exploding_run_exits_non_zero_and_saves_nothing_bad(tiny_prepared, tmp_path):
    rc, _, err = cli("train", f"prepared_dir={tiny_prepared}", *TINY_MODEL, "train.max_steps=40", "train.lr=1e6",
                     "train.precision=fp32", f"hydra.run.dir={tmp_path}")
    assert_one_line_error(rc, err, "diverged", "train.lr")
    assert "precision" not in err.strip().splitlines()[-1]  # the run is fp32 already: nothing to suggest
    assert "(best)" not in err
    assert not list((tmp_path / "checkpoints").glob("*.pt")) if (tmp_path / "checkpoints").exists() else True


def test_3_nan_loss_keeps_the_checkpoints_that_passed_the_checks(tiny_prepared, tmp_path):
    cfg = make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, "train.lr=1e37", "train.clip_grad_norm=0",
                   "train.checkpoint_every=1", "train.schedule=constant", "train.max_epochs=5",
                   "train.precision=fp32")
    with pytest.raises(DivergedError) as info:
        train(cfg, tmp_path)
    message = str(info.value)
    assert "train.clip_grad_norm=1.0" in message and "precision" not in message
    for path in (tmp_path / "checkpoints").glob("*.pt"):
        if not path.name.startswith("step_"):  # the copies kept for averaging are not resume points
            assert str(path) in message  # the message names each good checkpoint and its step
        weights = Checkpoint.load(path).weights  # verified: finite, hash intact
        assert max(float(v.abs().max()) for v in weights.values() if v.is_floating_point()) <= 1e4


# ---------------------------------------------------------------- 4. data=files splits


def test_4_files_with_valid_and_test_from_the_command_line_end_to_end(tmp_path):
    raw = tmp_path / "corpus"
    raw.mkdir()
    for name, lines in (("tr.src", TINY_DE * 3), ("tr.tgt", TINY_EN * 3), ("dev.src", TINY_DE[:6]),
                        ("dev.tgt", TINY_EN[:6]), ("eval.src", TINY_DE[6:]), ("eval.tgt", TINY_EN[6:])):
        write_lines(raw / name, lines, gz=name.startswith("eval"))
    (raw / "eval.src").rename(raw / "eval.src.gz")
    (raw / "eval.tgt").rename(raw / "eval.tgt.gz")
    out = tmp_path / "prep"
    rc, stdout, err = cli("prepare", "data=files", f"data.root={raw}", "data.files.train.src=tr.src",
                          "data.files.train.tgt=tr.tgt", "data.files.valid.src=dev.src", "data.files.valid.tgt=dev.tgt",
                          "data.files.test.src=eval.src.gz", "data.files.test.tgt=eval.tgt.gz", "vocab=word",
                          f"prepared_dir={out}", f"hydra.run.dir={tmp_path}/h")
    assert rc == 0, err[-2000:]
    dd, meta, _ = load_prepared(out)
    assert meta.counts == {"train": 36, "valid": 6, "test": 6}
    summary = train(make_cfg(f"prepared_dir={out}", *TINY_MODEL, "train.max_steps=12"), tmp_path / "run")
    assert summary.steps == 12
    result = translate(make_cfg(f"ckpt={tmp_path}/run/checkpoints/best.pt", "translate.split=test", "decode=greedy"),
                       tmp_path / "tr")
    assert len(result["hyps"]) == 6 and result["scores"][0]["name"] == "BLEU"


def test_4_files_split_with_one_side_only_is_refused(tmp_path):
    src, tgt = tiny_files(tmp_path / "c")
    with pytest.raises(CorpusError, match="data.files.valid.tgt=FILE"):
        prepare(make_cfg("data=files", f"data.files.train.src={src}", f"data.files.train.tgt={tgt}",
                         f"data.files.valid.src={src}", f"prepared_dir={tmp_path}/p"))


# ---------------------------------------------------------------- 5. tracebacks become one line


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_5_files_missing_or_directory(tmp_path, kind):
    src, tgt = tiny_files(tmp_path / "c")
    target = tmp_path / "c" / "nope.txt"
    if kind == "directory":
        target.mkdir()
    rc, _, err = cli("prepare", "data=files", f"data.files.train.src={src}", f"data.files.train.tgt={target}",
                     f"prepared_dir={tmp_path}/p", f"hydra.run.dir={tmp_path}/h")
    assert_one_line_error(rc, err, str(target), "Fix:", "not found" if kind == "missing" else "directory")


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_5_damaged_gzip_names_the_file(tmp_path, damage):
    raw = tmp_path / "c"
    raw.mkdir()
    src = write_lines(raw / "a.de.gz", TINY_DE * 200, gz=True)
    tgt = write_lines(raw / "a.en.gz", TINY_EN * 200, gz=True)
    data = bytearray(tgt.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2: len(data) // 2 + 16] = b"\x00" * 16
    tgt.write_bytes(bytes(data))
    with pytest.raises(CorpusError, match="corrupt or truncated gzip"):
        prepare(make_cfg("data=files", f"data.files.train.src={src}", f"data.files.train.tgt={tgt}",
                         f"prepared_dir={tmp_path}/p"))
    rc, _, err = cli("prepare", "data=files", f"data.files.train.src={src}", f"data.files.train.tgt={tgt}",
                     f"prepared_dir={tmp_path}/p", f"hydra.run.dir={tmp_path}/h")
    assert_one_line_error(rc, err, str(tgt), "gzip -t")


def test_5_invalid_utf8_on_stdin(tiny_checkpoint, tmp_path):
    for args in (["translate.input=-"], []):  # all of stdin, and line by line
        rc, _, err = cli("translate", f"ckpt={tiny_checkpoint}", "decode=greedy", *args,
                         f"hydra.run.dir={tmp_path}", stdin=b"ein hund\nein \xff hund\n")
        assert_one_line_error(rc, err, "<stdin>:2", "invalid UTF-8", "Fix:")


# ---------------------------------------------------------------- 6. the prepared folder


def small_m30k(d):
    d.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 30), ("val", 1), ("test_2016_flickr", 1)):
        write_lines(d / f"{split}.de", TINY_DE * n)
        write_lines(d / f"{split}.en", TINY_EN * n)
    return d


def test_6_stale_scratch_folders_are_removed(tmp_path, capsys):
    raw, out = small_m30k(tmp_path / "raw"), tmp_path / "prep"
    for name in (".prep.tmp-abc", ".prep.work-def"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "junk.arrow").write_bytes(b"x" * 1000)
    prepare(make_cfg(f"data.root={raw}", f"prepared_dir={out}", "vocab=word"))
    assert "removed 2 temporary folder(s)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [".prep.lock", "prep", "raw"]


def test_6_replacing_is_one_exchange_and_a_kill_mid_swap_is_recovered(tmp_path):
    final = tmp_path / "prep"
    with atomic_dir(final) as tmp:
        (tmp / "v").write_text("1")
    with atomic_dir(final) as tmp:
        (tmp / "v").write_text("2")
    assert (final / "v").read_text() == "2" and sorted(p.name for p in tmp_path.iterdir()) == ["prep"]
    # the two-rename fallback killed between its renames: the old folder is put back
    final.rename(tmp_path / ".prep.old-123")
    (tmp_path / ".prep.tmp-xyz").mkdir()
    assert remove_stale_scratch(final)[0] == 1
    assert (final / "v").read_text() == "2" and sorted(p.name for p in tmp_path.iterdir()) == ["prep"]


def test_6_killed_at_any_moment_old_or_new_dataset_is_there(tmp_path):
    raw, out = small_m30k(tmp_path / "raw"), tmp_path / "prep"
    prepare(make_cfg(f"data.root={raw}", f"prepared_dir={out}", "vocab=word"))
    args = [sys.executable, "-m", "nmt.prepare", f"data.root={raw}", f"prepared_dir={out}", "vocab=word", "prepare.force=true",
            f"hydra.run.dir={tmp_path}/h"]
    started = time.time()
    subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, check=True, timeout=120)
    whole = time.time() - started
    for fraction in (0.6, 0.75, 0.85, 0.95):  # start-up (imports) is most of a run; kill across its end
        p = subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(whole * fraction)
        p.send_signal(signal.SIGKILL)
        p.wait()
        dd, meta, _ = load_prepared(out)  # never missing, never half-written
        assert len(dd["train"]) == 360
    prepare(make_cfg(f"data.root={raw}", f"prepared_dir={out}", "vocab=word"))  # cleans what the kills left
    assert sorted(p.name for p in tmp_path.iterdir()) == [".prep.lock", "h", "prep", "raw"]


def test_6_concurrent_prepares_into_one_folder_both_succeed(tmp_path):
    raw, out = small_m30k(tmp_path / "raw"), tmp_path / "prep"
    args = [sys.executable, "-m", "nmt.prepare", f"data.root={raw}", f"prepared_dir={out}", "vocab=word", "prepare.force=true"]
    procs = [subprocess.Popen(args + [f"hydra.run.dir={tmp_path}/h{i}"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for i in range(2)]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-1500:] for r in results]
    assert len(load_prepared(out)[0]["train"]) == 360


# ---------------------------------------------------------------- 7. quiet data changes


def test_7_utf8_bom_is_stripped(tmp_path):
    raw = small_m30k(tmp_path / "raw")
    for name in ("train.de", "train.en", "val.de"):
        (raw / name).write_bytes(b"\xef\xbb\xbf" + (raw / name).read_bytes())
    out = tmp_path / "prep"
    prepare(make_cfg(f"data.root={raw}", f"prepared_dir={out}", "vocab=word"))
    dd, _, (sv, tv) = load_prepared(out)
    assert dd["train"][0]["src_text"] == TINY_DE[0] and dd["valid"][0]["src_text"] == TINY_DE[0]
    assert 1 not in dd["train"][0]["src_ids"]  # no <unk> for "\ufeffein"


def test_7_nul_bytes_are_refused_with_file_and_line(tmp_path):
    raw = small_m30k(tmp_path / "raw")
    lines = (raw / "train.en").read_bytes().split(b"\n")
    lines[4] = b"the\x00 man"
    (raw / "train.en").write_bytes(b"\n".join(lines))
    with pytest.raises(CorpusError, match=r"train.en:5: NUL byte"):
        prepare(make_cfg(f"data.root={raw}", f"prepared_dir={tmp_path}/p", "vocab=word"))


def test_7_a_utf16_file_is_named_as_such_not_as_misaligned(tmp_path):
    de = tmp_path / "de.txt"
    de.write_bytes("Ein Hund\nZwei Katzen\n".encode("utf-16"))  # its line count differs from en.txt too
    en = write_lines(tmp_path / "en.txt", ["A dog", "Two cats"])
    with pytest.raises(CorpusError, match=r"de.txt:1: NUL byte.*iconv -f utf-16"):
        prepare(make_cfg("data=files", f"data.files.train.src={de}", f"data.files.train.tgt={en}",
                         f"prepared_dir={tmp_path}/p", "vocab=word"))


def test_7_long_lines_are_not_cut_and_empty_lines_stay_empty(tiny_checkpoint, tmp_path, capsys):
    long_line = " ".join(["ein hund läuft"] * 60)  # 180 words, past max_len 128
    src = write_lines(tmp_path / "in.de", [TINY_DE[0], "", long_line, "   ", TINY_DE[1]])
    out = tmp_path / "out.en"
    result = translate(make_cfg(f"ckpt={tiny_checkpoint}", f"translate.input={src}", f"translate.output={out}",
                                "decode=greedy"),
                       tmp_path / "run")
    hyps = out.read_text().split("\n")[:-1]
    assert len(hyps) == 5 and hyps[1] == "" and hyps[3] == ""
    assert hyps[0] == TINY_EN[0] and hyps[4] == TINY_EN[1]
    assert "1 input line(s) are longer" in capsys.readouterr().err
    from nmt import Translator

    assert len(Translator.from_checkpoint(tiny_checkpoint).encode([long_line])[0][0]) == 180  # whole, not cut at 128
    assert result["sentences"] == 5


# ---------------------------------------------------------------- 8. config gaps


@pytest.mark.parametrize("override,key", [("+train.max_epoch=3", "train.max_epoch"),
                                          ("train.batching.batch_size=0", "train.batching.batch_size"),
                                          ("train.max_steps=-5", "train.max_steps"),
                                          ("decode.beam_size=0", "decode.beam_size"),
                                          ("model.dropout=1.5", "model.dropout")])
def test_8_bad_config_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(make_cfg(override))


def test_8_unknown_key_added_with_plus_fails_on_the_command_line(tiny_prepared, tmp_path):
    rc, _, err = cli("train", f"prepared_dir={tiny_prepared}", "+train.max_epoch=3", f"hydra.run.dir={tmp_path}")
    assert_one_line_error(rc, err, "train.max_epoch", "did you mean train.max_epochs")


# ---------------------------------------------------------------- 9. last.pt after the final validation


def test_9_last_checkpoint_holds_the_final_validation(tiny_prepared, tmp_path):
    # 9 batches an epoch: step 13 stops mid-epoch, after the epoch-end validation at step 9
    summary = train(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, "train.max_steps=13",
                             "train.early_stopping_metric=loss"), tmp_path)
    progress = Checkpoint.load(tmp_path / "checkpoints/last.pt").progress
    assert progress["step"] == 13 and progress["last_validation_step"] == 13
    assert progress["best_score"] == summary.best_score and progress["best_step"] == summary.best_step
    assert summary.metric == "loss"


# ---------------------------------------------------------------- 10. small


def test_10_reference_count_error_names_the_file_and_output_name(tiny_checkpoint, tmp_path):
    src = write_lines(tmp_path / "in.txt", TINY_DE[:4])
    ref = write_lines(tmp_path / "ref.txt", TINY_EN[:3])
    with pytest.raises(ValueError, match=f"{ref}: the reference has 3 lines but the input has 4"):
        translate(make_cfg(f"ckpt={tiny_checkpoint}", f"translate.input={src}", f"translate.ref={ref}", "decode=greedy"),
                  tmp_path / "r")
    translate(make_cfg(f"ckpt={tiny_checkpoint}", f"translate.input={src}", "decode=greedy"), tmp_path / "r2")
    assert [p.name for p in (tmp_path / "r2").glob("hyp.*")] == ["hyp.in.txt"]
