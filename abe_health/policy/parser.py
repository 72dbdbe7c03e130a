"""Parser of the policy language (grammar in DESIGN.md) and of key attributes.

```
policy    := or_expr
or_expr   := and_expr ("or" and_expr)*
and_expr  := term ("and" term)*
term      := "(" policy ")" | threshold | comparison | attribute
threshold := INT "of" "(" policy ("," policy)+ ")"
comparison:= NAME OP (INT | DATE) ["@" AUTHORITY]     OP in < <= > >= ==
range     := NAME "in" (INT ".." INT | DATE ".." DATE) ["@" AUTHORITY]
attribute := NAME ["=" VALUE] ["@" AUTHORITY]
```
A range `ward in 3..5@H` (`day in 2026-06-01..2026-06-30`) holds both bounds, LO <= HI, and is
printed that way (no spaces around `..`; `3 .. 5` reads too). `in` is an operator only right after
a name, not a keyword, so an attribute may still be called `in`. Write a range rather than
`ward >= 3 and ward <= 5`: both compile to the same labels (numeric.py merges the parts of one
subject under an AND into their exact set of values), but the range says it in one node, and
shapes that cannot be merged are refused for RW15 (`Policy.check_pooled`).
Keywords are case-insensitive; names, values and authorities are case-sensitive and NFC-normalized,
and may be double-quoted ("x ray", "and"). Every error is a `PolicySyntaxError` with the 1-based
column of the offending token and what was expected there.

Names may not contain `#`: it marks internal names `base#tag` (prefix labels `age#p3`, revocation
epochs `nurse#v3`) that only the toolkit writes, so no user-written attribute shares a label with
them. `parse(..., internal=True)` also reads internal names, bare or quoted, for text the toolkit
itself wrote (a header's policy after revocation); comparisons still take user names only.

Limits. Decryption parses whatever policy text a header carries, and headers are stored where
others can rewrite them, so parsing refuses, with a PolicySyntaxError naming the limit and the
column, any text whose parse or LSSS would be large. The LSSS size is counted *while parsing*
(a comparison counts as the prefix labels it expands to), so nothing big is ever built:
- MAX_POLICY_CHARS (16,384) characters of text, before and after NFC normalization;
- MAX_DEPTH (64) nested levels (no RecursionError);
- MAX_NUMBER_DIGITS (40) digits in a number literal (int() refuses over 4,300; 2^64 has 20);
- MAX_GATE_CHILDREN (512) children per gate and a threshold count k at most that;
- MAX_THRESHOLD_ENTRY_BITS (128): a threshold `k of n` (1 < k < n) has LSSS entries up to
  n^(k-1), refused beyond 2^128 (`1499 of (1500 names)` would need megabytes per entry);
- lsss.MAX_ROWS (2,048) rows, lsss.MAX_COLUMNS (1,024) columns and lsss.MAX_ENTRIES (65,536)
  non-zero matrix entries of the expanded policy (nested gates give every row below them the
  columns of the gates above).
The counts are those of the compiled policy: parts of one numeric subject that numeric.py merges
count as the cover of their merged set. `row_bounds` parses header policy text before the
decryptor's widths are known, to bound the rows a header may carry before any element is decoded.
The worst accepted shapes measured (2,046 rows of ORed comparisons; 27-of-28 thresholds over
1,200 rows of 53 entries; 62 levels of nesting over 1,900 rows) parse and compile in under 0.2 s
with a tracemalloc peak under 5 MiB; a health policy is orders of magnitude smaller.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..errors import PolicySyntaxError
from .ast import (
    BIT_MARK,
    DATE_RE,
    DEFAULT_WIDTH,
    INT_RE,
    KEYWORDS,
    MAX_NUMBER_DIGITS,
    MAX_WIDTH,
    RANGE_OP,
    RANGE_SEP,
    And,
    Attribute,
    Comparison,
    Node,
    Or,
    Threshold,
    check_width,
    internal_name_error,
    is_name_start,
    is_word_char,
    parse_date,
)
from .lsss import MAX_COLUMNS, MAX_ENTRIES, MAX_ROWS, MAX_THRESHOLD_ENTRY_BITS, threshold_entries_fit
from .numeric import (
    Profile,
    comparison_range,
    cover_bounds,
    cover_size,
    dyadic_cover,
    gate_profile,
    leaf_profile,
    plan_gate,
)

__all__ = [
    "MAX_COLUMNS",
    "MAX_DEPTH",
    "MAX_ENTRIES",
    "MAX_GATE_CHILDREN",
    "MAX_NUMBER_DIGITS",
    "MAX_POLICY_CHARS",
    "MAX_ROWS",
    "MAX_THRESHOLD_ENTRY_BITS",
    "Token",
    "check_name",
    "parse",
    "parse_attribute",
    "parse_date",
    "read_value",
    "row_bounds",
    "tokenize",
]

#: characters of policy (or attribute) text
MAX_POLICY_CHARS = 16_384
#: nesting levels of parentheses and thresholds
MAX_DEPTH = 64
#: children of one AND/OR/threshold gate (after `a and (b and c)` merges into one AND)
MAX_GATE_CHILDREN = 512
_INT = INT_RE
_DATE = DATE_RE


@dataclass(frozen=True)
class Token:
    kind: str  # WORD, STRING, OP, "(", ")", ",", "@", "=", EOF
    text: str
    column: int

    def describe(self) -> str:
        if self.kind == "EOF":
            return "end of policy"
        if self.kind == "STRING":
            return f'"{self.text}"'
        return f"'{self.text}'"

    def is_keyword(self, word: str | None = None) -> bool:
        if self.kind != "WORD" or self.text.lower() not in KEYWORDS:
            return False
        return word is None or self.text.lower() == word


def tokenize(text: str, *, internal: bool = False) -> list[Token]:
    """Split policy text into tokens, refusing characters the language does not have (`#`, which
    internal names contain, is a word character only when `internal`)."""
    check_length(text)

    def word_char(c: str) -> bool:
        return is_word_char(c) or (internal and c == BIT_MARK)

    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        col = i + 1
        if ch.isspace():
            i += 1
        elif ch in "(),@":
            tokens.append(Token(ch, ch, col))
            i += 1
        elif ch in "<>=":
            op = text[i : i + 2] if text[i : i + 2] in ("<=", ">=", "==") else ch
            tokens.append(Token("=" if op == "=" else "OP", op, col))
            i += len(op)
        elif ch == "!":
            raise PolicySyntaxError(
                "'!' (negation) is not supported: ABE policies are monotone", text, col
            )
        elif ch == '"':
            j, out = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                out.append(text[j])
                j += 1
            if j >= n:
                raise PolicySyntaxError("unterminated quoted string", text, col)
            tokens.append(Token("STRING", "".join(out), col))
            i = j + 1
        elif word_char(ch):
            j = i
            while j < n and word_char(text[j]):
                j += 1
            tokens.append(Token("WORD", text[i:j], col))
            i = j
        else:
            hint = {"&": "; write 'and'", "|": "; write 'or'",
                    BIT_MARK: "; it is reserved for internal names"}.get(ch, "")
            raise PolicySyntaxError(f"unexpected character {ch!r}{hint}", text, col)
    tokens.append(Token("EOF", "", n + 1))
    return tokens


def check_length(text: str) -> None:
    """Refuse text longer than MAX_POLICY_CHARS, naming the first column past the limit."""
    if len(text) > MAX_POLICY_CHARS:
        raise PolicySyntaxError(
            f"text is longer than MAX_POLICY_CHARS = {MAX_POLICY_CHARS} characters",
            text[: MAX_POLICY_CHARS + 1], MAX_POLICY_CHARS + 1,
        )


def check_number(tok: Token, text: str) -> int:
    """The integer of a number literal, refusing more than MAX_NUMBER_DIGITS digits."""
    if len(tok.text) > MAX_NUMBER_DIGITS:
        raise PolicySyntaxError(
            f"number of {len(tok.text)} digits: over MAX_NUMBER_DIGITS = {MAX_NUMBER_DIGITS} "
            '(quote it, "...", to use it as text)', text, tok.column,
        )
    return int(tok.text)


@dataclass
class _Size:
    """What a subtree adds to the LSSS: rows, columns, and non-zero entries, the latter as
    `entries + fed * len(parent vector)` since `fed` of its rows carry the vector of the parent."""

    rows: int
    cols: int = 0
    entries: int = 0
    fed: int = field(default=-1)

    def __post_init__(self) -> None:
        if self.fed < 0:
            self.fed = self.rows


def _gate_size(kind: type, k: int, sizes: list[_Size]) -> _Size:
    """The size of a gate from its children's (see lsss.compile_lsss for the vectors)."""
    n = len(sizes)
    rows = sum(s.rows for s in sizes)
    cols = sum(s.cols for s in sizes)
    if k == 1:  # OR: every child gets the parent's vector
        return _Size(rows, cols, sum(s.entries for s in sizes), sum(s.fed for s in sizes))
    if k == n:  # AND: child 1 gets v + e_c, middle children 2 entries, the last 1
        entries = sizes[0].entries + sizes[0].fed + sizes[-1].entries + sizes[-1].fed
        entries += sum(s.entries + 2 * s.fed for s in sizes[1:-1])
        return _Size(rows, cols + n - 1, entries, sizes[0].fed)
    # threshold: every child gets the parent's vector plus k - 1 entries j^t
    entries = sum(s.entries + (k - 1) * s.fed for s in sizes)
    return _Size(rows, cols + k - 1, entries, sum(s.fed for s in sizes))


