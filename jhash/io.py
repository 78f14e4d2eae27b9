"""Files jhash writes: atomic writes, named errors for damaged JSON, and the work-dir lock.

Every result file goes to a temporary name in its own folder and is renamed over the
target when complete (:func:`atomic_file`), so a kill in the middle of a write leaves the
previous file (or none), never a truncated one. A work dir is used by one jhash process at a
time: :func:`workdir_lock` takes an OS file lock (``fcntl.flock`` on ``WORKDIR/.jhash.lock``)
that the kernel drops when its process dies, so a killed run never leaves a stale lock.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pathlib
import shutil

LOCK_NAME = ".jhash.lock"


class WorkdirError(ValueError):
    """A work dir cannot be used: in use by another process, not a folder, or not writable."""


@contextlib.contextmanager
def atomic_file(path, mode: str = "wb"):
    """Yields a file open on a temporary name next to ``path``; renamed to ``path`` when the block
    ends without an exception (and removed when it raises)."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path, text: str) -> pathlib.Path:
    with atomic_file(path, "w") as f:
        f.write(text)
    return pathlib.Path(path)


def write_json(path, obj, **kwargs) -> pathlib.Path:
    return write_text(path, json.dumps(obj, **{"indent": 2, **kwargs}))


def savez(path, **arrays) -> pathlib.Path:
    """``np.savez`` written atomically (the name is kept exactly: no ``.npz`` is appended)."""
    import numpy as np

    with atomic_file(path) as f:
        np.savez(f, **arrays)
    return pathlib.Path(path)


def read_json(path, what: str = ""):
    """The JSON content of ``path``; a damaged file is a ValueError that names it."""
    path = pathlib.Path(path)
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is damaged (not valid JSON: {e}){'; ' + what if what else ''}") from None


# ------------------------------------------------------------------------------------------- the lock

_held: dict[str, list] = {}  # resolved work dir -> [file descriptor, depth] held by this process


def check_writable_dir(workdir, *, create: bool) -> bool:
    """Raises :class:`WorkdirError` when ``workdir`` is a file, lies under a file or is not writable;
    creates it (and its parents) with ``create``. Returns whether it was created."""
    workdir = pathlib.Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"--workdir {workdir} is a file, not a folder; give a folder path")
    created = False
    if not workdir.exists():
        if not create:
            raise FileNotFoundError(f"work dir {workdir} not found")
        for parent in workdir.parents:
            if parent.exists() and not parent.is_dir():
                raise WorkdirError(f"--workdir {workdir} lies under {parent}, which is a file; give a folder path")
        try:
            workdir.mkdir(parents=True)
        except FileExistsError:  # made by someone else meanwhile
            pass
        except OSError as e:
            raise WorkdirError(f"cannot create the work dir {workdir} ({e.strerror}); "
                               "give a writable --workdir") from None
        else:
            created = True
    if not os.access(workdir, os.W_OK | os.X_OK):
        raise WorkdirError(f"work dir {workdir} is not writable; give a writable --workdir")
    return created


@contextlib.contextmanager
def workdir_lock(workdir, *, create: bool = True, cleanup: bool = True):
    """Holds the lock of ``workdir`` for the block; re-entrant within a process.

    Raises :class:`WorkdirError` at once when another process holds it (naming its pid), or when
    the folder cannot be written. With ``cleanup``, a block that raises while the work dir (or a
    run folder right under it) holds no complete checkpoint removes what it added to the folder (and the folder, if it made it),
    so a failed command leaves nothing new behind.
    """
    workdir = pathlib.Path(workdir)
    key = str(workdir.absolute())
    if key in _held:
        _held[key][1] += 1
        try:
            yield workdir
        finally:
            _held[key][1] -= 1
        return
    created = check_writable_dir(workdir, create=create)
    before = set(os.listdir(workdir))
    fd = _acquire(workdir, created)
    _held[key] = [fd, 1]
    try:
        yield workdir
    except BaseException:
        if cleanup and not _has_checkpoint(workdir):
            _remove_new(workdir, before, created)
        raise
    finally:
        del _held[key]
        os.close(fd)  # releases the lock


def _acquire(workdir: pathlib.Path, created: bool) -> int:
    path = workdir / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if created:
                shutil.rmtree(workdir, ignore_errors=True)
            raise WorkdirError(f"work dir {workdir} is not writable ({e.strerror}); give a writable --workdir") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise WorkdirError(f"work dir {workdir} is in use by another jhash process (pid {pid}); "
                               "wait for it to finish or use another --workdir") from None
        try:  # the file we locked is still the one at the path (not unlinked by a failing holder)
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _has_checkpoint(workdir: pathlib.Path) -> bool:
    """A complete checkpoint in ``workdir`` or in a run folder right under it (a sweep's)."""
    for ckpt in [workdir / "checkpoints", *workdir.glob("*/checkpoints")]:
        if ckpt.is_dir() and any(p.name.isdigit() and (p / "commit_success.txt").exists() for p in ckpt.iterdir()):
            return True
    return False


def _remove_new(workdir: pathlib.Path, before: set, created: bool) -> None:
    if created:
        shutil.rmtree(workdir, ignore_errors=True)
        return
    for name in set(os.listdir(workdir)) - before - {LOCK_NAME}:
        p = workdir / name
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
    if LOCK_NAME not in before:
        (workdir / LOCK_NAME).unlink(missing_ok=True)
