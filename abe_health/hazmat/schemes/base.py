"""What every scheme shares: keys and ciphertexts as typed records, and the KEM interface.

A record is (scheme, group, kind, parts): `parts` maps names to group elements, exponents,
lists or label-keyed maps of them, exactly as the scheme's `LAYOUTS[kind]` declares. The layout
drives both encoding (to CBOR-friendly values) and strict decoding, so a key or ciphertext of the
wrong shape, kind, scheme or group is refused with a readable message, never half-used.

Bounded decoding. Decoding an element costs a subgroup check (about 0.05 ms in G1, 0.07 ms in
G2, 1 ms in GT on BLS12-381), and a record may come from a planted file, so its shape is checked
before any element is decoded: a list of unspecified length (one item per LSSS row) holds at most
MAX_ROWS items, and in the record that carries the policy (a CP ciphertext, a KP user key) all
such per-row lists have one length, which the policy in `meta` must be able to compile to
(`policy.parser.row_bounds`: exact without numeric comparisons; otherwise between the fewest and
most rows over all numeric widths, since the widths come with the key). The exact row count is
checked again at decapsulation, with the key's widths. A record thus costs no more to decode than
an honest record of its policy at the widest widths.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, Literal

from ...errors import InvalidCiphertext, InvalidEncoding, InvalidKey, PolicySyntaxError
from ...policy import KeyAttributes, Policy
from ...policy.lsss import MAX_ROWS
from ...policy.parser import row_bounds
from ..pairing import Element, GroupKind, PairingGroup, group_from_id

RecordKind = Literal["public", "master", "user", "ciphertext"]
#: a layout entry: "G1" | "G2" | "GT" | "Zr" | ("list", n, spec) | ("map", spec)
Spec = Any


@dataclass(frozen=True)
class Record:
    """A key or ciphertext of one scheme over one group; `meta` holds its non-group fields."""

    scheme: str
    group: PairingGroup
    kind: RecordKind
    parts: Mapping[str, Any]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.parts[name]


def encode_value(group: PairingGroup, spec: Spec, value: Any, for_pairing: bool = False) -> Any:
    """Group elements to bytes, exponents to fixed-width bytes, following `spec`; with
    `for_pairing`, G1 elements in the group's form for pairing-only points
    (`group.encode_for_pairing`: uncompressed on mcl)."""
    if spec == "Zr":
        return group.zr_to_bytes(value)
    if isinstance(spec, str):
        return group.encode_for_pairing(value) if for_pairing and spec == "G1" else value.to_bytes()
    if spec[0] == "list":
        return [encode_value(group, spec[2], v, for_pairing) for v in value]
    return {label: encode_value(group, spec[1], v, for_pairing) for label, v in value.items()}


def decode_value(group: PairingGroup, spec: Spec, raw: Any, where: str,
                 batch: list[Element] | None = None) -> Any:
    """Inverse of `encode_value`; any shape or encoding error raises InvalidEncoding naming `where`.

    With `batch` (a part whose G1 elements only ever enter pairings), G1 elements are decoded by
    `group.decode_for_pairing` and appended to `batch`, whose subgroup test the caller makes once
    for the whole record (docs/speed.md)."""
    if spec == "Zr":
        return group.zr_from_bytes(raw)
    if isinstance(spec, str):
        kind: GroupKind = spec  # type: ignore[assignment]
        try:
            if batch is not None and kind == "G1":
                element = group.decode_for_pairing(kind, raw)
                batch.append(element)
                return element
            return group.deserialize(kind, raw)
        except InvalidEncoding as exc:
            raise InvalidEncoding(f"{where}: {exc}") from None
    if spec[0] == "list":
        _check_list(spec, raw, where)
        inner = spec[2]
        if batch is not None and isinstance(inner, tuple) and inner[0] == "list" and inner[2] == "G1":
            # rows of G1 points (FAME's ct): one decoding loop for all of them, then regrouped
            for i, row in enumerate(raw):
                _check_list(inner, row, f"{where}[{i}]")
            flat = [item for row in raw for item in row]
            try:
                points = group.decode_many_for_pairing("G1", flat)
            except InvalidEncoding as exc:
                raise InvalidEncoding(f"{where}{_row_index(exc, inner[1])}") from None
            batch.extend(points)
            return [points[i * inner[1]:(i + 1) * inner[1]] for i in range(len(raw))]
        if batch is not None and spec[2] == "G1":
            try:
                points = group.decode_many_for_pairing("G1", raw)
            except InvalidEncoding as exc:
                raise InvalidEncoding(f"{where}{exc}") from None
            batch.extend(points)
            return points
        return [decode_value(group, spec[2], v, f"{where}[{i}]", batch) for i, v in enumerate(raw)]
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise InvalidEncoding(f"{where}: expected a map keyed by attribute labels")
    return {k: decode_value(group, spec[1], v, f"{where}[{k!r}]", batch) for k, v in raw.items()}


def _row_index(exc: InvalidEncoding, width: int) -> str:
    """`[k]: message` of a flat decoding, as `[row][column]: message` for rows of `width`."""
    text = str(exc)
    if text.startswith("[") and "]" in text:
        k = int(text[1:text.index("]")])
        return f"[{k // width}][{k % width}]{text[text.index(']') + 1:]}"
    return f": {text}"


def _check_list(spec: Spec, raw: Any, where: str) -> None:
    """A list of the layout's length, or of at most MAX_ROWS items (one per LSSS row)."""
    if not isinstance(raw, list) or (spec[1] is not None and len(raw) != spec[1]):
        raise InvalidEncoding(f"{where}: expected a list of {spec[1] or 'any'} items")
    if len(raw) > MAX_ROWS:
        raise InvalidEncoding(f"{where}: a list of {len(raw)} items, over MAX_ROWS = {MAX_ROWS} "
                              "(one item per policy row)")


