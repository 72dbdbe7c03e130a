"""Online/offline encryption, the recipe: `precompute` a pool while the device charges, then
`Pool.encrypt` each reading with no group operation at all (Z_r arithmetic, HKDF and AES-GCM).

>>> import os, tempfile
>>> from abe_health import CPABE, decrypt
>>> hospital = CPABE.setup("rw13")
>>> alice = hospital.keygen(["doctor", "cardiology"])
>>> key, path = PoolKey.generate(), os.path.join(tempfile.mkdtemp(), "readings.pool")
>>> _ = precompute(path, key, hospital.public_key, count=2, rows=4)   # offline, charging
>>> blob = Pool(path, key).encrypt(b'{"hr": 72}', None, "doctor and cardiology")   # online
>>> decrypt(blob, None, alice)
b'{"hr": 72}'

Two pools (`pool.py`): HW14 offline material for RW13 public keys (any policy, chosen online;
one session per file and one piece per policy row), and whole encapsulations of one fixed
policy for any single- or multi-authority recipient (the sensor case). The files written are
ordinary `.abe` files: `abe_health.decrypt` opens them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from ..armor import ArmorWriter
from ..derived import fingerprint
from ..errors import InvalidKey, PoolExhausted
from ..hazmat.envelope import CHUNK, seal_payload, write_header
from ..hazmat.envelope.header import MAX_CHUNK, MIN_CHUNK
from ..hazmat.pairing import Element, group_from_id
from ..hazmat.records import VERSION, to_map
from ..hazmat.schemes import RW13, get_scheme
from ..hazmat.schemes.hw14 import corrections, offline_piece, offline_session
from ..keys import Key, PublicKey
from ..policy import Policy
from ..recipients import AttributesRecipient, MultiAuthorityRecipient, PolicyRecipient, Recipient
from . import pool
from .keyfiles import PoolKey
from .streams import Sink, Source, deliver, opened

__all__ = ["Pool", "Reservation", "precompute"]

#: row pieces per ciphertext when `precompute` is not told (policies of up to 8 rows on average)
DEFAULT_ROWS_PER_CIPHERTEXT = 8


def _target(recipient: Recipient) -> str:
    """The canonical text a fixed-policy pool is for (a policy, or KP attributes)."""
    if isinstance(recipient, (PolicyRecipient, MultiAuthorityRecipient)):
        return str(recipient.policy)
    if isinstance(recipient, AttributesRecipient):
        return str(recipient.attributes)
    raise InvalidKey(f"cannot precompute for a {type(recipient).__name__}")


def precompute(path: str | os.PathLike[str], key: PoolKey, target: Key | Recipient, count: int,
               rows: int | None = None, progress: Callable[[int], None] | None = None) -> pool.PoolInfo:
    """Write a new pool at `path` (mode 0600, sealed under `key`). With an RW13 public key:
    HW14 material for `count` ciphertexts and `rows` policy rows (default 8 per ciphertext).
    With a recipient (a fixed policy): `count` encapsulations of it. `progress` is called
    with 1 after each entry."""
    if not 1 <= count <= pool.MAX_ENTRIES:
        raise ValueError(f"count must be 1..{pool.MAX_ENTRIES}")
    tick = progress or (lambda _n: None)
    if isinstance(target, Recipient):
        entries = []
        for _ in range(count):
            scheme, ct, gt_key = target.encapsulate()
            entries.append({"ct": to_map(scheme, ct), "k": gt_key.to_bytes()})
            tick(1)
        pk = ct.meta.get("pk")
        header: dict[str, Any] = {"kind": "encapsulations", "scheme": scheme.name, "group": scheme.group.id,
                  "pk": pk if isinstance(pk, str) else None, "policy": _target(target), "widths": {}}
        return pool.create(path, key, header, entries, [])
    if not isinstance(target, PublicKey) or not isinstance(target.scheme, RW13):
        raise InvalidKey("online/offline encryption (HW14) needs an rw13 authority public key; for "
                         "another scheme precompute encapsulations of a fixed policy")
    rows = DEFAULT_ROWS_PER_CIPHERTEXT * count if rows is None else rows
    if not 1 <= rows <= pool.MAX_ENTRIES:
        raise ValueError(f"rows must be 1..{pool.MAX_ENTRIES}")
    scheme, pk, grp = target.scheme, target.record, target.scheme.group
    sessions = []
    for _ in range(count):
        session = offline_session(scheme, pk)
        sessions.append({"s": grp.zr_to_bytes(session.s), "c0": session.c0.to_bytes(),
                         "k": session.key.to_bytes()})
        tick(1)
    pieces = []
    for _ in range(rows):
        piece = offline_piece(scheme, pk)
        pieces.append({"lam": grp.zr_to_bytes(piece.lam), "x": grp.zr_to_bytes(piece.x),
                       "t": grp.zr_to_bytes(piece.t), "c1": piece.c1.to_bytes(),
                       "c2": piece.c2.to_bytes(), "c3": piece.c3.to_bytes()})
        tick(1)
    widths = target.record.meta.get("widths", {})
    header = {"kind": "hw14", "scheme": scheme.name, "group": grp.id, "pk": fingerprint(target),
              "policy": None, "widths": dict(widths) if isinstance(widths, dict) else {}}
    return pool.create(path, key, header, sessions, pieces)


class _EncodedKey:
    """A KEM key as the bytes the pool sealed: all the key wrap reads of a GT key is
    `to_bytes()`. Decoding it would cost a GT subgroup check (a GT exponentiation) on the online
    path; the bytes were sealed by this device under the pool key, so they need none."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def to_bytes(self) -> bytes:
        return self._data

    def __repr__(self) -> str:
        return "_EncodedKey(<secret>)"


