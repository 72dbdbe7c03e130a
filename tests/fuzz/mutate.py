"""Mutations: generic byte edits, splices between seeds, structure-aware CBOR edits, armor and
policy-grammar edits, `.npy` header edits, and bundles (a directory as {relative path: bytes}).

Every mutator takes a `random.Random` and returns new bytes plus a short name of what it did
(the name goes into the reproducer's description). All are deterministic for a given RNG state,
so a campaign is reproducible from its `--seed`.
"""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Callable
from typing import Any

import cbor2

#: byte values that often sit on a boundary
INTERESTING = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x20, 0x0A, 0x2D, 0x3D]
#: CBOR heads that declare huge lengths or deep nesting
CBOR_BOMBS = [
    b"\x5b\x7f\xff\xff\xff\xff\xff\xff\xff",  # bytes of length 2^63 - 1
    b"\x7b\x00\x00\x00\x01\x00\x00\x00\x00",  # text of length 2^32
    b"\x9b\x00\x00\x00\x10\x00\x00\x00\x00",  # array of 2^36 items
    b"\xbb\x00\x00\x00\x10\x00\x00\x00\x00",  # map of 2^36 pairs
    b"\x81" * 5000 + b"\x00",  # nesting 5000 deep
    b"\xc2\x5a\x00\x10\x00\x00" + b"\xff" * 64,  # a bignum claiming 1 MiB
    b"\x9f" * 3000 + b"\xff" * 3000,  # indefinite arrays nested
    b"\xd8\x1c\x81\xd8\x1d\x00",  # shareable / sharedref tags
    b"\xd9\xd9\xf7",  # self-describe tag
    b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00",  # NaN
]


def bitflip(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    if not data:
        return bytes([rng.randrange(256)]), "bitflip-empty"
    out = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 4, 8])):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out), "bitflip"


