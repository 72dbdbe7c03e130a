"""The server's route table against Starlette's router (the plain model it replaced): for any
method and path, both find the same route and parameters, or both answer 404 or 405."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.routing import Match, Route

from abe_health.cloud.app import ROUTES
from abe_health.cloud.routing import Routes, Template

TABLE = Routes([(spec.method, spec.path, spec.path) for spec in ROUTES])
MODEL = [Route(spec.path, lambda request: None, methods=[spec.method]) for spec in ROUTES]
METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"]


def model(method: str, path: str) -> tuple[str, dict[str, str]] | int:
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    partial = False
    for spec, route in zip(ROUTES, MODEL, strict=True):
        match, child = route.matches(scope)
        if match is Match.FULL:
            return spec.path, dict(child["path_params"])
        partial = partial or match is Match.PARTIAL
    return 405 if partial else 404


segment = st.one_of(
    st.sampled_from(["v1", "indexes", "objects", "vaults", "files", "search", "catalog", "parts",
                     "tokens", "transform-keys", "transform", "lock", "headers", "manifest",
                     "health", "openapi.json", "whoami", "abe", "seg-0001", "meta.cbor", ""]),
    st.text(alphabet="abc.-_%", min_size=0, max_size=4))


@settings(max_examples=3000, deadline=None)
@given(method=st.sampled_from(METHODS), parts=st.lists(segment, min_size=0, max_size=7))
def test_the_table_finds_what_starlette_finds(method, parts):
    path = "/" + "/".join(parts)
    if path.endswith("/") and path != "/" and model(method, path) != 404:
        return  # Starlette's {name:path} takes an empty rest; the table refuses it (404)
    assert TABLE.find(method, path) == model(method, path)


@pytest.mark.parametrize("spec", ROUTES, ids=lambda s: f"{s.method} {s.path}")
def test_every_route_is_found_with_its_parameters(spec):
    path = spec.path.replace("{path:path}", "seg-0001/meta.cbor")
    for name in ("index", "kind", "name", "vault", "file_id", "part", "token_id"):
        path = path.replace("{" + name + "}", f"x-{name}")
    found = TABLE.find(spec.method, path)
    assert not isinstance(found, int) and found[0] == spec.path
    assert found == model(spec.method, path)


def test_a_template_keeps_its_first_segments_literal():
    with pytest.raises(ValueError):
        Template.parse("/{kind}/x")
    with pytest.raises(ValueError):
        Template.parse("/v1/{path:path}/x")
    with pytest.raises(ValueError):
        Template.parse("v1/x")
