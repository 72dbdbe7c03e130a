"""A test helper: run a call that must be refused, and measure what the refusal cost."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

import pytest


def refusal_cost(error: type[BaseException], call: Callable[[], object]) -> tuple[BaseException, float, int]:
    """(the `error` that `call()` raised, seconds taken, tracemalloc peak in bytes)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(error) as info:
            call()
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return info.value, elapsed, peak
