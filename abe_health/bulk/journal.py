"""The durable journal of one bulk job: what it is, its items in batches, and which are done.

A job is planned once: its specification (what to do, to what, with which keys: paths and
public values only, never a secret) and every item, each in a batch, are written in one
transaction before any task runs. Then each batch becomes one task; when its result has been
committed to the target (a vault catalog, an output directory, an index, a register), the batch
is marked done in the journal, in that order. Killed at any point, the same command reads the
journal, checks that the specification is the same job, and submits only the batches not done;
the commit step of each job recognizes work a killed run committed but did not mark (a catalog
row that is there, a segment renamed into place) and does not repeat it. So a resumed job
encrypts, rewrites or issues each item once into the result, and loses none.

The journal is the driver's own local state, never the (untrusted) target's: a SQLite file (WAL,
mode 0600: it names files and holders) held under an exclusive lock (`locks.exclusive` on
JOURNAL.lock) for the whole run, so two runs of one job never interleave (`Busy`). Workers never
touch it: the driver is its single writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import BulkError
from ..locks import exclusive

SCHEMA = """
CREATE TABLE IF NOT EXISTS job (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (seq INTEGER PRIMARY KEY, batch INTEGER NOT NULL,
                                  item TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS items_batch ON items(batch);
"""
VERSION = "1"


def spec_digest(spec: dict[str, Any]) -> str:
    """A digest naming a job's specification (canonical JSON)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Journal:
    """A job's journal file; open it with `Journal.open` (a context manager holding its lock)."""

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        self.path = path
        self.db = db

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: str | os.PathLike[str], timeout: float | None = None) -> Iterator[Journal]:
        """Open (creating, mode 0600) the journal at `path` and hold its lock for the block."""
        target = Path(path)
        with exclusive(target.with_name(target.name + ".lock"), timeout):
            with contextlib.suppress(FileExistsError):
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            try:
                db = sqlite3.connect(target, timeout=30)
                db.execute("PRAGMA journal_mode=WAL")
                with db:
                    db.executescript(SCHEMA)
            except sqlite3.Error as exc:
                raise BulkError(f"{target}: not a usable bulk journal ({exc})") from None
            try:
                yield cls(target, db)
            except sqlite3.Error as exc:
                raise BulkError(f"{target}: {exc}") from None
            finally:
                db.close()

    def _get(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM job WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def get(self, name: str) -> Any:
        """A value the job recorded (`set`), or None."""
        text = self._get(f"x:{name}")
        return None if text is None else json.loads(text)

    def set(self, name: str, value: Any) -> None:
        """Record a JSON value of the job's own (a revocation's starting version, say)."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO job VALUES (?, ?)", (f"x:{name}", json.dumps(value)))

    @property
    def planned(self) -> bool:
        return self._get("spec") is not None

    def check(self, kind: str, spec: dict[str, Any]) -> bool:
        """True if this journal holds the job (`kind`, `spec`) already planned (a resume), False
        if it is new; BulkError if it holds another job."""
        found = self._get("spec")
        if found is None:
            return False
        if self._get("kind") != kind or found != spec_digest(spec) or self._get("version") != VERSION:
            raise BulkError(f"{self.path} is the journal of another job ({self._get('kind')}); "
                            "finish that job, or give another journal (or remove this one to "
                            "start over)", case="other-job")
        return True

    def plan(self, kind: str, spec: dict[str, Any], batches: Iterable[Sequence[Any]]) -> int:
        """Record the job and its items, batch by batch, in one transaction; returns the number
        of items."""
        count = 0
        with self.db:
            self.db.execute("DELETE FROM items")
            for number, batch in enumerate(batches):
                self.db.executemany("INSERT INTO items (batch, item) VALUES (?, ?)",
                                    [(number, json.dumps(item, sort_keys=True)) for item in batch])
                count += len(batch)
            self.db.executemany("INSERT OR REPLACE INTO job VALUES (?, ?)",
                                [("kind", kind), ("version", VERSION), ("spec", spec_digest(spec))])
        return count

    def reset(self) -> None:
        """Forget the job (a finished job whose next run is a new one: a revocation)."""
        with self.db:
            self.db.execute("DELETE FROM items")
            self.db.execute("DELETE FROM job")

    def pending(self) -> dict[int, list[Any]]:
        """Batch number -> its items not yet done, in order."""
        out: dict[int, list[Any]] = {}
        for batch, item in self.db.execute("SELECT batch, item FROM items WHERE done = 0 ORDER BY seq"):
            out.setdefault(int(batch), []).append(json.loads(item))
        return out

    def items(self) -> list[Any]:
        """Every item of the job, done or not, in order."""
        return [json.loads(item) for (item,) in self.db.execute("SELECT item FROM items ORDER BY seq")]

    def counts(self) -> tuple[int, int]:
        """(items done, items in all)."""
        done, total = self.db.execute("SELECT coalesce(sum(done), 0), count(*) FROM items").fetchone()
        return int(done), int(total)

    def mark_done(self, batch: int, items: Sequence[Any] | None = None) -> None:
        """Mark a batch's items done (all of them, or those given): after their commit."""
        with self.db:
            if items is None:
                self.db.execute("UPDATE items SET done = 1 WHERE batch = ?", (batch,))
            else:
                self.db.executemany("UPDATE items SET done = 1 WHERE batch = ? AND item = ?",
                                    [(batch, json.dumps(i, sort_keys=True)) for i in items])
