"""Keywords from documents, and query patterns, normalized the same way (NFC, case-folded).

A keyword is a maximal run of word characters (`\\w+`: letters, digits, underscore, any script)
of at most MAX_KEYWORD characters; longer runs (hashes, identifiers) are not indexed. JSON
documents contribute the words of every string value, at any depth, and the range keywords of
every integer and date field (`fields`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import DocumentExists, InvalidPattern
from .fields import document_fields, field_keywords
from .normal import normalize

MAX_KEYWORD = 40
_WORD = re.compile(r"\w+")


def keywords(text: str) -> Counter[str]:
    """Term frequencies of the keywords of a text."""
    return Counter(w for w in _WORD.findall(normalize(text)) if len(w) <= MAX_KEYWORD)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def json_keywords(value: Any) -> Counter[str]:
    """Keywords of a JSON document: the words of every string value, and the range keywords of
    every integer or date field (see `fields`)."""
    return keywords("\n".join(_strings(value))) + field_keywords(document_fields(value))


def document_keywords(path: Path) -> Counter[str]:
    """Keywords of a file: a .json file's `json_keywords`, else the words of the whole text."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() == ".json":
        try:
            return json_keywords(json.loads(text))
        except json.JSONDecodeError:
            pass
    return keywords(text)


def document_id(path: Path, root: Path) -> str:
    """A file's document id: its real path relative to `root` (POSIX separators), or its real
    absolute path when it lies outside `root`. The same file gets the same id however it is
    named (`./a/x`, `a/../a/x`, a link to it), and same-named files in different folders differ."""
    real = path.resolve()
    try:
        return real.relative_to(root.resolve()).as_posix()
    except ValueError:
        return real.as_posix()


def stream(paths: list[Path], root: Path | None = None,
           each: Callable[[list[Path]], Iterable[Path]] | None = None) -> Iterator[tuple[str, Counter[str]]]:
    """(document id, keyword counts) of every file given or found under a given directory, one
    file at a time (for `SearchIndex.create`, whose memory then stays bounded however many files
    there are). Ids are made as in `collect`, and a file reached twice is refused with
    `DocumentExists` before any file is read. `each` may wrap the list of files read."""
    base = Path.cwd() if root is None else root
    files = [f for given in paths
             for f in (sorted(p for p in given.rglob("*") if p.is_file()) if given.is_dir() else [given])]
    ids: dict[str, Path] = {}
    for f in files:
        doc_id = document_id(f, base)
        if doc_id in ids:
            raise DocumentExists(f"{doc_id} is given twice (as {ids[doc_id]} and as {f}); each "
                                 "document is indexed once", case="twice")
        ids[doc_id] = f
    order = {f: doc_id for doc_id, f in ids.items()}
    del ids

    def read() -> Iterator[tuple[str, Counter[str]]]:
        for f in each(files) if each else files:
            yield order[f], document_keywords(f)

    return read()


def collect(paths: list[Path], root: Path | None = None,
            each: Callable[[list[Path]], Iterable[Path]] | None = None) -> dict[str, Counter[str]]:
    """Document id (see `document_id`; `root` defaults to the current directory) -> keyword
    counts of every file given or found under a given directory. A file reached twice (given
    twice, or inside two given directories) is refused with `DocumentExists`, never merged.
    `each` may wrap the list of files read (a progress bar). `stream` gives the same one at a
    time."""
    return dict(stream(paths, root, each))


def parse_pattern(pattern: str) -> tuple[str, bool, bool]:
    """(normalized body, anchored at start, anchored at end) of a query like `^card`, `itis$`."""
    start = pattern.startswith("^")
    end = pattern.endswith("$") and len(pattern) > (1 if start else 0)
    body = pattern[1 if start else 0 : len(pattern) - 1 if end else len(pattern)]
    if "^" in body or "$" in body:
        raise InvalidPattern(f"'^' and '$' may only open and close a pattern: {pattern!r}")
    body = normalize(body)
    if not body:
        raise InvalidPattern("empty pattern")
    return body, start, end


def matches(body: str, start: bool, end: bool, word: str) -> bool:
    """Whether keyword `word` matches the pattern (the plaintext definition, used by the client)."""
    marked = "^" + word + "$"
    return (("^" if start else "") + body + ("$" if end else "")) in marked
