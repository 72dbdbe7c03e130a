"""Smoke-run of `python -m benchmarks fhir --quick`: it runs, writes what it promises, and its
ratios hold loosely (this is a shared, noisy machine: the issue's targets are checked by the
benchmark itself, not asserted here)."""

from __future__ import annotations

import json

from benchmarks.__main__ import main


def test_fhir_quick(tmp_path):
    assert main(["fhir", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "fhir" / "results.json").read_text())
    rows = {row["method"]: row for row in data["rows"]}
    ours = rows["per-policy classes (ours)"]
    assert ours["resources"] == 100 and ours["policies"] == 6
    assert ours["readable"] < 100  # the GP does not open the claims
    assert 0 < ours["encrypt_vs_encaps"] < 3 and 0 < ours["decrypt_vs_decaps"] < 4
    each = rows["one encapsulation per resource"]
    assert each["encrypt_vs_ours"] > 2
    assert each["overhead_bytes_per_resource"] > ours["overhead_bytes_per_resource"]
    assert (tmp_path / "fhir" / "results.md").read_text().startswith("# fhir")
