"""The query language: patterns and field ranges combined with AND and OR, and its ranking.

    query   := or
    or      := and ("OR" and)*
    and     := atom (["AND"] atom)*          adjacent atoms are ANDed
    atom    := "(" query ")" | range | pattern
    range   := FIELD OP VALUE | FIELD "in" VALUE ".." VALUE      OP in >= > <= < =
    VALUE   := integer | YYYY-MM-DD
    pattern := card | ^card | itis$ | ^heart$                      (as for a single search)

`AND` and `OR` are operators only in capitals (`and` is a word one may search for). Examples:
`card AND ^diab`, `asthma OR wheez`, `bp_systolic >= 140`, `date in 2024-01-01..2024-06-30`,
`(^cardio OR ^heart) AND date >= 2024-01-01`.

Ranking extends the single-pattern rule. A pattern term gives each matching document its best
match class c (exact 3 > prefix 2 > suffix 1 > inner 0) and its tf-idf score s over that class's
keywords (`rank.term_scores`); a range term gives weight 0 and score 0. AND keeps documents that
satisfy every child, OR those that satisfy any; each document's weight is the sum of c + 1 over
the pattern terms it satisfies, and its score the sum of their s. Documents are ordered by
weight, then score, then id: for one pattern that is exactly the single-pattern order, and under
OR a document satisfying more (or better) terms ranks higher. A hit's `match` is its best class
over all terms (`range` if only range terms matched) and its `keywords` the matched keywords in
term order. `reference_query` evaluates the same query on plaintext documents.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import InvalidPattern
from .fields import BITS, INT_MAX, INT_MIN, FieldValue, field_name, is_field_keyword
from .rank import CLASS_NAMES, Hit, term_scores
from .text import matches, parse_pattern

#: bounds on a query (each range term costs COVER_SIZE trapdoors per index searched)
MAX_QUERY_CHARS = 2048
MAX_TERMS = 16
MAX_DEPTH = 16
RANGE = -1  # the "class" of a document matched by range terms only

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<open>\() | (?P<close>\)) |
      (?P<in>(?P<in_field>\w+)\s+in\s+(?P<low>-?\d{4}-\d{2}-\d{2}|-?\d+)\.\.(?P<high>-?\d{4}-\d{2}-\d{2}|-?\d+))
        (?=[\s()]|$) |
      (?P<cmp>(?P<field>\w+)\s*(?P<op>>=|<=|>|<|=)\s*(?P<value>\d{4}-\d{2}-\d{2}|-?\d+))(?=[\s()]|$) |
      (?P<word>[^\s()]+)
    )""", re.X)


@dataclass(frozen=True)
class Pattern:
    """A substring pattern term (`card`, `^card`, `itis$`, `^heart$`)."""

    text: str


@dataclass(frozen=True)
class Range:
    """A field range term: documents with a `kind` value of field `name` in [low, high]
    (positions in the unsigned domain, see `fields.FieldValue.unsigned`)."""

    kind: str
    name: str
    low: int
    high: int
    text: str


@dataclass(frozen=True)
class Op:
    """AND or OR over two or more children."""

    op: str
    children: tuple[Node, ...]


Term = Pattern | Range
Node = Pattern | Range | Op


@dataclass(frozen=True)
class Partial:
    """A document's standing under a (sub)query: weight, score, best class, matched keywords."""

    weight: int
    score: float
    best: int
    words: tuple[str, ...]


Result = dict[str, Partial]


def _value(text: str) -> FieldValue:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return FieldValue("d", dt.date.fromisoformat(text))
        except ValueError:
            raise InvalidPattern(f"not a date: {text}") from None
    number = int(text)
    if not INT_MIN <= number <= INT_MAX:
        raise InvalidPattern(f"{text} is outside the indexed integers [{INT_MIN}, {INT_MAX}]")
    return FieldValue("n", number)


def _range(field: str, low: FieldValue, high: FieldValue, text: str) -> Range:
    name = field_name(field)
    if name is None:
        raise InvalidPattern(f"not a field name: {field!r}")
    if low.kind != high.kind:
        raise InvalidPattern(f"{text}: both ends of a range are integers or both are dates")
    return Range(low.kind, name, low.unsigned, high.unsigned, text)


def _comparison(field: str, op: str, value: FieldValue, text: str) -> Range:
    top = (1 << BITS[value.kind]) - 1
    u = value.unsigned
    low, high = {">=": (u, top), ">": (u + 1, top), "<=": (0, u), "<": (0, u - 1), "=": (u, u)}[op]
    name = field_name(field)
    if name is None:
        raise InvalidPattern(f"not a field name: {field!r}")
    return Range(value.kind, name, low, high, text)


def _tokens(query: str) -> list[tuple[str, object]]:
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidPattern(f"a query has at most {MAX_QUERY_CHARS} characters")
    out: list[tuple[str, object]] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        m = _TOKEN.match(query, pos)
        if m is None:  # pragma: no cover - the word alternative matches any non-space text
            raise InvalidPattern(f"cannot read the query at column {pos + 1}")
        pos = m.end()
        text = m.group(0).strip()
        if m.group("open"):
            out.append(("(", None))
        elif m.group("close"):
            out.append((")", None))
        elif m.group("in"):
            out.append(("term", _range(m.group("in_field"), _value(m.group("low")),
                                       _value(m.group("high")), text)))
        elif m.group("cmp"):
            out.append(("term", _comparison(m.group("field"), m.group("op"),
                                            _value(m.group("value")), text)))
        elif text in ("AND", "OR"):
            out.append((text, None))
        else:
            parse_pattern(text)  # refuses an empty or malformed pattern with its own message
            out.append(("term", Pattern(text)))
    return out


