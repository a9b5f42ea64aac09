"""Atomic file writes: a reader never sees half a file, and writers never share a temporary name.

Two processes may write the same file at once (two Dask workers on one machine caching one
task's sample, two runs exporting into one output folder): each writes to a temporary file of
its own in the target's folder and moves it into place with :func:`os.replace`, so the last
move wins and every move finds its own temporary file. A folder is replaced the same way
(:func:`atomic_folder`), as two renames.

A writer killed with SIGKILL cannot remove its temporary file. The name says whose it is
(``.<target>.<host>.<pid>.<random>.tmp``), so :func:`sweep_stale_temporaries` removes the
temporary files of writers on this host that are no longer running and that nobody has
touched for :data:`STALE_AFTER` seconds (a writer in another pid namespace with the same host
name, e.g. a container on the host's network, looks dead from here but keeps writing), and
nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["STALE_AFTER", "atomic_folder", "atomic_path", "sweep_stale_temporaries", "write_atomic"]

log = logging.getLogger(__name__)

#: ``.<target>.<host>.<pid>.<12 hex>.tmp``: the temporary names of this module.
_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d{1,10})\.[0-9a-f]{12}\.tmp$")
#: Seconds without a change after which a dead writer's temporary is removed by the sweep.
STALE_AFTER = 600.0


def _host() -> str:
    """This machine's name as it appears in a temporary name (characters a name can hold)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:64] or "host"


def _temporary_name(path: Path) -> Path:
    # a name of this writer's own (not mkstemp: its 0600 mode would become the file's)
    return path.with_name(f".{path.name}.{_host()}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; when the block ends without an error it is
    moved onto ``path``, otherwise it is removed. The parent folder is created if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write`` on a binary file object and put what it wrote at ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
    return path


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a fresh, empty temporary folder beside ``path``; when the block ends without an
    error it replaces ``path`` (any folder there is moved aside, then removed), otherwise it is
    removed. A symbolic link at ``path`` is followed (its target folder is replaced).

    The swap is two renames, made under an exclusive lock on ``.<name>.lock`` beside ``path``
    so that two writers swap one after the other (the last one wins). A reader never sees a
    folder half written, only, for microseconds, no folder; a writer killed before the swap
    leaves ``path`` as it was, one killed between the two renames leaves no ``path`` (the old
    folder, under a temporary name, goes with the next sweep; a run writes the folder anew).
    """
    import fcntl

    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    tmp.mkdir()
    old = None
    try:
        yield tmp
        fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if path.is_dir():
                old = _temporary_name(path)
                os.replace(path, old)
            os.replace(tmp, path)
        finally:
            os.close(fd)  # releases the lock
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a process of another user counts)."""
    if pid <= 0:
        return True  # not a pid this module wrote: leave the file alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def sweep_stale_temporaries(folder: str | Path, *, recursive: bool = False,
                            stale_after: float = STALE_AFTER) -> list[Path]:
    """Remove the temporary files and folders that writers killed mid-write (SIGKILL, power
    loss) left in ``folder`` (and in its subfolders with ``recursive``): those named by this
    module for a process of this host that no longer exists, unchanged for ``stale_after``
    seconds. A live writer's temporary, another host's, a recent one and any file this module
    did not name are kept; one that cannot be removed (another user's, say) is kept with a
    warning. Returns what was removed; a missing ``folder`` removes nothing."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host = _host()
    removed: list[Path] = []
    entries = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    for entry in sorted(entries):
        match = _TEMPORARY.match(entry.name)
        if match is None or match["host"] != host or _running(int(match["pid"])):
            continue
        try:
            if time.time() - entry.lstat().st_mtime < stale_after:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("%s: a killed writer's temporary file could not be removed (%s)", entry, exc)
            continue
        removed.append(entry)
    return removed
