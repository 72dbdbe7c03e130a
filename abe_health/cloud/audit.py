"""The audit trail: an append-only, hash-chained log with Ed25519-signed checkpoints.

One line per entry, canonical JSON (keys sorted, no spaces, ASCII):

```
{"action":..,"bytes":N,"hash":H,"object":..,"prev":P,"principal":..,"result":..,"seq":S,"sig":..,"time":..}
hash = SHA-256("abe-health/v1/audit-entry\\x00" | canonical CBOR [seq, time, principal, action,
               object, result, bytes, prev, sig])              (hex; prev of entry 0: 64 zeros)
```
Every field and the previous entry's hash are bound, so editing any byte of an entry changes its
hash (or breaks its JSON, or its canonical form), and deleting, inserting or reordering entries
breaks the `seq` numbering or the `prev` chain. A checkpoint is an entry with action
`checkpoint` whose `sig` is the signer's Ed25519 signature over
`"abe-health/v1/audit-checkpoint\\x00" | uint64 seq | prev`: it vouches for the whole chain before
it, so someone who rewrites the log (and so every hash after an edit) cannot forge it. What a
chain cannot show is an attacker cutting entries off the end together with every checkpoint
after the cut: a verifier that remembers the last checkpoint it saw (`seq`) detects that too.

Signers: `abe-health serve` signs with its own key (DATA/audit.key, mode 0600; DATA/audit.pub
for auditors), every `checkpoint_every` entries, at most `checkpoint_seconds` after the last
entry, and when it stops. Local authority actions (setup, keygen, renew, revoke) go to
`audit.log` beside the master key and are checkpointed after each action with the authority's
own Ed25519 key (derived from the master key; its public half is `vk` in public.key).

Writes: each append takes an advisory lock (`LOG.lock`), truncates a torn last line (a write cut
by a crash was never acknowledged), and writes the line with one `write` on an O_APPEND file;
checkpoints are fsync-ed, so a crash loses at most the entries after the last checkpoint. A log
keeps its lock file open, and reads the last entry back only when the file is not as its own
last write left it (inode and size): the server appends once per request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import InvalidKey
from ..fileio import write_atomic
from ..locks import LockFile

ENTRY_DOMAIN = b"abe-health/v1/audit-entry\x00"
CHECKPOINT_DOMAIN = b"abe-health/v1/audit-checkpoint\x00"
GENESIS = "0" * 64
FIELDS = ("action", "bytes", "hash", "object", "prev", "principal", "result", "seq", "sig", "time")
MAX_LINE = 16 * 1024
KEY_TYPE = "abe-health/audit-key"
PUBLIC_TYPE = "abe-health/audit-public-key"


def canonical(entry: dict[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def entry_hash(entry: dict[str, Any]) -> str:
    """The hash binding every field of `entry` (but `hash` itself) and the previous hash."""
    fields = [entry["seq"], entry["time"], entry["principal"], entry["action"], entry["object"],
              entry["result"], entry["bytes"], entry["prev"], entry["sig"]]
    return hashlib.sha256(ENTRY_DOMAIN + cbor2.dumps(fields, canonical=True)).hexdigest()


def checkpoint_message(seq: int, prev: str) -> bytes:
    return CHECKPOINT_DOMAIN + struct.pack(">Q", seq) + bytes.fromhex(prev)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def _clip(text: object, limit: int = 512) -> str:
    """A field as bounded text (an untrusted id or a long message cannot grow a line)."""
    return str(text)[:limit]


class AuditLog:
    """Appends to one log file. Thread-safe in one process; processes queue on the lock file."""

    def __init__(self, path: str | os.PathLike[str], signer: Ed25519PrivateKey | None = None,
                 checkpoint_every: int = 1000) -> None:
        self.path = Path(path)
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self._mutex = threading.Lock()
        self.since_checkpoint = 0
        self._lock: LockFile | None = None
        #: (inode, size, next seq, last hash) of the file after this process's last write: when
        #: the file is still that, its tail need not be read back
        self._end: tuple[int, int, int, str] | None = None

    def _tail(self, fd: int) -> tuple[int, str]:
        """(next seq, hash of the last entry), after cutting a torn last line off."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, GENESIS
        block = min(size, MAX_LINE + 1)
        os.lseek(fd, size - block, os.SEEK_SET)
        data = os.read(fd, block)
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n")
            os.ftruncate(fd, size - block + cut + 1 if cut >= 0 else size - block)
            return self._tail(fd)
        lines = data[:-1].split(b"\n")
        try:
            last = json.loads(lines[-1])
            return int(last["seq"]) + 1, str(last["hash"])
        except (ValueError, KeyError, TypeError):
            raise InvalidKey(f"{self.path}: the last entry is not an audit entry; "
                             "run `abe-health audit verify` on it") from None

    def append(self, principal: str, action: str, obj: str = "", result: str = "ok",
               nbytes: int = 0, time: str | None = None) -> dict[str, Any]:
        """Append one entry; a checkpoint follows every `checkpoint_every` entries."""
        entry = self._append(principal, action, obj, result, nbytes, time, checkpoint=False)
        if self.signer is not None and self.since_checkpoint >= self.checkpoint_every:
            self.checkpoint()
        return entry

    def checkpoint(self) -> dict[str, Any] | None:
        """Append a signed checkpoint over the chain so far and sync the file (None without a
        signer)."""
        if self.signer is None:
            return None
        return self._append("audit", "checkpoint", "", "ok", 0, None, checkpoint=True)

    def _append(self, principal: str, action: str, obj: str, result: str, nbytes: int,
                time: str | None, checkpoint: bool) -> dict[str, Any]:
        with self._mutex:
            if self._lock is None:
                self._lock = LockFile(self.path.with_name(self.path.name + ".lock"))
            with self._lock.held():
                return self._write(principal, action, obj, result, nbytes, time, checkpoint)

    def _write(self, principal: str, action: str, obj: str, result: str, nbytes: int,
               time: str | None, checkpoint: bool) -> dict[str, Any]:
        """The append itself, under the lock."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0),
                     0o640)
        try:
            st = os.fstat(fd)
            if self._end is not None and self._end[:2] == (st.st_ino, st.st_size):
                seq, prev = self._end[2], self._end[3]
            else:  # first write, or another process wrote since (a token created from the CLI)
                seq, prev = self._tail(fd)
            sig = ""
            if checkpoint:
                assert self.signer is not None
                sig = self.signer.sign(checkpoint_message(seq, prev)).hex()
            entry: dict[str, Any] = {"seq": seq, "time": time or now(),
                                     "principal": _clip(principal, 128), "action": _clip(action, 64),
                                     "object": _clip(obj), "result": _clip(result),
                                     "bytes": int(nbytes), "prev": prev, "sig": sig}
            entry["hash"] = entry_hash(entry)
            line = (canonical(entry) + "\n").encode("ascii")
            written = os.write(fd, line)
            self._end = (st.st_ino, os.fstat(fd).st_size, seq + 1, entry["hash"]) \
                if written == len(line) else None
            if checkpoint:
                os.fsync(fd)
                self.since_checkpoint = 0
            else:
                self.since_checkpoint += 1
        finally:
            os.close(fd)
        return entry


# -- keys ---------------------------------------------------------------------------------------
def new_signing_key(directory: Path) -> Ed25519PrivateKey:
    """Load DIR/audit.key, or create it (mode 0600) with DIR/audit.pub beside it."""
    secret, public = directory / "audit.key", directory / "audit.pub"
    if secret.exists():
        return load_signing_key(secret)
    key = Ed25519PrivateKey.generate()
    write_atomic(secret, cbor2.dumps({"v": 1, "type": KEY_TYPE, "seed": key.private_bytes_raw()}),
                 secret=True)
    write_atomic(public, cbor2.dumps({"v": 1, "type": PUBLIC_TYPE,
                                      "key": key.public_key().public_bytes_raw()}))
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = cbor2.loads(path.read_bytes()[:4096])
        if data.get("type") != KEY_TYPE or data.get("v") != 1:
            raise ValueError
        return Ed25519PrivateKey.from_private_bytes(data["seed"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError, cbor2.CBORDecodeError):
        raise InvalidKey(f"{path}: not an audit signing key") from None


def load_verify_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """An audit.pub, or an authority's public key (whose `vk` signs its local log)."""
    from ..keys import read_key

    try:
        data = cbor2.loads(Path(path).read_bytes()[:65536])
        if isinstance(data, dict) and data.get("type") == PUBLIC_TYPE and data.get("v") == 1:
            return Ed25519PublicKey.from_public_bytes(data["key"])
    except OSError as exc:
        raise InvalidKey(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, TypeError, KeyError, cbor2.CBORDecodeError):
        pass
    vk = read_key(path, expect="public").record.meta.get("vk")
    if not isinstance(vk, bytes) or len(vk) != 32:
        raise InvalidKey(f"{path}: neither an audit public key nor an authority public key with vk")
    return Ed25519PublicKey.from_public_bytes(vk)


