#!/usr/bin/env bash
# Fill a wheelhouse for hosts without registry access (docs/adr/0014, deploy/README.md):
#
#   deploy/lock/wheelhouse.sh DIR [--python-version 3.11] [--platform manylinux2014_x86_64 ...]
#
# downloads every artifact deploy/lock/runtime.txt and build.txt pin (checked against their
# hashes) for the target interpreter and platform (default: this machine's), so that
# `deploy/install.sh --wheelhouse DIR crossbill-*.whl` installs with --no-index. Run it on a
# machine with registry access and the same CPU architecture as the hosts.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [pip download options]" >&2; exit 2; }
dir=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$dir"
get=(python3 -m pip download --disable-pip-version-check --no-input --require-hashes --no-deps
     -d "$dir")
"${get[@]}" --only-binary=:all: "$@" -r "$here/build.txt"
"${get[@]}" --only-binary=:all: --no-binary=varint,python-baseconv "$@" -r "$here/runtime.txt"
echo "wheelhouse.sh: $(ls "$dir" | wc -l) files in $dir"
