"""The OpenAPI 3.1 description of the API, made from the same route table as the router."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

from .errors import PROBLEMS, type_uri

_MEDIA = {"json": "application/json", "cbor": "application/cbor",
          "stream": "application/octet-stream"}


class _Route(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def action(self) -> str | None: ...
    @property
    def summary(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def answer(self) -> str: ...


def _problem_schema() -> dict[str, Any]:
    return {"type": "object", "required": ["type", "title", "status"],
            "properties": {"type": {"type": "string", "enum": [type_uri(s) for s in PROBLEMS]},
                           "title": {"type": "string"}, "status": {"type": "integer"},
                           "detail": {"type": "string"}, "instance": {"type": "string"}}}


def describe(routes: Sequence[_Route], version: str) -> dict[str, Any]:
    """The OpenAPI document: one operation per route, its role, body, answer and problems."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path = re.sub(r"\{(\w+):path\}", r"{\1}", route.path)
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"\{(\w+)\}", path)]
        ok = {"empty": "204", "stream": "200"}.get(route.answer, "200")
        if route.method in ("PUT", "POST") and route.answer in ("json", "empty") and ok == "200":
            ok = "201" if route.body == "stream" else ok
        answer: dict[str, Any] = {"description": "success"}
        if route.answer in _MEDIA:
            answer["content"] = {_MEDIA[route.answer]: {}}
        problem_ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}",
            "parameters": params,
            "responses": {ok: answer, "default": {
                "description": "a problem (RFC 9457)",
                "content": {"application/problem+json": problem_ref}}},
        }
        if route.action is None:
            operation["security"] = []
        else:
            operation["x-abe-health-roles"] = route.action
        if route.body:
            operation["requestBody"] = {"required": True, "content": {_MEDIA[route.body]: {}}}
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "abe-health cloud", "version": version,
                 "description": "Stores ABE-encrypted health records, answers PASS searches and "
                                "switches re-encapsulated headers; holds no key that opens anything."},
        "paths": paths,
        "components": {"schemas": {"Problem": _problem_schema()},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
