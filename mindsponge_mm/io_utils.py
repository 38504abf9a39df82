"""Output files and folders: atomic writes, writable-folder checks and run-directory locks.

* :func:`atomic_path` / :func:`write_text_atomic`: outputs are never left half-written, and the
  temporary files of a writer that was killed are removed by the next write of the same target.
* :func:`ensure_writable_dir`: an output folder that cannot be created or written is a one-line
  :class:`~mindsponge_mm.errors.UserError` before any work starts.
* :class:`RunDirectory`: the name of every file of a run directory, in one place;
* :class:`RunLock`: one process at a time writes a run directory;
* :func:`run_directory`: hold a run directory for one job (lock, tidy-up after a failed start).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

from .errors import UserError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete ``.NAME.*.tmp`` files beside ``path`` left by writers that no longer run.

    Temporary names carry the writer's PID (``.NAME.PID.XXXX.tmp``); a file whose PID is a live
    process other than this one is kept, every other one (including names without a PID) goes.
    """
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        parts = tmp.name[len(path.name) + 2:].split(".")
        pid = int(parts[0]) if parts and parts[0].isdigit() else None
        if pid is not None and pid != os.getpid() and _pid_alive(pid):
            continue
        if pid == os.getpid():
            continue  # one of ours, still being written
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, on error delete it.

    The rename is atomic on POSIX, so readers see either the old file or the complete new one.
    The file gets the permissions of the umask (0644 under the usual 022), whatever mode the
    writer created it with, and stale temporaries of earlier killed writers are removed first.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise UserError(f"{path}: cannot write here ({err.strerror}); choose a writable location") from None
    os.close(fd)
    os.unlink(tmp)  # writers (h5py, sqlite) create the file themselves
    try:
        yield Path(tmp)
        if os.path.exists(tmp):
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cache_dir() -> Path:
    """The user cache directory of the package (``$XDG_CACHE_HOME/mindsponge_mm``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mindsponge_mm"


def ensure_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """Create folder ``path`` if needed and check that files can be written in it.

    ``what`` names the setting that chose the folder (``run.output``, ``--out``) for the error line.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise UserError(f"{what} = {path} is a file, not a folder; choose another {what}") from None
    except OSError as err:
        raise UserError(f"{what} = {path} is not writable ({err.strerror}); choose a writable folder "
                        f"for {what}") from None
    return path


class RunDirectory:
    """Every file of a run directory (``run.output``), one property (a :class:`~pathlib.Path`) each.

    Training writes ``config.yaml`` (the resolved config), ``split.npz``, ``statistics.json``,
    ``checkpoints/last.safetensors`` (everything needed to resume), ``checkpoints/best.safetensors``,
    ``metrics.csv``, ``steps.csv``, ``learning_curve.png``, ``train.log`` and
    ``training_state.json``; evaluation ``evaluation.json`` and the parity plots; export
    ``export/potential.mindir``; MD the H5MD trajectory, its restart file and its plot (names
    set by ``md.trajectory`` and ``md.checkpoint``, relative to the directory). ``.lock`` is the
    :class:`RunLock` of the job writing it. ``os.fspath(run)`` is the directory.
    """

    TRAJECTORY = "trajectory.h5"
    MD_CHECKPOINT = "md_checkpoint.npz"

    def __init__(self, root: str | os.PathLike, trajectory: str = TRAJECTORY, md_checkpoint: str = MD_CHECKPOINT):
        self.root = Path(root)
        self._trajectory, self._md_checkpoint = str(trajectory), str(md_checkpoint)

    def __fspath__(self) -> str:
        return os.fspath(self.root)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.root)!r})"

    # the job
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    # data stage
    @property
    def split(self) -> Path:
        return self.root / "split.npz"

    @property
    def statistics(self) -> Path:
        return self.root / "statistics.json"

    # training
    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.safetensors"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.safetensors"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def steps(self) -> Path:
        return self.root / "steps.csv"

    @property
    def learning_curve(self) -> Path:
        return self.root / "learning_curve.png"

    @property
    def train_log(self) -> Path:
        return self.root / "train.log"

    @property
    def training_state(self) -> Path:
        return self.root / "training_state.json"

    # evaluation and export
    @property
    def evaluation(self) -> Path:
        return self.root / "evaluation.json"

    @property
    def parity_energy(self) -> Path:
        return self.root / "parity_energy.png"

    @property
    def parity_forces(self) -> Path:
        return self.root / "parity_forces.png"

    @property
    def export_mindir(self) -> Path:
        return self.root / "export" / "potential.mindir"

    # molecular dynamics
    @property
    def trajectory(self) -> Path:
        return self.root / self._trajectory

    @property
    def md_checkpoint(self) -> Path:
        return self.root / self._md_checkpoint

    @property
    def trajectory_plot(self) -> Path:
        return self.root / (Path(self._trajectory).stem + ".png")

    # which files make a run worth keeping (see :func:`run_directory`)
    @property
    def training_outputs(self) -> tuple[Path, ...]:
        return (self.last_checkpoint,)

    @property
    def data_outputs(self) -> tuple[Path, ...]:
        return (self.split,)

    @property
    def md_outputs(self) -> tuple[Path, ...]:
        return (self.trajectory, self.md_checkpoint)


