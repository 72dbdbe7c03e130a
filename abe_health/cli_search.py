"""`abe-health index ...` and `abe-health search ...`: the PASS-tree index from a terminal.

With `--policy ... -k public.key` at build time the search key is also sealed in an `.abe`
envelope next to the index (INDEX/search.key.abe), so `search -i USER.key` works for anyone
whose ABE attributes satisfy the policy (authorized search) and fails clearly for others.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import click

from search import SearchIndex, SearchKey
from search.errors import InvalidSearchKey
from search.text import collect, document_keywords

from .api import ABE, decrypt_stream_to
from .cli_common import CliError
from .fileio import write_atomic
from .keys import read_key

WRAPPED_KEY = "search.key.abe"


def _collect(paths: tuple[str, ...]) -> dict:
    """Read documents with a progress bar on a terminal."""
    roots = [Path(p) for p in paths]
    for root in roots:
        if not root.exists():
            raise CliError(f"no such file or directory: {root}")
    if not sys.stderr.isatty():
        return collect(roots)
    files = [(root, f) for root in roots
             for f in (sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root])]
    docs = {}
    with click.progressbar(files, label="reading documents", file=sys.stderr) as bar:
        for root, f in bar:
            docs[str(f.relative_to(root)) if root.is_dir() else str(f)] = document_keywords(f)
    return docs


def _status(stage: str, n: int) -> None:
    if sys.stderr.isatty():
        click.echo(f"\r{stage}: {n:>10,}", err=True, nl=False)


def _search_key(index: Path, key_path: str | None, identity: str | None) -> SearchKey:
    if bool(key_path) == bool(identity):
        raise click.UsageError("give exactly one of --key SEARCH.key or -i USER.key")
    if key_path:
        return SearchKey.load(key_path)
    wrapped = index / WRAPPED_KEY
    if not wrapped.exists():
        raise InvalidSearchKey(f"{index} has no ABE-wrapped search key; use --key")
    user = read_key(identity, expect="user")  # type: ignore[arg-type]
    out = io.BytesIO()
    with open(wrapped, "rb") as fin:
        decrypt_stream_to(user, fin, out)
    return SearchKey.from_bytes(out.getvalue())


def register(main: click.Group, handle_errors) -> None:
    """Add the `index` group and the `search` command to the CLI."""

    @main.group()
    def index() -> None:
        """Build and extend encrypted PASS-tree search indexes."""

    @index.command("keygen")
    @click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False))
    @handle_errors
    def index_keygen(out_path: str) -> None:
        """A new random search key (mode 0600)."""
        SearchKey.generate().save(out_path)
        click.echo(f"wrote {out_path}", err=True)

    @index.command("build")
    @click.argument("docs", nargs=-1, required=True)
    @click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False))
    @click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False))
    @click.option("--policy", default=None, help="Also seal the search key under this ABE policy.")
    @click.option("-k", "--public", "public_path", type=click.Path(dir_okay=False),
                  help="The ABE public key for --policy.")
    @handle_errors
    def index_build(docs: tuple[str, ...], key_path: str, out_dir: str, policy: str | None,
                    public_path: str | None) -> None:
        """Index DOC_OR_DIR ... (JSON string values or plain text) into a new index directory."""
        if (policy is None) != (public_path is None):
            raise click.UsageError("--policy and -k/--public go together")
        key = SearchKey.load(key_path)
        authority = ABE(read_key(public_path, expect="public")) if public_path else None
        found = _collect(docs)
        _idx, stats = SearchIndex.create(out_dir, found, key, _status)
        if authority is not None:
            write_atomic(Path(out_dir) / WRAPPED_KEY, authority.encrypt(key.to_bytes(), policy))
        if sys.stderr.isatty():
            click.echo("", err=True)
        click.echo(f"indexed {stats.documents} documents, {stats.keywords} keywords into {out_dir} "
                   f"({(stats.filter_bytes + stats.leaf_bytes) / max(1, stats.keywords):.0f} bytes "
                   "per keyword)", err=True)

    @index.command("add")
    @click.argument("index_dir", type=click.Path(file_okay=False))
    @click.argument("docs", nargs=-1, required=True)
    @click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False))
    @handle_errors
    def index_add(index_dir: str, docs: tuple[str, ...], key_path: str) -> None:
        """Add documents to an index without rebuilding it (new segment, merged when due)."""
        key = SearchKey.load(key_path)
        idx = SearchIndex(index_dir)
        stats = idx.add(_collect(docs), key, _status)
        click.echo(f"added {stats.documents} documents ({stats.keywords} keywords); "
                   f"{len(idx.segments)} segment(s)", err=True)

    @main.command("search")
    @click.argument("index_dir", type=click.Path(file_okay=False))
    @click.argument("pattern")
    @click.option("--key", "key_path", type=click.Path(dir_okay=False), help="The search key.")
    @click.option("-i", "--identity", type=click.Path(dir_okay=False),
                  help="An ABE user key that may open INDEX/search.key.abe.")
    @click.option("--top", default=10, show_default=True, type=click.IntRange(min=1))
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @handle_errors
    def search_cmd(index_dir: str, pattern: str, key_path: str | None, identity: str | None,
                   top: int, as_json: bool) -> None:
        """Ranked documents whose keywords contain PATTERN (`card`, `^card`, `itis$`, `^heart$`)."""
        idx = SearchIndex(index_dir)
        key = _search_key(Path(index_dir), key_path, identity)
        if not idx.key_matches(key):
            raise InvalidSearchKey(f"this search key did not build {index_dir}")
        result = idx.search(pattern, key, top)
        if as_json:
            click.echo(json.dumps({
                "pattern": pattern,
                "hits": [{"document": h.doc_id, "match": h.match, "score": h.score,
                          "keywords": list(h.keywords)} for h in result.hits],
                "stats": result.stats.__dict__,
            }, indent=2))
            return
        if not result.hits:
            click.echo("no match", err=True)
        for rank_no, hit in enumerate(result.hits, start=1):
            click.echo(f"{rank_no:>3}. {hit.doc_id}  ({hit.match}, {hit.score:.3f}: "
                       f"{', '.join(hit.keywords[:5])})")
