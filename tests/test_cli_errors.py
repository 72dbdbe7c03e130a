"""Every failure of the CLI as a person at a terminal meets it: one `error:` line on stderr (and
at most one `hint:` line after it), a documented exit status, never a traceback.

The walk covers every command click knows, enumerated from the group: a new command fails
`test_every_command_has_a_recipe` until it is given a valid invocation in RECIPES, and from then
on each of its outputs is tried in a missing and in an unwritable directory, and each of its file
parameters with a directory (each directory parameter with a file).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from abe_health import keys as keys_module
from abe_health import locks
from abe_health.authority import ABE
from abe_health.cli import common, errors, files, main
from abe_health.cli import keys as cli_keys
from abe_health.cloud.auth import Principals
from abe_health.cloud.search import push_index
from abe_health.keys import read_key
from abe_health.register import NotRenewable, register_path_for
from abe_health.revocation import vault as vault_module
from abe_health.revocation.manifest import AuthorityState
from tests.cloud_server import Server

CLI = [sys.executable, "-m", "abe_health.cli"]


def run(*args: object, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def assert_one_error(stderr: str, output: str = "", mentions: str | None = None) -> str:
    """stderr ends with exactly one `error:` line, then at most one `hint:` line; no traceback
    anywhere. Returns the error line."""
    assert "Traceback" not in stderr + output, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    found = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(found) == 1, stderr
    tail = lines[found[0] + 1:]
    assert tail == [] or (len(tail) == 1 and tail[0].startswith("hint: ")), stderr
    if mentions is not None:
        assert mentions in lines[found[0]], (mentions, stderr)
    return lines[found[0]]


def leaf_commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*path, name))
        else:
            yield (*path, name)


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMANDS = list(leaf_commands(main))

#: a valid invocation of every command, by parameter name. "{t}" is the world's directory,
#: "{id}" a file stored in its vault, "{new}" a fresh path (an output).
RECIPES: dict[tuple[str, ...], dict[str, Any]] = {
    ("setup",): {"out_dir": "{new}"},
    ("keygen",): {"master_path": "{t}/cp/master.key", "attrs": ["doctor"], "out_path": "{new}",
                  "register_path": "{new}"},
    ("renew",): {"master_path": "{t}/cp/master.key", "old_path": "{t}/renewable.key",
                 "until": "2031-01-01", "out_path": "{new}"},
    ("withdraw",): {"master_path": "{t}/cp/master.key", "key_path": "{t}/withdrawn.key"},
    ("encrypt",): {"public_path": "{t}/cp/public.key", "policy": "doctor", "out_path": "{new}",
                   "src": "{t}/plain.txt"},
    ("decrypt",): {"key_paths": ["{t}/doctor.key"], "out_path": "{new}", "src": "{t}/file.abe"},
    ("key", "blind"): {"key_paths": ["{t}/doctor.key"], "tk_path": "{new}", "rk_path": "{new}"},
    ("transform",): {"tk_path": "{t}/doctor.tk", "out_path": "{new}", "src": "{t}/file.abe"},
    ("precompute",): {"public_path": "{t}/cp/public.key", "policy": "doctor", "count": 2,
                      "pool_key_path": "{t}/pool.key", "out_path": "{new}"},
    ("inspect",): {"path": "{t}/file.abe"},
    ("authority", "setup"): {"name": "ER", "out_dir": "{new}"},
    ("authority", "keygen"): {"secret_path": "{t}/ma/hospitalA.key", "gid": "bob",
                              "attrs": ["doctor"], "out_path": "{new}"},
    ("phr", "encrypt"): {"record": "{t}/rec.json", "policy_map": "{t}/map.json",
                         "authority_dir": "{t}/ma", "out_path": "{new}"},
    ("phr", "decrypt"): {"record": "{t}/rec.phr", "key_paths": ["{t}/alice-A.key"], "out_path": "{new}"},
    ("fhir", "encrypt"): {"bundle": "{t}/bundle.json", "policy_map": "{t}/fhir-map.json",
                          "authority_dir": "{t}/ma", "out_path": "{new}"},
    ("fhir", "decrypt"): {"container": "{t}/bundle.fhir", "key_paths": ["{t}/alice-A.key"],
                          "out_path": "{new}"},
    ("fhir", "index"): {"bundle": "{t}/bundle.json", "policy_map": "{t}/fhir-map.json",
                        "authority_dir": "{t}/ma", "coll": "{t}/fhir.coll", "owner_path": "{t}/own/owner.key",
                        "bundle_id": "b1", "replace": True},
    ("fhir", "search"): {"targets": ["{t}/fhir.coll"], "query": "doe", "identities": ["{t}/alice-A.key"],
                         "owner_paths": ["{t}/own/owner.pub"]},
    ("vault", "init"): {"path": "{new}", "master_path": "{t}/cp/master.key"},
    ("vault", "add"): {"path": "{t}/v", "src": "{t}/plain.txt", "public_path": "{t}/cp/public.key",
                       "policy": "doctor"},
    ("vault", "put"): {"path": "{t}/v", "file_id": "{id}", "src": "{t}/plain.txt",
                       "public_path": "{t}/cp/public.key", "policy": "doctor"},
    ("vault", "list"): {"path": "{t}/v"},
    ("vault", "issue"): {"path": "{t}/v", "master_path": "{t}/cp/master.key", "attrs": ["doctor"],
                         "out_path": "{new}"},
    ("vault", "get"): {"path": "{t}/v", "file_id": "{id}", "key_path": "{t}/doctor.key",
                       "out_path": "{new}"},
    ("vault", "update"): {"path": "{t}/v", "master_path": "{t}/cp/master.key"},
    ("revoke",): {"path": "{t}/v", "attr": "billing", "master_path": "{t}/cp/master.key"},
    ("owner", "keygen"): {"out_dir": "{new}"},
    ("owner", "fingerprint"): {"path": "{t}/own/owner.pub"},
    ("index", "keygen"): {"out_path": "{new}"},
    ("index", "build"): {"docs": ["{t}/docs"], "key_path": "{t}/s.key", "out_dir": "{new}"},
    ("index", "add"): {"index_dir": "{t}/idx", "docs": ["{t}/more/b.txt"], "key_path": "{t}/s.key"},
    ("index", "remove"): {"index_dir": "{t}/idx2", "doc_ids": ["gone"], "key_path": "{t}/s.key"},
    ("index", "compact"): {"index_dir": "{t}/idx", "key_path": "{t}/s.key"},
    ("index", "list"): {"index_dir": "{t}/idx", "key_path": "{t}/s.key"},
    ("search",): {"targets": ["{t}/idx"], "query": "card", "key_path": "{t}/s.key"},
    ("collection", "init"): {"coll": "{new}", "owner_path": "{t}/own/owner.key"},
    ("collection", "add"): {"coll": "{t}/coll", "docs": ["{t}/more/b.txt"], "policy": "doctor",
                            "public_path": "{t}/cp/public.key", "owner_path": "{t}/own/owner.key",
                            "replace": True},
    ("collection", "remove"): {"coll": "{t}/coll2", "doc_ids": ["gone"], "owner_path": "{t}/own/owner.key"},
    ("collection", "rekey"): {"coll": "{t}/coll", "owner_path": "{t}/own/owner.key",
                              "public_path": "{t}/cp/public.key", "vault_path": "{t}/v"},
    ("collection", "list"): {"coll": "{t}/coll", "owner_path": "{t}/own/owner.key"},
    ("policy", "check"): {"text": "doctor and nurse"},
    ("demo",): {},
    ("serve", "token", "create"): {"data": "{t}/sdata", "role": "reader", "out_path": "{new}"},
    ("serve", "token", "list"): {"data": "{t}/sdata"},
    ("serve", "token", "revoke"): {"data": "{t}/sdata", "token_id": "{token}"},
    ("audit", "verify"): {"log": "{t}/cp/audit.log", "key_path": "{t}/cp/public.key"},
    ("audit", "show"): {"log": "{t}/cp/audit.log"},
    ("cloud", "whoami"): {},
    ("cloud", "put"): {"kind": "abe", "name": "put.abe", "src": "{t}/file.abe"},
    ("cloud", "get"): {"kind": "abe", "name": "kept.abe", "out_path": "{new}"},
    ("cloud", "transform-key", "put"): {"name": "phone", "tk_path": "{t}/doctor.tk"},
    ("cloud", "transform-key", "delete"): {"name": "old-phone"},
    ("cloud", "transform"): {"name": "kept-phone", "obj": "kept.abe", "out_path": "{new}"},
    ("cloud", "list"): {"kind": "abe"},
    ("cloud", "delete"): {"kind": "abe", "name": "kept.abe"},
    ("cloud", "vault", "init"): {"name": "cvnew", "master_path": "{t}/cp/master.key"},
    ("cloud", "vault", "add"): {"name": "cv", "src": "{t}/plain.txt", "public_path": "{t}/cp/public.key",
                                "policy": "doctor"},
    ("cloud", "vault", "put"): {"name": "cv", "file_id": "{cid}", "src": "{t}/plain.txt",
                                "public_path": "{t}/cp/public.key", "policy": "doctor"},
    ("cloud", "vault", "list"): {"name": "cv"},
    ("cloud", "vault", "get"): {"name": "cv", "file_id": "{cid}", "key_path": "{t}/doctor.key",
                                "out_path": "{new}"},
    ("cloud", "vault", "delete"): {"name": "cv", "file_id": "{cid}"},
    ("cloud", "vault", "update"): {"name": "cv", "master_path": "{t}/cp/master.key"},
    ("cloud", "vault", "issue"): {"name": "cv", "master_path": "{t}/cp/master.key", "attrs": ["doctor"],
                                  "out_path": "{new}"},
    ("cloud", "revoke"): {"name": "cv", "attr": "billing", "master_path": "{t}/cp/master.key"},
    ("bulk", "encrypt"): {"src": "{t}/docs", "public_path": "{t}/cp/public.key", "policy": "doctor",
                          "out": "{new}", "workers": 0},
    ("bulk", "revoke"): {"vault": "{t}/v", "attr": "billing", "master_path": "{t}/cp/master.key",
                         "workers": 0},
    ("bulk", "update"): {"vault": "{t}/v", "master_path": "{t}/cp/master.key", "workers": 0},
    ("bulk", "index"): {"docs": ["{t}/docs"], "key_path": "{t}/s.key", "out_dir": "{new}", "workers": 0},
    ("bulk", "keygen"): {"master_path": "{t}/cp/master.key", "holder": ["bob: doctor"],
                         "out_dir": "{new}", "workers": 0},
    ("cloud", "index", "push"): {"index_dir": "{t}/idx", "name": "cidx"},
    ("cloud", "search"): {"name": "cidx", "pattern": "card", "key_path": "{t}/s.key"},
}


@dataclass
class World:
    """An authority with keys, an .abe file, a multi-authority record, a vault and an index,
    all made through the CLI."""

    t: Path
    file_id: str
    fresh: itertools.count  # type: ignore[type-arg]
    #: more placeholders: "{cid}" a file of the cloud vault, "{token}" a token id of {t}/sdata
    more: dict[str, str] = field(default_factory=dict)

    def expand(self, value: str) -> str:
        if value == "{new}":
            return str(self.t / f"new-{next(self.fresh)}")
        for name, text in self.more.items():
            value = value.replace("{" + name + "}", text)
        return value.replace("{t}", str(self.t)).replace("{id}", self.file_id)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    t = tmp_path_factory.mktemp("world")
    cp = t / "cp"
    ok(run("setup", "-o", cp))
    for name, attr in (("doctor", "doctor"), ("renewable", "nurse"), ("withdrawn", "nurse"),
                       ("nurse", "nurse")):
        ok(run("keygen", "-m", cp / "master.key", "-a", attr, "-o", t / f"{name}.key"))
    (t / "plain.txt").write_text("ward notes")
    ok(run("encrypt", "-k", cp / "public.key", "-p", "doctor", "-o", t / "file.abe", t / "plain.txt"))
    ok(run("key", "blind", "-i", t / "doctor.key", "--transformation-key", t / "doctor.tk",
           "--retrieval-key", t / "doctor.rk"))
    ok(run("precompute", "-k", cp / "public.key", "-p", "doctor", "--count", "1", "--pool-key",
           t / "pool.key", "-o", t / "first.pool"))
    ok(run("authority", "setup", "hospitalA", "-o", t / "ma"))
    ok(run("authority", "keygen", "-m", t / "ma" / "hospitalA.key", "--gid", "alice", "-a", "doctor",
           "-o", t / "alice-A.key"))
    (t / "rec.json").write_text(json.dumps({"profile": {"blood": "A+"}}))
    (t / "map.json").write_text(json.dumps({"sections": {"profile": "doctor@hospitalA"}}))
    ok(run("phr", "encrypt", t / "rec.json", "--policies", t / "map.json", "--authorities", t / "ma",
           "-o", t / "rec.phr"))
    (t / "bundle.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe"}]}}]}))
    (t / "fhir-map.json").write_text(json.dumps({"default": "doctor@hospitalA"}))
    ok(run("fhir", "encrypt", t / "bundle.json", "--policies", t / "fhir-map.json", "--authorities",
           t / "ma", "-o", t / "bundle.fhir"))
    ok(run("vault", "init", t / "v", "-m", cp / "master.key"))
    file_id = ok(run("vault", "add", t / "v", t / "plain.txt", "-k", cp / "public.key",
                     "-p", "doctor")).stdout.strip()
    for folder, name, text in (("docs", "a.txt", "cardiology consult"), ("more", "b.txt", "cardiac")):
        (t / folder).mkdir()
        (t / folder / name).write_text(text)
    ok(run("index", "keygen", "-o", t / "s.key"))
    ok(run("owner", "keygen", "-o", t / "own"))
    ok(run("fhir", "index", t / "bundle.json", "--policies", t / "fhir-map.json", "--authorities", t / "ma",
           "-c", t / "fhir.coll", "--owner-key", t / "own" / "owner.key", "--bundle-id", "b1"))
    ok(run("index", "build", t / "docs", "--key", t / "s.key", "-o", t / "idx"))
    ok(run("index", "build", t / "docs" / "a.txt", "--id", "gone", "--key", t / "s.key", "-o", t / "idx2"))
    for coll, doc_id in (("coll", "a"), ("coll2", "gone")):
        ok(run("collection", "init", t / coll, "--owner-key", t / "own" / "owner.key"))
        ok(run("collection", "add", t / coll, t / "docs" / "a.txt", "--id", doc_id, "-p", "doctor",
               "-k", cp / "public.key", "--owner-key", t / "own" / "owner.key"))
    (t / "a-directory").mkdir()
    (t / "a-file").write_text("not a directory")
    more = {"token": Principals(t / "sdata" / "server.sqlite").create("r", "reader")[0].id} \
        if (t / "sdata").mkdir() is None else {}
    server = Server(t / "cloud-data", ["--rate", "100000", "--burst", "100000"]).start()
    saved = {k: os.environ.get(k) for k in ("ABE_HEALTH_URL", "ABE_HEALTH_TOKEN")}
    os.environ.update(ABE_HEALTH_URL=server.url, ABE_HEALTH_TOKEN=server.tokens["authority"])
    try:  # the cloud commands' world: a vault with a file, an object, an index
        client = server.client("authority")
        master = read_key(cp / "master.key", expect="master")
        authority = ABE(read_key(cp / "public.key", expect="public"), master)
        client.vault("cv", create_for=authority,
                     state=AuthorityState(register_path_for(cp / "master.key"))).close()
        more["cid"] = client.vault("cv").add(io.BytesIO(b"ward notes"), "doctor",
                                             ABE(authority.public_key))
        client.put("abe", "kept.abe", (t / "file.abe").read_bytes())
        push_index(client, t / "idx", "cidx")
        from abe_health.devices import TransformationKey

        tk = TransformationKey.read(t / "doctor.tk")
        client.put_transform_key("kept-phone", tk)
        client.put_transform_key("old-phone", tk)
        yield World(t, file_id, itertools.count(), more)
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def unwritable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """A directory in which no file can be created: a read-only one, or /sys for root (whom file
    modes do not stop); None where there is none."""
    readonly = tmp_path_factory.mktemp("readonly")
    readonly.chmod(0o555)
    found = None
    for candidate in (readonly, Path("/sys")):
        try:
            with tempfile.TemporaryFile(dir=candidate):
                pass
        except OSError:
            found = candidate
            break
    yield found
    readonly.chmod(0o755)


def argv(path: tuple[str, ...], values: dict[str, Any]) -> list[str]:
    """The command line of `path` with these parameter values (options first, then arguments
    in their order)."""
    options: list[str] = []
    arguments: list[str] = []
    for param in command_at(path).params:
        if param.name not in values:
            continue
        value = values[param.name]
        items = value if isinstance(value, list) else [value]
        if isinstance(param, click.Option):
            if param.is_flag:
                options += [param.opts[0]] if value else []
            else:
                options += [x for item in items for x in (param.opts[0], str(item))]
        else:
            arguments += [str(item) for item in items]
    return [*path, *options, *arguments]


def is_path(param: click.Parameter, *, file: bool) -> bool:
    """Whether `param` takes a file (`file`) or a directory, as its click type says."""
    kind = param.type
    if not isinstance(kind, click.Path):
        return False
    return (kind.file_okay and not kind.dir_okay) if file else (kind.dir_okay and not kind.file_okay)


def test_every_command_has_a_recipe():
    assert sorted(RECIPES) == sorted(COMMANDS), "give every new command a valid invocation in RECIPES"
    for path in COMMANDS:
        for param in command_at(path).params:
            if isinstance(param, click.Option) and "--out" in param.opts and param.required:
                assert RECIPES[path].get(param.name) == "{new}", (path, param.name)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_walk_outputs_and_paths(world: World, unwritable: Path | None, path: tuple[str, ...]):
    """Outputs in a missing and in an unwritable directory; a directory for each file parameter
    and a file for each directory parameter: one error line naming the path, never a crash."""
    recipe = RECIPES[path]
    params = {p.name: p for p in command_at(path).params}
    variants: list[tuple[str, Any]] = []
    for name, value in recipe.items():
        if value == "{new}":
            variants.append((name, world.t / "missing" / f"x-{next(world.fresh)}"))
            if unwritable is not None:
                variants.append((name, unwritable / f"abe-health-{next(world.fresh)}"))
    for name, param in params.items():
        if is_path(param, file=True):
            variants.append((name, world.t / "a-directory"))
        elif is_path(param, file=False):
            variants.append((name, world.t / "a-file"))
    for name, bad in variants:
        values = {k: [world.expand(x) for x in v] if isinstance(v, list) else
                  world.expand(v) if isinstance(v, str) else v for k, v in recipe.items()}
        values[name] = [str(bad)] if params[name].multiple or params[name].nargs == -1 else str(bad)
        result = run(*argv(path, values))
        assert result.exit_code not in (0, errors.EXIT_INTERNAL), (name, bad, result.output)
        assert_one_error(result.stderr, result.output, mentions=str(bad))
    if variants:  # and the recipe itself works, so each failure above was the path's
        values = {k: [world.expand(x) for x in v] if isinstance(v, list) else
                  world.expand(v) if isinstance(v, str) else v for k, v in recipe.items()}
        ok(run(*argv(path, values)))


def test_os_errors_name_the_path_and_the_reason(world: World):
    missing = world.t / "missing" / "x.abe"
    result = run("encrypt", "-k", world.t / "cp" / "public.key", "-p", "doctor", "-o", missing,
                 world.t / "plain.txt")
    assert result.exit_code == 1
    assert assert_one_error(result.stderr) == f"error: {missing}: No such file or directory"
    result = run("setup", "-o", world.t / "a-file" / "auth")
    assert result.exit_code == 1
    assert assert_one_error(result.stderr) == f"error: {world.t}/a-file/auth: No such file or directory"
    result = run("encrypt", "-k", world.t / "cp" / "public.key", "-p", "doctor", world.t / "none")
    assert assert_one_error(result.stderr) == f"error: {world.t}/none: No such file or directory"


def test_os_error_without_a_path(world: World, monkeypatch: pytest.MonkeyPatch):
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "encrypt_to", full)
    result = run("encrypt", "-k", world.t / "cp" / "public.key", "-p", "doctor", "-o",
                 world.t / "full.abe", world.t / "plain.txt")
    assert result.exit_code == 1
    assert assert_one_error(result.stderr) == "error: No space left on device"


def test_usage_errors_exit_2_with_a_pointer_to_help():
    result = run("keygen", "-a", "doctor")
    assert result.exit_code == errors.EXIT_USAGE
    assert assert_one_error(result.stderr) == "error: Missing option '-m' / '--master'."
    assert result.stderr.splitlines()[-1] == "hint: see 'abe-health keygen --help'"
    assert run("vault", "nonsense").exit_code == 2
    bare = run("vault")  # a group without a command: its help, then one error line
    assert bare.exit_code in (0, 2)  # click before 8.2 shows the help and exits 0
    assert "Commands:" in bare.output and "Traceback" not in bare.output
    if bare.exit_code == 2:
        assert assert_one_error(bare.stderr) == "error: missing a command"


# -- exit statuses -------------------------------------------------------------------------------
def test_policy_not_satisfied_exits_3(world: World):
    result = run("decrypt", "-i", world.t / "nurse.key", world.t / "file.abe")
    assert result.exit_code == errors.EXIT_NOT_SATISFIED
    assert assert_one_error(result.stderr) == 'error: key attributes do not satisfy policy "doctor"'
    assert result.stdout == ""
    several = run("decrypt", "-i", world.t / "nurse.key", "-i", world.t / "renewable.key",
                  world.t / "file.abe")
    assert several.exit_code == errors.EXIT_NOT_SATISFIED  # NoIdentityMatched
    line = assert_one_error(several.stderr)
    assert line.startswith("error: no identity opened this file: ")
    assert line.count("do not satisfy policy") == 2
    vault = run("vault", "get", world.t / "v", world.file_id, "-i", world.t / "nurse.key")
    assert vault.exit_code == errors.EXIT_NOT_SATISFIED


def test_busy_exits_4(world: World, monkeypatch: pytest.MonkeyPatch):
    """A second writer gives up after its timeout (shortened here) while the test holds the lock."""
    monkeypatch.setattr(vault_module, "exclusive", lambda path: locks.exclusive(path, timeout=0.2))
    with locks.exclusive(world.t / "v" / ".lock"):
        result = run("vault", "add", world.t / "v", world.t / "plain.txt",
                     "-k", world.t / "cp" / "public.key", "-p", "doctor")
    assert result.exit_code == errors.EXIT_BUSY
    line = assert_one_error(result.stderr)
    assert line.startswith(f"error: {world.t}/v is busy: another writer holds .lock")
    assert result.stderr.splitlines()[-1].startswith("hint: another abe-health command is changing it")


def test_keyboard_interrupt_exits_130(world: World, monkeypatch: pytest.MonkeyPatch):
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files, "inspect_file", interrupted)
    result = run("inspect", world.t / "file.abe")
    assert result.exit_code == errors.EXIT_INTERRUPTED
    assert assert_one_error(result.stderr) == "error: interrupted"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the lock wait")
def test_ctrl_c_while_waiting_for_the_lock_exits_130(world: World):
    """A real SIGINT to `python -m abe_health.cli` waiting for the vault's lock."""
    lock = world.t / "v" / ".lock"
    with locks.exclusive(lock):
        proc = subprocess.Popen([*CLI, "vault", "add", str(world.t / "v"), str(world.t / "plain.txt"),
                                 "-k", str(world.t / "cp" / "public.key"), "-p", "doctor"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while not _holds_open(proc.pid, lock):  # it opened the lock file: it is waiting
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == errors.EXIT_INTERRUPTED, err
    assert out == b""
    assert assert_one_error(err.decode()) == "error: interrupted"


def _holds_open(pid: int, path: Path) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


def test_internal_errors_exit_70_with_type_and_message(world: World, monkeypatch: pytest.MonkeyPatch):
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(files, "inspect_file", broken)
    result = run("inspect", world.t / "file.abe")
    assert result.exit_code == errors.EXIT_INTERNAL
    assert assert_one_error(result.stderr) == "error: internal error: RuntimeError: boom"
    hint = result.stderr.splitlines()[-1]
    assert hint.startswith("hint: this is a bug in abe-health") and "ABE_HEALTH_DEBUG=1" in hint
    monkeypatch.setenv("ABE_HEALTH_DEBUG", "1")
    result = run("inspect", world.t / "file.abe")
    assert result.exit_code == errors.EXIT_INTERNAL
    assert "Traceback" in result.stderr and "RuntimeError: boom" in result.stderr


# -- hints, escaping -----------------------------------------------------------------------------
def test_hints_are_keyed_by_error_type_and_case(world: World, monkeypatch: pytest.MonkeyPatch):
    """A library error says what went wrong; the hint naming a flag comes from the CLI's table."""
    refusal = NotRenewable("issuance 1234 has no expiring attribute: there is nothing to renew")
    refusal.case = "no-expiring"  # type: ignore[attr-defined]

    def refuse(*args: object) -> None:
        raise refusal

    monkeypatch.setattr(cli_keys, "renew_key", refuse)
    result = run("renew", "-m", world.t / "cp" / "master.key", "-i", world.t / "nurse.key",
                 "--until", "2031-01-01", "-o", world.t / "never.key")
    assert result.exit_code == 1
    assert assert_one_error(result.stderr) == f"error: {refusal}"
    assert result.stderr.splitlines()[-1] == f"hint: {errors.HINTS[(NotRenewable, 'no-expiring')]}"
    assert errors.hint_for(NotRenewable("x")) is None  # no case, no hint: the message stands alone
    assert errors.hint_for(locks.Busy("x")) == errors.HINTS[(locks.Busy, None)]


def test_error_lines_escape_control_characters():
    result = run("policy", "check", "doctor and \x1b[2J")
    assert result.exit_code == 1
    line = assert_one_error(result.stderr)
    assert "\x1b" not in result.stderr and "\\x1b[2J" in line


def test_every_option_has_help_and_every_argument_is_named_in_the_help():
    for path in COMMANDS:
        command = command_at(path)
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, (path, param.opts)
            else:
                name = param.human_readable_name.strip("[]").rstrip(".")
                assert name in (command.help or ""), (path, name)


# -- passphrases ---------------------------------------------------------------------------------
@pytest.fixture
def protected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An authority whose master key is protected by the passphrase in tmp/pw (cheap scrypt)."""
    monkeypatch.setattr(keys_module, "SCRYPT_N", 2**10)
    (tmp_path / "pw").write_text("s3cret\n")
    ok(run("setup", "-o", tmp_path / "a", "--passphrase-file", tmp_path / "pw"))
    return tmp_path / "a" / "master.key"


def test_protected_key_without_a_terminal_is_refused_with_a_hint(protected: Path, tmp_path: Path):
    result = run("keygen", "-m", protected, "-a", "x", "-o", tmp_path / "k")
    assert result.exit_code == 1
    assert assert_one_error(result.stderr) == f"error: {protected}: this key is protected by a passphrase"
    assert result.stderr.splitlines()[-1] == ("hint: give --passphrase-file FILE, or run the command "
                                              "on a terminal to be asked for it")
    result = run("vault", "init", tmp_path / "v", "-m", protected)
    assert result.exit_code == 1 and "--passphrase-file" in result.stderr
    ok(run("vault", "init", tmp_path / "v", "-m", protected, "--passphrase-file", tmp_path / "pw"))


def test_protected_key_is_asked_for_on_a_terminal(protected: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(common, "stdin_is_terminal", lambda: True)
    result = run("keygen", "-m", protected, "-a", "x", "-o", tmp_path / "k", input="s3cret\n")
    assert result.exit_code == 0, result.output
    assert f"passphrase for {protected}" in result.stderr and "s3cret" not in result.output
    result = run("keygen", "-m", protected, "-a", "x", "-o", tmp_path / "k2", input="wrong\n")
    assert result.exit_code == 1
    assert "wrong passphrase" in assert_one_error(result.stderr)
    info = run("inspect", protected, input="s3cret\n")
    assert info.exit_code == 0 and "kind: master key" in info.stdout


def test_setup_passphrase_prompt_asks_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(keys_module, "SCRYPT_N", 2**10)
    result = run("setup", "-o", tmp_path / "a", "--passphrase-prompt")
    assert result.exit_code == 1  # no terminal to ask on
    assert assert_one_error(result.stderr) == ("error: cannot ask for a passphrase: standard input "
                                               "is not a terminal")
    assert not (tmp_path / "a").exists()
    monkeypatch.setattr(common, "stdin_is_terminal", lambda: True)
    ok(run("setup", "-o", tmp_path / "a", "--passphrase-prompt", input="pw1\npw2\npw1\npw1\n"))
    assert common.is_protected(tmp_path / "a" / "master.key")
    ok(run("keygen", "-m", tmp_path / "a" / "master.key", "-a", "x", "-o", tmp_path / "k", input="pw1\n"))
    (tmp_path / "pw").write_text("pw1\n")
    both = run("setup", "-o", tmp_path / "b", "--passphrase-prompt", "--passphrase-file", tmp_path / "pw")
    assert both.exit_code == 2


# -- binary output to a terminal -----------------------------------------------------------------
def on_terminal(*args: object) -> tuple[int, bytes, str]:
    """Run `abe-health ARGS` with stdout a pseudo-terminal; (status, what the terminal got, stderr)."""
    master, slave = os.openpty()
    proc = subprocess.Popen([*CLI, *map(str, args)], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=subprocess.PIPE)
    os.close(slave)
    shown = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            elif proc.poll() is not None:
                break
        err = proc.stderr.read().decode() if proc.stderr else ""
        proc.wait(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, shown, err


def test_encrypt_refuses_binary_output_to_a_terminal(world: World):
    public, plain = world.t / "cp" / "public.key", world.t / "plain.txt"
    status, shown, err = on_terminal("encrypt", "-k", public, "-p", "doctor", plain)
    assert status == 1 and shown == b""
    assert assert_one_error(err) == "error: refusing to write binary ciphertext to a terminal"
    assert err.splitlines()[-1] == ("hint: give -o FILE, pipe the output, or add --armor "
                                    "(-o - writes it anyway)")
    status, shown, err = on_terminal("encrypt", "-k", public, "-p", "doctor", "--armor", plain)
    assert status == 0, err
    assert shown.startswith(b"-----BEGIN ABE FILE-----")
    status, shown, err = on_terminal("encrypt", "-k", public, "-p", "doctor", "-o", "-", plain)
    assert status == 0 and shown.startswith(b"ABE2"), err


def test_decrypt_writes_the_users_data_to_a_terminal(world: World):
    status, shown, err = on_terminal("decrypt", "-i", world.t / "doctor.key", world.t / "file.abe")
    assert status == 0, err
    assert shown == b"ward notes"


def test_python_dash_m_reports_like_the_console_script(world: World):
    proc = subprocess.run([*CLI, "decrypt", "-i", str(world.t / "nurse.key"), str(world.t / "file.abe")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == errors.EXIT_NOT_SATISFIED
    assert proc.stderr == 'error: key attributes do not satisfy policy "doctor"\n'
