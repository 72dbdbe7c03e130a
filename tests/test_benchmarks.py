"""Smoke-run of the benchmark runner: the suites must run and write what they promise."""

from __future__ import annotations

import json

import pytest

from benchmarks.__main__ import main


def test_primitives_quick(tmp_path, capsys):
    assert main(["primitives", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "primitives" / "results.json").read_text())
    assert data["suite"] == "primitives" and data["quick"] is True
    ops = {row["operation"] for row in data["rows"] if row["backend"] == "mcl"}
    assert {"pair", "exp_g1", "exp_g2", "exp_gt", "hash_g1", "hash_g2"} <= ops
    costs = data["costs_ms"]["mcl:BLS12-381"]
    assert all(ms > 0 for ms in costs.values())
    # sanity of the measurement itself: a pairing costs more than a G1 exponentiation
    assert costs["pair"] > costs["exp_g1"]
    md = (tmp_path / "primitives" / "results.md").read_text()
    assert md.startswith("# primitives") and "| mcl:BLS12-381 | pair |" in md
    assert "primitives:" in capsys.readouterr().out


def test_unknown_suite_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["nope"])
    assert info.value.code == 2


def test_abe_quick(tmp_path):
    assert main(["abe", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "abe" / "results.json").read_text())
    rows = [r for r in data["rows"] if r["scheme"] == "fame" and r["policy"] == "and" and r["N"] == 5]
    assert {r["op"] for r in rows} == {"setup", "keygen", "encrypt", "decrypt"}
    decrypt = next(r for r in rows if r["op"] == "decrypt")
    assert decrypt["counts"] == {"pair": 6}  # FAME decrypts with 6 pairings, any policy size
    for row in data["rows"]:
        assert row["estimate_ms"] > 0 and row["median_ms"] > 0
    envelope = data["envelope"]
    assert all(e["ok"] for e in envelope)
    assert all(e["peak_rss_mb"] < 150 for e in envelope)
    assert (tmp_path / "abe" / "abe_decrypt.png").exists() or any(
        "matplotlib" in note for note in data["notes"])


def test_search_quick(tmp_path):
    assert main(["search", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "search" / "results.json").read_text())
    assert {row["keywords"] for row in data["rows"]} == {2000, 10000}
    for row in data["rows"]:
        assert row["query_median_ms"] > 0 and 0 <= row["false_positive_rate"] < 0.2
        assert row["unsalted_query_median_ms"] > 0 and row["plaintext_scan_median_ms"] > 0
    for build in data["builds"]:
        assert build["bytes_per_keyword"] < 2048 and build["keywords_per_s"] > 0


def test_revocation_quick(tmp_path):
    assert main(["revocation", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "revocation" / "results.json").read_text())
    ours = [r for r in data["rows"] if r["method"] == "header re-encapsulation"]
    assert ours and all(r["bytes_ratio"] > 1 for r in ours)
    big = [r for r in ours if r["file_bytes"] == 1 << 20]
    assert all(r["bytes_ratio"] > 100 for r in big)  # headers only, never the 1 MiB bodies


def test_report_words_and_metadata():
    from benchmarks.report import machine, speed_words

    assert speed_words(2.345) == "2.35x faster" and speed_words(0.9) == "1.11x slower"
    info = machine()
    assert {"cpu", "python", "commit", "packages"} <= set(info) and "abe-health" in info["packages"]
