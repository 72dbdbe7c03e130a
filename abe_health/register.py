"""The authority's issuance register: an append-only record of every user key it issued.

Why: a key file's metadata (attributes, GID, issuance id) is written by the authority but held,
and so editable, by the user; nothing authenticates it. Renewal that re-issued "the attributes in
the key file" handed out whatever a holder wrote there (`nurse` came back as `psychiatrist`; an
edited GID gave a key that pools with the holder's keys from another authority). The register is
the authority's own memory instead: renewal finds the presented key by the SHA-256 digest of its
group-element parts, which a holder cannot change without breaking the key, and re-issues what
the register says was issued, never anything from the key file.

Which attributes of an issuance expire is decided by the authority when it issues the key and
recorded with the issuance (`expiring`), never guessed from the values: a multi-authority (RW15)
key may hold date-valued attributes that are facts, not expiries (`born = 1980-04-02`, a licence
date), and re-dating those on renewal would widen the key (break F3). Renewal moves exactly the
recorded expiring attributes. For CP keys the expiring attribute is always the key-wide
`valid_until` (their components share the key's randomness, so one key-wide last day is sound),
and the register records it when the key holds one.

The register is a local SQLite database next to the master key (WAL mode, mode 0600, since it
says who holds what): `DIR/register.sqlite` beside `DIR/master.key`, `DIR/NAME.register.sqlite`
beside a multi-authority `DIR/NAME.key` (`register_path_for`). It holds:

    register_meta(name TEXT PRIMARY KEY, value TEXT)   -- row ("schema", "2"), checked on open
    issuances(                                         -- append-only: UPDATE/DELETE abort
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        iid          TEXT UNIQUE,      -- random id of the row (32 hex digits); `iid` in key meta
        event        TEXT,             -- 'issued' | 'withdrawn'
        authority    TEXT,             -- fingerprint of the issuing authority's public key
        scheme       TEXT,
        gid          TEXT,             -- multi-authority holder (issued rows; withdrawn holder)
        attributes   TEXT,             -- JSON list of canonical attribute texts (CP, RW15)
        policy       TEXT,             -- key policy (KP)
        valid_until  TEXT,             -- last day of validity (ISO), when the key has one
        dates        TEXT,             -- JSON {attribute subject: ISO date} of dated attributes
        key_digest   BLOB UNIQUE,      -- SHA-256(canonical CBOR of the key's encoded parts)
        recorded_at  TEXT,             -- UTC, ISO 8601
        renewed_from TEXT,             -- the iid this issuance renews (at most one renewal each)
        withdraws    TEXT,             -- withdrawn rows: the iid whose lineage is withdrawn
        reason       TEXT,
        expiring     TEXT)             -- issued rows: JSON list of the subjects (`name@authority`
                                       -- for RW15) that expire and that renewal may re-date;
                                       -- NULL in rows recorded under schema 1 (not recorded)

Schema 1 (abe-health before expiring attributes were recorded) had no `expiring` column. Opening
such a register upgrades it in place, in one transaction: `ALTER TABLE issuances ADD COLUMN
expiring` and the schema row set to 2. No row is rewritten (SQLite reads the new column of an
existing row as NULL), so the register stays append-only, and it keeps what a fresh register
could not: its withdrawals, its renewal lineages, and the other tables that share the file (the
vault's record of the manifests it signed). Its RW15 issuances have no recorded expiring
attributes, so they are not renewed (the authority issues a new key with `expiring` and
withdraws the old one); its CP issuances renew as before (`valid_until` only). A register of a
newer schema is refused.

Rows never change: withdrawing is an appended 'withdrawn' row naming an issuance (its whole
renewal lineage stops being renewable) or a holder GID (every issuance of that GID recorded
before the withdrawal). Triggers abort UPDATE and DELETE on `issuances`, and an INSERT that would
collide with an existing row (so INSERT OR REPLACE cannot delete one either); the database is
append-only against this program and against mistakes, not against someone who can write the
file (the authority's machine is trusted with its master key anyway). Other tables may live in
the same file (the vault keeps `vault_versions` here): `open` checks only the `schema` row of
`register_meta` and the `issuances` table, and other rows of `register_meta` belong to whoever
wrote them. Every database error surfaces as `RegisterError` naming the file.

Size: one append-only store and the checks that keep it so (schema, triggers, upgrade in place,
lookups by key digest); splitting it would spread one invariant over several files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2

from .errors import AbeError, InvalidKey, PolicySyntaxError
from .hazmat.records import to_map
from .keys import Key
from .policy import Attribute, parse_attribute

SCHEMA_VERSION = 2
#: schema versions `Register` upgrades in place when it opens them (see the module docstring)
UPGRADABLE = {"1"}
#: the key-wide expiry of CP keys (RW15 keys refuse it; they name their expiring attributes)
VALID_UNTIL = "valid_until"
#: file name of a single-authority register (beside master.key)
REGISTER_NAME = "register.sqlite"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")

SCHEMA = """
CREATE TABLE IF NOT EXISTS register_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS issuances (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    iid          TEXT NOT NULL UNIQUE,
    event        TEXT NOT NULL CHECK (event IN ('issued', 'withdrawn')),
    authority    TEXT NOT NULL,
    scheme       TEXT NOT NULL,
    gid          TEXT,
    attributes   TEXT,
    policy       TEXT,
    valid_until  TEXT,
    dates        TEXT,
    key_digest   BLOB UNIQUE,
    recorded_at  TEXT NOT NULL,
    renewed_from TEXT REFERENCES issuances(iid),
    withdraws    TEXT REFERENCES issuances(iid),
    reason       TEXT,
    expiring     TEXT,
    CHECK ((event = 'issued' AND key_digest IS NOT NULL AND withdraws IS NULL
            AND (attributes IS NOT NULL OR policy IS NOT NULL))
        OR (event = 'withdrawn' AND key_digest IS NULL AND renewed_from IS NULL
            AND (withdraws IS NOT NULL OR gid IS NOT NULL)))
);
CREATE UNIQUE INDEX IF NOT EXISTS issuances_renewed_once ON issuances(renewed_from)
    WHERE renewed_from IS NOT NULL;
