"""Timing helpers and the writer of results.json, results.md and plots, shared by every suite."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def median_ms(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Median wall time of `fn()` in milliseconds over `repeat` calls (after `warmup` calls)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e6


PACKAGES = ("abe-health", "pymcl", "cryptography", "numpy", "cbor2", "click",
            "charm-crypto-framework", "matplotlib")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    """The commit measured, with `-dirty` when the work tree differs from it."""
    root = Path(__file__).resolve().parent.parent
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        head = subprocess.run([git, "-C", str(root), "rev-parse", "HEAD"],  # noqa: S603
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run([git, "-C", str(root), "status", "--porcelain",  # noqa: S603
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def machine() -> dict[str, Any]:
    """Where and what was measured: figures are only comparable within one run on one machine."""
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "commit": _git_commit(),
        "packages": _versions(),
    }


def speed_words(ratio: float) -> str:
    """A ratio of times (theirs / ours) in words: 2.3 -> "2.3x faster", 0.9 -> "1.1x slower"."""
    if ratio <= 0:
        return "n/a"
    return f"{ratio:.3g}x faster" if ratio >= 1 else f"{1 / ratio:.3g}x slower"


@dataclass
class Report:
    """A suite's measurements: `rows` share `columns`; `plots` are (title, x, y, group-by) specs."""

    suite: str
    columns: Sequence[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    #: where partial results go while the suite runs (set by the runner), so a long run that is
    #: interrupted still leaves what it measured
    partial: Path | None = None

    def add(self, **row: Any) -> None:
        """Record a row, print a progress line to stderr and update the partial results."""
        self.rows.append(row)
        shown = ", ".join(f"{c}={_cell(row[c])}" for c in self.columns if c in row)
        sys.stderr.write(f"[{self.suite} {len(self.rows)}] {shown}\n")
        sys.stderr.flush()
        if self.partial is not None:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(self.partial, json.dumps({"suite": self.suite, "partial": True,
                                                    "machine": machine(), "rows": self.rows},
                                                   indent=2, default=str) + "\n")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def to_markdown(report: Report) -> str:
    """A Markdown table of the rows, with the notes underneath."""
    lines = [f"# {report.suite}", ""]
    lines.append("| " + " | ".join(report.columns) + " |")
    lines.append("|" + "|".join("---" for _ in report.columns) + "|")
    for row in report.rows:
        cells = [speed_words(row[c]) if "speedup" in c and isinstance(row.get(c), float)
                 else _cell(row.get(c, "")) for c in report.columns]
        lines.append("| " + " | ".join(cells) + " |")
    if report.notes:
        lines.append("")
        lines.extend(f"- {note}" for note in report.notes)
    return "\n".join(lines) + "\n"


def write(report: Report, out_dir: Path, quick: bool) -> list[Path]:
    """Write results.json, results.md and plots into out_dir/suite; return the paths written."""
    target = out_dir / report.suite
    target.mkdir(parents=True, exist_ok=True)
    plots = _plots(report, target)  # first: a skipped plot adds a note to the results
    payload = {
        "suite": report.suite,
        "quick": quick,
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "columns": list(report.columns),
        "rows": report.rows,
        "notes": report.notes,
        **report.extra,
    }
    written = [_atomic_write(target / "results.json", json.dumps(payload, indent=2, default=str) + "\n")]
    (target / "results.partial.json").unlink(missing_ok=True)
    written.append(_atomic_write(target / "results.md", to_markdown(report)))
    return written + plots


def _atomic_write(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _plots(report: Report, target: Path) -> list[Path]:
    if not report.plots:
        return []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        report.notes.append("plots skipped: matplotlib is not installed (pip install -e '.[bench]')")
        return []
    paths = []
    for spec in report.plots:
        fig, ax = plt.subplots(figsize=(float(spec.get("width", 7)), 4))
        rows = [r for r in report.rows if all(r.get(k) == v for k, v in spec.get("where", {}).items())]
        series: dict[str, list[tuple[Any, float]]] = {}
        for row in rows:
            series.setdefault(str(row[spec["series"]]), []).append((row[spec["x"]], row[spec["y"]]))
        if spec.get("kind") == "bar":
            labels = sorted({x for points in series.values() for x, _ in points}, key=str)
            width = 0.8 / max(1, len(series))
            for i, (name, points) in enumerate(sorted(series.items())):
                values = dict(points)
                ax.bar([j + i * width for j in range(len(labels))],
                       [values.get(x, 0) for x in labels], width, label=name)
            ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(labels))], labels,
                          rotation=30, ha="right")
        else:
            for name, points in sorted(series.items()):
                points.sort()
                ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=name)
            if spec.get("log"):
                ax.set_xscale("log")
                ax.set_yscale("log")
        ax.set_title(spec["title"])
        ax.set_xlabel(spec.get("xlabel", spec["x"]))
        ax.set_ylabel(spec.get("ylabel", spec["y"]))
        if spec.get("logy"):
            ax.set_yscale("log")
        if spec.get("log"):
            from matplotlib.ticker import FuncFormatter

            plain = FuncFormatter(lambda v, _pos: f"{v:g}")
            ax.xaxis.set_major_formatter(plain)
            ax.yaxis.set_major_formatter(plain)
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            order = sorted(range(len(labels)), key=lambda i: labels[i])
            if spec.get("legend") == "outside":  # many series: beside the plot, not over the bars
                ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper left",
                          bbox_to_anchor=(1.01, 1.0), fontsize="small")
            else:
                ax.legend([handles[i] for i in order], [labels[i] for i in order])
        fig.tight_layout()
        path = target / spec["file"]
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
