"""What a bulk encryption reads: the files of a directory tree or of a manifest, and the policy
map that gives each its policy.

A source is a directory (every regular file below it, in sorted order, named by its path
relative to the directory, POSIX separators) or a manifest: a text file listing one path per
line (blank lines and lines starting with `#` skipped), relative to the manifest's directory or
absolute, named as written. The policy map is JSON:

    {"rules": [{"match": "cardiology/*", "policy": "doctor and cardiology"},
               {"match": "*.txt", "policy": "nurse or doctor"}],
     "default": "doctor"}

The first rule whose glob (`fnmatch`, case-sensitive; `*` also matches `/`) matches a file's
name gives its policy; `default` (optional) covers the rest. A file no rule covers is refused
before any work is done, as is any policy that does not parse.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import BulkError

#: largest policy map read
MAX_MAP_BYTES = 1 << 20


@dataclass(frozen=True)
class Source:
    """One file to encrypt: where it is (its real path), the name it is stored under, and its
    size in bytes when it was listed."""

    path: str
    name: str
    size: int


@dataclass(frozen=True)
class PolicyMap:
    """Rules (glob, policy) tried in order, and the default policy (or None)."""

    rules: tuple[tuple[str, str], ...]
    default: str | None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PolicyMap:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_MAP_BYTES + 1)
        if len(raw) > MAX_MAP_BYTES:
            raise BulkError(f"{path}: a policy map is at most {MAX_MAP_BYTES} bytes")
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BulkError(f"{path}: not JSON ({exc})") from None
        return cls.of(data, str(path))

    @classmethod
    def of(cls, data: Any, where: str = "policy map") -> PolicyMap:
        """A map from its decoded JSON, every field type-checked."""
        if not isinstance(data, dict) or set(data) - {"rules", "default"}:
            raise BulkError(f"{where}: expected an object with \"rules\" and/or \"default\"")
        rules = data.get("rules", [])
        default = data.get("default")
        if not isinstance(rules, list) or not all(
                isinstance(r, dict) and set(r) == {"match", "policy"} and isinstance(r["match"], str)
                and isinstance(r["policy"], str) for r in rules):
            raise BulkError(f"{where}: \"rules\" is a list of {{\"match\": GLOB, \"policy\": POLICY}}")
        if default is not None and not isinstance(default, str):
            raise BulkError(f"{where}: \"default\" is a policy (text)")
        if not rules and default is None:
            raise BulkError(f"{where}: no rule and no default: it gives no file a policy")
        return cls(tuple((r["match"], r["policy"]) for r in rules), default)

    def policy_of(self, name: str) -> str | None:
        """The policy of the file named `name`, or None when nothing covers it."""
        for pattern, policy in self.rules:
            if fnmatch.fnmatchcase(name, pattern):
                return policy
        return self.default

    def policies(self) -> list[str]:
        """Every policy text the map can give (to check each once, before any work)."""
        found = [p for _, p in self.rules] + ([self.default] if self.default is not None else [])
        return list(dict.fromkeys(found))


def list_sources(src: str | os.PathLike[str]) -> list[Source]:
    """The files of a directory tree or a manifest (see the module docstring), in order."""
    root = Path(src)
    if root.is_dir():
        # below the resolved directory only a file that is itself a link needs resolving, and a
        # directory's scan gives each entry's type: one system call a file (its size)
        real_root, prefix = root.resolve(), len(os.path.join(root, ""))
        found = []
        for found_at, link, size in files_below(str(root)):
            name = Path(found_at[prefix:]).as_posix()
            real = str(Path(found_at).resolve()) if link else str(real_root / name)
            found.append(Source(real, name, size))
        return sorted(found, key=lambda s: s.name.split("/"))
    base = root.parent
    out = []
    with open(root, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            text = line.rstrip("\r\n")
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            path = Path(text) if Path(text).is_absolute() else base / text
            if not path.is_file():
                raise BulkError(f"{root}, line {number}: {text}: not a file")
            out.append(Source(str(path.resolve()), text, os.path.getsize(path)))
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise BulkError(f"{root}: listed twice: {', '.join(twice[:5])}")
    return out


def files_below(directory: str) -> Iterator[tuple[str, bool, int]]:
    """(path, whether it is a link, size) of every file below `directory`, as `rglob("*")` and
    `is_file()` find them: links to files included, linked directories not descended,
    unreadable directories skipped."""
    try:
        with os.scandir(directory) as scan:
            entries = list(scan)
    except PermissionError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from files_below(entry.path)
        elif entry.is_file():
            yield entry.path, entry.is_symlink(), entry.stat().st_size


def assign(sources: list[Source], pmap: PolicyMap, check: Callable[[str], object]
           ) -> list[tuple[Source, str]]:
    """Each source with its policy; `check(policy)` parses each distinct policy once (it raises
    for one that does not parse). BulkError names the first files no rule covers."""
    for policy in pmap.policies():
        check(policy)
    out: list[tuple[Source, str]] = []
    uncovered: list[str] = []
    for source in sources:
        found = pmap.policy_of(source.name)
        if found is None:
            uncovered.append(source.name)
        else:
            out.append((source, found))
    if uncovered:
        more = f" and {len(uncovered) - 5} more" if len(uncovered) > 5 else ""
        raise BulkError(f"the policy map covers no rule for {', '.join(uncovered[:5])}{more} "
                        "(add a rule or a \"default\")")
    return out


def output_name(name: str) -> PurePosixPath:
    """The relative path of a source's `.abe` in an output directory; a name that would leave
    the directory (absolute, or with `..`) is refused."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BulkError(f"{name}: an output directory holds only relative names without '..' "
                        "(write into a vault, or list files by relative paths)")
    return path.with_name(path.name + ".abe")