CREATE INDEX IF NOT EXISTS issuances_holder ON issuances(authority, gid);
CREATE INDEX IF NOT EXISTS issuances_withdraws ON issuances(withdraws);
CREATE TRIGGER IF NOT EXISTS issuances_no_update BEFORE UPDATE ON issuances
    BEGIN SELECT RAISE(ABORT, 'the issuance register is append-only'); END;
CREATE TRIGGER IF NOT EXISTS issuances_no_delete BEFORE DELETE ON issuances
    BEGIN SELECT RAISE(ABORT, 'the issuance register is append-only'); END;
CREATE TRIGGER IF NOT EXISTS issuances_no_replace BEFORE INSERT ON issuances
    WHEN EXISTS (SELECT 1 FROM issuances WHERE seq = NEW.seq OR iid = NEW.iid
                 OR key_digest = NEW.key_digest OR renewed_from = NEW.renewed_from)
    BEGIN SELECT RAISE(ABORT, 'the issuance register is append-only: the row repeats another');
    END;
"""

_INSERT_ISSUED = ("INSERT INTO issuances (iid, event, authority, scheme, gid, attributes, policy, "
                  "valid_until, dates, key_digest, recorded_at, renewed_from, withdraws, reason, "
                  "expiring) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_SELECT = ("SELECT seq, iid, event, authority, scheme, gid, attributes, policy, valid_until, dates, "
           "key_digest, recorded_at, renewed_from, withdraws, reason, expiring FROM issuances")
_BY_SEQ = _SELECT + " WHERE seq = ?"
_BY_IID = _SELECT + " WHERE iid = ?"
_BY_DIGEST = _SELECT + " WHERE key_digest = ?"
_BY_AUTHORITY = _SELECT + " WHERE authority = ? ORDER BY seq"
_ALL = _SELECT + " ORDER BY seq"


class RegisterError(AbeError):
    """An issuance register that is missing, unreadable, of another schema, or refused a write."""


class NotRenewable(InvalidKey):
    """A key the register does not know, or whose issuance was withdrawn or already renewed."""


@dataclass(frozen=True)
class Issuance:
    """One row of the register: an issued key, or a withdrawal (`event == "withdrawn"`)."""

    seq: int
    iid: str
    event: str
    authority: str
    scheme: str
    gid: str | None
    attributes: tuple[str, ...] | None
    policy: str | None
    valid_until: str | None
    dates: dict[str, str]
    key_digest: bytes | None
    recorded_at: str
    renewed_from: str | None
    withdraws: str | None
    reason: str | None
    #: subjects (`name@authority` for RW15, `valid_until` for CP) that renewal re-dates, as the
    #: authority decided at issuance; None when the row predates schema 2 (not recorded)
    expiring: tuple[str, ...] | None = None

    @classmethod
    def _from_row(cls, row: Sequence[Any]) -> Issuance:
        attributes = json.loads(row[6]) if row[6] is not None else None
        expiring = json.loads(row[15]) if row[15] is not None else None
        return cls(int(row[0]), row[1], row[2], row[3], row[4], row[5],
                   tuple(attributes) if attributes is not None else None, row[7], row[8],
                   json.loads(row[9]) if row[9] else {}, row[10], row[11], row[12], row[13], row[14],
                   tuple(expiring) if expiring is not None else None)


def register_path_for(master_path: str | os.PathLike[str]) -> Path:
    """Where the register of the authority whose master key is at `master_path` lives:
    `DIR/register.sqlite` for `DIR/master.key`, `DIR/NAME.register.sqlite` for `DIR/NAME.key`."""
    path = Path(master_path)
    if path.name == "master.key":
        return path.with_name(REGISTER_NAME)
    stem = path.stem if path.suffix == ".key" else path.name
    return path.with_name(f"{stem}.{REGISTER_NAME}")


def key_digest(key: Key) -> bytes:
    """SHA-256 over the canonical CBOR of a key's encoded parts (its group elements only: no
    metadata, so editing a key file's meta does not change it, while any change to its parts,
    such as merging the components of two keys, does). The parts are re-encoded from the
    decoded elements, so any accepted encoding of the same key gives the same digest."""
    parts = to_map(key.scheme, key.record)["parts"]
    return hashlib.sha256(cbor2.dumps(parts, canonical=True)).digest()


def subject_of(attr: Attribute) -> str:
    """What an attribute is about, without its value: `name` or `name@authority`."""
    return attr.name + (f"@{attr.authority}" if attr.authority else "")


def dated_attributes(attributes: Iterable[str]) -> dict[str, str]:
    """{subject (`name[@authority]`): ISO date} of the attributes whose value is a date. Only a
    description of the values: which of them expire is `expiring_subjects`' business."""
    dates = {}
    for text in attributes:
        attr = parse_attribute(text, internal=True)
        if attr.value is not None and _ISO_DATE.match(attr.value):
            dates[subject_of(attr)] = attr.value
    return dates


