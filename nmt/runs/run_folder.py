"""The training run folder around its checkpoints: the typed summary (`RunSummary`,
`train_summary.json`, one load and one save), which checkpoint a finished run recommends, the
members of a `train.members` run, what `train.resume` points at, and the step copies that
averaging reads.

    RUN/train_summary.json        RunSummary: why it stopped, the best score, the recommendation
    RUN/checkpoints/best.pt       the best validation score
    RUN/checkpoints/last.pt       the newest save (resume from here)
    RUN/checkpoints/avg.pt        the mean of the last saves (train.average_last)
    RUN/checkpoints/step_N.pt     the saves averaged (hard links to earlier last.pt)
    RUN/member_K/                 a member of a train.members run, itself a run folder
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from nmt.errors import NmtError
from nmt.files import atomic_file, is_plain_name

SUMMARY_FILE = "train_summary.json"
CHECKPOINTS = "checkpoints"


class RunFolderError(NmtError, ValueError):
    """A run folder whose files are missing or damaged: the message names the file and the fix."""


class _Record(BaseModel):
    # extra keys are ignored: summaries written before a field was added or renamed still load
    model_config = ConfigDict(extra="ignore")


class Selection(_Record):
    """best.pt against avg.pt on val with the search translate will use."""

    search: str
    metric: str
    scores: Dict[str, float]  # checkpoint file name -> val score


class Averaging(_Record):
    """train.average_last: what avg.pt averages and how it scored."""

    score: float  # val score with greedy search, as best.pt was validated
    steps: List[int]
    selection: Selection


class LengthPenaltyChoice(_Record):
    """train.length_penalties: val BLEU with each penalty; the chosen one is stored in best.pt and avg.pt."""

    chosen: float
    search: str
    checkpoint: str
    val_bleu: Dict[str, float]  # "1.4" -> BLEU

    def chosen_bleu(self) -> float:
        return self.val_bleu[f"{self.chosen:g}"]


class EnsembleScores(_Record):
    """A `train.members` run scored on val as translate runs it (None fields: val BLEU off)."""

    checkpoints: List[str]
    bleu: Optional[float] = None
    member_bleu: Optional[List[float]] = None
    search: Optional[str] = None
    length_penalty: Optional[float] = None


class RunSummary(_Record):
    """`train_summary.json`: what a finished training run did and which checkpoint it recommends;
    for a `train.members` run, its members (folder names) and their ensemble's val scores."""

    run_dir: str
    stop_reason: str = ""
    steps: int = 0
    epochs: int = 0
    metric: str = "bleu"  # the early-stopping metric that best_score measures
    best_score: Optional[float] = None
    best_step: int = 0
    train_minutes: float = 0.0
    n_params: int = 0
    recommended: str = "best.pt"  # a file name in checkpoints/
    averaging: Optional[Averaging] = None
    length_penalty: Optional[LengthPenaltyChoice] = None
    members: List[str] = []  # member folder names, in the run folder
    member_summaries: List["RunSummary"] = []
    ensemble: Optional[EnsembleScores] = None

    @field_validator("recommended", mode="before")
    @classmethod
    def _file_name(cls, value):
        """Summaries before this one stored the path; only the name counts (the folder may have moved)."""
        return Path(value).name if isinstance(value, str) and "/" in value else value

    @field_validator("recommended")
    @classmethod
    def _plain_recommended(cls, value: str) -> str:
        if not is_plain_name(value):
            raise ValueError(f"{value!r} is not a plain file name")
        return value

    @field_validator("members")
    @classmethod
    def _plain_members(cls, value: list[str]) -> list[str]:
        bad = [m for m in value if not is_plain_name(m)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a member folder name (a path or `..` would leave the run folder)")
        return value

    @classmethod
    def load(cls, run_dir: Path) -> "RunSummary":
        """`run_dir`'s summary, checked: RunFolderError (the file, the key, the fix) when it is not
        JSON, not the shape written by nmt.train, or names files outside the run folder."""
        path = Path(run_dir) / SUMMARY_FILE
        try:
            return cls.model_validate_json(path.read_bytes())
        except OSError as err:
            raise RunFolderError(f"{path}: unreadable ({err.strerror}). Fix: ckpt= a checkpoint file of the run, "
                                 "e.g. RUN/checkpoints/best.pt") from None
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the top level"
            raise RunFolderError(f"{path}: not a summary written by nmt.train ({where}: {first['msg']}). Fix: "
                                 "ckpt= a checkpoint file of the run (RUN/checkpoints/best.pt), or delete the "
                                 "damaged summary") from None

    def save(self, run_dir: Path) -> Path:
        """Write `run_dir/train_summary.json` atomically (a scratch file renamed into place)."""
        path = Path(run_dir) / SUMMARY_FILE
        with atomic_file(path) as tmp:
            tmp.write_text(self.model_dump_json(indent=2, exclude_defaults=False) + "\n")
        return path


def has_summary(run_dir: Path) -> bool:
    return (Path(run_dir) / SUMMARY_FILE).is_file()


def run_checkpoints(path: Path) -> list[Path]:
    """`ckpt=RUN_DIR` of a run trained with `train.members=N`: the checkpoint each member
    recommends (an ensemble); of any other path, [recommended_checkpoint(path)]."""
    path = Path(path)
    if path.is_dir() and has_summary(path):
        members = RunSummary.load(path).members
        if members:
            return [recommended_checkpoint(path / m) for m in members]  # by name: the run dir may have moved
    return [recommended_checkpoint(path)]


def recommended_checkpoint(path: Path) -> Path:
    """`ckpt=RUN_DIR`: the checkpoint a finished training run recommends (the summary's
    `recommended`: best.pt, or avg.pt when it scored higher on val), else its best.pt; any other
    path as it is."""
    path = Path(path)
    best = path / CHECKPOINTS / "best.pt"
    if not (path.is_dir() and (has_summary(path) or best.is_file())):
        return path
    if has_summary(path):
        recommended = path / CHECKPOINTS / RunSummary.load(path).recommended
        if recommended.is_file():
            return recommended
    if best.is_file():
        return best
    raise RunFolderError(f"{path}: a training run without {CHECKPOINTS}/best.pt. Fix: ckpt=PATH.pt of one of its "
                         "checkpoints")


def resume_asked(resume) -> bool:
    """Whether train.resume asks for anything (false, 0, empty and null do not)."""
    return not (resume is False or resume is None or str(resume).lower() in ("false", "0", ""))


def resolve_resume(resume, run_dir: Path) -> Path | None:
    """train.resume: false -> None; true -> this run dir's last.pt; auto -> that if it exists,
    else None (a requeued cluster job); a run dir or a .pt file."""
    if not resume_asked(resume):
        return None
    if str(resume).lower() == "auto":
        target = Path(run_dir) / CHECKPOINTS / "last.pt"
        return target if target.is_file() else None
    if resume is True or str(resume).lower() == "true":
        target = Path(run_dir) / CHECKPOINTS / "last.pt"
    else:
        p = Path(str(resume))
        target = p if p.suffix == ".pt" else p / CHECKPOINTS / "last.pt"
    if not target.is_file():
        raise RunFolderError(
            f"train.resume={resume}: {target} does not exist. Fix: train.resume=RUN_DIR of an earlier run "
            "(outputs/DATE/TIME) or the path of its checkpoints/last.pt")
    return target


def keep_step_copy(ckpt_dir: Path, step: int, keep: int) -> None:
    """Keep `last.pt` also as `step_NNNNNNNN.pt` (a hard link: no copy) and delete all but the
    newest `keep` of those: the inputs of `nmt.average average.last_n=K` and of avg.pt."""
    kept = ckpt_dir / f"step_{step:08d}.pt"
    kept.unlink(missing_ok=True)
    try:
        os.link(ckpt_dir / "last.pt", kept)
    except OSError:  # a file system without hard links
        shutil.copyfile(ckpt_dir / "last.pt", kept)
    for old in step_copies(ckpt_dir)[:-keep]:
        old.unlink()


def step_copies(ckpt_dir: Path) -> list[Path]:
    """The step_N.pt copies of a checkpoint folder, oldest first."""
    return sorted(Path(ckpt_dir).glob("step_*.pt"))


def step_of(copy: Path) -> int:
    """The training step a step_N.pt copy was saved at."""
    return int(Path(copy).stem.split("_")[1])
