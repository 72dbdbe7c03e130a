"""Break F5: a planted `.abe` header must cost no more than an honest one of its size.

A 16 MiB header with `C2` repeated 170,000 times cost 14 s of CPU and 182 MB before anything
looked at its policy: every group element was decoded (with its subgroup check) first. Now the
core is at most MAX_HEADER (2 MiB, from the largest honest header: 2,048 RW15 rows), per-row lists
are capped at MAX_ROWS, and their length is checked against the header's policy before any element
is decoded (`abe_health.hazmat.schemes.base.check_rows`).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from pathlib import Path

import cbor2
import pytest
from hypothesis import given, settings
from strategies import WIDTHS, trees

from abe_health import MultiAuthorityRecipient, PolicyRecipient, decrypt, encrypt, inspect
from abe_health.authority import CPABE, KPABE
from abe_health.errors import InvalidCiphertext, InvalidKey
from abe_health.hazmat.envelope import MAX_HEADER, read_header, write_header
from abe_health.hazmat.records import from_map, to_map
from abe_health.hazmat.schemes import get_scheme
from abe_health.ma import Authority
from abe_health.policy import Policy
from abe_health.policy.lsss import MAX_ROWS
from abe_health.policy.parser import MAX_POLICY_CHARS, row_bounds
from tests.budget import refusal_cost

#: the review's budget for refusing a planted header
SECONDS, BYTES = 0.5, 50 * 2**20


@pytest.fixture(scope="module")
def ward(tmp_path_factory):
    """An honest RW15 file under a 3-row policy, and the key that opens it."""
    authority = Authority.setup("H")
    key = authority.keygen("alice", ["nurse", "ward = 4"])
    path = tmp_path_factory.mktemp("f5") / "rec.abe"
    path.write_bytes(encrypt(b'{"rota": "3-5"}', None, MultiAuthorityRecipient(
        "nurse@H and ward in 3..5@H", [authority.public_key])))
    return path, key


def split(blob: bytes) -> tuple[dict, bytes]:
    """(core map, wrap and payload) of an `.abe` file."""
    (n,) = struct.unpack(">I", blob[4:8])
    return cbor2.loads(blob[8 : 8 + n]), blob[8 + n :]


def join(core: dict, rest: bytes) -> bytes:
    raw = cbor2.dumps(core)
    return b"ABE2" + struct.pack(">I", len(raw)) + raw + rest


def inflated(blob: bytes, parts: tuple[str, ...], count: int) -> bytes:
    """The file with each of `parts` repeated to `count` items (an edit of the CBOR only)."""
    core, rest = split(blob)
    for part in parts:
        items = core["ct"]["parts"][part]
        core["ct"]["parts"][part] = (items * (count // len(items) + 1))[:count]
    return join(core, rest)


def refused_cheaply(call: Callable[[], object]) -> InvalidCiphertext:
    """`call()` raises InvalidCiphertext within SECONDS and a tracemalloc peak of BYTES."""
    error, elapsed, peak = refusal_cost(InvalidCiphertext, call)
    assert elapsed < SECONDS, elapsed
    assert peak < BYTES, peak
    assert isinstance(error, InvalidCiphertext)
    return error


# element sizes on BLS12-381 plus CBOR: GT 579, G2 98, G1 50 bytes; ~16.6 MB as in the review
REVIEW = [("C2", 170_000), ("C1", 28_700), ("C4", 332_000)]


@pytest.mark.parametrize(("part", "count"), REVIEW, ids=[p for p, _ in REVIEW])
def test_review_headers_are_refused_from_their_length(ward, tmp_path, part, count):
    """The review's planted headers: ~16.6 MB cores, refused before they are read."""
    honest, key = ward
    path = tmp_path / "planted.abe"
    path.write_bytes(inflated(honest.read_bytes(), (part,), count))
    assert path.stat().st_size > 16_000_000
    err = refused_cheaply(lambda: decrypt(path, None, key))
    assert "byte limit" in str(err)
    refused_cheaply(lambda: inspect(path))


def _under_the_limit(part: str) -> int:
    """Items of `part` that fill a core just under MAX_HEADER."""
    size = {"C1": 579, "C2": 98, "C3": 98, "C4": 50}[part]
    return (MAX_HEADER - 4096) // size


@pytest.mark.parametrize(("parts", "count", "fragment"), [
    (("C2",), _under_the_limit("C2"), "over MAX_ROWS"),
    (("C1",), _under_the_limit("C1"), "over MAX_ROWS"),
    (("C4",), _under_the_limit("C4"), "over MAX_ROWS"),
    (("C2",), 4, "differ in length"),
    (("C1", "C2", "C3", "C4"), 4, "has 4 rows but its policy compiles to 3"),
    (("C1", "C2", "C3", "C4"), MAX_ROWS, "has 2048 rows but its policy compiles to 3"),
    (("C1", "C2", "C3", "C4"), MAX_ROWS + 1, "over MAX_ROWS"),
], ids=["C2-2MiB", "C1-2MiB", "C4-2MiB", "C2+1", "all+1", "all-2048", "all-2049"])
def test_inflated_headers_within_the_limit_are_refused_before_decoding(ward, tmp_path, parts,
                                                                        count, fragment):
    """Lists inflated up to just under MAX_HEADER, or to a length the policy cannot have: refused
    from the shape of the record, before any element is decoded (C1 alone, 2,048 GT elements,
    would take 2 s to decode)."""
    honest, key = ward
    path = tmp_path / "planted.abe"
    path.write_bytes(inflated(honest.read_bytes(), parts, count))
    assert len(split(path.read_bytes())[0]["ct"]["parts"][parts[0]]) == count
    for call in (lambda: decrypt(path, None, key), lambda: inspect(path)):
        err = refused_cheaply(call)
        assert "header" in str(err) and fragment in str(err), str(err)
    # and the honest file still opens
    assert decrypt(honest, None, key) == b'{"rota": "3-5"}'