def expiring_subjects(attributes: Iterable[str], names: Iterable[str],
                      authority: str | None) -> tuple[str, ...]:
    """The canonical subjects of the expiring attributes `names` of a key holding `attributes`
    (canonical attribute texts, as a key's metadata lists them) issued by multi-authority
    authority `authority`: `emergency` and `emergency@ER` both give `emergency@ER`. Each name
    must be an attribute of the key whose value is a date (YYYY-MM-DD), since renewal replaces
    that value with the new last day; anything else is refused with InvalidKey, so an issuance
    never records an expiry that renewal could not move or that is not there."""
    if isinstance(names, str):  # one name, not its letters
        names = (names,)
    issued: dict[str, Attribute] = {}
    for text in attributes:
        attr = parse_attribute(text, internal=True)
        issued[subject_of(attr)] = attr
    subjects: list[str] = []
    for name in names:
        try:
            attr = parse_attribute(name)
        except PolicySyntaxError as exc:
            raise InvalidKey(f"expiring attribute {name!r} is not an attribute name: {exc}") from None
        if attr.value is not None:
            raise InvalidKey(f"expiring names an attribute, not a value: give {attr.name!r}, and "
                             f"issue it with its last day (-a '{attr.name} = YYYY-MM-DD')")
        if attr.authority not in (None, authority):
            raise InvalidKey(f"expiring attribute {name!r} belongs to authority {attr.authority}, "
                             f"not to the issuer of this key")
        subject = subject_of(Attribute(attr.name, None, authority))
        if subject not in issued:
            raise InvalidKey(f"expiring attribute {attr.name!r} is not among the attributes issued")
        value = issued[subject].value
        if value is None or not _ISO_DATE.match(value):
            raise InvalidKey(f"expiring attribute {attr.name!r} has no date value (it is issued as "
                             f"'{issued[subject]}'): an attribute that expires carries its last "
                             f"day, as -a '{attr.name} = YYYY-MM-DD'")
        if subject not in subjects:
            subjects.append(subject)
    return tuple(subjects)