class _Parser:
    def __init__(self, text: str, widths: Mapping[str, int], internal: bool = False,
                 any_width: bool = False) -> None:
        self.text = text
        self.internal = internal
        #: bounding mode of `row_bounds`: every name MAX_WIDTH bits wide, a comparison or merged
        #: set of values counted as one row, so every count is a lower bound over all widths
        self.any_width = any_width
        self.tokens = tokenize(text, internal=internal)
        self.pos = 0
        self.depth = 0
        self.widths = widths
        self.rows = 0  # LSSS rows of the leaves parsed so far
        self.numeric_leaves = 0  # comparisons and ranges parsed
        self.cover_bounds = [0, 0]  # bounding: fewest and most labels of those, over all widths
        self.merged = False  # bounding: whether a gate merged parts of one subject into a set
        self.sizes: dict[int, _Size] = {}  # id(node) -> size, for nodes of the tree being built
        self.profiles: dict[int, Profile] = {}  # id(node) -> what numeric.plan_gate needs

    def error(self, message: str, token: Token | None = None) -> PolicySyntaxError:
        return PolicySyntaxError(message, self.text, (token or self.peek()).column)

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, kind: str, what: str) -> Token:
        tok = self.peek()
        if tok.kind != kind:
            raise self.error(f"expected {what}, got {tok.describe()}")
        return self.advance()

    # -- size accounting: every leaf and gate is measured as it is built ----------------------

    def check_rows(self, tok: Token) -> None:
        if self.rows > MAX_ROWS:
            raise self.error(f"policy expands to more than MAX_ROWS = {MAX_ROWS} LSSS rows "
                             "(a comparison counts its prefix labels)", tok)

    def leaf(self, node: Attribute | Comparison, rows: int, tok: Token) -> Node:
        self.rows += rows
        self.check_rows(tok)
        self.sizes[id(node)] = _Size(rows)
        self.profiles[id(node)] = leaf_profile(node)
        return node

    def cover_rows(self, width: int, values: tuple[tuple[int, int], ...]) -> int:
        """Rows of the cover of a set of values (one when bounding: at least one, whatever width)."""
        return 1 if self.any_width else cover_size(values, width)

    def gate(self, node: And | Or | Threshold, tok: Token) -> Node:
        """Measure a gate as numeric.plan_gate compiles it (merged parts of one subject count as
        the cover of their set), refusing any limit the compiled gate would pass."""
        profiles = [self.profiles[id(c)] for c in node.children]
        profile = gate_profile(node, profiles)
        plan = plan_gate(node, profiles, profile)
        child_sizes = [self.sizes[id(c)] for c in node.children]
        self.merged = self.merged or plan.cover is not None or not all(
            isinstance(u, int) for u in plan.units)
        if plan.cover is not None:
            size = _Size(self.cover_rows(plan.cover[0][2], plan.cover[1]))
        else:
            units = [child_sizes[u] if isinstance(u, int) else _Size(self.cover_rows(u.key[2], u.values))
                     for u in plan.units]
            if len(units) == 1:
                size = units[0]
            else:
                k = node.k if isinstance(node, Threshold) else 1 if isinstance(node, Or) else len(units)
                size = _gate_size(type(node), k, units)
        self.rows += size.rows - sum(s.rows for s in child_sizes)
        self.check_rows(tok)
        if 1 + size.cols > MAX_COLUMNS:
            raise self.error(f"policy needs more than MAX_COLUMNS = {MAX_COLUMNS} LSSS columns "
                             "(an AND of n adds n - 1, a threshold k of n adds k - 1)", tok)
        if size.entries + size.fed > MAX_ENTRIES:
            raise self.error(f"policy's LSSS has more than MAX_ENTRIES = {MAX_ENTRIES} non-zero "
                             "entries (rows under nested gates carry the columns of all of them)", tok)
        self.sizes[id(node)] = size
        self.profiles[id(node)] = profile
        return node

    def ungate(self, node: Node) -> None:
        """Forget a gate's own plan when `a and (b and c)` merges it into its parent: the rows
        count its children again, and the parent plans them anew."""
        if not isinstance(node, Attribute | Comparison):
            self.rows += sum(self.sizes[id(c)].rows for c in node.children) - self.sizes[id(node)].rows

    def check_children(self, count: int, tok: Token) -> None:
        if count > MAX_GATE_CHILDREN:
            raise self.error(f"gate has more than MAX_GATE_CHILDREN = {MAX_GATE_CHILDREN} children",
                             tok)

    # -- grammar -------------------------------------------------------------------------------

    def policy(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"policy nests more than MAX_DEPTH = {MAX_DEPTH} levels")
        node = self._chain("or", Or, self.and_expr)
        self.depth -= 1
        return node

    def and_expr(self) -> Node:
        return self._chain("and", And, self.term)

    def _chain(self, keyword: str, gate: type[And] | type[Or], operand: Callable[[], Node]) -> Node:
        start = self.peek()
        flat: list[Node] = []
        inner: list[Node] = []  # operands of the same gate type, merged into this one
        items = 0
        while True:
            tok = self.peek()
            item = operand()
            items += 1
            if type(item) is gate:
                inner.append(item)
                flat.extend(item.children)
            else:
                flat.append(item)
            self.check_children(len(flat), tok)
            if not self.peek().is_keyword(keyword):
                break
            self.advance()
        if items == 1:
            return item
        for node in inner:
            self.ungate(node)
        return self.gate(gate(tuple(flat)), start)

    def term(self) -> Node:
        tok = self.peek()
        if tok.kind == "(":
            self.advance()
            node = self.policy()
            if self.peek().kind != ")":
                raise self.error(
                    f"expected ')' to close '(' at column {tok.column}, got {self.peek().describe()}"
                )
            self.advance()
            return node
        if tok.is_keyword("not"):
            raise self.error("'not' is not supported: ABE policies are monotone")
        if tok.kind == "WORD" and _INT.match(tok.text):
            return self.threshold()
        if tok.kind in ("WORD", "STRING") and not tok.is_keyword():
            return self.atom()
        raise self.error(f"expected an attribute, '(' or a threshold 'k of (...)', got {tok.describe()}")

    def threshold(self) -> Node:
        count = self.advance()
        k = check_number(count, self.text)
        if not self.peek().is_keyword("of"):
            raise self.error(
                f"expected 'of' after threshold count {count.text} "
                "(attribute names cannot start with a digit)"
            )
        if k > MAX_GATE_CHILDREN:
            raise self.error(f"threshold {k} of more than MAX_GATE_CHILDREN = {MAX_GATE_CHILDREN} "
                             "sub-policies", count)
        self.advance()
        opening = self.expect("(", "'(' after 'of'")
        children = [self.policy()]
        while self.peek().kind == ",":
            self.advance()
            self.check_children(len(children) + 1, self.peek())
            children.append(self.policy())
        if self.peek().kind != ")":
            raise self.error(
                f"expected ',' or ')' to close '(' at column {opening.column}, got {self.peek().describe()}"
            )
        self.advance()
        n = len(children)
        if n < 2:
            raise self.error("a threshold needs at least two sub-policies", opening)
        if not 1 <= k <= n:
            raise self.error(f"threshold {k} of {n} sub-policies must be between 1 and {n}", count)
        if not threshold_entries_fit(k, n):
            raise self.error(
                f"threshold {k} of {n} has LSSS entries up to {n}^{k - 1}, over "
                f"MAX_THRESHOLD_ENTRY_BITS = {MAX_THRESHOLD_ENTRY_BITS} bits", count)
        return self.gate(Threshold(k, tuple(children)), count)

    def atom(self) -> Node:
        name_tok = self.advance()
        name = check_name(name_tok, self.text, internal=self.internal)
        nxt = self.peek()
        is_range = nxt.kind == "WORD" and nxt.text.lower() == RANGE_OP
        if nxt.kind == "OP" or is_range:
            if BIT_MARK in name:
                raise self.error(f"comparisons take a user attribute name, not the internal {name!r}",
                                 name_tok)
            op = self.advance()
            cmp = self.range(name, op) if is_range else self.comparison(name, op)
            bounds = comparison_range(cmp)
            if bounds is None:  # comparison() and range() refuse these already
                raise self.error(f"'{cmp}' can never be satisfied", name_tok)
            self.numeric_leaves += 1
            if self.any_width:
                fewest, most = cover_bounds(cmp)
                self.cover_bounds[0] += fewest
                self.cover_bounds[1] += most
            rows = 1 if self.any_width else len(dyadic_cover(*bounds, cmp.width))
            return self.leaf(cmp, rows, name_tok)
        value = None
        if nxt.kind == "=":
            self.advance()
            value = read_value(self.advance(), self.text)
        return self.leaf(Attribute(name, value, self.authority()), 1, name_tok)

    def authority(self) -> str | None:
        if self.peek().kind != "@":
            return None
        self.advance()
        tok = self.advance()
        if tok.kind not in ("WORD", "STRING") or tok.is_keyword() or tok.text == "":
            raise PolicySyntaxError(f"expected an authority name after '@', got {tok.describe()}",
                                    self.text, tok.column)
        return tok.text

    def width(self, name: str, op: Token) -> int:
        """The bit width of numeric attribute `name` (MAX_WIDTH when bounding for any width)."""
        if self.any_width:
            return MAX_WIDTH
        try:
            return check_width(name, self.widths.get(name, DEFAULT_WIDTH))
        except ValueError as exc:
            raise PolicySyntaxError(str(exc), self.text, op.column) from None

    def constant(self, tok: Token, width: int) -> tuple[int, bool]:
        """(value, is_date) of a number or date token, refusing one that does not fit in `width`."""
        is_date = bool(_DATE.match(tok.text))
        value = parse_date(tok.text, self.text, tok.column) if is_date else check_number(tok, self.text)
        if value >> width:
            raise PolicySyntaxError(f"constant {tok.text} does not fit in {width} bits",
                                    self.text, tok.column)
        return value, is_date

    def comparison(self, name: str, op: Token) -> Comparison:
        tok = self.advance()
        if tok.kind != "WORD" or not (_INT.match(tok.text) or _DATE.match(tok.text)):
            raise PolicySyntaxError(
                f"expected a number or a date YYYY-MM-DD after '{op.text}', got {tok.describe()}",
                self.text, tok.column,
            )
        width = self.width(name, op)
        value, is_date = self.constant(tok, width)
        top = (1 << width) - 1
        if (op.text == "<" and value == 0) or (op.text == ">" and value == top):
            raise PolicySyntaxError(f"'{name} {op.text} {tok.text}' can never be satisfied",
                                    self.text, op.column)
        return Comparison(name, op.text, value, is_date, self.authority(), width)

    def range(self, name: str, op: Token) -> Comparison:
        """`in LO..HI` after a name: both bounds numbers or both dates, LO <= HI, inclusive. The
        tokenizer reads `3..5` as one word; `3 .. 5`, `3.. 5` and `3 ..5` are joined here."""
        first = self.peek()
        what = ("expected a range LO..HI of numbers or dates after 'in' (as in 'ward in 3..5' or "
                "'day in 2026-06-01..2026-06-30')")
        if first.kind != "WORD":
            raise PolicySyntaxError(f"{what}, got {first.describe()}", self.text, first.column)
        text = self.advance().text
        if RANGE_SEP not in text and self.peek().kind == "WORD" and self.peek().text.startswith(RANGE_SEP):
            text += self.advance().text
        if text.endswith(RANGE_SEP) and self.peek().kind == "WORD":
            text += self.advance().text
        lo_text, sep, hi_text = text.partition(RANGE_SEP)
        lo_tok = Token("WORD", lo_text, first.column)
        hi_tok = Token("WORD", hi_text, first.column + len(lo_text) + len(RANGE_SEP))
        kinds = [_DATE if _DATE.match(t) else _INT if _INT.match(t) else None for t in (lo_text, hi_text)]
        if not sep or None in kinds:
            raise PolicySyntaxError(f"{what}, got '{text}'", self.text, first.column)
        if kinds[0] is not kinds[1]:
            raise PolicySyntaxError(f"range '{text}' mixes a number and a date", self.text, first.column)
        width = self.width(name, op)
        lo, is_date = self.constant(lo_tok, width)
        hi, _ = self.constant(hi_tok, width)
        if lo > hi:
            raise PolicySyntaxError(f"range '{text}' is empty: its low bound is above its high bound",
                                    self.text, first.column)
        return Comparison(name, RANGE_OP, lo, is_date, self.authority(), width, hi)


