"""The results store: every result row in one SQLite file, written the moment it exists.

``DIR/results.sqlite`` is the only truth about a run; ``results.csv`` and the ``.predict``
files are derived from it (:mod:`gen_measures.runner.export`). Rows are keyed by what
determines them::

    (task_path, model, measure, sample_size, seed)   the slot: one row at most
    code_version, fingerprint                        what the row was computed from

A stored row is *reused* only while its ``code_version`` (the measure's declared version or a
hash of its source) and its ``fingerprint`` (the files it read, see
:mod:`gen_measures.runner.fingerprint`) equal the current ones; otherwise the slot is
recomputed and its row replaced, so the store never holds two rows for one slot.

Durability and concurrency (see the Python ``sqlite3`` docs and SQLite's WAL notes): the
database runs in WAL mode with ``synchronous=NORMAL``; every row is committed in its own
transaction as soon as it arrives, so a run killed with SIGKILL loses at most the measure it
was computing. Readers (``gen-measures export``, :func:`read_results`) never block the writer.
Two *runs* never write into one folder at once: :class:`RunLock` holds an exclusive
``flock`` on ``DIR/.gen_measures.lock`` for the whole run (released by the kernel when the
process dies, so a killed run leaves no stale lock), and a second run stops at once with a
message naming the folder and the process holding it.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gen_measures.errors import GenMeasuresError

STORE_NAME = "results.sqlite"
LOCK_NAME = ".gen_measures.lock"
SCHEMA_VERSION = "1"

#: Columns of the tidy results frame, in order.
RESULT_COLUMNS = ["task", "model", "measure", "value", "status", "seconds", "message", "details"]
KEY_COLUMNS = ["task_path", "model", "measure", "sample_size", "seed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    params TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    task_path TEXT NOT NULL,
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    measure TEXT NOT NULL,
    sample_size INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    code_version TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    value REAL,
    status TEXT NOT NULL,
    seconds REAL NOT NULL,
    message TEXT NOT NULL,
    details TEXT NOT NULL,
    computed_at REAL NOT NULL,
    run_id INTEGER,
    PRIMARY KEY (task_path, model, measure, sample_size, seed)
);
"""


class StoreError(GenMeasuresError, OSError):
    """The results store cannot be opened, locked or read."""


def sample_size_key(sample_size: int | None) -> int:
    """The stored form of a sample size: ``-1`` for "the whole training set"."""
    return -1 if sample_size is None else int(sample_size)


@dataclass(frozen=True)
class StoredRow:
    """One row of the store (what :meth:`ResultStore.put` takes and :meth:`ResultStore.get` returns)."""

    task_path: str
    task: str
    model: str
    measure: str
    sample_size: int
    seed: int
    code_version: str
    fingerprint: str
    value: float
    status: str
    seconds: float
    message: str = ""
    details: Mapping[str, Any] | None = None

    @property
    def slot(self) -> tuple:
        return (self.task_path, self.model, self.measure, self.sample_size, self.seed)


def _details_text(details: Mapping[str, Any] | None) -> str:
    try:
        return json.dumps(dict(details or {}), allow_nan=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        return json.dumps({"unserialisable_details": str(exc)})


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


class ResultStore:
    """The SQLite store of one output folder (``folder/results.sqlite``).

    Open it with ``ResultStore(folder)``; it creates the folder and the schema when needed.
    One object belongs to one thread; every :meth:`put` is one committed transaction.
    """

    def __init__(self, folder: str | Path, *, create: bool = True) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise StoreError(f"--output {self.folder}: is a file, not a folder; give a folder for the results")
        self.path = self.folder / STORE_NAME
        if not create and not self.path.is_file():
            raise StoreError(f"{self.path}: no results store here (run `gen-measures run ... --output {self.folder}` first)")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open the results store ({exc}); move it away or use another --output") from None
        except OSError as exc:
            raise StoreError(f"--output {self.folder}: cannot create the results store ({exc.strerror or exc})") from None

    # -- runs ---------------------------------------------------------------------------------
    def begin_run(self, params: Mapping[str, Any]) -> int:
        """Record the start of a run with its parameters; returns its id."""
        cur = self._db.execute("INSERT INTO runs (started, status, params) VALUES (?, 'running', ?)",
                               (time.time(), json.dumps(dict(params), default=str)))
        return int(cur.lastrowid)

    def end_run(self, run_id: int, status: str) -> None:
        self._db.execute("UPDATE runs SET finished = ?, status = ? WHERE run_id = ?", (time.time(), status, run_id))

    def last_run(self) -> dict[str, Any] | None:
        """``{"run_id", "started", "finished", "status", "params"}`` of the newest run, or ``None``."""
        row = self._db.execute("SELECT run_id, started, finished, status, params FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return {"run_id": row[0], "started": row[1], "finished": row[2], "status": row[3], "params": json.loads(row[4])}

    # -- rows ---------------------------------------------------------------------------------
    def put(self, row: StoredRow, run_id: int | None = None) -> None:
        """Insert or replace the row of ``row.slot`` (one committed transaction)."""
        value = float(row.value) if row.value is not None and math.isfinite(float(row.value)) else None
        self._db.execute(
            "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (row.task_path, row.task, str(row.model), row.measure, int(row.sample_size), int(row.seed),
             row.code_version, row.fingerprint, value, row.status, float(row.seconds), row.message or "",
             _details_text(row.details), time.time(), run_id),
        )

    def lookup(self, task_path: str, sample_size: int, seed: int) -> dict[tuple[str, str], tuple[str, str, str]]:
        """``{(model, measure): (code_version, fingerprint, status)}`` stored for one task, sample size and seed."""
        cur = self._db.execute(
            "SELECT model, measure, code_version, fingerprint, status FROM results "
            "WHERE task_path = ? AND sample_size = ? AND seed = ?", (task_path, sample_size, seed))
        return {(m, me): (cv, fp, st) for m, me, cv, fp, st in cur}

    def frame(self, *, task_paths: Iterable[str] | None = None, measures: Iterable[str] | None = None,
              sample_size: int | None = None, seed: int | None = None, keys: bool = False) -> pd.DataFrame:
        """Stored rows as a tidy frame (columns :data:`RESULT_COLUMNS`, plus the key columns when ``keys``)."""
        where, args = [], []
        for column, values in (("task_path", task_paths), ("measure", measures)):
            if values is not None:
                values = list(values)
                where.append(f"{column} IN ({','.join('?' * len(values))})" if values else "0")
                args += values
        for column, value in (("sample_size", sample_size), ("seed", seed)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM results" + (" WHERE " + " AND ".join(where) if where else "")
        try:
            frame = pd.read_sql_query(sql, self._db, params=args)
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
            raise StoreError(f"{self.path}: cannot read the results store ({exc})") from None
        frame["value"] = frame["value"].astype(float)
        frame["model"] = frame["model"].astype(str)
        frame["details"] = [json.loads(d) if d else {} for d in frame["details"]]
        columns = RESULT_COLUMNS + (KEY_COLUMNS[0:1] + ["sample_size", "seed", "code_version", "fingerprint"] if keys else [])
        return frame[columns]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RunLock:
    """An exclusive lock on an output folder for the duration of a run (``flock``, non-blocking).

    The kernel releases it when the holder exits or is killed, so no stale lock survives a
    crash. A second run on the same folder raises :class:`StoreError` naming the holder.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreError(
                f"--output {self.folder}: another gen-measures run is writing into this folder ({holder}); "
                "wait for it to finish or give another --output"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
