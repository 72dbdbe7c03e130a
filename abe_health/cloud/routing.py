"""Finding a request's route: a table keyed by the path's first two segments.

Starlette's router tries each route's regular expression in turn (about 1 us each with its
scope handling), so the last of the service's 34 routes, the search, paid for all of them on
every query. Here every route's first two segments are literal (asserted), so a lookup is one
dict access and a comparison of segments with the few routes that share them. Templates use
Starlette's syntax: `{name}` is one non-empty segment, and `{name:path}`, last only, is the
non-empty rest of the path. A GET route answers HEAD too, as Starlette's does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: how many leading segments key the table (each route's first ones are literal)
KEY = 2


@dataclass(frozen=True)
class Template:
    """A path template split into segments: literal text, `{name}` or a final `{name:path}`."""

    parts: tuple[str, ...]

    @classmethod
    def parse(cls, path: str) -> Template:
        if not path.startswith("/"):
            raise ValueError(f"a route path starts with /: {path!r}")
        parts = tuple(path[1:].split("/"))
        for i, part in enumerate(parts):
            if part.startswith("{") and (i < min(KEY, len(parts)) or (
                    part.endswith(":path}") and i != len(parts) - 1)):
                raise ValueError(f"{path}: only a last segment may be {{name:path}}, and the first "
                                 f"{KEY} segments must be literal")
        return cls(parts)

    @property
    def key(self) -> tuple[str, ...]:
        return self.parts[:KEY]

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        """The path parameters if `segments` (the path split at /) fits, else None."""
        params: dict[str, str] = {}
        for i, part in enumerate(self.parts):
            if part.endswith(":path}"):
                rest = "/".join(segments[i:])
                if not rest:
                    return None
                params[part[1:-6]] = rest
                return params
            if i >= len(segments):
                return None
            if part.startswith("{"):
                if not segments[i]:
                    return None
                params[part[1:-1]] = segments[i]
            elif part != segments[i]:
                return None
        return params if len(segments) == len(self.parts) else None


class Routes(Generic[T]):
    """(method, path template, target) triples, found by `find`."""

    def __init__(self, routes: Sequence[tuple[str, str, T]]) -> None:
        self._table: dict[tuple[str, ...], list[tuple[str, Template, T]]] = {}
        for method, path, target in routes:
            template = Template.parse(path)
            self._table.setdefault(template.key, []).append((method, template, target))

    def find(self, method: str, path: str) -> tuple[T, dict[str, str]] | int:
        """The target and path parameters; else 404 (no route has this path) or 405 (one has,
        for other methods)."""
        segments = path[1:].split("/") if path.startswith("/") else []
        wrong_method = False
        for verb, template, target in self._table.get(tuple(segments[:KEY]), ()):
            params = template.match(segments)
            if params is None:
                continue
            if verb == method or (verb == "GET" and method == "HEAD"):
                return target, params
            wrong_method = True
        return 405 if wrong_method else 404
