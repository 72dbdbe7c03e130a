"""Shared fixtures: one `group` per installed pairing backend, hypothesis profiles."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from abe_health.errors import BackendUnavailable
from abe_health.hazmat.pairing import BACKENDS, get_group

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
    print_blob=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def _group_or_skip(name: str):
    try:
        return get_group(name)
    except BackendUnavailable as exc:
        pytest.skip(f"backend {name!r} unavailable: {exc}")


@pytest.fixture(scope="session", params=sorted(BACKENDS), ids=lambda name: f"backend={name}")
def group(request):
    """Every pairing backend; those that do not import are skipped with the reason."""
    return _group_or_skip(request.param)


@pytest.fixture(scope="session")
def mcl_group():
    return _group_or_skip("mcl")