def check_name(tok: Token, text: str, *, internal: bool = False) -> str:
    """Validate an attribute name token (bare word starting with a letter, or a quoted string);
    `#` only in a well-formed internal name `base#tag`, and only when `internal`."""
    name = tok.text
    if tok.kind == "WORD" and not is_name_start(name[0]):
        raise PolicySyntaxError(f"expected an attribute name, got '{name}'", text, tok.column)
    if name == "":
        raise PolicySyntaxError("empty attribute name", text, tok.column)
    if (BIT_MARK in name and not internal) or any(unicodedata.category(c)[0] == "C" for c in name):
        raise PolicySyntaxError(
            f"attribute name {tok.describe()} may not contain '{BIT_MARK}' or control characters",
            text, tok.column,
        )
    problem = internal_name_error(name) if BIT_MARK in name else None
    if problem:
        raise PolicySyntaxError(problem, text, tok.column)
    return name


def read_value(tok: Token, text: str) -> str:
    """Validate the value after `=`; integers are normalized (`03` -> `3`), dates checked."""
    if tok.kind not in ("WORD", "STRING") or tok.is_keyword() or tok.text == "":
        raise PolicySyntaxError(f"expected a value after '=', got {tok.describe()}", text, tok.column)
    if tok.kind == "WORD" and _INT.match(tok.text):
        return str(check_number(tok, text))
    if tok.kind == "WORD" and _DATE.match(tok.text):
        parse_date(tok.text, text, tok.column)
    return tok.text