def _is_row_list(spec: Spec) -> bool:
    return isinstance(spec, tuple) and spec[0] == "list" and spec[1] is None


class SchemeBase:
    """What every scheme has: a group, cached hashing, record layouts and their checks."""

    name: ClassVar[str]
    #: which record carries the policy: the ciphertext (CP) or the user key (KP)
    policy_in: ClassVar[Literal["key", "ciphertext"]]
    #: the parts each record kind must have, with their types
    LAYOUTS: ClassVar[dict[str, dict[str, Spec]]]
    #: domain-separation prefix of every hash this scheme makes
    DST: ClassVar[bytes]
    #: ciphertext parts whose G1 elements only ever enter pairings (each against a G2 element
    #: that was checked or computed): decoded on the curve, their subgroup tested as one batch,
    #: which docs/speed.md shows is sound. A scheme lists a part here only if that holds on
    #: every path that uses its ciphertexts.
    PAIRING_ONLY: ClassVar[frozenset[str]] = frozenset()
    #: the PAIRING_ONLY parts a ciphertext writes in the group's form for pairing
    #: (`encode_for_pairing`: on mcl, G1 uncompressed, 96 bytes, decoded without a square root);
    #: chosen where decoding those points dominates decryption (FAME). Readers accept either form
    #: in every PAIRING_ONLY part.
    PAIRING_FORM: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, group: PairingGroup) -> None:
        self.group = group
        self._hash_cache: dict[tuple[bytes, bytes, str], Element] = {}

    def hash_g1(self, tag: bytes, msg: bytes) -> Element:
        """Hash to G1 under DST+tag, cached: the same attributes recur in every record."""
        key = (tag, msg, "G1")
        cached = self._hash_cache.get(key)
        if cached is None:
            if len(self._hash_cache) > 100_000:
                self._hash_cache.clear()
            cached = self._hash_cache[key] = self.group.hash_to_g1(self.DST + tag, msg)
        return cached

    def hash_attribute(self, label: str) -> Element:
        """H(label) in G1, as the classic schemes hash their attribute universe."""
        return self.hash_g1(b"A", label.encode())

    # -- records -------------------------------------------------------------------------------
    def record(self, kind: RecordKind, parts: dict[str, Any], **meta: Any) -> Record:
        return Record(self.name, self.group, kind, parts, meta)

    def encode(self, rec: Record) -> dict[str, Any]:
        """The CBOR-ready map of a record (no secrets are dropped: callers protect master/user keys)."""
        layout = self.LAYOUTS[rec.kind]
        long = self.PAIRING_FORM if rec.kind == "ciphertext" else frozenset()
        return {
            "scheme": rec.scheme,
            "group": rec.group.id,
            "kind": rec.kind,
            "parts": {name: encode_value(self.group, spec, rec.parts[name], name in long)
                      for name, spec in layout.items()},
            "meta": dict(rec.meta),
        }

    def check(self, rec: Record, kind: RecordKind) -> None:
        """Refuse a record of another kind, scheme or group with a readable InvalidKey."""
        error = InvalidCiphertext if kind == "ciphertext" else InvalidKey
        if rec.kind != kind:
            raise error(f"expected a {kind} record, got a {rec.kind} record")
        if rec.scheme != self.name:
            raise error(f"this {kind} belongs to scheme {rec.scheme!r}, not {self.name!r}")
        if rec.group.id != self.group.id:
            raise error(f"this {kind} is over group {rec.group.id}, not {self.group.id}")


