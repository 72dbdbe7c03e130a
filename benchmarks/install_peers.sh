#!/usr/bin/env bash
# Optional: install the peers the benchmark suites compare against (Charm-Crypto 0.62 on PBC 1.0.0),
# as a reader would on Debian or Ubuntu. Nothing here is needed by abe-health itself or its tests:
# without Charm the suites say so and skip Charm's rows.
#
#   bash benchmarks/install_peers.sh            # into the active Python environment
#
# Steps: the build tools and GMP from the distribution; PBC 1.0.0 built from its source release
# (no package registry ships PBC; PBC_SOURCE may point at an unpacked source tree or a tarball
# you obtained yourself); then Charm from PyPI, built against that PBC without build isolation
# (its setup imports the already-installed build tools).
set -euo pipefail

PBC_VERSION=1.0.0
PBC_URL="${PBC_URL:-https://crypto.stanford.edu/pbc/files/pbc-${PBC_VERSION}.tar.gz}"
PREFIX="${PREFIX:-/usr/local}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

$SUDO apt-get update
$SUDO apt-get install -y build-essential flex bison libgmp-dev autoconf automake libtool \
    autoconf-archive

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -n "${PBC_SOURCE:-}" ] && [ -d "$PBC_SOURCE" ]; then
    cp -r "$PBC_SOURCE" "$work/pbc"
elif [ -n "${PBC_SOURCE:-}" ]; then
    mkdir "$work/pbc" && tar xzf "$PBC_SOURCE" -C "$work/pbc" --strip-components=1
else
    curl -fsSL "$PBC_URL" -o "$work/pbc.tar.gz"
    mkdir "$work/pbc" && tar xzf "$work/pbc.tar.gz" -C "$work/pbc" --strip-components=1
fi
cd "$work/pbc"
if [ ! -x configure ]; then ./setup; fi   # a git checkout: generate configure first
./configure --prefix="$PREFIX"
make -j"$(nproc)"
$SUDO make install
$SUDO ldconfig

python -m pip install setuptools wheel pyparsing
python -m pip install --no-build-isolation "charm-crypto-framework==0.62"
python - <<'PY'
from charm.toolbox.pairinggroup import PairingGroup
PairingGroup("BN254")
print("Charm is installed: python -m benchmarks compare will run it live")
PY
