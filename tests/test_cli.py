"""The CLI as a person uses it: one-line errors, exit codes, readable output."""

from __future__ import annotations

import json

from click.testing import CliRunner

from abe_health import __version__
from abe_health.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_policy_check_prints_canonical_form_and_size():
    result = run("policy", "check", "(doctor AND cardiology) or (nurse and ward=3)")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "canonical: (doctor and cardiology) or (nurse and ward = 3)",
        "lsss: 4 rows x 3 columns, 4 distinct attributes",
    ]


def test_policy_check_with_attributes():
    ok = run("policy", "check", "2 of (a, b, c) and d", "-a", "a", "-a", "c", "-a", "d")
    assert ok.exit_code == 0
    assert "satisfied: yes (rows 1, 3, 4)" in ok.output
    no = run("policy", "check", "2 of (a, b, c) and d", "-a", "a", "-a", "d")
    assert no.exit_code == 0
    assert "satisfied: no" in no.output


def test_policy_check_json_and_matrix():
    result = run("policy", "check", "a and b", "--json", "--matrix", "-a", "a")
    data = json.loads(result.output)
    assert data["canonical"] == "a and b"
    assert data["matrix"] == [[1, 1], [0, -1]]
    assert data["rho"] == ["a", "b"]
    assert data["satisfied"] is False


def test_policy_syntax_error_is_one_line_and_exit_1():
    result = run("policy", "check", "a and and b")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith('error: policy "a and and b": column 7:')
    assert "Traceback" not in result.output


def test_bad_key_attribute_is_one_line():
    result = run("policy", "check", "age >= 3", "-a", "age = 4", "-a", "age = 5")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: a key may hold one value of numeric attribute age, got 4 and 5"
    ]


def test_usage_error_exits_2():
    assert run("policy", "check").exit_code == 2
    assert run("nonsense").exit_code == 2


def test_version_and_demo():
    assert __version__ in run("--version").output
    result = run("demo")
    assert result.exit_code == 0, result.output
    assert "e(g^a, h^b) == e(g, h)^ab: True" in result.output
    assert result.output.count("g^s rebuilt: True") == 3
    assert result.output.count("refused: PolicyNotSatisfied") == 2
    assert result.output.count("reads it: True") == 3
    assert "card$      -> P-23.json (suffix: postcard)" in result.output
    assert "Eve (ER, expired yesterday)                    reads: nothing; refused: 4" in result.output
    assert "Dee (ER, valid until tomorrow)                 reads: medications, profile" in result.output


def test_concurrent_setups_never_mix_a_key_pair(tmp_path):
    """Four `setup -o DIR` at once: one writes the authority, the others are refused; the pair
    on disk belongs together (the key directory's lock)."""
    import subprocess
    import sys

    from abe_health.authority import ABE
    from abe_health.keys import read_key

    procs = [subprocess.Popen([sys.executable, "-m", "abe_health.cli", "setup", "-o", str(tmp_path / "auth")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    codes = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    assert sorted(code for code, _ in codes) == [0, 1, 1, 1], codes
    assert all("exists; use --force" in err for code, err in codes if code)
    ABE(read_key(tmp_path / "auth" / "public.key", expect="public"),
        read_key(tmp_path / "auth" / "master.key", expect="master"))  # refuses a mismatched pair
