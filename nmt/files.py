"""Files on disk: atomic writes of files and folders (write beside the target under a scratch
name, then rename or swap it in, so a kill at any instant leaves the old or the new version,
never half of one), the removal of the scratch files that killed writes left behind, locks,
checks of output paths before any work, and names read from files (`plain_name`).

Scratch names: `.NAME.tmp-XXXX` (being written), `.NAME.work-XXXX` (a work folder of
prepare), `.NAME.old-PID` (the old folder during a two-rename swap).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path
from typing import Iterator

from nmt.errors import NmtError

SCRATCH_KINDS = ("tmp", "work", "old")
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask (os.umask sets it to read it, so set it back, one thread at a time)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the
    system or the file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def remove_stale_scratch(final: Path) -> tuple[int, int]:
    """Remove the scratch files and folders that killed writes left beside `final`; (count,
    bytes). `final` may name a glob (`ckpt_dir / "*.pt"`: every checkpoint's scratch). Call it
    while no live writer of `final` runs (hold `output_lock(final)`). A `.old-` folder is put
    back first when `final` itself is missing (a kill inside the fallback swap)."""
    final = Path(final)
    if not final.parent.is_dir():
        return 0, 0
    found = [p for kind in SCRATCH_KINDS for p in final.parent.glob(f".{final.name}.{kind}-*")]
    olds = [p for p in found if p.name.startswith(f".{final.name}.old-") and p.is_dir()]
    if "*" not in final.name and not final.exists() and olds:
        olds[0].rename(final)
        found.remove(olds[0])
    size = sum(f.stat().st_size for p in found for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    for p in found:
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    return len(found), size


@contextlib.contextmanager
def output_lock(final: Path, timeout: float = -1) -> Iterator[None]:
    """An exclusive lock on `final` (a `.NAME.lock` file beside it), held by one process at a
    time: two writers of one folder run one after the other."""
    from filelock import FileLock

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f".{final.name}.lock"), timeout=timeout):
        yield


@contextlib.contextmanager
def run_dir_lock(run_dir: Path, program: str, enabled: bool = True) -> Iterator[None]:
    """Hold `run_dir/.PROGRAM.lock` while a program writes the folder; a second one is refused
    at once (RunDirBusy, naming the folder) instead of mixing its files in."""
    from filelock import FileLock, Timeout

    if not enabled:
        yield
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / f".{program}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunDirBusy(f"{run_dir}: another {program} is writing to this run folder (it holds "
                         f"{run_dir / f'.{program}.lock'}). Fix: use another hydra.run.dir, or wait for it to end") from None
    try:
        yield
    finally:
        lock.release()


class RunDirBusy(NmtError, ValueError):
    """A run folder that another process is writing."""


class OutputError(NmtError, ValueError):
    """An output path that cannot be written: the message names the key, the path and the fix."""


def check_output_file(path: Path, key: str) -> Path:
    """Make sure `path` can be written before any work is done, by opening it: not a folder, its
    folder creatable, the file openable for writing (a file this creates is removed again); a
    device that is not a terminal gets one newline written to it (/dev/full refuses it, /dev/null
    takes it). Nothing is written to a regular file."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{key}={path}: is a folder. Fix: {key}=FILE (a file path)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{key}={path}: its folder cannot be created ({err.strerror}). "
                          "Fix: a path in a writable folder") from None
    existed = path.exists()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            if stat.S_ISCHR(os.fstat(fd).st_mode) and not os.isatty(fd):
                os.write(fd, b"\n")
        finally:
            os.close(fd)
    except OSError as err:
        raise OutputError(f"{key}={path}: cannot be written ({err.strerror}). Fix: a path in a writable "
                          "folder") from None
    finally:
        if not existed and path.is_file():
            path.unlink()
    return path


def check_output_dir(path: Path, key: str, is_ours) -> Path:
    """A folder a program will (re)write: refused when something else stands there (a file, or a
    non-empty folder `is_ours(path)` does not recognise), or its parent cannot be created. A
    symbolic link is followed: the folder it points at is the one (re)written, the link stays."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    if path.exists() and not path.is_dir():
        raise OutputError(f"{key}={path}: a file is there, not a folder this program wrote; it is left untouched. "
                          f"Fix: {key}= another path, or move the file away")
    if path.is_dir() and any(path.iterdir()) and not is_ours(path):
        raise OutputError(f"{key}={path}: a folder that this program did not write is there; it is left untouched. "
                          f"Fix: {key}= another path, or an empty folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{key}={path}: its folder cannot be created ({err.strerror}). "
                          "Fix: a path in a writable folder") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{key}={path}: {path.parent} is not writable. Fix: a path in a writable folder")
    return path


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """Yield a scratch path beside `final` to write; on success it is renamed to `final`, on
    failure removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it 0600; a file written plainly follows the umask
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a scratch folder beside `final`; on success it replaces `final`, on failure it is
    removed. The replacement is one atomic exchange where the system has one (Linux), so a kill
    at any instant leaves either the old or the new folder at `final`, never none and never half
    of one. Elsewhere it is two renames, and `remove_stale_scratch` puts the old folder back
    after a kill between them. Hold `output_lock(final)` around it."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes it 0700; a folder made plainly follows the umask
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not final.exists():
        tmp.rename(final)
        return
    if _exchange(tmp, final):  # tmp now holds the old folder
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def is_plain_name(name) -> bool:
    """A file name and nothing more: a non-empty string without a path separator, NUL, `..` or
    `.` of its own, and not absolute."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
            and "\0" not in name and not os.path.isabs(name))


def plain_name(name, source, what: str, error: type[NmtError]) -> str:
    """`name` (read from `source`, a file) if it is a plain file name; otherwise `error` naming the
    file, the entry and the fix: a name that came from a file must never reach outside its folder."""
    if not is_plain_name(name):
        raise error(f"{source}: {what} {name!r} is not a plain file name (a path, `..`, or empty): refused, "
                    "nothing was read or written outside the folder. Fix: use a file written by nmt, or "
                    "write it again with nmt")
    return name
