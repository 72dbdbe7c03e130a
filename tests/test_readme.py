"""The documentation's examples run as written.

Every ```python fenced block of README.md and of docs/**/*.md is run on its own: a fresh
namespace, the current directory a new temporary directory (a block that needs files creates
them), line numbers those of the Markdown file, so a traceback points at the page. Every ```sh
block of README.md runs too, in order, each with `bash -euo pipefail` in one shared scratch
directory (later blocks use the keys and files earlier ones made), except the install block,
which is what `.ci/run` itself runs. A block that is not meant to run is fenced with another
info string (```pycon, ```text: synopses with placeholders). A failure names the file, the line
and the block's first line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
SHELL_FENCE = re.compile(r"^```sh[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
#: the install block runs in .ci/run, which must go on running exactly these commands
INSTALL = ('pip install -e ".[dev]" && abe-health demo', 'pip install -e ".[dev]" && pytest')


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line of the block's first code line, code) of every ```python block of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, match.start(1)) + 1, match.group(1)) for match in FENCE.finditer(text)]


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))] if DOCS.is_dir() else [README]


BLOCKS = [(page, line, code) for page in _pages() for line, code in python_blocks(page)]


def test_readme_has_python_blocks():
    assert len(python_blocks(README)) >= 3, "README.md lost its Python examples (or the fence regex broke)"


@pytest.mark.parametrize(("page", "line", "code"), BLOCKS,
                         ids=[f"{page.relative_to(ROOT)}:{line}" for page, line, _ in BLOCKS])
def test_block_runs(page: Path, line: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    where = str(page.relative_to(ROOT))
    first = next((text.strip() for text in code.splitlines() if text.strip()), "")
    program = compile("\n" * (line - 1) + code, where, "exec")
    try:
        exec(program, {"__name__": "__main__"})  # the documentation's own examples
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == where]
        at = frames[-1].lineno if frames else line
        pytest.fail(f"{where}:{at}: the block starting {first!r} (line {line}) failed: "
                    f"{type(exc).__name__}: {exc}", pytrace=False)


def test_api_page_lists_every_recipe():
    """docs/api.md (rendered by mkdocstrings) documents exactly the top-level names."""
    import abe_health

    listed = re.findall(r"^::: abe_health\.(\w+)\s*$", (DOCS / "api.md").read_text(encoding="utf-8"), re.M)
    assert sorted(listed) == sorted(set(listed)), "a name is listed twice in docs/api.md"
    assert set(listed) == set(abe_health.__all__) - {"__version__"}


def shell_blocks(path: Path) -> list[tuple[int, str]]:
    """(line of the first code line, code) of every ```sh block of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in SHELL_FENCE.finditer(text)]


def test_install_block_is_what_ci_runs():
    blocks = shell_blocks(README)
    assert blocks and blocks[0][1].splitlines() == list(INSTALL)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for line in ('pip install --quiet -e ".[dev]"', "abe-health demo", "pytest"):
        assert line in ci


def test_shell_blocks_run_in_order(tmp_path: Path):
    """Every other README shell block, copied as is, succeeds."""
    blocks = shell_blocks(README)[1:]
    assert len(blocks) >= 4, "README.md lost its shell examples (or the fence regex broke)"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for line, code in blocks:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=600)
        first = code.splitlines()[0]
        assert result.returncode == 0, (f"README.md:{line}: the block starting {first!r} failed "
                                        f"({result.returncode}):\n{result.stderr[-2000:]}")
