"""Charm-Crypto's own schemes, driven the same way as ours, when Charm is installed.

Curves follow the published peer figures: AC17 (FAME) on BN254, BSW07 and Waters09 on SS512
(both need a symmetric pairing). Charm hashes attributes on every call; ours caches them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PEERS = {"fame": "ac17", "bsw07": "bsw07", "waters11": "waters09", "rw15": "maabe_rw15"}
#: DESIGN.md, measured on this machine class (Charm 0.62 on PBC 1.0.0, median ms, AND of 50)
PUBLISHED_N50 = {
    "ac17": {"keygen": 317.0, "encrypt": 236.0, "decrypt": 100.0},
    "bsw07": {"keygen": 140.0, "encrypt": 144.0, "decrypt": 65.0},
    "waters09": {"keygen": 135.0, "encrypt": 222.0, "decrypt": 141.0},
    "maabe_rw15": {"keygen": 212.0, "encrypt": 545.0, "decrypt": 2672.0},
}


def charm_available() -> bool:
    try:
        import charm.toolbox.pairinggroup  # noqa: F401
    except ImportError:
        return False
    return True


def charm_ops(peer: str, n: int, authorities: int = 2) -> dict[str, Callable[[], Any]] | None:
    """keygen / encrypt / decrypt callables for an AND of n attributes, or None without Charm."""
    if not charm_available():
        return None
    from charm.toolbox.pairinggroup import GT, PairingGroup

    if peer == "maabe_rw15":
        return _charm_rw15(n, authorities)

    attrs = [f"ATTR{i}" for i in range(n)]
    policy = "(" + " and ".join(attrs) + ")"
    if peer == "ac17":
        from charm.schemes.abenc.ac17 import AC17CPABE

        group = PairingGroup("BN254")
        scheme = AC17CPABE(group, 2)
        pk, msk = scheme.setup()
        keygen = lambda: scheme.keygen(pk, msk, attrs)  # noqa: E731
        encrypt = lambda m: scheme.encrypt(pk, m, policy)  # noqa: E731
        decrypt = lambda ct, key: scheme.decrypt(pk, ct, key)  # noqa: E731
    else:
        group = PairingGroup("SS512")
        if peer == "bsw07":
            from charm.schemes.abenc.abenc_bsw07 import CPabe_BSW07

            scheme = CPabe_BSW07(group)
            pk, msk = scheme.setup()
        else:
            from charm.schemes.abenc.abenc_waters09 import CPabe09

            scheme = CPabe09(group)
            msk, pk = scheme.setup()
        keygen = lambda: scheme.keygen(pk, msk, attrs)  # noqa: E731
        encrypt = lambda m: scheme.encrypt(pk, m, policy)  # noqa: E731
        decrypt = lambda ct, key: scheme.decrypt(pk, key, ct)  # noqa: E731
    msg = group.random(GT)
    key = keygen()
    ct = encrypt(msg)
    if decrypt(ct, key) != msg:
        raise RuntimeError(f"Charm {peer} failed to decrypt its own ciphertext")
    return {"keygen": keygen, "encrypt": lambda: encrypt(msg), "decrypt": lambda: decrypt(ct, key)}


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

    def keygen() -> dict:
        merged: dict = {}
        for name in names:
            merged.update(scheme.multiple_attributes_keygen(gp, keys[name][1], "alice", attrs[name]))
        return {"GID": "alice", "keys": merged}

    msg = group.random(GT)
    user = keygen()
    ct = scheme.encrypt(gp, pks, msg, policy)
    if scheme.decrypt(gp, user, ct) != msg:
        raise RuntimeError("Charm MaabeRW15 failed to decrypt its own ciphertext")
    return {"keygen": keygen, "encrypt": lambda: scheme.encrypt(gp, pks, msg, policy),
            "decrypt": lambda: scheme.decrypt(gp, user, ct)}
