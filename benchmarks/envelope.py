"""Envelope throughput and peak memory, run in a child process so that its RSS is its own.

`python -m benchmarks.envelope SIZE DIR` encrypts SIZE bytes of a generated stream to an `.abe`
file in DIR, decrypts it into a hashing sink, does the same chunking with raw AES-256-GCM as the
baseline, and prints one JSON line: seconds, throughput, peak RSS and whether the bytes matched.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from abe_health import PolicyRecipient, decrypt, encrypt
from abe_health.authority import CPABE
from abe_health.hazmat.envelope import CHUNK

_BLOCK = bytes(range(256)) * 4096  # 1 MiB pattern


class PatternReader:
    """A readable stream of `size` deterministic bytes that never holds more than one block."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), len(_BLOCK) - self.pos)
            out += _BLOCK[self.pos : self.pos + take]
            self.pos = (self.pos + take) % len(_BLOCK)
        self.left -= n
        return bytes(out)


def _expected(size: int) -> str:
    reader, digest = PatternReader(size), hashlib.sha256()
    while block := reader.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()


class NullWriter:
    """A sink that discards bytes: measures the crypto, not the disk."""

    def write(self, data: bytes) -> int:
        return len(data)


def raw_aes_gcm(size: int, out: BinaryIO) -> float:
    """Seconds to seal the same stream in the same chunks with plain AES-256-GCM."""
    aead, reader = AESGCM(os.urandom(32)), PatternReader(size)
    start = time.perf_counter()
    counter = 0
    while block := reader.read(CHUNK):
        out.write(aead.encrypt(counter.to_bytes(12, "big"), block, b""))
        counter += 1
    return time.perf_counter() - start


def peak_rss_mb() -> float:
    """This process's peak RSS in MB: VmHWM where /proc has it. (ru_maxrss is not used there:
    Linux carries the parent's peak across fork and exec, so a child of a large test runner
    would report the runner's memory as its own.)"""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_child(size: int, workdir: Path) -> dict[str, object]:
    """Encrypt/decrypt `size` bytes to memory and to disk beside raw AES-GCM; peak RSS at the end."""
    abe = CPABE.setup()
    key = abe.keygen(["doctor"])
    path, plain_path = workdir / "bench.abe", workdir / "bench.out"
    result: dict[str, object] = {"size": size}
    baseline = peak_rss_mb()  # imports and keys
    doctor = PolicyRecipient(abe.public_key, "doctor")
    result["encrypt_mem_s"] = _timed(
        lambda: encrypt(PatternReader(size), NullWriter(), doctor))  # type: ignore[arg-type]
    result["raw_mem_s"] = raw_aes_gcm(size, NullWriter())
    with open(path, "wb") as out:
        result["encrypt_disk_s"] = _timed(
            lambda: encrypt(PatternReader(size), out, doctor))  # type: ignore[arg-type]
    with open(workdir / "raw.bin", "wb") as out:
        result["raw_disk_s"] = raw_aes_gcm(size, out)
    with open(path, "rb") as fin:
        result["decrypt_mem_s"] = _timed(lambda: decrypt(fin, NullWriter(), key))
    result["decrypt_disk_s"] = _timed(lambda: decrypt(path, plain_path, key))
    digest = hashlib.sha256()
    with open(plain_path, "rb") as fin:
        while block := fin.read(1 << 20):
            digest.update(block)
    result["ok"] = digest.hexdigest() == _expected(size)
    for name in ("bench.abe", "bench.out", "raw.bin"):
        (workdir / name).unlink()
    result["peak_rss_mb"] = peak_rss_mb()
    result["baseline_rss_mb"] = baseline
    result["growth_rss_mb"] = result["peak_rss_mb"] - baseline  # what streaming 1 GiB added
    return result


if __name__ == "__main__":
    print(json.dumps(run_child(int(sys.argv[1]), Path(sys.argv[2]))))
