"""Charm-Crypto's own schemes, driven the same way as ours, when Charm is installed.

Peers per scheme of ours, each on a named curve (a row always says both curves):
- FAME: Charm's AC17 (the same scheme, k = 2) on BN254;
- BSW07 and Waters11: Charm's asymmetric `BSW07` and `Waters11` on BN254 (like with like: an
  asymmetric curve, as ours), and the symmetric `CPabe_BSW07` / `CPabe09` on SS512 that the older
  figures used (a weaker, symmetric curve: shown for continuity, labelled so);
- RW15: Charm's MaabeRW15 on BN254.
Charm hashes attributes on every call; ours caches them (the cold figures of the `abe` suite show
ours with an empty cache). Install Charm with `bash benchmarks/install_peers.sh` (optional).

`charm_ops` returns keygen / encrypt / decrypt callables and `decrypt_e2e`, the end-to-end twin of
decrypt: every group element of the ciphertext is decoded from bytes inside the timed call, then
decrypted (Charm cannot serialize an AC17 ciphertext's policy tree, so the parsed policy object is
reused: the twin leaves out only that and the payload's AES, which costs microseconds).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: our scheme -> Charm peers (name, curve); the first is the headline peer
PEERS: dict[str, list[str]] = {
    "fame": ["ac17"],
    "bsw07": ["bsw07_bn254", "bsw07_ss512"],
    "waters11": ["waters11_bn254", "waters09_ss512"],
    "rw15": ["maabe_rw15"],
}
PEER_CURVE = {"ac17": "BN254", "bsw07_bn254": "BN254", "bsw07_ss512": "SS512",
              "waters11_bn254": "BN254", "waters09_ss512": "SS512", "maabe_rw15": "BN254"}
#: curve -> (kind, security level as usually estimated today)
CURVES = {
    "BLS12-381": ("asymmetric (Type III)", "about 117-120 bits (designed for 128)"),
    "BN254": ("asymmetric (Type III)", "about 100 bits (designed for 128; lowered by TNFS)"),
    "SS512": ("symmetric (Type I), embedding degree 2", "about 80 bits (1024-bit GT)"),
}
#: ../shared/DESIGN.md, measured on this machine class (Charm 0.62 on PBC 1.0.0, median ms,
#: AND of 50); printed only for peers that did not run live
PUBLISHED_N50 = {
    "ac17": {"keygen": 317.0, "encrypt": 236.0, "decrypt": 100.0},
    "bsw07_ss512": {"keygen": 140.0, "encrypt": 144.0, "decrypt": 65.0},
    "waters09_ss512": {"keygen": 135.0, "encrypt": 222.0, "decrypt": 141.0},
    "maabe_rw15": {"keygen": 212.0, "encrypt": 545.0, "decrypt": 2672.0},
}
PUBLISHED_SOURCE = "published (../shared/DESIGN.md: Charm 0.62 on PBC 1.0.0, this machine class)"
LIVE = "measured live"


def curve_label(curve: str) -> str:
    """`BN254 (asymmetric (Type III), about 100 bits ...)`."""
    kind, level = CURVES[curve]
    return f"{curve} ({kind}, {level})"


def charm_available() -> bool:
    try:
        import charm.toolbox.pairinggroup  # noqa: F401
    except ImportError:
        return False
    return True


def charm_version() -> str | None:
    """The installed Charm's version, or None."""
    import importlib.metadata

    try:
        return importlib.metadata.version("charm-crypto-framework")
    except importlib.metadata.PackageNotFoundError:
        return None


def _e2e(group: Any, ct: dict[str, Any], decrypt: Callable[[dict[str, Any]], Any]) -> Callable[[], Any]:
    """decrypt after decoding every group element of `ct` from its bytes (the end-to-end twin)."""
    from charm.toolbox.pairinggroup import pc_element

    def encode(value: Any) -> Any:
        if isinstance(value, pc_element):
            return ("e", group.serialize(value))
        if isinstance(value, dict):
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [encode(v) for v in value]
        return ("o", value)

    def decode(value: Any) -> Any:
        if isinstance(value, tuple):
            return group.deserialize(value[1]) if value[0] == "e" else value[1]
        if isinstance(value, dict):
            return {k: decode(v) for k, v in value.items()}
        return [decode(v) for v in value]

    stored = encode(ct)
    return lambda: decrypt(decode(stored))


