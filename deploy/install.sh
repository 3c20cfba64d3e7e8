#!/usr/bin/env bash
# Install, upgrade or roll back the Crossbill node of this host (one node per host, run by
# systemd as user crossbill). See deploy/README.md for the file layout and the whole flow.
#
#   deploy/install.sh [OPTIONS] SOURCE   install SOURCE (a wheel, or a source directory holding
#                                        pyproject.toml) as a new release and switch to it
#   deploy/install.sh --rollback         switch back to the previous release
#   deploy/install.sh --status           releases, the current one, and the service's state
#
# Each release is its own virtualenv, /opt/crossbill/releases/<UTC time>; /opt/crossbill/venv
# is a symlink to the current one (the unit runs /opt/crossbill/venv/bin/crossbill) and
# /opt/crossbill/previous to the one before. An upgrade builds the new release beside the
# running one, swaps the symlink, restarts the service and waits for the node's /readyz on its
# metrics address; if the node is not ready in time it swaps back and restarts the previous
# release. Running the script again is safe: users, directories, modes and the unit are
# (re)applied, never duplicated.
#
# Dependencies come from deploy/lock/runtime.txt (hash-pinned, wheels only, no compiler needed;
# docs/adr/0014): use the deploy/ directory of the same Crossbill version as SOURCE.
#
# Options:
#   --python PY          interpreter for the virtualenv (default python3; 3.11 or newer)
#   --wheelhouse DIR     install every dependency from DIR, fetching nothing (a host without
#                        registry access; deploy/lock/wheelhouse.sh fills DIR)
#   --health-timeout S   seconds to wait for /readyz after a restart (default 120)
#   --no-health-check    restart without waiting for /readyz (no automatic rollback)
#   --no-start           install only: do not (re)start the service
#   --keep N             old releases to keep besides the current and previous (default 2)
set -euo pipefail
umask 022  # releases and the unit must be readable by the crossbill user and systemd

OPT=/opt/crossbill
RELEASES=$OPT/releases
ETC=/etc/crossbill
STATE=/var/lib/crossbill
UNIT=crossbill.service
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

PYTHON=python3
WHEELHOUSE=""
HEALTH_TIMEOUT=120
HEALTH_CHECK=1
START=1
KEEP=2
ACTION=install
SOURCE=""

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --python) PYTHON=${2:?--python needs a value}; shift 2 ;;
    --wheelhouse) WHEELHOUSE=${2:?--wheelhouse needs a directory}; shift 2 ;;
    --health-timeout) HEALTH_TIMEOUT=${2:?--health-timeout needs a value}; shift 2 ;;
    --no-health-check) HEALTH_CHECK=0; shift ;;
    --no-start) START=0; shift ;;
    --keep) KEEP=${2:?--keep needs a value}; shift 2 ;;
    --rollback) ACTION=rollback; shift ;;
    --status) ACTION=status; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$SOURCE" ] || die "one SOURCE only"; SOURCE=$1; shift ;;
  esac
done
case "$HEALTH_TIMEOUT" in ''|*[!0-9]*) die "--health-timeout: expected seconds" ;; esac
case "$KEEP" in ''|*[!0-9]*) die "--keep: expected a number" ;; esac

# ----------------------------------------------------------------------------- system setup

check_host() {
  [ "$(id -u)" -eq 0 ] || die "run as root (it creates a user, /opt/crossbill and a unit)"
  command -v systemctl >/dev/null || die "systemd (systemctl) is required"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$PYTHON is not Python 3.11 or newer (apt-get install python3 python3-venv)"
  "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
    || die "$PYTHON lacks venv/ensurepip (apt-get install python3-venv)"
}

setup_user() {
  install -D -m 0644 "$HERE/crossbill.sysusers" /etc/sysusers.d/crossbill.conf
  if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers /etc/sysusers.d/crossbill.conf
  elif ! id crossbill >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$STATE" --no-create-home \
      --shell /usr/sbin/nologin --comment "Crossbill ledger node" crossbill
  fi
  id crossbill >/dev/null 2>&1 || die "could not create the user crossbill"
}

