#!/usr/bin/env bash
# Re-resolve the lock files from pyproject.toml (docs/adr/0014). An upgrade of any dependency is
# a reviewed change to deploy/lock/*.txt: run this, read the diff, run ./dev test, commit.
#
#   deploy/lock/update.sh                  resolve again, keeping versions where still allowed
#   deploy/lock/update.sh --upgrade        take the newest versions pyproject.toml allows
#   deploy/lock/update.sh --upgrade-package NAME   one package only
#
# The files are universal (CPython 3.11 to 3.14, any platform pip can match) and carry the
# sha256 of every artifact of each pinned version; ./dev, .ci/run and deploy/install.sh install
# them with --require-hashes and wheels only (deploy/lock/pip-sync.sh). uv does the resolving (it
# understands overrides): the version build.txt pins, in a throwaway virtualenv. The dev lock
# also carries the `plot` extra (matplotlib, for `crossbill bench --report`); runtime.txt does not.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --disable-pip-version-check --require-hashes --no-deps \
  --only-binary=:all: -r build.txt
uv=$tmp/venv/bin/uv
common=(--universal --python-version 3.11 --generate-hashes --quiet
        --custom-compile-command deploy/lock/update.sh
        --override overrides.txt --only-binary :all:
        --no-binary varint --no-binary python-baseconv "$@")
"$uv" pip compile "${common[@]}" build.in -o build.txt
"$uv" pip compile "${common[@]}" ../../pyproject.toml -o runtime.txt
"$uv" pip compile "${common[@]}" --extra test --extra plot ../../pyproject.toml -o dev.txt
echo "deploy/lock: build.txt, runtime.txt and dev.txt written; review the diff before committing"