@lru_cache(maxsize=32)
def _policy(text: str, widths: tuple[tuple[str, int], ...]) -> Policy:
    """A device writes under few policies: each is compiled (parsed, LSSS) once."""
    return Policy.parse(text, dict(widths))


class Reservation:
    """Material taken from a pool for several files at once (one locked, durable consumption
    instead of one per file): `encrypt` uses it in memory. What is left when it is dropped is
    lost, never returned to the pool."""

    def __init__(self, info: pool.PoolInfo, sessions: list[dict[str, Any]],
                 pieces: list[dict[str, Any]]) -> None:
        self.header = info.header
        self._sessions = sessions
        self._pieces = pieces
        self.scheme = get_scheme(str(self.header["scheme"]), group_from_id(str(self.header["group"])))

    @property
    def left(self) -> tuple[int, int]:
        """(files, policy rows) this reservation can still encrypt."""
        return len(self._sessions), len(self._pieces)

    def __repr__(self) -> str:
        return f"Reservation(kind={self.header['kind']!r}, left={self.left})"

    def parse(self, policy: str | None) -> Policy | None:
        """The policy a file is encrypted under, compiled; checked against a fixed pool's own."""
        header = self.header
        if header["kind"] == "encapsulations":
            if policy is not None and str(policy) != header["policy"]:
                raise InvalidKey(f'this pool encapsulates "{header["policy"]}", not "{policy}"')
            return None
        if policy is None:
            raise InvalidKey("an online/offline pool encrypts under a policy given now")
        return _policy(policy, tuple(sorted(dict(header["widths"]).items())))

    def _ciphertext(self, parsed: Policy | None) -> tuple[dict[str, Any], bytes]:
        """(record map of the ciphertext, KEM key bytes): Z_r arithmetic on reserved material."""
        if parsed is None:
            if not self._sessions:
                raise PoolExhausted("this reservation is used up")
            session = self._sessions.pop(0)
            return session["ct"], session["k"]
        n = parsed.lsss.n_rows
        if not self._sessions or len(self._pieces) < n:
            raise PoolExhausted(f"this reservation is used up ({self.left[0]} files and "
                                f"{self.left[1]} rows left, 1 and {n} needed)")
        scheme = self.scheme
        assert isinstance(scheme, RW13)
        s, pieces = self._sessions.pop(0), self._pieces[:n]
        del self._pieces[:n]
        grp = scheme.group
        exps = [(grp.zr_from_bytes(p["lam"]), grp.zr_from_bytes(p["x"]), grp.zr_from_bytes(p["t"]))
                for p in pieces]
        c4, c5 = corrections(scheme, parsed, grp.zr_from_bytes(s["s"]), exps)
        parts = {"C0": s["c0"], "C1": [p["c1"] for p in pieces], "C2": [p["c2"] for p in pieces],
                 "C3": [p["c3"] for p in pieces], "C4": [grp.zr_to_bytes(c) for c in c4],
                 "C5": [grp.zr_to_bytes(c) for c in c5]}
        record = {"v": VERSION, "type": "abe-health/ciphertext", "scheme": scheme.name,
                  "group": grp.id, "kind": "ciphertext", "parts": parts,
                  "meta": {"policy": str(parsed), "pk": self.header["pk"]}}
        return record, s["k"]

    def encrypt(self, src: Source, dst: Sink, policy: str | None = None, *, armor: bool = False,
                context: bytes = b"", chunk: int = CHUNK) -> bytes | None:
        """Encrypt `src` into `dst` (None: return the `.abe` bytes) under `policy` (HW14 pools;
        a fixed-policy pool takes no policy, or only its own). PoolExhausted when used up."""
        if not MIN_CHUNK <= chunk <= MAX_CHUNK:
            raise ValueError(f"chunk size must be {MIN_CHUNK}..{MAX_CHUNK} bytes")
        record, kem_key = self._ciphertext(self.parse(policy))

        def run(sink: Any) -> None:
            out: Any = ArmorWriter(sink) if armor else sink
            dek, salt = os.urandom(32), os.urandom(32)
            write_header(out, self.scheme, record, cast(Element, _EncodedKey(kem_key)), dek, salt,
                         chunk, context)
            with opened(src) as fin:
                seal_payload(dek, salt, chunk, fin, out)
            if armor:
                out.close()

        return deliver(dst, run)[1]


class Pool:
    """A pool file and its key. `encrypt` takes what one file needs (a locked, durable
    consumption of the pool file) and encrypts; a device loop that writes many readings may
    `reserve` material for several files at once. Several processes may share one pool."""

    def __init__(self, path: str | os.PathLike[str], key: PoolKey) -> None:
        self.path = Path(path)
        self.key = key

    def info(self) -> pool.PoolInfo:
        """The pool's public header and what it has left."""
        return pool.info(self.path)

    def reserve(self, files: int, rows: int = 0) -> Reservation:
        """Take material for `files` files and (HW14 pools) `rows` policy rows in all, now."""
        info = self.info()
        taken, sessions, pieces = pool.take(self.path, self.key, files,
                                            rows if info.kind == "hw14" else 0)
        return Reservation(taken, sessions, pieces)

    def encrypt(self, src: Source, dst: Sink, policy: str | None = None, *, armor: bool = False,
                context: bytes = b"", chunk: int = CHUNK) -> bytes | None:
        """Encrypt one file with material from the pool (see `Reservation.encrypt`); the policy
        is checked before anything is consumed. PoolExhausted when the pool is used up; nothing is
        ever reused."""
        probe = Reservation(self.info(), [], [])
        parsed = probe.parse(policy)
        reservation = self.reserve(1, parsed.lsss.n_rows if parsed is not None else 0)
        return reservation.encrypt(src, dst, policy, armor=armor, context=context, chunk=chunk)
