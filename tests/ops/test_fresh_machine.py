"""The README's two commands on a bare machine (docs/adr/0014).

`./dev` installs the system packages the tests need with apt-get when it runs as root, and
otherwise prints the one apt-get line and stops before running anything. These tests run it
with a PATH from which Prometheus is missing, and with stand-ins for `id` and `apt-get`, so
nothing is installed for real. The lock files must pin, with hashes, a version of every
dependency pyproject.toml declares.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import tomllib

from packaging.markers import Marker
from packaging.requirements import Requirement

REPO = pathlib.Path(__file__).resolve().parents[2]
LOCK = REPO / "deploy" / "lock"
HIDDEN = {"prometheus", "promtool"}  # what the monitoring tests need and the machine "lacks"


def _fake_bin(tmp: pathlib.Path, *, uid: int, apt_get: str | None = None) -> pathlib.Path:
    """A PATH directory with every command of this PATH but Prometheus's, a stand-in `id`
    answering `uid`, and optionally a stand-in `apt-get` (a shell script body)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = pathlib.Path(directory) / name
            link = bin_dir / name
            if name in HIDDEN or link.exists() or not os.access(target, os.X_OK):
                continue
            link.symlink_to(target)
    (bin_dir / "id").unlink(missing_ok=True)
    _script(bin_dir / "id", f'[ "$1" = -u ] && echo {uid} && exit 0\nexec /usr/bin/id "$@"')
    (bin_dir / "apt-get").unlink(missing_ok=True)
    if apt_get is not None:
        _script(bin_dir / "apt-get", apt_get)
    return bin_dir


def _script(path: pathlib.Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _dev(bin_dir: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": str(bin_dir), "PYTHON": sys.executable}
    return subprocess.run([str(REPO / "dev"), *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=REPO)


def test_without_root_dev_test_prints_the_apt_get_line_and_runs_nothing(
        tmp_path: pathlib.Path) -> None:
    stamp = REPO / ".venv" / ".crossbill-installed"
    before = stamp.stat().st_mtime_ns if stamp.exists() else None
    proc = _dev(_fake_bin(tmp_path, uid=1000), "test", "-k", "nothing")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == ["dev: './dev test' needs system packages that are missing; as root run: "
                     "apt-get update && apt-get install -y prometheus"], proc.stderr
    assert proc.stdout == ""
    # Nothing ran: no lint, no virtualenv work.
    assert (stamp.stat().st_mtime_ns if stamp.exists() else None) == before


def test_the_demo_needs_no_prometheus_and_the_tests_do(tmp_path: pathlib.Path) -> None:
    bin_dir = _fake_bin(tmp_path, uid=1000)
    missing = subprocess.run(
        ["bash", "-c", f'source <(sed -n "/^missing_packages()/,/^}}/p" {REPO / "dev"}); '
         f"PY={sys.executable}; missing_packages demo; missing_packages test"],
        capture_output=True, text=True, env={**os.environ, "PATH": str(bin_dir)}, timeout=30)
    assert missing.returncode == 0, missing.stderr
    assert missing.stdout.splitlines() == ["", "prometheus"]


def test_as_root_dev_installs_with_apt_get_and_stops_when_that_fails(
        tmp_path: pathlib.Path) -> None:
    calls = tmp_path / "apt-calls"
    bin_dir = _fake_bin(tmp_path, uid=0, apt_get=f'echo "$@" >> {calls}\n'
                        '[ "$1" = update ] && exit 0\necho "E: no network" >&2\nexit 100')
    proc = _dev(bin_dir, "test", "-k", "nothing")
    assert proc.returncode == 1
    assert calls.read_text().splitlines() == [
        "update -q", "install -y -q --no-install-recommends prometheus"]
    assert "dev: apt-get install prometheus failed" in proc.stderr
    assert "E: no network" in proc.stderr and "ruff" not in proc.stderr


def test_as_root_dev_setup_goes_on_once_apt_get_installed_the_packages(
        tmp_path: pathlib.Path) -> None:
    calls = tmp_path / "apt-calls"
    bin_dir_holder = tmp_path / "bin"
    fake_install = "\n".join([
        f'echo "$@" >> {calls}',
        '[ "$1" = update ] && exit 0',
        *(f"printf '#!/bin/sh\\n' > {bin_dir_holder}/{name}; chmod +x {bin_dir_holder}/{name}"
          for name in sorted(HIDDEN)),
    ])
    bin_dir = _fake_bin(tmp_path, uid=0, apt_get=fake_install)
    proc = _dev(bin_dir, "setup")
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines()[-1].endswith("install -y -q --no-install-recommends "
                                                       "prometheus")
    assert "installing system packages: prometheus" in proc.stderr


def _locked(path: pathlib.Path) -> dict[str, list[tuple[str, str, list[str]]]]:
    """name -> [(version, marker, hashes)] of a uv/pip-compile lock file."""
    text = path.read_text().replace("\\\n", " ")
    pins: dict[str, list[tuple[str, str, list[str]]]] = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)\s*(?:;\s*(.*?))?\s*((?:--hash=\S+\s*)*)",
                         line)
        assert m, f"{path.name}: not a pinned, hashed line: {line[:80]}"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", m.group(4))
        name = m.group(1).lower().replace("_", "-")
        pins.setdefault(name, []).append((m.group(2), m.group(3) or "", hashes))
    return pins


def test_every_dependency_of_pyproject_is_pinned_with_hashes_in_the_lock_files() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    overrides = {Requirement(line).name for line in
                 (LOCK / "overrides.txt").read_text().splitlines()
                 if line.strip() and not line.startswith("#")}
    for lock, requirements in (
            ("runtime.txt", project["dependencies"]),
            ("dev.txt", project["dependencies"] + project["optional-dependencies"]["test"]),
            ("build.txt", ["setuptools", "uv", "wheel"])):
        pins = _locked(LOCK / lock)
        assert pins and all(hashes for entries in pins.values() for _, _, hashes in entries), lock
        for python in ("3.11", "3.12", "3.13"):
            env = {"python_version": python, "python_full_version": f"{python}.0"}
            for spec in requirements:
                req = Requirement(spec)
                if req.marker is not None and not req.marker.evaluate(env):
                    continue
                chosen = [version for version, marker, _ in pins.get(req.name.lower(), [])
                          if not marker or Marker(marker).evaluate(env)]
                assert len(chosen) == 1, f"{lock}: {req} on Python {python}: {chosen}"
                assert req.specifier.contains(chosen[0], prereleases=True), (
                    f"{lock} pins {req.name}=={chosen[0]}, pyproject.toml asks {req}: run "
                    "deploy/lock/update.sh")
    for name in overrides:
        assert name in _locked(LOCK / "runtime.txt"), name


def test_the_locks_allow_no_source_build_but_the_two_pure_python_ones() -> None:
    sync = (LOCK / "pip-sync.sh").read_text()
    assert "--require-hashes --no-deps" in sync and "--only-binary :all:" in sync
    allowed = set(re.findall(r"--no-binary (\S+)", sync))
    assert allowed == {"varint", "python-baseconv"}
    assert "CC=false CXX=false" in sync
    ci = (REPO / ".ci" / "run").read_text()
    assert "deploy/lock/verify-fresh-install.sh" in ci and ci.rstrip().endswith("./dev test")
