"""The run folder: RunSummary's one load and one save, and what a summary may name."""
import json

import pytest

from nmt.runs.run_folder import RunFolderError, RunSummary, recommended_checkpoint, run_checkpoints


def write(run_dir, content):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "train_summary.json").write_text(content if isinstance(content, str) else json.dumps(content))


def test_save_then_load_is_the_same_summary_and_written_atomically(tmp_path):
    summary = RunSummary(run_dir=str(tmp_path), stop_reason="train.max_steps=4 reached", steps=4, best_score=1.5,
                         metric="loss", recommended="avg.pt", members=["member_0", "member_1"])
    summary.save(tmp_path)
    assert RunSummary.load(tmp_path) == summary
    assert [p.name for p in tmp_path.iterdir()] == ["train_summary.json"]  # no scratch file left


def test_a_summary_of_an_earlier_nmt_still_points_at_its_checkpoint(tmp_path):
    """Before RunSummary, `recommended` held the run's path then; only the name counts."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "avg.pt").write_bytes(b"")
    write(tmp_path, {"stop_reason": "x", "steps": 3, "best_bleu": 40.1, "run_dir": "/elsewhere/run",
                     "recommended": "/elsewhere/run/checkpoints/avg.pt", "averaged_steps": [1, 2]})
    assert recommended_checkpoint(tmp_path) == tmp_path / "checkpoints" / "avg.pt"


@pytest.mark.parametrize("content, where", [
    ({"run_dir": "r", "members": ["../evil"]}, "members"),
    ({"run_dir": "r", "members": ["/tmp/evil"]}, "members"),
    ({"run_dir": "r", "members": 5}, "members"),
    ({"run_dir": "r", "members": [1, 2]}, "members.0"),
    ({"run_dir": "r", "recommended": ".."}, "recommended"),
    ([{"run_dir": "r"}], "the top level"),
    ("{not json", "the top level"),
])
def test_a_damaged_or_hostile_summary_is_one_clear_error(tmp_path, content, where):
    write(tmp_path, content)
    with pytest.raises(RunFolderError, match="train_summary.json: not a summary written by nmt.train") as err:
        run_checkpoints(tmp_path)
    assert where in str(err.value) and "Fix:" in str(err.value)


def test_a_recommended_path_is_read_by_name_inside_the_run(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "best.pt").write_bytes(b"")
    (tmp_path / "outside.pt").write_bytes(b"")
    write(tmp_path / "run", {"run_dir": "r", "recommended": "../../outside.pt"})
    assert recommended_checkpoint(tmp_path / "run") == tmp_path / "run" / "checkpoints" / "best.pt"
