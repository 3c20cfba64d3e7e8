#!/usr/bin/env bash
# Install a lock file into a virtualenv exactly (docs/adr/0014): every artifact checked against
# the lock's sha256, wheels only, no dependency resolution. Used by ./dev, .ci/run and
# deploy/install.sh, so a fresh machine gets the versions CI tested.
#
#   deploy/lock/pip-sync.sh PYTHON LOCK [--wheelhouse DIR]
#
# PYTHON is the virtualenv's interpreter, LOCK one of deploy/lock/{runtime,dev}.txt. With
# --wheelhouse, nothing is fetched: every file comes from DIR (deploy/lock/wheelhouse.sh fills
# it), for hosts without registry access.
# First pip installs build.txt (uv, setuptools, wheel), then uv installs LOCK. Two dependencies
# publish no wheel: varint and python-baseconv, pure Python. They are the only source builds
# allowed, with setuptools from build.txt and with the C compiler disabled, so a dependency that
# ever needs compiling fails here instead of silently needing gcc on a bank's host.
set -euo pipefail
usage() { echo "usage: $0 PYTHON LOCK [--wheelhouse DIR]" >&2; exit 2; }
[ $# -eq 2 ] || [ $# -eq 4 ] || usage
py=$1 lock=$2
pip_src=() uv_src=()
if [ $# -eq 4 ]; then
  [ "$3" = --wheelhouse ] || usage
  pip_src=(--no-index --find-links "$4")
  uv_src=(--offline --no-index --find-links "$4")
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$py" -m pip install --disable-pip-version-check --no-input --require-hashes --no-deps \
  --only-binary=:all: "${pip_src[@]}" -r "$here/build.txt"
uv=$(dirname "$py")/uv
# --compile-bytecode: uv writes no .pyc files by default, and where PYTHONDONTWRITEBYTECODE=1
# is set (this project's machines) no process writes any either, so a node compiled every
# module it imported at every start, 3.4 s of CPU (docs/adr/0038). The service's release
# directory is read-only to it (deploy/), so the bytecode must come with the install.
CC=false CXX=false LDSHARED=false "$uv" pip install --python "$py" --require-hashes --no-deps \
  --only-binary :all: --no-binary varint --no-binary python-baseconv --no-build-isolation \
  --compile-bytecode "${uv_src[@]}" -r "$lock"
