"""What every surface shares: seeds from the corpus, the default mutation mix, typed refusals."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from abe_health.errors import AbeError
from search.errors import SearchError
from tests.fuzz import mutate, world

T = TypeVar("T")
TYPED = (AbeError, SearchError)
#: the largest input a case gets (stacked mutations can multiply a seed: a 200 MB policy text
#: would blow up the oracle's own decoding, not the toolkit)
MAX_INPUT = 4 * 1024 * 1024
#: refusals seen by `attempt` in the current case (the engine resets and reads it)
REFUSALS = [0]


def attempt(call: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """The call's result, or None when it refused with a typed toolkit error (anything else
    propagates, and the engine judges it)."""
    try:
        return call(*args, **kwargs)
    except TYPED:
        REFUSALS[0] += 1
        return None


class Surface(ABC):
    """One input surface: its name, share of a campaign, seeds, mutations and oracle."""

    name = ""
    weight = 1

    def seeds(self) -> list[bytes]:
        return [data for _, data in world.seeds(self.name)]

    def edit(self, rng: random.Random, data: bytes) -> tuple[bytes, str]:
        """One mutation of one seed (default: generic bytes and CBOR edits)."""
        return mutate.generic(rng, data)

    def mutate(self, rng: random.Random, seeds: list[bytes]) -> tuple[bytes, str]:
        """A mutant of the seeds (at most MAX_INPUT bytes)."""
        if len(seeds) > 1 and rng.random() < 0.08:
            a, b = rng.sample(seeds, 2)
            data, how = mutate.splice(rng, a, b)
        elif rng.random() < 0.02:
            data, how = rng.choice(seeds), "seed"
        else:
            data, how = mutate.stack(rng, rng.choice(seeds), self.edit)
        if len(data) > MAX_INPUT:
            data, how = data[:MAX_INPUT], how + "+cut"
        return data, how

    def setup(self, scratch_root: Path) -> Any:
        """What the oracle needs, made once per worker (keys parsed, expectations loaded)."""
        return world.context()

    @abstractmethod
    def check(self, state: Any, data: bytes, scratch: Path) -> None:
        """Run the surface's calls on `data`: return if every result is right, raise a typed
        toolkit error for a refusal, or `WrongResult` for content that is not right."""
