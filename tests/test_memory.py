"""A 1 GiB file encrypts and decrypts in constant memory (peak RSS well under 150 MB)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_one_gib_round_trip_in_constant_memory(tmp_path):
    size = 1 << 30
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.envelope", str(size), str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ok"], result
    assert result["size"] == size
    assert result["peak_rss_mb"] < 150, result
    assert list(tmp_path.iterdir()) == []