def _normalized(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise PolicySyntaxError(f"{what} must be text, got {type(text).__name__}")
    check_length(text)
    text = unicodedata.normalize("NFC", text)
    check_length(text)
    return text


def _run(parser: _Parser) -> Node:
    if parser.peek().kind == "EOF":
        raise PolicySyntaxError("empty policy", parser.text, 1)
    node = parser.policy()
    tok = parser.peek()
    if tok.kind != "EOF":
        if tok.kind == ")":
            raise parser.error("unbalanced ')': no '(' is open here")
        raise parser.error(f"expected 'and', 'or' or end of policy, got {tok.describe()}")
    return node


def parse(text: str, widths: Mapping[str, int] | None = None, *, internal: bool = False) -> Node:
    """Parse policy text into a tree; `widths` maps numeric attribute names to bit widths
    (1..64, default 32). `internal=True` also accepts internal names (`nurse#v3`), for policy
    text the toolkit wrote, such as the policy a ciphertext header carries. Refuses text beyond
    the limits above, and numeric shapes that keys could split (PolicySyntaxError naming them)."""
    text = _normalized(text, "policy")
    return _run(_Parser(text, widths or {}, internal))


def row_bounds(text: str, *, internal: bool = True) -> tuple[int, int]:
    """(fewest, most) LSSS rows that policy `text` compiles to under any numeric widths, for a
    reader that does not know the widths yet (a header is read before a key is chosen; the key
    carries the widths). PolicySyntaxError when no widths would make it a policy within the
    limits; nothing is refused that some widths accept (every count made is a lower bound).

    Without comparisons or ranges the count is exact (fewest == most). With comparisons that no
    gate merges, each adds between its cover at the narrowest width its constants fit in and its
    cover at MAX_WIDTH (`numeric.cover_bounds`). When parts of one subject are merged, each merged
    set counts at least one row, and at most: a set built from L comparisons has at most L + 1
    intervals of at most 2 * MAX_WIDTH labels each, so 4 * MAX_WIDTH * L rows. `most` is at
    most MAX_ROWS."""
    text = _normalized(text, "policy")
    parser = _Parser(text, {}, internal, any_width=True)
    _run(parser)
    if parser.numeric_leaves == 0:
        return parser.rows, parser.rows
    if parser.merged:
        fewest = parser.rows
        most = fewest + 4 * MAX_WIDTH * parser.numeric_leaves
    else:
        plain = parser.rows - parser.numeric_leaves
        fewest, most = plain + parser.cover_bounds[0], plain + parser.cover_bounds[1]
    return min(fewest, MAX_ROWS), min(most, MAX_ROWS)


def parse_attribute(text: str, *, internal: bool = False) -> Attribute:
    """Parse one key attribute `name [= value] [@authority]` (e.g. `age = 42`, `doctor@hospitalA`);
    `internal=True` also accepts internal names, as in the attributes a key file lists. Bounded
    like `parse` (MAX_POLICY_CHARS, MAX_NUMBER_DIGITS)."""
    text = _normalized(text, "attribute")
    parser = _Parser(text, {}, internal)
    tok = parser.peek()
    if tok.kind not in ("WORD", "STRING") or tok.is_keyword():
        raise parser.error(f"expected an attribute name, got {tok.describe()}")
    node = parser.atom()
    if not isinstance(node, Attribute):
        raise PolicySyntaxError(
            "a key attribute takes '=' (as in 'age = 42'), not a comparison", text, tok.column
        )
    if parser.peek().kind != "EOF":
        raise parser.error(f"expected end of attribute, got {parser.peek().describe()}")
    return node
