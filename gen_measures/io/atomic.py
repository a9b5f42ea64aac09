"""Atomic file writes: a reader never sees half a file, and writers never share a temporary name.

Two processes may write the same file at once (two Dask workers on one machine caching one
task's sample, two runs rendering one report): each writes to a temporary file of its own in
the target's folder and moves it into place with :func:`os.replace`, so the last move wins and
every move finds its own temporary file.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; when the block ends without an error it is
    moved onto ``path``, otherwise it is removed. The parent folder is created if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of this writer's own (not mkstemp: its 0600 mode would become the file's)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
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
