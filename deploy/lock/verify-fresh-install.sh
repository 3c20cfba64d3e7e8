#!/usr/bin/env bash
# The fresh-host promise, proved (run by .ci/run; docs/adr/0014): Crossbill installs from the
# lock files with no compiler, no -dev packages and, once a wheelhouse is filled, no registry.
#
#   deploy/lock/verify-fresh-install.sh [PYTHON]
#
# 1. fills a wheelhouse with deploy/lock/wheelhouse.sh (wheels only, hashes checked);
# 2. makes a throwaway virtualenv and installs deploy/lock/runtime.txt from that wheelhouse alone
#    (deploy/lock/pip-sync.sh: --no-index, wheels only but the two pure-Python sdists, CC=false);
# 3. builds Crossbill's wheel with the locked setuptools (CC=false) and installs it offline, as
#    deploy/install.sh does;
# 4. runs what a node needs at start: the CLI, LevelDB, libp2p's key code (Ed25519, and the
#    ECDSA/secp256r1 path that uses the fastecdsa override), Noise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
py=${1:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
step() { printf 'verify-fresh-install: %s\n' "$*" >&2; }

step "filling a wheelhouse from deploy/lock/runtime.txt and build.txt"
deploy/lock/wheelhouse.sh "$tmp/wheels" >"$tmp/wheelhouse.log" 2>&1 \
  || { tail -n 30 "$tmp/wheelhouse.log" >&2; exit 1; }
sdists=$(cd "$tmp/wheels" && ls | grep -v '\.whl$' || true)
expected=$'python-baseconv-1.2.2.tar.gz\nvarint-1.0.2.tar.gz'
if [ "$sdists" != "$expected" ]; then
  echo "verify-fresh-install: source distributions other than the two pure-Python ones" \
       "allowed (docs/adr/0014): '$sdists'" >&2
  exit 1
fi

step "installing the runtime lock offline into a throwaway virtualenv (no compiler)"
"$py" -m venv "$tmp/venv"
# Every compiler and linker pip or setuptools could reach is made to fail.
mkdir "$tmp/nocc"
for tool in cc gcc g++ c++ clang ld; do
  printf '#!/bin/sh\necho "%s: compiling is not allowed here" >&2\nexit 1\n' "$tool" \
    >"$tmp/nocc/$tool"
  chmod +x "$tmp/nocc/$tool"
done
export PATH="$tmp/nocc:$PATH"
deploy/lock/pip-sync.sh "$tmp/venv/bin/python" deploy/lock/runtime.txt --wheelhouse "$tmp/wheels" \
  >"$tmp/install.log" 2>&1 || { tail -n 30 "$tmp/install.log" >&2; exit 1; }

step "building Crossbill's wheel and installing it offline"
mkdir "$tmp/src"  # a copy: setuptools leaves build/ and *.egg-info/ beside the sources
cp -r pyproject.toml README.md node protocol "$tmp/src/"
CC=false CXX=false "$tmp/venv/bin/python" -m pip wheel --disable-pip-version-check --no-input \
  --no-deps --no-build-isolation --no-index -w "$tmp/dist" "$tmp/src" >"$tmp/wheel.log" 2>&1 \
  || { tail -n 30 "$tmp/wheel.log" >&2; exit 1; }
"$tmp/venv/bin/python" -m pip install --disable-pip-version-check --no-input --no-deps \
  --no-index "$tmp"/dist/crossbill-*.whl >>"$tmp/install.log" 2>&1 \
  || { tail -n 30 "$tmp/install.log" >&2; exit 1; }

step "running the installed node's start-up paths"
"$tmp/venv/bin/crossbill" --help >/dev/null
(cd "$tmp" && "$tmp/venv/bin/python" - <<'PY'
import tempfile

import node.storage.store  # plyvel or plyvel-next, whichever this Python has
from libp2p.crypto.ecc import ECCPublicKey
from libp2p.crypto.ecc import create_new_key_pair as ecc_pair
from libp2p.crypto.ed25519 import create_new_key_pair as ed_pair
from libp2p.crypto.key_exchange import create_ephemeral_key_pair
from libp2p.crypto.serialization import deserialize_public_key
from libp2p.security.noise.transport import Transport  # noqa: F401

db = node.storage.store.plyvel.DB(tempfile.mkdtemp(), create_if_missing=True)
db.put(b"k", b"v", sync=True)
assert db.get(b"k") == b"v"
db.close()
ed = ed_pair()
sig = ed.private_key.sign(b"crossbill")
pub = deserialize_public_key(ed.public_key.serialize())
assert pub.verify(b"crossbill", sig) and not pub.verify(b"crossbill!", sig)
# What libp2p does with fastecdsa (the override): P-256 keys in SEC1 form, and ECDH.
ecc = ecc_pair("P-256").public_key.to_bytes()
assert ECCPublicKey.from_bytes(ecc, "P-256").to_bytes() == ecc
mine, shared = create_ephemeral_key_pair("P-256")
theirs, their_shared = create_ephemeral_key_pair("P-256")
assert shared(theirs.to_bytes()) == their_shared(mine.to_bytes())
print("verify-fresh-install: CLI, LevelDB, Ed25519, ECDSA P-256 and ECDH work")
PY
)
step "ok: $(ls "$tmp/wheels" | wc -l) locked files, nothing compiled"