setup_dirs() {
  install -D -m 0644 "$HERE/crossbill.tmpfiles" /etc/tmpfiles.d/crossbill.conf
  if command -v systemd-tmpfiles >/dev/null; then
    systemd-tmpfiles --create /etc/tmpfiles.d/crossbill.conf
  else
    install -d -m 0755 -o root -g root "$OPT" "$RELEASES"
    install -d -m 0750 -o root -g crossbill "$ETC"
    install -d -m 0750 -o crossbill -g crossbill "$STATE"
    install -d -m 0700 -o crossbill -g crossbill "$STATE/data"
  fi
  # The configuration is root's and readable by the node; its secrets are the node's alone
  # (node/p2p/identity.py refuses a node key that others may read).
  chown root:crossbill "$ETC"
  chmod 0750 "$ETC"
  local f
  for f in node.toml genesis.json rpc-clients.toml ca.pem rpc-cert.pem; do
    if [ -e "$ETC/$f" ]; then chown root:crossbill "$ETC/$f"; chmod 0640 "$ETC/$f"; fi
  done
  # rpc-key.pem: the RPC's TLS key (network init's test certificate, or your own).
  for f in rpc-key.pem institution.key node.key passphrase; do
    if [ -e "$ETC/$f" ]; then chown crossbill:crossbill "$ETC/$f"; chmod 0600 "$ETC/$f"; fi
  done
}

setup_unit() {
  install -D -m 0644 "$HERE/$UNIT" "/etc/systemd/system/$UNIT"
  install -D -m 0644 "$HERE/README.md" "$OPT/README.md"
  systemctl daemon-reload
  systemctl enable "$UNIT" >/dev/null
}

# ----------------------------------------------------------------------------- releases

# The release a symlink points at, or nothing (readlink -f alone would print a missing path).
release_of() { if [ -L "$1" ]; then readlink -f "$1"; fi; }
current_release() { release_of "$OPT/venv"; }
previous_release() { release_of "$OPT/previous"; }

# Point LINK at TARGET atomically (rename over the old link: no moment without one).
point() {
  local link=$1 target=$2
  ln -sfn "$target" "$link.new"
  mv -T "$link.new" "$link"
}

build_release() {
  [ -n "$SOURCE" ] || die "no SOURCE: a wheel (crossbill-*.whl) or a source directory"
  if [ -d "$SOURCE" ]; then
    [ -f "$SOURCE/pyproject.toml" ] || die "$SOURCE has no pyproject.toml"
  elif [ -f "$SOURCE" ]; then
    case "$SOURCE" in *.whl) ;; *) die "$SOURCE is not a wheel (.whl)" ;; esac
  else
    die "$SOURCE does not exist"
  fi
  SOURCE=$(readlink -f "$SOURCE")
  local from=() offline=()
  if [ -n "$WHEELHOUSE" ]; then
    [ -d "$WHEELHOUSE" ] || die "--wheelhouse $WHEELHOUSE is not a directory"
    WHEELHOUSE=$(readlink -f "$WHEELHOUSE")
    from=(--wheelhouse "$WHEELHOUSE")
    offline=(--no-index --find-links "$WHEELHOUSE")
  fi
  local rel
  rel="$RELEASES/$(date -u +%Y%m%dT%H%M%SZ)"
  [ ! -e "$rel" ] || rel="$rel-$$"
  say "building release $rel from $SOURCE"
  "$PYTHON" -m venv "$rel"
  # The locked dependencies first (hashes checked, wheels only), then Crossbill alone: a wheel
  # needs nothing more; a source tree is built with the locked setuptools and no compiler.
  if ! { "$HERE/lock/pip-sync.sh" "$rel/bin/python" "$HERE/lock/runtime.txt" "${from[@]}" &&
         CC=false CXX=false "$rel/bin/python" -m pip install --disable-pip-version-check \
           --no-input --no-deps --no-build-isolation "${offline[@]}" "$SOURCE" &&
         "$rel/bin/crossbill" --help >/dev/null; } >"$rel.install.log" 2>&1; then
    tail -n 20 "$rel.install.log" >&2
    rm -rf "$rel"
    die "installing $SOURCE failed (log: $rel.install.log); the current release is untouched"
  fi
  rm -f "$rel.install.log"
  NEW_RELEASE=$rel
}

# Bash completion of the current release's commands (`crossbill completion bash`), where
# bash-completion looks for it; skipped without bash-completion, never fatal.
BASH_COMPLETION_DIR=/usr/share/bash-completion/completions
install_completion() {
  [ -d "$BASH_COMPLETION_DIR" ] || return 0
  local out="$BASH_COMPLETION_DIR/crossbill"
  if "$OPT/venv/bin/crossbill" completion bash >"$out.new" 2>/dev/null; then
    chmod 0644 "$out.new" && mv -f "$out.new" "$out"
  else
    rm -f "$out.new"
    say "bash completion not installed (crossbill completion bash failed)"
  fi
}

