"""Policy trees: attributes, numeric comparisons and threshold gates, with a canonical text form.

`And`/`Or` are the k = n / k = 1 cases of a threshold gate but keep their own classes, so that
the LSSS can give them 0/1 reconstruction coefficients (no exponentiation at decryption).
Attribute *labels* (`name`, `name=value`, `name@authority`) are the strings that schemes hash;
their format is fixed, so keys and ciphertexts stay compatible across versions. Each part of a
label is either a bare word (no `"`, `=` or `@`) or a quoted string, so a label decodes to exactly
one (name, value, authority): labels are injective, and since user-written names cannot hold
`#`, no user attribute shares a label with an internal one (`age#p3=5`, `nurse#v3`).

The canonical text (`str`) prints a name, value or authority bare only when reading it back gives
the very same token (`ward = "03"` stays quoted: bare `03` reads as the number 3; so do
`"2026-13-45"`, keywords, and anything with spaces, quotes or `#` in values), so that
`parse(str(p)) == p` for every tree the parser produces (with `internal=True` when `p` holds
internal names): a header's policy text means what its tree meant.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from ..errors import PolicySyntaxError

KEYWORDS = frozenset({"and", "or", "of", "not"})
COMPARISON_OPS = ("<", "<=", ">", ">=", "==")
#: the operator of a range comparison `name in LO..HI` (inclusive bounds); a word, not a keyword,
#: since it only has that meaning right after a name (an attribute may still be called `in`)
RANGE_OP = "in"
#: what separates the bounds of a range (`3..5`, `2026-06-01..2026-06-30`)
RANGE_SEP = ".."
EPOCH = _dt.date(1970, 1, 1)
DEFAULT_WIDTH = 32
#: widest numeric attribute: a key holds MAX_WIDTH + 1 prefix labels per value and a comparison
#: expands to at most 2 * MAX_WIDTH of them
MAX_WIDTH = 64
#: separator of internal names `base#tag` (prefix labels `age#p3`, revocation epochs `nurse#v3`):
#: user-facing parsing refuses it in names, so no user-writable attribute has an internal label
BIT_MARK = "#"
INTERNAL_MARK = BIT_MARK
#: tag of prefix labels: `age#p3=5` means "age >> 3 == 5"; reserved to numeric.py
PREFIX_TAG = "p"
#: a bare integer token (threshold count, constant, or value normalized `03` -> `3`)
INT_RE = re.compile(r"[0-9]+\Z")
#: most digits of a number literal: 2^64 has 20, and Python refuses int() of over 4,300 digits
#: (longer digit strings are written quoted, as text)
MAX_NUMBER_DIGITS = 40
#: a bare date token YYYY-MM-DD (checked to be a real day, not before 1970-01-01)
DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_PREFIX_TAG = re.compile(PREFIX_TAG + r"[0-9]+\Z")


def check_width(name: str, width: object) -> int:
    """The bit width of numeric attribute `name`, refusing anything but an int in 1..MAX_WIDTH."""
    if type(width) is not int or not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"width of numeric attribute {quote(name)} must be 1..{MAX_WIDTH} bits, "
                         f"got {width!r}")
    return width


def is_word_char(ch: str) -> bool:
    """Characters of a bare (unquoted) word."""
    return ch.isalnum() or ch in "_.-/"


def is_name_start(ch: str) -> bool:
    """Characters a bare name may start with (a digit starts a number or date instead)."""
    return ch.isalpha() or ch == "_"


def quote(text: str, *, name: bool = True) -> str:
    """`text` as written in a policy: bare when it is a plain word (not a keyword), else quoted.

    Names must start with a letter or `_` to stand bare; values (`name = 3`) may start with a digit.
    """
    bare = (
        text != ""
        and all(is_word_char(c) for c in text)
        and (is_name_start(text[0]) or not name)
        and text.lower() not in KEYWORDS
    )
    return text if bare else _quoted(text)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label_name(name: str) -> str:
    """A name in a label: bare when a plain word (internal names keep their `#` bare), else quoted."""
    bare = (
        name != ""
        and all(is_word_char(c) or c == BIT_MARK for c in name)
        and is_name_start(name[0])
        and name.lower() not in KEYWORDS
    )
    return name if bare else quote(name)


def date_days(text: str) -> int | None:
    """Days since 1970-01-01 of a real ISO date not before 1970, else None."""
    m = DATE_RE.match(text)
    if not m:
        return None
    try:
        day = _dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
    return (day - EPOCH).days if day >= EPOCH else None


def parse_date(token_text: str, text: str = "", column: int = 0) -> int:
    """Days since 1970-01-01 of an ISO date, refusing impossible or pre-1970 dates."""
    m = DATE_RE.match(token_text)
    if not m:
        raise PolicySyntaxError(f"expected a date YYYY-MM-DD, got '{token_text}'", text, column)
    days = date_days(token_text)
    if days is None:
        try:
            _dt.date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            raise PolicySyntaxError(f"unknown date '{token_text}'", text, column) from None
        raise PolicySyntaxError(f"date '{token_text}' is before 1970-01-01", text, column)
    return days


def print_value(value: str) -> str:
    """`value` as canonical text: bare only if reading the bare word back gives `value` itself
    (not `03`, which reads as 3, nor an impossible or pre-1970 date, which is refused)."""
    text = quote(value, name=False)
    if text != value:
        return text
    if INT_RE.match(value) and (len(value) > MAX_NUMBER_DIGITS or str(int(value)) != value):
        return _quoted(value)
    if DATE_RE.match(value) and date_days(value) is None:
        return _quoted(value)
    return value


def days_to_date(days: int) -> str:
    """ISO date of a day count since 1970-01-01."""
    return (EPOCH + _dt.timedelta(days=days)).isoformat()


@dataclass(frozen=True)
class Attribute:
    """A leaf: `name`, `name = value` and/or `@authority`."""

    name: str
    value: str | None = None
    authority: str | None = None

    @property
    def label(self) -> str:
        """The string schemes hash: `name[=value][@authority]`, with quoting where needed."""
        text = _label_name(self.name)
        if self.value is not None:
            text += "=" + quote(self.value, name=False)
        if self.authority is not None:
            text += "@" + quote(self.authority)
        return text

    def __str__(self) -> str:
        text = _label_name(self.name)
        if self.value is not None:
            text += " = " + print_value(self.value)
        if self.authority is not None:
            text += "@" + quote(self.authority)
        return text


@dataclass(frozen=True)
class Comparison:
    """`name OP constant` over a non-negative integer (or a date as days since 1970-01-01), or the
    range `name in value..high` (op `in`, both bounds inclusive, value <= high).

    A range is one node, so it compiles to the dyadic cover of exactly [value, high]: one label of
    one key certifies the whole range (see numeric.py for why `x >= a and x <= b` is rewritten into
    it)."""

    name: str
    op: str
    value: int
    is_date: bool = False
    authority: str | None = None
    width: int = DEFAULT_WIDTH
    high: int | None = None  # upper bound of a range (op `in`), else None

    def holds(self, x: int) -> bool:
        """Plain numeric evaluation of the comparison for a key value x."""
        if self.op == RANGE_OP:
            return self.value <= x <= (self.value if self.high is None else self.high)
        return {
            "<": x < self.value,
            "<=": x <= self.value,
            ">": x > self.value,
            ">=": x >= self.value,
            "==": x == self.value,
        }[self.op]

    @property
    def subject(self) -> str:
        """The numeric attribute this compares, as `name[@authority]`."""
        return numeric_subject(self.name, self.authority)

    def _constant(self, value: int) -> str:
        return days_to_date(value) if self.is_date else str(value)

    def __str__(self) -> str:
        if self.op == RANGE_OP:
            high = self.value if self.high is None else self.high
            constant = f"{self._constant(self.value)}{RANGE_SEP}{self._constant(high)}"
        else:
            constant = self._constant(self.value)
        text = f"{quote(self.name)} {self.op} {constant}"
        if self.authority is not None:
            text += "@" + quote(self.authority)
        return text


def internal_name_error(name: str) -> str | None:
    """Why `name` is not a well-formed internal name `base#tag`, or None when it is one: exactly
    one `#`, a non-empty base, and a tag of ASCII letters, digits and `_` starting with a letter."""
    base, mark, tag = name.partition(BIT_MARK)
    if not mark:
        return f"internal name {name!r} has no '{BIT_MARK}'"
    if base == "":
        return f"internal name {name!r} has an empty base name"
    if not _TAG.match(tag):
        return f"internal name {name!r} needs a tag of letters, digits and '_' after one '{BIT_MARK}'"
    return None


def internal_attribute(base: Attribute, tag: str) -> Attribute:
    """The internal attribute `base.name#tag` (same value and authority), e.g. the revocation
    epoch `nurse#v3` of `nurse`: a name in a namespace user-written policies and key attributes
    cannot reach (only `parse(..., internal=True)` reads it), so its label is no user's label.
    Tags `p<digits>` are reserved for the prefix labels of numeric attributes."""
    if not isinstance(base, Attribute) or BIT_MARK in base.name or base.name == "":
        raise ValueError(f"internal attributes derive from a user attribute, got {base!r}")
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise ValueError(f"tag must be ASCII letters, digits and '_' starting with a letter, got {tag!r}")
    if _PREFIX_TAG.match(tag):
        raise ValueError(f"tag {tag!r} is reserved for prefix labels of numeric attributes")
    return Attribute(f"{base.name}{BIT_MARK}{tag}", base.value, base.authority)


def is_internal(attr: Attribute | Comparison) -> bool:
    """Whether a leaf is internal (its name has `#`): a prefix label or e.g. a revocation epoch."""
    return BIT_MARK in attr.name


def prefix_attribute(name: str, level: int, prefix: int, authority: str | None) -> Attribute:
    """The attribute meaning "value >> level == prefix" of numeric attribute `name`.

    Its label is `name#p{level}={prefix}[@authority]` (e.g. `age#p3=5`: age is in [40, 48)).
    """
    return Attribute(f"{name}{BIT_MARK}{PREFIX_TAG}{level}", str(prefix), authority)


def numeric_subject(name: str, authority: str | None) -> str:
    """Key under which a numeric key value is stored: `name` or `name@authority`."""
    return quote(name) + ("@" + quote(authority) if authority is not None else "")


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]

    def __str__(self) -> str:
        return " and ".join(_child_text(c) for c in self.children)


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]

    def __str__(self) -> str:
        return " or ".join(_child_text(c) for c in self.children)


@dataclass(frozen=True)
class Threshold:
    """`k of (c1, ..., cn)` with 1 <= k <= n and n >= 2."""

    k: int
    children: tuple[Node, ...]

    def __str__(self) -> str:
        return f"{self.k} of (" + ", ".join(str(c) for c in self.children) + ")"


Node = Attribute | Comparison | And | Or | Threshold
Gate = (And, Or, Threshold)


def _child_text(node: Node) -> str:
    return f"({node})" if isinstance(node, (And, Or)) else str(node)


def threshold_of(node: Node) -> int:
    """How many children of a gate must be satisfied."""
    if isinstance(node, And):
        return len(node.children)
    if isinstance(node, Or):
        return 1
    if isinstance(node, Threshold):
        return node.k
    raise TypeError(f"not a gate: {node!r}")


def evaluate(node: Node, labels: frozenset[str], numbers: dict[str, int]) -> bool:
    """Plain boolean evaluation: `labels` are held attribute labels, `numbers` numeric key values."""
    if isinstance(node, Attribute):
        return node.label in labels
    if isinstance(node, Comparison):
        x = numbers.get(node.subject)
        return x is not None and node.holds(x)
    satisfied = sum(1 for c in node.children if evaluate(c, labels, numbers))
    return satisfied >= threshold_of(node)


def leaves(node: Node) -> list[Attribute | Comparison]:
    """The leaves of a tree, left to right (repeats kept)."""
    if isinstance(node, (Attribute, Comparison)):
        return [node]
    out: list[Attribute | Comparison] = []
    for child in node.children:
        out.extend(leaves(child))
    return out
