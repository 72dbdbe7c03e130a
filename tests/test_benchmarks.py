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
    # FAME decrypts with 6 pairings, any policy size: one multi-pairing, one final exponentiation
    assert decrypt["counts"] == {"miller_loop": 6, "final_exp": 1}
    kem = [r for r in data["rows"] if not r["op"].endswith(" e2e") and r["curve"] == "BLS12-381"]
    for row in kem:
        assert row["estimate_ms"] > 0 and row["median_ms"] > 0 and row["curve"]
        if row["op"] in ("keygen", "encrypt"):
            assert row["cold_ms"] > 0  # with an empty hash-to-group cache
    e2e = {(r["scheme"], r["policy"], r["N"]): r for r in data["rows"] if r["op"] == "decrypt e2e"}
    for scheme in ("fame", "fame-kp", "bsw07", "waters11"):
        for n in (10, 50):
            row = e2e[(scheme, "and", n)]
            assert row["pairing_times"] > 0 and row["floor_pairings"] > 0 and row["ratio_to_floor"] > 0
    assert e2e[("fame", "and", 50)]["floor_pairings"] == 6
    # FAME writes its 150 row points uncompressed (96 bytes each), BSW07 its 50 G1 points compressed
    assert e2e[("fame", "and", 50)]["header_bytes"] > 150 * 96
    assert 50 * (96 + 48) < e2e[("bsw07", "and", 50)]["header_bytes"] < 50 * (96 + 96)
    assert e2e[("bsw07", "and", 50)]["floor_pairings"] == 101
    assert {k for k in e2e if k[0] == "rw15"} == {
        ("rw15", f"and/{a} authorities", n) for a in (2, 5) for n in (10, 50)}
    assert any("end-to-end decrypt" in note and "pairing-times" in note for note in data["notes"])
    # peers: live or absent, and then said so; never a published figure beside a live one
    live = [r for r in data["rows"] if r.get("peer_source") == "measured live"]
    if not live:
        assert any("Charm is not installed" in note for note in data["notes"])
    assert not (live and any("published" in note for note in data["notes"]))
    envelope = data["envelope"]
    assert all(e["ok"] for e in envelope)
    assert all(e["peak_rss_mb"] < 150 for e in envelope)
    assert (tmp_path / "abe" / "abe_decrypt_e2e.png").exists() or any(
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


def test_compare_quick(tmp_path):
    """One command, ours and the peers side by side: JSON, Markdown and a PNG; every row says
    who ran, on which curve and at what security, and whether it was measured live."""
    from benchmarks.peers import LIVE, charm_available

    assert main(["compare", "--quick", "--out", str(tmp_path)]) == 0
    out = tmp_path / "compare"
    data = json.loads((out / "results.json").read_text())
    assert (out / "results.md").read_text().startswith("# compare")
    assert (out / "compare.png").exists() or any("matplotlib" in n for n in data["notes"])
    rows = data["rows"]
    assert all(r["curve"] and r["security"] and r["source"] for r in rows)
    ours = {(r["scheme"], r["op"], r["level"]) for r in rows if r["who"] == "abe-health (mcl)"}
    for scheme in ("fame", "fame-kp", "bsw07", "waters11", "rw15"):
        for op in ("keygen", "encrypt", "decrypt"):
            assert {(scheme, op, "kem"), (scheme, op, "e2e")} <= ours
    charm_rows = [r for r in rows if r["who"].startswith("Charm")]
    if charm_available():
        assert all(r["source"] == LIVE for r in charm_rows)
        assert not any(note.startswith("Charm is not installed") for note in data["notes"])
    else:
        assert data["notes"][0].startswith("Charm is not installed")
        assert charm_rows and all(r["source"].startswith("published (") for r in charm_rows)
