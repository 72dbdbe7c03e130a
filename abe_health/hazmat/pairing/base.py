"""The one interface every scheme uses: a Type-III pairing group e: G1 x G2 -> GT of prime order r.

Group elements use multiplicative notation in every group, as the papers do (`g ** a`, `A * B`,
`group.pair(g, h)`), whatever the backend uses underneath. Exponents (Zr) are plain Python ints,
reduced modulo `group.order` where it matters; that keeps share arithmetic and LSSS coefficients
fast and backend-independent.
"""

from __future__ import annotations

import hashlib
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import ClassVar, Literal

from ...errors import InvalidEncoding

GroupKind = Literal["G1", "G2", "GT"]
KINDS: tuple[GroupKind, ...] = ("G1", "G2", "GT")


class Element(ABC):
    """An element of G1, G2 or GT of one group; immutable, hashable, comparable within its group."""

    __slots__ = ()
    kind: ClassVar[GroupKind]

    @property
    @abstractmethod
    def group(self) -> PairingGroup:
        """The group this element belongs to."""

    @abstractmethod
    def __mul__(self, other: Element) -> Element:
        """The group law."""

    @abstractmethod
    def __pow__(self, exponent: int) -> Element:
        """Exponentiation by an integer, taken modulo the group order (negative values allowed)."""

    @abstractmethod
    def __invert__(self) -> Element:
        """The inverse element."""

    @abstractmethod
    def is_identity(self) -> bool:
        """True for the neutral element of the group."""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """Compact canonical encoding; `group.deserialize(kind, b)` inverts it."""

    @abstractmethod
    def _key(self) -> object:
        """A value that identifies the element within its backend, for equality and hashing."""

    def __truediv__(self, other: Element) -> Element:
        return self * ~other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        return (
            type(self) is type(other)
            and self.group.id == other.group.id
            and self._key() == other._key()
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.group.id, self.to_bytes()))

    def __repr__(self) -> str:
        return f"<{self.group.id} {self.kind} {self.to_bytes().hex()[:16]}...>"


def _encode_hash_input(dst: bytes, msg: bytes) -> bytes:
    """Prefix-free encoding of (dst, msg) so that distinct tags can never produce the same input."""
    if not isinstance(dst, bytes) or not 0 < len(dst) < 256:
        raise ValueError("domain-separation tag must be 1..255 bytes")
    if not isinstance(msg, (bytes, bytearray, memoryview)):
        raise TypeError("hash input must be bytes")
    return bytes([len(dst)]) + dst + bytes(msg)


