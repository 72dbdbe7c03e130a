"""Numeric and date fields as keywords, so range queries run on the same blind PASS tree.

A document's field value v (an integer in [-2^31, 2^31), or a date) is indexed as the keywords
of its dyadic prefixes: for every level L from 0 to the domain's bit width B, the keyword
`#KFIELD/L/P` with P = u >> L, where u is v moved into [0, 2^B) (integers + 2^31; dates as
their proleptic Gregorian ordinal) and K is `n` (integer) or `d` (date). A range [lo, hi] is the
union of at most 2B - 2 dyadic intervals, each one such keyword, so `FIELD >= 140` becomes an OR
of exact-keyword trapdoors (`cover`). The server sees PRF values only, as for words; the client
pads every range to the same number of trapdoors (`COVER_SIZE`), so it learns neither the
width nor the position of the range, only (as for any query) which leaves matched.

Field keywords start with `#`, which no word keyword can hold (words are `\\w+` runs), so
they never collide with text; pattern search skips them. Field names are the JSON keys,
normalized as words; names longer than NAME_LIMIT characters are shortened to a prefix and a
BLAKE2b tag so that every keyword fits the tree's 40-character limit. Numbers with a fraction
are not range-indexed (an integer-valued float such as 120.0 is).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .normal import normalize

FIELD_MARK = "#"
#: bit widths of the two domains (dates: ordinals up to 9999-12-31 < 2^22)
BITS = {"n": 32, "d": 22}
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
#: trapdoors a range query sends, whatever its width: the most any range of either domain needs
COVER_SIZE = 2 * max(BITS.values()) - 2
NAME_LIMIT = 24
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:$|T)")
_NAME = re.compile(r"\w+\Z")


@dataclass(frozen=True)
class FieldValue:
    """A typed field value: kind `n` (integer) or `d` (date), and its position in the domain."""

    kind: str
    value: int | dt.date

    @property
    def unsigned(self) -> int:
        """The value moved into [0, 2^BITS[kind])."""
        if isinstance(self.value, dt.date):
            return self.value.toordinal()
        return self.value - INT_MIN


def field_name(raw: str) -> str | None:
    """The normalized field name of a JSON key, or None if it is not a word."""
    name = normalize(raw)
    if not _NAME.match(name):
        return None
    if len(name) > NAME_LIMIT:
        tag = hashlib.blake2b(name.encode(), digest_size=4, person=b"abe-h/field").hexdigest()
        name = name[: NAME_LIMIT - 8] + tag
    return name


def parse_value(value: Any) -> FieldValue | None:
    """A JSON value as a field value: an integer in range (booleans excluded), an integral float,
    or a string beginning with an ISO date (YYYY-MM-DD); otherwise None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return FieldValue("n", value) if INT_MIN <= value <= INT_MAX else None
    if isinstance(value, str):
        match = _DATE.match(value)
        if match:
            try:
                return FieldValue("d", dt.date(*(int(g) for g in match.groups())))
            except ValueError:
                return None
    return None


def document_fields(value: Any) -> dict[str, set[FieldValue]]:
    """Every (field name, value) of a JSON document, at any depth (lists give several values)."""
    out: dict[str, set[FieldValue]] = {}

    def walk(node: Any, key: str | None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k if isinstance(k, str) else None)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif key is not None:
            name, parsed = field_name(key), parse_value(node)
            if name is not None and parsed is not None:
                out.setdefault(name, set()).add(parsed)

    walk(value, None)
    return out


def keyword(kind: str, name: str, level: int, prefix: int) -> str:
    """The keyword of the dyadic interval [prefix << level, (prefix + 1) << level) of a field."""
    return f"{FIELD_MARK}{kind}{name}/{level}/{prefix}"


def value_keywords(name: str, value: FieldValue) -> Iterator[str]:
    """The B + 1 keywords a value is indexed under: its prefix at every level."""
    u = value.unsigned
    for level in range(BITS[value.kind] + 1):
        yield keyword(value.kind, name, level, u >> level)


def field_keywords(fields: dict[str, set[FieldValue]]) -> Counter[str]:
    """Keyword counts for a document's fields (each prefix counted once per document)."""
    return Counter({k: 1 for name, values in fields.items() for v in values
                    for k in value_keywords(name, v)})


def cover(kind: str, name: str, low: int, high: int) -> list[str]:
    """The keywords of the dyadic intervals that exactly cover [low, high] (unsigned domain
    positions, inclusive); empty if the range is empty."""
    bits = BITS[kind]
    low, high = max(low, 0), min(high, (1 << bits) - 1)
    out: list[str] = []
    while low <= high:
        level = 0
        while (level < bits and low % (1 << (level + 1)) == 0
               and low + (1 << (level + 1)) - 1 <= high):
            level += 1
        out.append(keyword(kind, name, level, low >> level))
        low += 1 << level
    return out


def is_field_keyword(word: str) -> bool:
    return word.startswith(FIELD_MARK)
