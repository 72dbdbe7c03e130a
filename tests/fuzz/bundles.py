"""Directory surfaces: a case is a bundle {relative path: bytes} written out as a directory.

Mutations pick one file and edit it by its kind (`.npy` headers and values, CBOR structure,
SQLite rows and schema, raw bytes), or edit the directory (a file dropped, emptied, copied from
another seed, or moved to another name)."""

from __future__ import annotations

import random
import sqlite3
import tempfile
from pathlib import Path

from tests.fuzz import mutate
from tests.fuzz.base import MAX_INPUT

SQL_VALUES = ["NULL", "'text'", "x'00'", "-1", "0", "9223372036854775807", "1.5", "'zz'",
              "randomblob(32)", "randomblob(200000)", "zeroblob(10)", "'0123456789abcdef'",
              "'../../etc/passwd0'", "printf('%.*c', 70000, 'x')", "'2026-01-01T00:00:00+00:00'"]
SQL_COLUMNS = ["id", "name", "policy", "body_bytes", "added", "salt", "chunk", "escrow", "gen"]
SQL_EDITS = [
    "UPDATE files SET {col} = {val} WHERE rowid = (SELECT rowid FROM files LIMIT 1 OFFSET {n})",
    "UPDATE files SET {col} = {val}",
    "INSERT INTO files SELECT * FROM files LIMIT 1",
    "INSERT OR REPLACE INTO files (id, name, policy, body_bytes, added, salt, chunk, escrow, gen) "
    "SELECT substr(id, 1, 15) || 'f', name, policy, body_bytes, added, salt, chunk, escrow, gen "
    "FROM files LIMIT 1",
    "DELETE FROM files WHERE rowid = (SELECT rowid FROM files LIMIT 1 OFFSET {n})",
    "UPDATE meta SET value = {val}",
    "DELETE FROM meta",
    "DROP TABLE files",
    "DROP TABLE meta",
    "ALTER TABLE files RENAME COLUMN gen TO generation",
    "ALTER TABLE files ADD COLUMN extra TEXT",
    "CREATE TABLE files2 AS SELECT * FROM files; DROP TABLE files; "
    "CREATE TABLE files (id INTEGER, name, policy, body_bytes, added, salt, chunk, escrow, gen); "
    "INSERT INTO files SELECT * FROM files2",
    "CREATE TRIGGER t AFTER UPDATE ON files BEGIN DELETE FROM files; END",
    "CREATE VIEW v AS SELECT * FROM files",
    "PRAGMA journal_mode=DELETE",
    "UPDATE files SET policy = policy || ' and ' || policy",
    "UPDATE files SET policy = '(' || policy || ') or nurse#v9'",
]


def sqlite_edit(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Run one hostile SQL edit on a copy of the database; return the file's bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db.sqlite"
        path.write_bytes(data)
        template = rng.choice(SQL_EDITS)
        sql = template.format(col=rng.choice(SQL_COLUMNS), val=rng.choice(SQL_VALUES), n=rng.randrange(3))
        try:
            db = sqlite3.connect(path)
            db.executescript(sql)
            db.commit()
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
        except sqlite3.Error:
            return mutate.bitflip(rng, data)
        return path.read_bytes(), "sql-" + template.split()[0].lower() + "-" + sql.split()[1].lower()


def edit_file(rng: random.Random, name: str, data: bytes) -> tuple[bytes, str]:
    """One edit of one file, chosen by the file's kind."""
    if name.endswith(".npy") and rng.random() < 0.6:
        return mutate.npy_edit(rng, data)
    if name.endswith(".sqlite") and rng.random() < 0.7:
        return sqlite_edit(rng, data)
    if name.endswith((".cbor", ".manifest", ".sig", ".head")) and rng.random() < 0.6:
        edited = mutate.cbor_edit(rng, data)
        if edited is not None:
            return edited
    return mutate.generic(rng, data)


def mutate_bundle(rng: random.Random, seeds: list[bytes]) -> tuple[bytes, str]:
    """A mutated directory: mostly one file edited, sometimes a directory-level change."""
    files = dict(mutate.unpack_bundle(rng.choice(seeds)))
    other = mutate.unpack_bundle(rng.choice(seeds))
    names = sorted(files)
    what = rng.random()
    if what < 0.05:
        name = rng.choice(names)
        del files[name]
        how = f"drop {name}"
    elif what < 0.08:
        name = rng.choice(names)
        files[name] = b""
        how = f"empty {name}"
    elif what < 0.13:
        a, b = rng.choice(names), rng.choice(sorted(other))
        files[a] = other[b]
        how = f"copy {b} over {a}"
    elif what < 0.16:
        a = rng.choice(names)
        files[a.replace("0001", "0002") if "0001" in a else a + ".x"] = files[a]
        how = f"copy {a}"
    else:
        hows = []
        for _ in range(rng.choice([1, 1, 1, 2])):
            name = rng.choice(names)
            files[name], how = edit_file(rng, name, files[name])
            hows.append(f"{name}:{how}")
        how = "+".join(hows)
    for name, content in files.items():
        if len(content) > MAX_INPUT:
            files[name], how = content[:MAX_INPUT], how + "+cut"
    return mutate.pack_bundle(files), how


def write_bundle(data: bytes, root: Path) -> None:
    """Write a bundle under `root` (paths are checked to stay inside it)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in mutate.unpack_bundle(data).items():
        target = (root / name).resolve()
        assert str(target).startswith(str(root.resolve())), name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