def byteset(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    if not data:
        return bytes([rng.choice(INTERESTING)]), "byteset-empty"
    out = bytearray(data)
    for _ in range(rng.choice([1, 2, 3])):
        out[rng.randrange(len(out))] = rng.choice(INTERESTING)
    return bytes(out), "byteset"


def truncate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    if len(data) < 2:
        return b"", "truncate"
    return data[: rng.randrange(len(data))], "truncate"


def chunk_edit(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Delete, duplicate or insert a random chunk."""
    if not data:
        return rng.randbytes(rng.randrange(1, 32)), "insert"
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.choice([1, 2, 4, 8, 16, 64, 256]))
    what = rng.choice(["delete", "duplicate", "insert", "bomb"])
    if what == "delete":
        return data[:i] + data[j:], "delete"
    if what == "duplicate":
        return data[:j] + data[i:j] * rng.choice([1, 2, 100]) + data[j:], "duplicate"
    if what == "bomb":
        return data[:i] + rng.choice(CBOR_BOMBS) + data[j:], "cbor-bomb"
    return data[:i] + rng.randbytes(j - i) + data[i:], "insert"


def splice(rng: random.Random, a: bytes, b: bytes) -> tuple[bytes, str]:
    """A prefix of one seed and a suffix of another."""
    i = rng.randrange(len(a) + 1)
    j = rng.randrange(len(b) + 1)
    return a[:i] + b[j:], "splice"


# ---------------------------------------------------------------------------------------------
# structure-aware CBOR


def _paths(value: Any, path: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[Any, ...]]:
    out = [path]
    if depth > 12:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, ("k", k)), depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, ("i", i)), depth + 1)
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for _, k in path:
        value = value[k]
    return value


def _set(root: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    parent = _get(root, path[:-1])
    parent[path[-1][1]] = new
    return root


def _replacement(rng: random.Random, old: Any) -> tuple[Any, str]:
    choices: list[Callable[[], tuple[Any, str]]] = [
        lambda: (rng.choice([0, 1, -1, 2**31, 2**32 + 1, 2**63, 2**64, -(2**64), 10**400]), "int"),
        lambda: (10 ** rng.choice([4301, 5000, 20000]), "huge-int"),
        lambda: ("".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(8))), "text"),
        lambda: (rng.randbytes(rng.choice([0, 1, 15, 16, 17, 31, 32, 33, 64, 92])), "bytes"),
        lambda: ([], "empty-list"),
        lambda: ({}, "empty-map"),
        lambda: (None, "null"),
        lambda: (rng.choice([True, False]), "bool"),
        lambda: (rng.choice([0.5, float("nan"), float("inf"), -0.0]), "float"),
        lambda: ([old], "wrap-list"),
        lambda: ({"x": old}, "wrap-map"),
        lambda: ({(1, 2): 3}, "tuple-key"),
        lambda: (cbor2.CBORTag(rng.choice([0, 1, 2, 24, 258, 55799, 12345]), old), "tag"),
        lambda: (_nest(rng.choice([200, 1000, 3000])), "deep"),
        lambda: ([0] * rng.choice([1000, 100000]), "long-list"),
        lambda: ({str(i): i for i in range(rng.choice([1000, 50000]))}, "big-map"),
    ]
    if isinstance(old, (bytes, str)) and old:
        choices += [
            lambda: (old[: rng.randrange(len(old))], "shorten"),
            lambda: (old + old[: rng.randrange(1, len(old) + 1)], "lengthen"),
            lambda: (old * rng.choice([2, 100]), "repeat"),
        ]
    if isinstance(old, bytes) and old:
        choices.append(lambda: (old.decode("latin-1"), "bytes-to-text"))
    if isinstance(old, str):
        choices.append(lambda: (old.encode(), "text-to-bytes"))
    if isinstance(old, int) and not isinstance(old, bool):
        choices += [lambda: (old + rng.choice([-1, 1, 2**32, 2**63]), "int-step"),
                    lambda: (-old - 1, "negate")]
        if abs(old) < 10**100:
            choices.append(lambda: (str(old), "int-to-text"))
    if isinstance(old, list) and old:
        choices += [lambda: (old[:-1], "drop-item"), lambda: (old + old, "double-list"),
                    lambda: (old[::-1], "reverse"), lambda: (dict(enumerate(old)), "list-to-map")]
    if isinstance(old, dict) and old:
        def drop() -> tuple[Any, str]:
            copy = dict(old)
            copy.pop(rng.choice(list(copy)))
            return copy, "drop-key"
        def rename() -> tuple[Any, str]:
            copy = dict(old)
            name = rng.choice(list(copy))
            value = copy.pop(name)
            new_name = rng.choice([*copy, "x", "doctor", str(name) + "#v1", 0, b"k"]) if copy else "x"
            copy[new_name] = value
            return copy, "rename-key"

        def swap() -> tuple[Any, str]:
            copy = dict(old)
            if len(copy) < 2:
                return copy, "swap-values"
            a, b = rng.sample(list(copy), 2)
            copy[a], copy[b] = copy[b], copy[a]
            return copy, "swap-values"

        choices += [drop, drop, rename, rename, swap,
                    lambda: ({**old, rng.choice(["v", "type", "x", 0]): 2}, "add-key"),
                    lambda: (list(old.values()), "map-to-list")]
    return rng.choice(choices)()


def _nest(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def cbor_edit(rng: random.Random, data: bytes) -> tuple[bytes, str] | None:
    """Decode, replace one node (type, length, nesting, huge numbers), encode again; None when
    the bytes are not CBOR. Nested CBOR inside byte strings is edited too (half of the time)."""
    try:
        value = cbor2.loads(data)
    except Exception:
        return None
    paths = _paths(value)
    path = rng.choice(paths)
    old = _get(value, path)
    if isinstance(old, bytes) and rng.random() < 0.5:
        inner = cbor_edit(rng, old)
        if inner is not None:
            new, how = inner
            return _dump(_set(value, path, new)), f"nested-{how}"
    new, how = _replacement(rng, old)
    try:
        return _dump(_set(value, path, new)), f"cbor-{how}"
    except Exception:
        return None


def _dump(value: Any) -> bytes:
    try:
        return cbor2.dumps(value)
    except Exception:
        # deep nesting beyond the encoder's recursion: write the head bytes by hand
        return cbor2.dumps(value, canonical=False)


# ---------------------------------------------------------------------------------------------
# armor

_ARMOR = re.compile(rb"(-----BEGIN ABE ([A-Z ]+)-----\r?\n)(.*?)(-----END ABE \2-----)", re.S)


def armor_edit(rng: random.Random, data: bytes, inner_mutator: Callable[[random.Random, bytes],
               tuple[bytes, str]] | None = None) -> tuple[bytes, str]:
    """Armor-grammar edits: labels, markers, line breaks, characters, padding, text around, and
    (with `inner_mutator`) a mutated binary armored again so that the inner parser is reached."""
    m = _ARMOR.search(data)
    if m is None:
        return bitflip(rng, data)
    head, label, body, end = m.group(1), m.group(2), m.group(3), m.group(4)
    before, after = data[: m.start()], data[m.end() :]
    what = rng.choice(["inner", "inner", "label", "drop-end", "drop-begin", "non-ascii", "space",
                       "long-line", "crlf", "after", "before", "padding", "bad-char", "empty",
                       "double", "repeat-begin", "long-space"])
    if what == "inner" and inner_mutator is not None:
        try:
            raw = base64.b64decode(b"".join(body.split()))
        except Exception:
            return bitflip(rng, data)
        new, how = inner_mutator(rng, raw)
        b64 = base64.b64encode(new)
        lines = b"\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
        return before + head + lines + b"\n" + end + after, f"armor-inner-{how}"
    if what == "label":
        new_label = rng.choice([b"USER KEY", b"PUBLIC KEY", b"MASTER KEY", b"FILE", b"X", b""])
        return data.replace(label, new_label, rng.choice([1, 2])), "armor-label"
    if what == "repeat-begin":
        return head * rng.choice([100, 10_000, 200_000]) + body + end + after, "armor-repeat-begin"
    if what == "long-space":
        return before + head + b" " * rng.choice([10_000, 1_000_000]) + body + end + after, \
            "armor-long-space"
    if what == "drop-end":
        return before + head + body, "armor-drop-end"
    if what == "drop-begin":
        return body + end + after, "armor-drop-begin"
    pos = rng.randrange(len(body) + 1)
    if what == "non-ascii":
        ch = rng.choice(["é", "\u00a0", "\u2028", "日", "\udcff", "\x00", "\U0001f600"])
        return before + head + body[:pos] + ch.encode("utf-8", "surrogatepass") + body[pos:] + end + after, \
            "armor-non-ascii"
    if what == "space":
        return before + head + body[:pos] + rng.choice([b" ", b"\t", b"\n\n", b"\r", b"\x0b"]) \
            + body[pos:] + end + after, "armor-space"
    if what == "long-line":
        return before + head + body.replace(b"\n", b"", rng.choice([1, 5, -1])) + end + after, \
            "armor-long-line"
    if what == "crlf":
        return data.replace(b"\n", b"\r\n"), "armor-crlf"
    if what == "after":
        return data + rng.choice([b"x", b"\n\n", b"-----BEGIN ABE FILE-----\n", b"\x00" * 10]), \
            "armor-after"
    if what == "before":
        return rng.choice([b" ", b"\n", b"junk\n", b"\xef\xbb\xbf"]) + data, "armor-before"
    if what == "padding":
        return before + head + body.rstrip(b"\n=") + rng.choice([b"=", b"==", b"===", b""]) \
            + b"\n" + end + after, "armor-padding"
    if what == "bad-char":
        return before + head + body[:pos] + bytes([rng.choice(b"!*.-_~=\xff\x80")]) + body[pos:] \
            + end + after, "armor-bad-char"
    if what == "empty":
        return before + head + end + after, "armor-empty"
    return data + data, "armor-double"


# ---------------------------------------------------------------------------------------------
# policy grammar

POLICY_TOKENS = [
    "and", "or", "not", "of", "(", ")", ",", "=", "<", ">", "<=", ">=", "!=", "..", "in", "@",
    "#", "doctor", "nurse", "ward", "age", "2", "3", "0", "-1", "2026-12-31", "1999-02-30",
    "9" * 40, "1" + "0" * 4400, "\"", "'", "\\", "\x00", "é", "日本", "\u202e", " ", "\t", "\n",
    "a" * 300, "x.y", "x-y", "_", "AND", "OR", "2 of (a, b)", "1 of ()", "0 of (a)",
]


def policy_tokens(text: str) -> list[str]:
    return re.findall(r"\w+|\.\.|[<>!]=|\S", text)


def policy_edit(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Grammar-level edits of policy or attribute text: tokens inserted, dropped, swapped or
    repeated, deep nesting, huge thresholds and numbers, long names."""
    text = data.decode("utf-8", errors="replace")
    tokens = policy_tokens(text) or ["doctor"]
    what = rng.choice(["insert", "drop", "swap", "repeat", "nest", "threshold", "number",
                       "long-name", "gate-width", "chain"])
    if what == "insert":
        i = rng.randrange(len(tokens) + 1)
        tokens[i:i] = [rng.choice(POLICY_TOKENS)]
    elif what == "drop":
        del tokens[rng.randrange(len(tokens))]
    elif what == "swap":
        i, j = rng.randrange(len(tokens)), rng.randrange(len(tokens))
        tokens[i], tokens[j] = tokens[j], tokens[i]
    elif what == "repeat":
        return (f"({text}) {rng.choice(['and', 'or'])} " * rng.choice([2, 50, 400]) + f"({text})"
                ).encode(), "policy-repeat"
    elif what == "nest":
        depth = rng.choice([10, 63, 64, 65, 500, 5000])
        return ("(" * depth + text + ")" * depth).encode(), "policy-nest"
    elif what == "threshold":
        n = rng.choice([3, 40, 200, 511, 512, 513, 1500])
        k = rng.choice([1, 2, n // 2, n - 1, n, n + 1, 879])
        names = ", ".join(f"a{i}" for i in range(n))
        return f"{k} of ({names})".encode(), "policy-threshold"
    elif what == "number":
        i = rng.randrange(len(tokens) + 1)
        tokens[i:i] = [rng.choice([">=", "<", "=", "in"]),
                       rng.choice(["9" * rng.choice([19, 20, 64, 4300, 4301, 10000]),
                                   "-" + "9" * 30, "0..18446744073709551615", "2026-02-29"])]
    elif what == "long-name":
        tokens[rng.randrange(len(tokens))] = "n" * rng.choice([64, 255, 256, 257, 20000])
    elif what == "gate-width":
        n = rng.choice([100, 600, 3000])
        return " or ".join(f"a{i}" for i in range(n)).encode(), "policy-gate-width"
    else:
        n = rng.choice([50, 200])
        return " and ".join(f"age >= {i}" for i in range(n)).encode(), "policy-chain"
    return " ".join(tokens).encode("utf-8", "surrogatepass"), f"policy-{what}"


# ---------------------------------------------------------------------------------------------
# .npy headers


def npy_edit(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Edit the header dictionary of a `.npy` file: dtype, shape, order, header length."""
    if not data.startswith(b"\x93NUMPY") or len(data) < 10:
        return bitflip(rng, data)
    hlen = int.from_bytes(data[8:10], "little")
    header, body = data[10 : 10 + hlen], data[10 + hlen :]
    what = rng.choice(["dtype", "shape", "order", "hlen", "version", "body"])
    if what == "dtype":
        new = re.sub(rb"'descr': '[^']*'", b"'descr': '" + rng.choice(
            [b"<i8", b"|O", b"<f8", b">u8", b"<u4", b"|u1", b"<U16", b"V16", b"<c16", b"<M8"]) + b"'",
            header)
        return data[:10] + _pad(new) + body, "npy-dtype"
    if what == "shape":
        shape = rng.choice([b"()", b"(0,)", b"(-1,)", b"(18446744073709551615,)", b"(4611686018427387904,)",
                            b"(1, 2, 3)", b"(3, 16)", b"(100000000,)", b"(2, 8)", b"('a',)"])
        new = re.sub(rb"'shape': \([^)]*\)", b"'shape': " + shape, header)
        return data[:10] + _pad(new) + body, "npy-shape"
    if what == "order":
        return data[:10] + _pad(header.replace(b"False", b"True")) + body, "npy-order"
    if what == "hlen":
        return data[:8] + rng.choice([0, 1, 0xFFFF, hlen + 1]).to_bytes(2, "little") + data[10:], \
            "npy-hlen"
    if what == "version":
        return data[:6] + bytes([rng.choice([0, 2, 3, 9]), 0]) + data[8:], "npy-version"
    n = len(body)
    i = rng.randrange(max(1, n))
    value = rng.choice([2**64 - 1, 2**63, 2**63 - 1, 2**32, 0, 1, 2**64 - 8])
    return data[: 10 + hlen] + body[:i] + value.to_bytes(8, "little") + body[i + 8 :], "npy-value"


def _pad(header: bytes) -> bytes:
    """A header padded to the next 64-byte boundary and prefixed with its length (version 1)."""
    header = header.rstrip(b" \n")
    total = 10 + len(header) + 1
    pad = -total % 64
    header = header + b" " * pad + b"\n"
    return len(header).to_bytes(2, "little") + header


GENERIC: list[Callable[[random.Random, bytes], tuple[bytes, str]]] = [
    bitflip, bitflip, byteset, truncate, chunk_edit, chunk_edit,
]


def generic(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """One generic byte-level mutation, or (for CBOR input) a structure-aware edit."""
    if rng.random() < 0.4:
        edited = cbor_edit(rng, data)
        if edited is not None:
            return edited
    return rng.choice(GENERIC)(rng, data)


def stack(rng: random.Random, data: bytes,
          mutator: Callable[[random.Random, bytes], tuple[bytes, str]]) -> tuple[bytes, str]:
    """1 to 3 mutations in a row (mostly one)."""
    hows = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        data, how = mutator(rng, data)
        hows.append(how)
    return data, "+".join(hows)


# ---------------------------------------------------------------------------------------------
# bundles: a directory as {relative path: bytes}


def pack_bundle(files: dict[str, bytes]) -> bytes:
    return cbor2.dumps({"bundle": 1, "files": dict(sorted(files.items()))})


def unpack_bundle(data: bytes) -> dict[str, bytes]:
    value = cbor2.loads(data)
    files = value["files"]
    assert isinstance(files, dict)
    return files