class PairingGroup(ABC):
    """A Type-III bilinear group with hashing and validated serialization."""

    backend: ClassVar[str]
    curve: str
    order: int
    #: bytes of a serialized element, per kind
    sizes: dict[GroupKind, int]

    @property
    def id(self) -> str:
        """Stable identifier written into keys and ciphertexts, e.g. ``mcl:BLS12-381``."""
        return f"{self.backend}:{self.curve}"

    @property
    def zr_size(self) -> int:
        """Bytes of a serialized exponent."""
        return (self.order.bit_length() + 7) // 8

    @abstractmethod
    def generator(self, kind: GroupKind) -> Element:
        """The fixed generator of G1, G2, or GT (= pair(g1, g2))."""

    @abstractmethod
    def identity(self, kind: GroupKind) -> Element:
        """The neutral element of G1, G2 or GT."""

    @abstractmethod
    def pair(self, a: Element, b: Element) -> Element:
        """The pairing e(a, b) for a in G1 and b in G2."""

    @abstractmethod
    def _hash_to_point(self, kind: GroupKind, data: bytes) -> Element:
        """Backend hash onto G1 or G2 of already domain-separated bytes."""

    @abstractmethod
    def _deserialize(self, kind: GroupKind, data: bytes) -> Element:
        """Decode bytes of the exact size; raise InvalidEncoding unless a valid subgroup element."""

    def pair_prod(self, pairs: Iterable[tuple[Element, Element]]) -> Element:
        """The product of pairings; backends with multi-pairing override this."""
        result = self.identity("GT")
        for a, b in pairs:
            result = result * self.pair(a, b)
        return result

    def multi_exp(self, elements: Sequence[Element], exponents: Sequence[int]) -> Element:
        """prod elements_i^{exponents_i} over one group (backends with a multi-scalar
        multiplication override this); exponents of 1 cost a multiplication only."""
        return self.product([e if w == 1 else e**w for e, w in zip(elements, exponents, strict=True)])

    def product(self, elements: Sequence[Element]) -> Element:
        """The product of a non-empty sequence of elements of one group (backends may fuse it)."""
        it = iter(elements)
        acc = next(it)
        for element in it:
            acc = acc * element
        return acc

    def random_zr(self) -> int:
        """A uniform non-zero exponent from the OS CSPRNG."""
        return secrets.randbelow(self.order - 1) + 1

    def random(self, kind: GroupKind) -> Element:
        """A uniform non-identity element, as a random power of the generator."""
        return self.generator(kind) ** self.random_zr()

    def hash_to_g1(self, dst: bytes, msg: bytes) -> Element:
        """Hash onto G1 under the domain-separation tag `dst`."""
        return self._hash_to_point("G1", _encode_hash_input(dst, msg))

    def hash_to_g2(self, dst: bytes, msg: bytes) -> Element:
        """Hash onto G2 under the domain-separation tag `dst`."""
        return self._hash_to_point("G2", _encode_hash_input(dst, msg))

    def hash_to_zr(self, dst: bytes, msg: bytes) -> int:
        """Hash to an exponent: SHA-512 reduced modulo r (bias below 2^-250)."""
        digest = hashlib.sha512(_encode_hash_input(dst, msg)).digest()
        return int.from_bytes(digest, "big") % self.order

    def deserialize(self, kind: GroupKind, data: bytes) -> Element:
        """Decode a G1/G2/GT element; wrong length, off-curve or off-subgroup bytes raise InvalidEncoding."""
        self._check_size(kind, data)
        return self._deserialize(kind, bytes(data))

    def _check_size(self, kind: GroupKind, data: object) -> None:
        if kind not in self.sizes:
            raise InvalidEncoding(f"unknown group kind {kind!r}")
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidEncoding(f"{kind} element must be bytes, got {type(data).__name__}")
        if len(data) != self.sizes[kind]:
            raise InvalidEncoding(
                f"{kind} element must be {self.sizes[kind]} bytes for {self.id}, got {len(data)}"
            )

    def decode_for_pairing(self, kind: GroupKind, data: bytes) -> Element:
        """Decode an element of a ciphertext position whose value only ever enters pairings
        against checked G2 elements. A backend may leave the G1 subgroup test of such points to
        `check_pairing_batch` (why that is sound: docs/speed.md); here it is fully checked."""
        return self.deserialize(kind, data)

    def encode_for_pairing(self, element: Element) -> bytes:
        """The encoding a ciphertext writes for a point that only enters pairings: one that
        `decode_for_pairing` reads, and that a backend may make longer than `to_bytes` if it
        decodes faster (mcl: G1 uncompressed, no square root); here `to_bytes`."""
        return element.to_bytes()

    def decode_many_for_pairing(self, kind: GroupKind, items: Sequence[object]) -> list[Element]:
        """`decode_for_pairing` of each item; InvalidEncoding names the index of a bad one."""
        out = []
        for i, data in enumerate(items):
            try:
                out.append(self.decode_for_pairing(kind, data))  # type: ignore[arg-type]
            except InvalidEncoding as exc:
                raise InvalidEncoding(f"[{i}]: {exc}") from None
        return out

    def check_pairing_batch(self, elements: Sequence[Element]) -> bool:
        """False if the points decoded by `decode_for_pairing` for one record must be refused
        (the backend's batch test); every point was fully checked here already."""
        return True

    @property
    def compressed_gt_size(self) -> int:
        """Bytes of `compress_gt`'s encoding; backends without a compression use the full form."""
        return self.sizes["GT"]

    def compress_gt(self, element: Element) -> bytes:
        """A GT element in the backend's shortest canonical form (here: `to_bytes`)."""
        if element.kind != "GT":
            raise InvalidEncoding(f"compress_gt takes a GT element, not {element.kind}")
        return element.to_bytes()

    def decompress_gt(self, data: bytes, *, check: bool = True) -> Element:
        """Inverse of `compress_gt`; InvalidEncoding for bytes that are not a GT element. With
        check=False a backend may skip the order-r subgroup test (for values that are only
        multiplied, never raised to any power); here every value is checked."""
        return self.deserialize("GT", data)

    def zr_to_bytes(self, value: int) -> bytes:
        """Fixed-width big-endian encoding of an exponent in [0, r)."""
        return (value % self.order).to_bytes(self.zr_size, "big")

    def zr_from_bytes(self, data: bytes) -> int:
        """Inverse of `zr_to_bytes`; refuses wrong lengths and non-reduced values."""
        if not isinstance(data, (bytes, bytearray)) or len(data) != self.zr_size:
            raise InvalidEncoding(f"Zr element must be {self.zr_size} bytes for {self.id}")
        value = int.from_bytes(data, "big")
        if value >= self.order:
            raise InvalidEncoding("Zr element is not reduced modulo the group order")
        return value

    def __repr__(self) -> str:
        return f"<PairingGroup {self.id}>"