# -- reading and verifying ---------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """The outcome of `verify`: `ok`, how many entries, the last signed checkpoint's seq (or
    -1), and, when not ok, the first bad line (1-based) and why."""

    ok: bool
    entries: int
    checkpoint: int
    line: int = 0
    problem: str = ""


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as handle:
        yield from enumerate(handle, start=1)


def _parse(raw: bytes) -> dict[str, Any] | str:
    """An entry from one line, or why the line is not one."""
    if not raw.endswith(b"\n"):
        return "the last line is cut short"
    if len(raw) > MAX_LINE:
        return "line too long"
    try:
        text = raw[:-1].decode("ascii")
        entry = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return "not a JSON entry (altered)"
    if not isinstance(entry, dict) or tuple(sorted(entry)) != FIELDS:
        return "not an audit entry (fields altered)"
    types = {"seq": int, "bytes": int, "time": str, "principal": str, "action": str,
             "object": str, "result": str, "prev": str, "sig": str, "hash": str}
    if any(type(entry[k]) is not t for k, t in types.items()):
        return "a field has the wrong type (altered)"
    if canonical(entry) != text:
        return "not in canonical form (altered)"
    return entry


def verify(path: str | os.PathLike[str], public_key: Ed25519PublicKey | None = None) -> Verdict:
    """Check the chain (and, with `public_key`, every checkpoint's signature); stop at the first
    altered, deleted, inserted or reordered entry."""
    prev, expected, last_checkpoint, count = GENESIS, 0, -1, 0
    for number, raw in _lines(Path(path)):
        entry = _parse(raw)
        if isinstance(entry, str):
            return Verdict(False, count, last_checkpoint, number, entry)
        if entry["seq"] != expected:
            why = (f"entry {expected} is missing (deleted, or entries reordered)"
                   if entry["seq"] > expected else
                   f"entry {entry['seq']} appears again or out of order (inserted or reordered)")
            return Verdict(False, count, last_checkpoint, number, why)
        if entry["hash"] != entry_hash(entry):
            return Verdict(False, count, last_checkpoint, number,
                           f"entry {expected} was altered (its hash does not match its fields)")
        if entry["prev"] != prev:
            return Verdict(False, count, last_checkpoint, number,
                           f"entry {expected} does not follow the entry before it (deleted, "
                           "inserted or reordered entries)")
        if entry["action"] == "checkpoint" and public_key is not None:
            try:
                public_key.verify(bytes.fromhex(entry["sig"]), checkpoint_message(expected, prev))
            except (ValueError, _BadSignature):
                return Verdict(False, count, last_checkpoint, number,
                               f"checkpoint {expected}: the signature does not verify under the "
                               "given key")
            last_checkpoint = expected
        elif entry["action"] != "checkpoint" and entry["sig"]:
            return Verdict(False, count, last_checkpoint, number,
                           f"entry {expected} carries a signature but is no checkpoint (altered)")
        prev, expected, count = entry["hash"], expected + 1, count + 1
    return Verdict(True, count, last_checkpoint)


def entries(path: str | os.PathLike[str], keep: Callable[[dict[str, Any]], bool] | None = None
            ) -> Iterator[dict[str, Any]]:
    """The well-formed entries of a log (for `audit show`; `verify` says whether to trust them)."""
    for _, raw in _lines(Path(path)):
        entry = _parse(raw)
        if isinstance(entry, dict) and (keep is None or keep(entry)):
            yield entry