def _statements(script: str) -> Iterator[str]:
    """The complete SQL statements of a script (trigger bodies keep their inner semicolons)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""


def new_iid() -> str:
    """A fresh random issuance id (128 bits, hex)."""
    return secrets.token_hex(16)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def issuance_row(key: Key, authority: str, renewed_from: str | None = None,
                 expiring: Iterable[str] = ()) -> tuple[str, tuple[Any, ...]]:
    """The `issued` row that records user key `key` (see `Register.record` for `expiring`), and
    its fresh issuance id. Built where the key is (a bulk worker builds it beside the key, so
    only the row, never the key, reaches the register's single writer: `Register.append`)."""
    if key.kind != "user":
        raise InvalidKey(f"the register records user keys, not {key.kind} keys")
    meta = key.record.meta
    attributes = meta.get("attributes")
    policy = meta.get("policy") if attributes is None else None
    if attributes is None and not isinstance(policy, str):
        raise InvalidKey("a user key records its attributes or its policy")
    dates = dated_attributes(attributes) if attributes is not None else {}
    names = (expiring,) if isinstance(expiring, str) else tuple(expiring)
    gid = meta.get("gid")
    if gid is not None:
        subjects = expiring_subjects(attributes or (), names, meta.get("authority"))
        valid_until = max((dates[s] for s in subjects), default=None)
    else:
        if any(name != VALID_UNTIL for name in names):
            raise InvalidKey(f"a {key.scheme.name} key expires by its {VALID_UNTIL} "
                             "attribute only; it names no other expiring attribute")
        subjects = (VALID_UNTIL,) if VALID_UNTIL in dates else ()
        if names and not subjects:
            raise InvalidKey(f"this {key.scheme.name} key has no {VALID_UNTIL} date to expire by")
        valid_until = dates.get(VALID_UNTIL)
    iid = new_iid()
    row = (iid, "issued", authority, key.scheme.name, gid,
           json.dumps(list(attributes), ensure_ascii=False) if attributes is not None else None,
           policy, valid_until, json.dumps(dates, ensure_ascii=False, sort_keys=True),
           key_digest(key), _now(), renewed_from, None, None,
           json.dumps(list(subjects), ensure_ascii=False))
    return iid, row


class Register:
    """An authority's issuance register (see the module docstring). Opening checks the file and
    its schema; every operation uses its own short-lived connection, so a Register may be kept
    around and shared without holding the database open."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open an existing register; RegisterError if it is missing, not a register, or of a
        newer schema. A schema-1 register is upgraded in place (module docstring);
        `upgraded_from` then names the schema it had, so a caller can say so."""
        self.path = Path(path)
        #: the schema version this register was upgraded from when it was opened, if it was
        self.upgraded_from: int | None = None
        if not self.path.is_file():
            raise RegisterError(f"no issuance register at {self.path} (it is created by setup)")
        with self._db() as db:
            version = self._check_schema(db)
            if version in UPGRADABLE:
                self._upgrade(db)

    def __repr__(self) -> str:
        return f"Register({str(self.path)!r})"

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> Register:
        """Create the register at `path` (mode 0600, WAL), or open it if it already exists. An
        empty file (a creation interrupted before the schema was written) is initialized; a
        database holding other tables only is refused, never written into."""
        target = Path(path)
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise RegisterError(f"cannot create issuance register {target}: {exc.strerror}") from None
        try:
            with contextlib.closing(sqlite3.connect(target, timeout=30, isolation_level=None)) as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("BEGIN IMMEDIATE")  # one creator at a time; the others find it made
                try:
                    if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                        for statement in _statements(SCHEMA):
                            db.execute(statement)
                        db.execute("INSERT INTO register_meta VALUES ('schema', ?)",
                                   (str(SCHEMA_VERSION),))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise RegisterError(f"cannot create issuance register {target}: {exc}") from None
        return cls(target)

    # -- connections ---------------------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        """A new connection for tables of your own in the same file (the caller closes it): WAL,
        synchronous=FULL, foreign keys and recursive triggers on, and autocommit mode, so every
        statement commits by itself; group statements with BEGIN IMMEDIATE ... COMMIT."""
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise RegisterError(f"issuance register {self.path}: {exc}") from None
        try:
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                           "recursive_triggers=ON"):
                db.execute(f"PRAGMA {pragma}")
        except sqlite3.Error as exc:
            db.close()
            raise RegisterError(f"issuance register {self.path}: {exc}") from None
        return db

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = self.connect()
        try:
            yield db
        except sqlite3.Error as exc:
            raise RegisterError(f"issuance register {self.path}: {exc}") from None
        finally:
            db.close()

    def _check_schema(self, db: sqlite3.Connection) -> str:
        """The register's schema version: the current one or one `_upgrade` handles; anything
        else is refused."""
        try:
            row = db.execute("SELECT value FROM register_meta WHERE name = 'schema'").fetchone()
            has_table = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                   "AND name = 'issuances'").fetchone()
        except sqlite3.DatabaseError:
            raise RegisterError(f"{self.path} is not an issuance register") from None
        if row is None or not has_table:
            raise RegisterError(f"{self.path} is not an issuance register")
        if row[0] != str(SCHEMA_VERSION) and row[0] not in UPGRADABLE:
            raise RegisterError(f"{self.path} has register schema {row[0]!r}; this version of "
                                f"abe-health reads schema {SCHEMA_VERSION} (and upgrades schema 1): "
                                "open it with the abe-health version that wrote it")
        return str(row[0])

    def _upgrade(self, db: sqlite3.Connection) -> None:
        """Schema 1 -> 2 in one transaction: add the `expiring` column (existing rows read it as
        NULL: not recorded; no row is rewritten) and set the schema row. Another process may
        have upgraded it meanwhile, so the version is read again under the write lock."""
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                version = self._check_schema(db)
                if version in UPGRADABLE:
                    db.execute("ALTER TABLE issuances ADD COLUMN expiring TEXT")
                    db.execute("UPDATE register_meta SET value = ? WHERE name = 'schema'",
                               (str(SCHEMA_VERSION),))
                    self.upgraded_from = int(version)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise RegisterError(f"cannot upgrade issuance register {self.path} from schema 1 to "
                                f"{SCHEMA_VERSION} ({exc}): it is upgraded in place when first "
                                "opened, by a user that can write it") from None

    # -- writing -------------------------------------------------------------------------------
    def record(self, key: Key, authority: str, renewed_from: str | None = None, *,
               expiring: Iterable[str] = ()) -> Key:
        """Append the issuance of user key `key` by the authority with fingerprint `authority`
        and return the key with its issuance id (`iid`) in the metadata. With `renewed_from`,
        the row renews that issuance: in the same transaction the issuance must still be
        renewable (not withdrawn, not renewed already), so two renewals cannot both succeed.

        `expiring` (multi-authority keys only): the names of the key's attributes that expire,
        each of which must carry a date (`expiring_subjects`); renewal re-dates exactly these.
        A CP key's expiring attribute is its `valid_until`, recorded when it has one; naming
        any other is refused. KP keys have none."""
        iid, row = issuance_row(key, authority, renewed_from, expiring)
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                if renewed_from is not None:
                    self._check_renewable(db, self._by_iid(db, renewed_from), authority)
                db.execute(_INSERT_ISSUED, row)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return Key(key.scheme, dataclasses.replace(key.record, meta={**key.record.meta, "iid": iid}))

    def append(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Append many `issuance_row` rows of new (not renewed) keys in one transaction: all or
        none. The bulk keygen's single writer uses it; the keys themselves never reach it."""
        for row in rows:
            if len(row) != 15 or row[1] != "issued" or row[11] is not None:
                raise RegisterError("append takes the issued rows of new keys (issuance_row)")
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(_INSERT_ISSUED, rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def withdraw(self, authority: str, *, iid: str | None = None, gid: str | None = None,
                 reason: str = "") -> Issuance:
        """Append a withdrawal: of issuance `iid` (and its whole renewal lineage), or of holder
        `gid` (every issuance of that GID by `authority` recorded before now). Withdrawn keys
        keep working until they expire; they are never renewed."""
        if (iid is None) == (gid is None):
            raise InvalidKey("withdraw either one issuance (iid) or one holder (gid)")
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                scheme = ""
                if iid is not None:
                    target = self._by_iid(db, iid)
                    if target.event != "issued" or target.authority != authority:
                        raise NotRenewable(f"issuance {iid} was not issued by this authority")
                    scheme = target.scheme
                elif not db.execute("SELECT 1 FROM issuances WHERE authority = ? AND gid = ? "
                                    "AND event = 'issued'", (authority, gid)).fetchone():
                    raise NotRenewable(f"this authority issued no key to GID {gid!r}")
                else:
                    scheme = db.execute("SELECT scheme FROM issuances WHERE authority = ? AND gid = ?",
                                        (authority, gid)).fetchone()[0]
                cursor = db.execute("INSERT INTO issuances (iid, event, authority, scheme, gid, "
                                    "recorded_at, withdraws, reason) "
                                    "VALUES (?, 'withdrawn', ?, ?, ?, ?, ?, ?)",
                                    (new_iid(), authority, scheme, gid, _now(), iid, reason or None))
                row = db.execute(_BY_SEQ, (cursor.lastrowid,)).fetchone()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return Issuance._from_row(row)

    # -- reading -------------------------------------------------------------------------------
    def _by_iid(self, db: sqlite3.Connection, iid: str) -> Issuance:
        row = db.execute(_BY_IID, (iid,)).fetchone()
        if row is None:
            raise NotRenewable(f"no issuance {iid!r} in {self.path}")
        return Issuance._from_row(row)

    def issuances(self, authority: str | None = None) -> list[Issuance]:
        """Every row, oldest first (only those of `authority` when given)."""
        with self._db() as db:
            if authority is None:
                rows = db.execute(_ALL).fetchall()
            else:
                rows = db.execute(_BY_AUTHORITY, (authority,)).fetchall()
        return [Issuance._from_row(r) for r in rows]

    def lookup(self, key: Key) -> Issuance:
        """The issuance of `key`, found by the digest of its parts (never by its metadata)."""
        if key.kind != "user":
            raise NotRenewable(f"expected a user key, got a {key.kind} key")
        with self._db() as db:
            row = db.execute(_BY_DIGEST, (key_digest(key),)).fetchone()
        if row is None:
            raise NotRenewable(f"this key is not in the issuance register {self.path}: it was not "
                               "issued by this authority, or its key parts were altered")
        return Issuance._from_row(row)

    def renewable(self, key: Key, authority: str) -> Issuance:
        """The issuance a renewal of `key` re-issues: found by digest, issued by `authority`,
        neither withdrawn nor already renewed, and with a key file whose metadata does not
        contradict the register (an edited key file is refused rather than silently fixed)."""
        issuance = self.lookup(key)
        if issuance.authority != authority:
            raise NotRenewable("this key was issued by another authority (its issuance is recorded "
                               f"for authority {issuance.authority} in {self.path})")
        with self._db() as db:
            self._check_renewable(db, issuance, authority)
        meta = key.record.meta
        recorded = {"iid": issuance.iid, "gid": issuance.gid, "policy": issuance.policy,
                    "attributes": list(issuance.attributes) if issuance.attributes is not None else None}
        if key.scheme.name != "rw15":
            recorded["pk"] = issuance.authority
        for field, value in recorded.items():
            if field in meta and meta[field] != value:
                raise NotRenewable(f"the key file was edited: its {field} does not match issuance "
                                   f"{issuance.iid} in the register; refusing to renew it")
        return issuance

    def _check_renewable(self, db: sqlite3.Connection, issuance: Issuance, authority: str) -> None:
        if issuance.event != "issued" or issuance.authority != authority:
            raise NotRenewable(f"issuance {issuance.iid} is not a key issued by this authority")
        successor = db.execute("SELECT iid FROM issuances WHERE renewed_from = ?",
                               (issuance.iid,)).fetchone()
        if successor is not None:
            raise NotRenewable(f"issuance {issuance.iid} was already renewed (as {successor[0]}); "
                               "only the newest key of a lineage is renewed")
        lineage, current = [], issuance
        while True:
            lineage.append(current.iid)
            if current.renewed_from is None:
                break
            current = self._by_iid(db, current.renewed_from)
        marks = ",".join("?" * len(lineage))
        withdrawn = db.execute(f"SELECT iid FROM issuances WHERE event = 'withdrawn' "  # noqa: S608
                               f"AND withdraws IN ({marks})", lineage).fetchone()
        if withdrawn is None and issuance.gid is not None:
            withdrawn = db.execute("SELECT iid FROM issuances WHERE event = 'withdrawn' AND "
                                   "authority = ? AND gid = ? AND withdraws IS NULL AND seq > ?",
                                   (authority, issuance.gid, issuance.seq)).fetchone()
        if withdrawn is not None:
            raise NotRenewable(f"issuance {issuance.iid} was withdrawn (register row "
                               f"{withdrawn[0]}); it is not renewed")


def as_register(value: Register | str | os.PathLike[str] | None) -> Register | None:
    """A Register from a Register or a path (which must hold one), or None."""
    if value is None or isinstance(value, Register):
        return value
    return Register(value)