class Scheme(SchemeBase, ABC):
    """An ABE scheme as a KEM: encapsulation yields a random GT element and its ciphertext.

    CP schemes take KeyAttributes at keygen and a Policy at encapsulation; KP schemes the reverse.
    """

    @abstractmethod
    def setup(self, widths: Mapping[str, int] | None = None) -> tuple[Record, Record]:
        """A fresh (public key, master key) pair; `widths` fixes numeric attribute bit widths."""

    @abstractmethod
    def keygen(self, pk: Record, msk: Record, subject: KeyAttributes | Policy) -> Record:
        """A user key for attributes (CP) or a policy (KP)."""

    @abstractmethod
    def encapsulate(self, pk: Record, target: Policy | KeyAttributes) -> tuple[Element, Record]:
        """A random GT key and its ciphertext under a policy (CP) or attributes (KP)."""

    @abstractmethod
    def decapsulate(self, key: Record, ct: Record) -> Element:
        """The GT key of `ct` (the user key alone suffices), or PolicyNotSatisfied."""

    def key_subject(self, pk: Record, msk: Record, subject: KeyAttributes | Policy) -> None:
        """Check keygen's inputs: the authority's records, and attributes (CP) or a policy (KP)."""
        self.check(pk, "public")
        self.check(msk, "master")
        wanted = KeyAttributes if self.policy_in == "ciphertext" else Policy
        if not isinstance(subject, wanted):
            raise TypeError(f"{self.name} issues keys for {wanted.__name__}, not {type(subject).__name__}")

    def encap_target(self, pk: Record, target: Policy | KeyAttributes) -> None:
        """Check encapsulate's inputs: a public key, and a policy (CP) or attributes (KP)."""
        self.check(pk, "public")
        wanted = Policy if self.policy_in == "ciphertext" else KeyAttributes
        if not isinstance(target, wanted):
            raise TypeError(f"{self.name} encrypts under {wanted.__name__}, not {type(target).__name__}")


def decode_record(scheme: SchemeBase, data: Mapping[str, Any]) -> Record:
    """Rebuild a record from its map, validating scheme, group, kind and every part."""
    kind = data.get("kind")
    error = InvalidCiphertext if kind == "ciphertext" else InvalidKey
    if data.get("scheme") != scheme.name:
        raise error(f"record is for scheme {data.get('scheme')!r}, not {scheme.name!r}")
    if kind not in scheme.LAYOUTS:
        raise error(f"unknown record kind {kind!r}")
    if not isinstance(data.get("group"), str) or data["group"] != scheme.group.id:
        raise error(f"record is over group {data.get('group')!r}, not {scheme.group.id}")
    parts_raw = data.get("parts")
    layout = scheme.LAYOUTS[kind]
    if not isinstance(parts_raw, dict) or set(parts_raw) != set(layout):
        raise error(f"{kind} record of {scheme.name} must have parts {sorted(layout)}")
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise error(f"{kind} record metadata must be a map")
    check_rows(scheme, kind, parts_raw, meta)
    batch: list[Element] = []
    pairing_only = scheme.PAIRING_ONLY if kind == "ciphertext" else frozenset()
    try:
        parts = {n: decode_value(scheme.group, spec, parts_raw[n], n,
                                 batch if n in pairing_only else None)
                 for n, spec in layout.items()}
    except InvalidEncoding as exc:
        raise error(f"malformed {kind}: {exc}") from None
    if not scheme.group.check_pairing_batch(batch):
        raise error(f"malformed {kind}: its G1 elements ({', '.join(sorted(pairing_only))}) are "
                    f"not all in the order-r subgroup of {scheme.group.id}")
    return Record(scheme.name, scheme.group, kind, parts, meta)


def check_rows(scheme: SchemeBase, kind: str, parts_raw: Mapping[str, Any],
               meta: Mapping[str, Any]) -> None:
    """Before any element is decoded: every per-row list holds at most MAX_ROWS items, and in the
    record carrying the policy they have one length that its policy can compile to (see the
    module docstring). InvalidCiphertext (or InvalidKey for keys) otherwise."""
    error = InvalidCiphertext if kind == "ciphertext" else InvalidKey
    rows = [name for name, spec in scheme.LAYOUTS[kind].items() if _is_row_list(spec)]
    for name in rows:
        try:
            _check_list(scheme.LAYOUTS[kind][name], parts_raw[name], name)
        except InvalidEncoding as exc:
            raise error(f"malformed {kind}: {exc}") from None
    carrier = "ciphertext" if scheme.policy_in == "ciphertext" else "user"
    if not rows or kind != carrier:
        return
    lengths = {name: len(parts_raw[name]) for name in rows}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}: {n}" for name, n in lengths.items())
        raise error(f"malformed {kind}: its per-row parts differ in length ({listed})")
    text = meta.get("policy")
    if not isinstance(text, str):
        raise error(f"{kind} carries no policy")
    try:
        fewest, most = _row_bounds(text)
    except PolicySyntaxError as exc:
        raise error(f"{kind} carries a malformed policy: {exc}") from None
    n = lengths[rows[0]]
    if not fewest <= n <= most:
        needs = str(fewest) if fewest == most else f"{fewest} to {most}"
        raise error(f"{kind} has {n} rows but its policy compiles to {needs}")


@lru_cache(maxsize=64)
def _row_bounds(text: str) -> tuple[int, int]:
    """`row_bounds` of a header's policy, cached: parsing a 50-attribute policy costs about two
    pairings, and one policy heads many files. Only texts that parse are cached, so at most 64
    of at most MAX_POLICY_CHARS (16,384) characters: a few MiB even if headers are hostile."""
    return row_bounds(text, internal=True)


def group_of(data: Mapping[str, Any]) -> PairingGroup:
    """The pairing group a record map names."""
    group_id = data.get("group")
    if not isinstance(group_id, str):
        raise InvalidKey("record names no pairing group")
    return group_from_id(group_id)
