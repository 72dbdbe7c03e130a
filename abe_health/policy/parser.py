"""Parser of the policy language (grammar in DESIGN.md) and of key attributes.

```
policy    := or_expr
or_expr   := and_expr ("or" and_expr)*
and_expr  := term ("and" term)*
term      := "(" policy ")" | threshold | comparison | attribute
threshold := INT "of" "(" policy ("," policy)+ ")"
comparison:= NAME OP (INT | DATE) ["@" AUTHORITY]     OP in < <= > >= ==
attribute := NAME ["=" VALUE] ["@" AUTHORITY]
```
Keywords are case-insensitive; names, values and authorities are case-sensitive and NFC-normalized,
and may be double-quoted ("x ray", "and"). Every error is a `PolicySyntaxError` with the 1-based
column of the offending token and what was expected there.

Names may not contain `#`: it marks internal names `base#tag` (prefix labels `age#p3`, revocation
epochs `nurse#v3`) that only the toolkit writes, so no user-written attribute shares a label with
them. `parse(..., internal=True)` also reads internal names, bare or quoted, for text the toolkit
itself wrote (a header's policy after revocation); comparisons still take user names only.
"""

from __future__ import annotations

import datetime as _dt
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import PolicySyntaxError
from .ast import (
    BIT_MARK,
    DATE_RE,
    DEFAULT_WIDTH,
    EPOCH,
    INT_RE,
    KEYWORDS,
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
)

MAX_DEPTH = 64
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


def parse_date(token_text: str, text: str = "", column: int = 0) -> int:
    """Days since 1970-01-01 of an ISO date, refusing impossible or pre-1970 dates."""
    m = _DATE.match(token_text)
    if not m:
        raise PolicySyntaxError(f"expected a date YYYY-MM-DD, got '{token_text}'", text, column)
    try:
        day = _dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise PolicySyntaxError(f"unknown date '{token_text}'", text, column) from None
    if day < EPOCH:
        raise PolicySyntaxError(f"date '{token_text}' is before 1970-01-01", text, column)
    return (day - EPOCH).days


class _Parser:
    def __init__(self, text: str, widths: Mapping[str, int], internal: bool = False) -> None:
        self.text = text
        self.internal = internal
        self.tokens = tokenize(text, internal=internal)
        self.pos = 0
        self.depth = 0
        self.widths = widths

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

    def policy(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"policy nests more than {MAX_DEPTH} levels")
        node = self._chain("or", Or, self.and_expr)
        self.depth -= 1
        return node

    def and_expr(self) -> Node:
        return self._chain("and", And, self.term)

    def _chain(self, keyword: str, gate: type, operand) -> Node:
        items = [operand()]
        while self.peek().is_keyword(keyword):
            self.advance()
            items.append(operand())
        if len(items) == 1:
            return items[0]
        flat: list[Node] = []
        for item in items:
            flat.extend(item.children if type(item) is gate else (item,))
        return gate(tuple(flat))

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
        if not self.peek().is_keyword("of"):
            raise self.error(
                f"expected 'of' after threshold count {count.text} "
                "(attribute names cannot start with a digit)"
            )
        self.advance()
        opening = self.expect("(", "'(' after 'of'")
        children = [self.policy()]
        while self.peek().kind == ",":
            self.advance()
            children.append(self.policy())
        if self.peek().kind != ")":
            raise self.error(
                f"expected ',' or ')' to close '(' at column {opening.column}, got {self.peek().describe()}"
            )
        self.advance()
        if len(children) < 2:
            raise self.error("a threshold needs at least two sub-policies", opening)
        k = int(count.text)
        if not 1 <= k <= len(children):
            raise self.error(
                f"threshold {k} of {len(children)} sub-policies must be between 1 and {len(children)}",
                count,
            )
        return Threshold(k, tuple(children))

    def atom(self) -> Node:
        name_tok = self.advance()
        name = check_name(name_tok, self.text, internal=self.internal)
        nxt = self.peek()
        if nxt.kind == "OP":
            if BIT_MARK in name:
                raise self.error(f"comparisons take a user attribute name, not the internal {name!r}",
                                 name_tok)
            return self.comparison(name, self.advance())
        value = None
        if nxt.kind == "=":
            self.advance()
            value = read_value(self.advance(), self.text)
        return Attribute(name, value, self.authority())

    def authority(self) -> str | None:
        if self.peek().kind != "@":
            return None
        self.advance()
        tok = self.advance()
        if tok.kind not in ("WORD", "STRING") or tok.is_keyword() or tok.text == "":
            raise PolicySyntaxError(f"expected an authority name after '@', got {tok.describe()}",
                                    self.text, tok.column)
        return tok.text

    def comparison(self, name: str, op: Token) -> Node:
        tok = self.advance()
        if tok.kind != "WORD" or not (_INT.match(tok.text) or _DATE.match(tok.text)):
            raise PolicySyntaxError(
                f"expected a number or a date YYYY-MM-DD after '{op.text}', got {tok.describe()}",
                self.text, tok.column,
            )
        is_date = bool(_DATE.match(tok.text))
        value = parse_date(tok.text, self.text, tok.column) if is_date else int(tok.text)
        try:
            width = check_width(name, self.widths.get(name, DEFAULT_WIDTH))
        except ValueError as exc:
            raise PolicySyntaxError(str(exc), self.text, op.column) from None
        top = (1 << width) - 1
        if value > top:
            raise PolicySyntaxError(f"constant {tok.text} does not fit in {width} bits",
                                    self.text, tok.column)
        if (op.text == "<" and value == 0) or (op.text == ">" and value == top):
            raise PolicySyntaxError(f"'{name} {op.text} {tok.text}' can never be satisfied",
                                    self.text, op.column)
        return Comparison(name, op.text, value, is_date, self.authority(), width)


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
        return str(int(tok.text))
    if tok.kind == "WORD" and _DATE.match(tok.text):
        parse_date(tok.text, text, tok.column)
    return tok.text


def parse(text: str, widths: Mapping[str, int] | None = None, *, internal: bool = False) -> Node:
    """Parse policy text into a tree; `widths` maps numeric attribute names to bit widths
    (1..64, default 32). `internal=True` also accepts internal names (`nurse#v3`), for policy
    text the toolkit wrote, such as the policy a ciphertext header carries."""
    if not isinstance(text, str):
        raise PolicySyntaxError(f"policy must be text, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text)
    parser = _Parser(text, widths or {}, internal)
    if parser.peek().kind == "EOF":
        raise PolicySyntaxError("empty policy", text, 1)
    node = parser.policy()
    tok = parser.peek()
    if tok.kind != "EOF":
        if tok.kind == ")":
            raise parser.error("unbalanced ')': no '(' is open here")
        raise parser.error(f"expected 'and', 'or' or end of policy, got {tok.describe()}")
    return node


def parse_attribute(text: str, *, internal: bool = False) -> Attribute:
    """Parse one key attribute `name [= value] [@authority]` (e.g. `age = 42`, `doctor@hospitalA`);
    `internal=True` also accepts internal names, as in the attributes a key file lists."""
    if not isinstance(text, str):
        raise PolicySyntaxError(f"attribute must be text, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text)
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