def charm_ops(peer: str, n: int, authorities: int = 2) -> dict[str, Callable[[], Any]] | None:
    """keygen / encrypt / decrypt / decrypt_e2e callables for an AND of n attributes, or None
    without Charm."""
    if not charm_available():
        return None
    from charm.toolbox.pairinggroup import GT, PairingGroup

    if peer == "maabe_rw15":
        return _charm_rw15(n, authorities)
    group = PairingGroup(PEER_CURVE[peer])
    attrs = [f"ATTR{i}" for i in range(n)]
    if peer == "ac17":
        from charm.schemes.abenc.ac17 import AC17CPABE

        scheme: Any = AC17CPABE(group, 2)
        pk, msk = scheme.setup()
        decrypt = lambda ct, key: scheme.decrypt(pk, ct, key)  # noqa: E731
    elif peer == "bsw07_bn254":
        from charm.schemes.abenc.bsw07 import BSW07

        scheme = BSW07(group)
        pk, msk = scheme.setup()
        decrypt = lambda ct, key: scheme.decrypt(pk, ct, key)  # noqa: E731
    elif peer == "waters11_bn254":
        from charm.schemes.abenc.waters11 import Waters11

        scheme = Waters11(group, n)  # small universe: attributes are the indices 1..n
        attrs = [str(i + 1) for i in range(n)]
        pk, msk = scheme.setup()
        decrypt = lambda ct, key: scheme.decrypt(pk, ct, key)  # noqa: E731
    elif peer == "bsw07_ss512":
        from charm.schemes.abenc.abenc_bsw07 import CPabe_BSW07

        scheme = CPabe_BSW07(group)
        pk, msk = scheme.setup()
        decrypt = lambda ct, key: scheme.decrypt(pk, key, ct)  # noqa: E731
    elif peer == "waters09_ss512":
        from charm.schemes.abenc.abenc_waters09 import CPabe09

        scheme = CPabe09(group)
        msk, pk = scheme.setup()
        decrypt = lambda ct, key: scheme.decrypt(pk, key, ct)  # noqa: E731
    else:
        raise ValueError(f"unknown peer {peer!r}")
    policy = "(" + " and ".join(attrs) + ")"
    msg = group.random(GT)
    key = scheme.keygen(pk, msk, attrs)
    ct = scheme.encrypt(pk, msg, policy)
    if decrypt(ct, key) != msg:
        raise RuntimeError(f"Charm {peer} failed to decrypt its own ciphertext")
    return {"keygen": lambda: scheme.keygen(pk, msk, attrs),
            "encrypt": lambda: scheme.encrypt(pk, msg, policy),
            "decrypt": lambda: decrypt(ct, key),
            "decrypt_e2e": _e2e(group, ct, lambda c: decrypt(c, key))}


def _charm_rw15(n: int, authorities: int) -> dict[str, Callable[[], Any]]:
    """Charm's MaabeRW15 on BN254: n attributes spread over `authorities` authorities."""
    from charm.schemes.abenc.abenc_maabe_rw15 import MaabeRW15
    from charm.toolbox.pairinggroup import GT, PairingGroup

    group = PairingGroup("BN254")
    scheme = MaabeRW15(group)
    gp = scheme.setup()
    names = [f"AUTH{j}" for j in range(authorities)]
    keys = {name: scheme.authsetup(gp, name) for name in names}
    pks = {name: keys[name][0] for name in names}
    attrs = {name: [f"ATTR{i}@{name}" for i in range(n) if i % authorities == j]
             for j, name in enumerate(names)}
    policy = "(" + " and ".join(a for name in names for a in attrs[name]) + ")"

    def keygen() -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for name in names:
            merged.update(scheme.multiple_attributes_keygen(gp, keys[name][1], "alice", attrs[name]))
        return {"GID": "alice", "keys": merged}

    msg = group.random(GT)
    user = keygen()
    ct = scheme.encrypt(gp, pks, msg, policy)
    if scheme.decrypt(gp, user, ct) != msg:
        raise RuntimeError("Charm MaabeRW15 failed to decrypt its own ciphertext")
    return {"keygen": keygen, "encrypt": lambda: scheme.encrypt(gp, pks, msg, policy),
            "decrypt": lambda: scheme.decrypt(gp, user, ct),
            "decrypt_e2e": _e2e(group, ct, lambda c: scheme.decrypt(gp, user, c))}