# The release directories, oldest first (their names are UTC times).
releases() {
  local rel
  for rel in "$RELEASES"/*/; do
    [ -d "$rel" ] && printf '%s\n' "${rel%/}"
  done
  return 0
}

prune_releases() {
  local cur prev rel kept=0
  cur=$(current_release)
  prev=$(previous_release)
  while read -r rel; do
    if [ "$rel" = "$cur" ] || [ "$rel" = "$prev" ]; then continue; fi
    if [ "$kept" -lt "$KEEP" ]; then kept=$((kept + 1)); continue; fi
    say "removing old release $rel"
    rm -rf "$rel"
  done < <(releases | sort -r)
}

# ----------------------------------------------------------------------------- health

readyz_url() {
  "$PYTHON" - "$ETC/node.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    listen = tomllib.load(f)["metrics"]["listen"]
host, _, port = listen.rpartition(":")
host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)
print(f"http://{host}:{port}/readyz")
PY
}

# Wait up to HEALTH_TIMEOUT seconds for /readyz to answer 200; say why not if it does not.
wait_ready() {
  local url
  url=$(readyz_url) || die "cannot read [metrics] listen from $ETC/node.toml"
  say "waiting up to ${HEALTH_TIMEOUT} s for $url"
  "$PYTHON" - "$url" "$HEALTH_TIMEOUT" <<'PY'
import sys, time, urllib.error, urllib.request
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
last = "no answer"
while True:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            if r.status == 200:
                sys.exit(0)
    except urllib.error.HTTPError as exc:
        last = f"HTTP {exc.code}: {exc.read(2000).decode(errors='replace')}"
    except OSError as exc:
        last = str(exc)
    if time.monotonic() > deadline:
        print(f"install.sh: not ready: {last}", file=sys.stderr)
        sys.exit(1)
    time.sleep(1)
PY
}

restart_and_check() {
  systemctl reset-failed "$UNIT" 2>/dev/null || true
  systemctl restart "$UNIT"
  [ "$HEALTH_CHECK" -eq 1 ] || { say "restarted (no health check)"; return 0; }
  wait_ready
}

# ----------------------------------------------------------------------------- actions

do_install() {
  check_host
  setup_user
  setup_dirs
  setup_unit
  build_release
  local old
  old=$(current_release)
  point "$OPT/venv" "$NEW_RELEASE"
  if [ -n "$old" ] && [ "$old" != "$NEW_RELEASE" ]; then point "$OPT/previous" "$old"; fi
  say "current release: $NEW_RELEASE${old:+ (previous: $old)}"
  install_completion
  if [ "$START" -eq 0 ]; then
    say "not started (--no-start): systemctl restart $UNIT"
    return 0
  fi
  if [ ! -f "$ETC/node.toml" ]; then
    say "no $ETC/node.toml yet: copy this institution's directory from 'crossbill network"
    say "init --layout system' to $ETC, run this script again (it sets the modes), then"
    say "systemctl start $UNIT"
    return 0
  fi
  if restart_and_check; then
    say "release $NEW_RELEASE is live"
    prune_releases
    return 0
  fi
  if [ -z "$old" ] || [ "$old" = "$NEW_RELEASE" ]; then
    die "the node is not ready and there is no previous release: journalctl -u $UNIT -n 100"
  fi
  say "the new release is not ready: rolling back to $old"
  point "$OPT/venv" "$old"
  install_completion
  point "$OPT/previous" "$NEW_RELEASE"
  if restart_and_check; then
    die "rolled back to $old (ready); the failed release stays in $NEW_RELEASE: journalctl -u $UNIT"
  fi
  die "rolled back to $old, which is not ready either: journalctl -u $UNIT -n 100"
}

do_rollback() {
  check_host
  local cur prev
  cur=$(current_release)
  prev=$(previous_release)
  if [ -z "$prev" ] || [ ! -d "$prev" ]; then die "no previous release to roll back to"; fi
  [ "$prev" != "$cur" ] || die "the previous release is the current one ($cur)"
  point "$OPT/venv" "$prev"
  point "$OPT/previous" "$cur"
  say "current release: $prev (previous: $cur; --rollback again to switch back)"
  install_completion
  [ "$START" -eq 1 ] || return 0
  restart_and_check || die "rolled back, but the node is not ready: journalctl -u $UNIT -n 100"
  say "rolled back: ready"
}

do_status() {
  local cur prev rel mark
  cur=$(current_release)
  prev=$(previous_release)
  while read -r rel; do
    mark=" "
    if [ "$rel" = "$prev" ]; then mark="p"; fi
    if [ "$rel" = "$cur" ]; then mark="*"; fi
    printf '%s %s\n' "$mark" "$rel"
  done < <(releases)
  printf 'service: %s\n' "$(systemctl is-active "$UNIT" 2>/dev/null || true)"
}

case "$ACTION" in
  install) do_install ;;
  rollback) do_rollback ;;
  status) do_status ;;
esac