def parse_query(query: str) -> Node:
    """The query's tree; `InvalidPattern` names what is wrong."""
    tokens = _tokens(query)
    if not tokens:
        raise InvalidPattern("empty query")
    if sum(1 for kind, _ in tokens if kind == "term") > MAX_TERMS:
        raise InvalidPattern(f"a query has at most {MAX_TERMS} terms")
    pos = 0

    def peek() -> str | None:
        return tokens[pos][0] if pos < len(tokens) else None

    def parse_or(depth: int) -> Node:
        nonlocal pos
        children = [parse_and(depth)]
        while peek() == "OR":
            pos += 1
            children.append(parse_and(depth))
        return children[0] if len(children) == 1 else Op("OR", tuple(children))

    def parse_and(depth: int) -> Node:
        nonlocal pos
        children = [parse_atom(depth)]
        while peek() in ("AND", "term", "("):
            if peek() == "AND":
                pos += 1
            children.append(parse_atom(depth))
        return children[0] if len(children) == 1 else Op("AND", tuple(children))

    def parse_atom(depth: int) -> Node:
        nonlocal pos
        if depth > MAX_DEPTH:
            raise InvalidPattern(f"a query nests at most {MAX_DEPTH} parentheses deep")
        kind = peek()
        if kind == "(":
            pos += 1
            node = parse_or(depth + 1)
            if peek() != ")":
                raise InvalidPattern("a '(' is not closed")
            pos += 1
            return node
        if kind == "term":
            value = tokens[pos][1]
            pos += 1
            assert isinstance(value, (Pattern, Range))
            return value
        raise InvalidPattern(f"expected a term, found {kind or 'the end of the query'}")

    node = parse_or(0)
    if pos != len(tokens):
        raise InvalidPattern(f"unexpected {tokens[pos][0]} in the query")
    return node


def terms(node: Node) -> list[Term]:
    """The distinct terms of a query, in order of appearance."""
    out: list[Term] = []

    def walk(n: Node) -> None:
        if isinstance(n, Op):
            for child in n.children:
                walk(child)
        elif n not in out:
            out.append(n)

    walk(node)
    return out


def pattern_result(pattern: Pattern, postings: Mapping[str, Mapping[str, int]], n_docs: int) -> Result:
    """A pattern term's result from the postings of its true matching keywords."""
    body = parse_pattern(pattern.text)[0]
    return {doc: Partial(cls + 1, score, cls, tuple(words))
            for doc, (cls, score, words) in term_scores(body, postings, n_docs).items()}


def range_result(docs: set[str]) -> Result:
    return {doc: Partial(0, 0.0, RANGE, ()) for doc in docs}


def _combine(parts: list[Partial]) -> Partial:
    return Partial(sum(p.weight for p in parts), sum(p.score for p in parts),
                   max(p.best for p in parts), tuple(w for p in parts for w in p.words))


def evaluate(node: Node, results: Mapping[Term, Result]) -> Result:
    """The documents satisfying `node`, given each term's result."""
    if not isinstance(node, Op):
        return dict(results[node])
    children = [evaluate(child, results) for child in node.children]
    if node.op == "AND":
        docs = set(children[0]).intersection(*children[1:])
    else:
        docs = set().union(*children)
    return {doc: _combine([c[doc] for c in children if doc in c]) for doc in docs}


def hits(result: Result, top: int | None = None) -> list[Hit]:
    """The ranked hits of an evaluated query (see the module docstring for the order)."""
    order = sorted(result.items(), key=lambda item: (-item[1].weight, -round(item[1].score, 9), item[0]))
    out = [Hit(doc, CLASS_NAMES.get(p.best, "range"), round(p.score, 9), p.words) for doc, p in order]
    return out if top is None else out[:top]


def reference_query(query: str | Node, words: Mapping[str, Mapping[str, int]],
                    fields: Mapping[str, Mapping[str, set[FieldValue]]] | None = None,
                    top: int | None = None) -> list[Hit]:
    """The plaintext answer: every keyword and field value of every document, scanned."""
    node = parse_query(query) if isinstance(query, str) else query
    fields = fields or {}
    results: dict[Term, Result] = {}
    for term in terms(node):
        if isinstance(term, Pattern):
            body, start, end = parse_pattern(term.text)
            postings: dict[str, dict[str, int]] = {}
            for doc, counts in words.items():
                for word, tf in counts.items():
                    if not is_field_keyword(word) and matches(body, start, end, word):
                        postings.setdefault(word, {})[doc] = tf
            results[term] = pattern_result(term, postings, len(words))
        else:
            results[term] = range_result({
                doc for doc, values in fields.items() if doc in words
                and any(v.kind == term.kind and term.low <= v.unsigned <= term.high
                        for v in values.get(term.name, ()))})
    return hits(evaluate(node, results), top)