def test_a_planted_policy_is_read_under_the_policy_limits(ward, tmp_path):
    honest, key = ward
    core, rest = split(honest.read_bytes())
    for policy, fragment in ((" or ".join(f"a{i}@H" for i in range(3000)), "MAX_POLICY_CHARS"),
                             ("nurse@H and", "malformed policy"), (None, "'policy'")):
        core["ct"]["meta"]["policy"] = policy
        path = tmp_path / "planted.abe"
        path.write_bytes(join(core, rest))
        err = refused_cheaply(lambda path=path: decrypt(path, None, key))
        assert fragment in str(err)


def _largest_policy(suffix: str) -> str:
    """2,048 rows (66 `x > 1` of 31 prefix labels each, and 2 attributes) in the longest text
    there is: the two attribute names filled with 4-byte UTF-8 characters."""
    core = " or ".join([f"x > 1{suffix}"] * 66)
    room = MAX_POLICY_CHARS - len(core) - 2 * len(f' or ""{suffix}')
    first, second = chr(0x1F600) * (room // 2), chr(0x1F601) * (room - room // 2)
    text = f'{core} or "{first}"{suffix} or "{second}"{suffix}'
    assert len(text) == MAX_POLICY_CHARS
    return text


def test_the_largest_honest_rw15_header_still_decrypts():
    """2,048 rows, the longest policy text: the header MAX_HEADER is measured from (1,753,120
    bytes of core) fits, and opens."""
    authority = Authority.setup("H")
    text = _largest_policy("@H")
    assert Policy.parse(text).lsss.n_rows == MAX_ROWS
    blob = encrypt(b"largest", None, MultiAuthorityRecipient(text, [authority.public_key]))
    size = struct.unpack(">I", blob[4:8])[0]
    assert 1_700_000 < size < MAX_HEADER * 0.85, size
    # `x > 1` covers 1 label at 2 bits, 63 at 64: 2 + 66 to 2 + 66 * 63 rows, capped at MAX_ROWS
    assert row_bounds(text) == (2 + 66, MAX_ROWS)
    assert decrypt(blob, None, authority.keygen("bob", ["x = 7"])) == b"largest"


def test_the_largest_honest_fame_header_still_decrypts():
    """2,048 rows of three uncompressed G1 points (96 bytes each): 668,374 bytes of core."""
    abe = CPABE.setup()
    blob = encrypt(b"largest", None, PolicyRecipient(abe.public_key, _largest_policy("")))
    assert struct.unpack(">I", blob[4:8])[0] < MAX_HEADER // 3
    assert decrypt(blob, None, abe.keygen(["x = 2"])) == b"largest"


def test_writing_a_header_past_the_limit_is_refused(ward):
    honest, _ = ward
    core, _ = split(honest.read_bytes())
    core["ct"]["meta"]["padding"] = b"\0" * MAX_HEADER
    with pytest.raises(InvalidCiphertext, match="byte limit"):
        write_header(io.BytesIO(), get_scheme("rw15"), core["ct"], None, b"", b"\0" * 32)  # type: ignore[arg-type]


def test_keys_carrying_a_policy_are_checked_the_same_way():
    """A KP key carries the policy: its per-row list `sk` is checked against it."""
    abe = KPABE.setup("fame-kp")
    key = abe.keygen(policy="doctor and nurse")
    data = to_map(key.scheme, key.record)
    data["parts"]["sk"] = data["parts"]["sk"] * 2
    with pytest.raises(InvalidKey, match="has 4 rows but its policy compiles to 2"):
        from_map(data)
    data["parts"]["sk"] = data["parts"]["sk"] * 1025
    with pytest.raises(InvalidKey, match="over MAX_ROWS"):
        from_map(data)


@settings(max_examples=300, deadline=None)
@given(tree=trees(4))
def test_row_bounds_hold_for_every_width(tree):
    """What a header is checked against before the widths are known brackets the rows the policy
    compiles to under the widths its key brings (here those of tests/strategies.py)."""
    text = str(tree)
    try:
        rows = Policy.parse(text, WIDTHS).lsss.n_rows
    except Exception:  # over a limit at these widths
        return
    fewest, most = row_bounds(text)
    assert fewest <= rows <= most, (text, fewest, rows, most)
    if not any(ch in text for ch in "<>="):
        assert fewest == most == rows


def test_row_bounds_are_exact_without_comparisons_and_tight_for_one():
    # 3 attributes, and age >= 65: 6 labels at 7 bits ([65, 127]), 63 at 64 bits
    assert row_bounds("(doctor and cardiology) or (nurse and age >= 65)") == (3 + 6, 3 + 63)
    assert row_bounds("doctor and ward = 3") == (2, 2)
    assert row_bounds("emergency >= 2026-06-01@ER") == (8, 57)
    assert row_bounds("x in 3..5") == (2, 2)


def test_read_header_reads_the_frozen_vectors_headers():
    """The vectors (tests/test_vectors.py) use age >= 65 at width 8: within the bounds."""
    vectors = Path(__file__).parent / "vectors"
    for path in sorted(vectors.glob("*/success*.vec"))[:10]:
        body = path.read_bytes().partition(b"---\n")[2]
        header = read_header(io.BytesIO(body))
        assert header.ciphertext.kind == "ciphertext"
