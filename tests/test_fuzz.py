"""The fuzz suite in CI: a small campaign over every surface, and every saved reproducer replayed.

A reproducer is an input that once failed (a traceback, a hang, a memory blowup or a wrong
result; see tests/fuzz/reproducers/*/NAME.txt); it must now be judged "ok" or "refused" (a
typed toolkit error). The full campaign is `python -m tests.fuzz --cases 100000 --jobs 2`
(docs/fuzzing.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz import engine
from tests.fuzz.surfaces import SURFACES

REPRODUCERS = engine.reproducers()
TIMEOUT, MAX_MIB = 5.0, 500.0


@pytest.fixture(scope="module")
def worker() -> Iterator[engine.Worker]:
    w = engine.Worker(sorted(SURFACES), TIMEOUT, MAX_MIB)
    yield w
    w.close()


def _describe(path: Path) -> str:
    note = path.with_suffix(".txt")
    return note.read_text().strip() if note.exists() else "(no description)"


@pytest.mark.parametrize(("surface", "path"), REPRODUCERS,
                         ids=[f"{s}/{p.stem}" for s, p in REPRODUCERS])
def test_reproducer_is_handled(worker: engine.Worker, surface: str, path: Path) -> None:
    verdict = worker.judge(surface, path.read_bytes())
    assert verdict.status != "fail", (f"{path} fails again: {verdict.kind} {verdict.signature} "
                                      f"{verdict.detail}; it was: {_describe(path)}")


def test_every_reproducer_has_a_description() -> None:
    for _, path in REPRODUCERS:
        assert path.with_suffix(".txt").exists(), path


def test_small_campaign(tmp_path: Path) -> None:
    """300 cases over all surfaces (weighted), two workers, nothing saved: no failure."""
    names = sorted(SURFACES)
    report = engine.run(engine.generate(names, 300, seed=20260), names, TIMEOUT, MAX_MIB, jobs=2,
                        save=False)
    assert sum(report.cases.values()) == 300
    assert set(report.cases) == set(names)
    assert report.total_failures == 0, report.summary()


def test_seeds_open_with_the_right_content() -> None:
    """Every unmutated seed passes its own oracle (so the oracles can tell right from wrong)."""
    import tempfile

    for surface in SURFACES.values():
        with tempfile.TemporaryDirectory() as tmp:
            state = surface.setup(Path(tmp))
            for i, data in enumerate(surface.seeds()):
                scratch = Path(tmp) / f"case-{i}"
                scratch.mkdir()
                surface.check(state, data, scratch)


def test_oracle_catches_wrong_content() -> None:
    """An oracle that is given a file that opens to other content reports a wrong result."""
    import tempfile

    from abe_health import PolicyRecipient, encrypt
    from abe_health.keys import load_key
    from tests.fuzz import world

    ctx = world.context()
    public = load_key(ctx["schemes"]["fame"]["public"])
    planted = encrypt(b"not a corpus plaintext", None, PolicyRecipient(public, "doctor"))
    surface = SURFACES["abe"]
    with tempfile.TemporaryDirectory() as tmp:
        with pytest.raises(engine.WrongResult):
            surface.check(surface.setup(Path(tmp)), planted, Path(tmp))


def test_watchdog_catches_hangs_and_blowups() -> None:
    """The engine's verdicts for cases that sleep past the timeout, allocate past the address
    space cap, or grow the resident set past the limit (the hidden self-test surface)."""
    w = engine.Worker(["selftest"], 1.0, 100.0)
    try:
        verdicts = {what: w.judge("selftest", what) for what in (b"ok", b"hang", b"blowup", b"rss", b"ok")}
    finally:
        w.close()
    assert verdicts[b"ok"].status == "ok", verdicts
    assert verdicts[b"hang"].kind == "hang", verdicts
    assert verdicts[b"blowup"].kind == "blowup", verdicts
    assert verdicts[b"rss"].kind == "blowup", verdicts