class RunLock:
    """An exclusive lock on a run directory, held while a job writes it.

    The lock is ``fcntl.flock`` on ``DIR/.lock`` (:attr:`RunDirectory.lock`), which holds the
    owner's PID, command line and start time; the kernel releases it when the process ends,
    however it ends, so a killed run never leaves a stale lock. A second process gets a one-line
    UserError naming the owner. Re-entrant within one process (``run`` holds it across training,
    evaluation and MD).
    """

    _held: dict[str, list] = {}  # resolved path -> [file object, depth]

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.key = str(self.directory.resolve())

    def __enter__(self) -> "RunLock":
        held = RunLock._held.get(self.key)
        if held is not None:
            held[1] += 1
            return self
        handle = open(RunDirectory(self.directory).lock, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise UserError(f"{self.directory} is in use by a running job ({owner}); wait for it to finish, or "
                            f"choose another run.output") from None
        import sys

        handle.seek(0)
        handle.truncate()
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
        handle.write(f"PID {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}: {command}\n")
        handle.flush()
        RunLock._held[self.key] = [handle, 1]
        return self

    def __exit__(self, *exc) -> None:
        held = RunLock._held[self.key]
        held[1] -= 1
        if held[1] == 0:
            del RunLock._held[self.key]
            held[0].close()  # closing releases the flock; the file stays (its content is informative)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure as PNG atomically, close it, and return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def read_safetensors(path: str | os.PathLike, missing_hint: str) -> tuple[dict, dict]:
    """(JSON metadata under the ``mindsponge_mm`` key or {}, tensors) of a safetensors file.

    A missing file is a one-line UserError ending in ``missing_hint``; an unreadable one too.
    """
    import json

    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    from .errors import UserError

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: {missing_hint}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            raw = (f.metadata() or {}).get("mindsponge_mm")
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable checkpoint ({err})") from None
    return (json.loads(raw) if raw else {}), tensors


@contextlib.contextmanager
def run_directory(out_dir: str | os.PathLike, keep, what: str = "run.output",
                  writer: bool = True) -> Iterator[RunDirectory]:
    """Hold ``out_dir`` for one job and yield its :class:`RunDirectory`: check it is writable, lock
    it, and tidy up after a failure.

    A folder this job created is removed again when the job fails before writing any of ``keep``
    (paths, relative ones to ``out_dir``, whose presence makes the run worth keeping or resuming,
    e.g. :attr:`RunDirectory.training_outputs`), so a failed start leaves no folder holding only
    ``config.yaml``. ``writer=False`` (data-parallel ranks other than 0) does nothing.
    """
    run = out_dir if isinstance(out_dir, RunDirectory) else RunDirectory(out_dir)
    root = run.root
    if not writer:
        yield run
        return
    try:
        fresh = not root.exists() or (root.is_dir() and not any(p.name != run.lock.name for p in root.iterdir()))
    except OSError:
        fresh = False
    ensure_writable_dir(root, what)
    try:
        with RunLock(root):
            yield run
    except BaseException:
        if fresh and root.exists() and not any((root / k).exists() for k in keep):
            shutil.rmtree(root, ignore_errors=True)
        raise
