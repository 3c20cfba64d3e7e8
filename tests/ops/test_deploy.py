"""deploy/: the systemd unit, its sysusers.d and tmpfiles.d files, and install.sh.

CI installs systemd (systemd-analyze, systemd-sysusers, systemd-tmpfiles); without it these
tests fail rather than skip. None of them needs a running systemd.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import stat
import subprocess
import sys

from node.cli.netgen import SYSTEM_LAYOUT
from node.cli.netinit import load_description
from node.config import Tuning

REPO = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "crossbill.service"
EXEC_START = "/opt/crossbill/venv/bin/crossbill node start --config /etc/crossbill/node.toml"


def tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK)
                                  else None)
    assert path, f"{name} is missing: apt-get install systemd"
    return path


def unit_directives(text: str) -> dict[tuple[str, str], list[str]]:
    """(section, key) -> every value, in order (systemd allows a key more than once)."""
    out: dict[tuple[str, str], list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a directive: {line!r}"
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


def crossbill_exe() -> str:
    exe = shutil.which("crossbill") or str(pathlib.Path(sys.executable).parent / "crossbill")
    assert os.access(exe, os.X_OK), exe
    return exe


def verify(unit_text: str, tmp_path: pathlib.Path) -> tuple[int, list[str]]:
    """`systemd-analyze verify` of the unit with ExecStart pointing at this checkout's
    crossbill (verify requires the binary to exist). Returns its exit code and every output line
    about the unit: verify exits 0 on unknown keys and bad values, it only warns."""
    unit = tmp_path / "crossbill.service"
    assert EXEC_START in unit_text
    unit.write_text(unit_text.replace("/opt/crossbill/venv/bin/crossbill", crossbill_exe()))
    proc = subprocess.run([tool("systemd-analyze"), "verify", "--man=no", str(unit)],
                          capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).splitlines()
    return proc.returncode, [ln for ln in lines if "crossbill" in ln]


def test_unit_passes_systemd_analyze_verify(tmp_path: pathlib.Path) -> None:
    code, complaints = verify(UNIT.read_text(), tmp_path)
    assert (code, complaints) == (0, [])


def test_verify_catches_what_it_only_warns_about(tmp_path: pathlib.Path) -> None:
    """The check above would notice a misspelt or misplaced directive (verify exits 0)."""
    broken = UNIT.read_text().replace("ProtectHome=yes", "ProtectHom=yes")
    code, complaints = verify(broken, tmp_path)
    assert code == 0 and any("ProtectHom" in ln for ln in complaints), complaints
    misplaced = UNIT.read_text().replace("[Install]", "StartLimitIntervalSec=60\n[Install]")
    _, complaints = verify(misplaced, tmp_path)
    assert any("StartLimitIntervalSec" in ln for ln in complaints), complaints


def test_unit_is_hardened(tmp_path: pathlib.Path) -> None:
    d = unit_directives(UNIT.read_text())

    def one(key: str, section: str = "Service") -> str:
        values = d.get((section, key))
        assert values is not None and len(values) == 1, f"{key}: {values}"
        return values[0]

    assert one("ExecStart") == EXEC_START
    assert (one("User"), one("Group")) == ("crossbill", "crossbill")
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
                "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
                "ProtectControlGroups", "RestrictNamespaces", "RestrictSUIDSGID",
                "LockPersonality"):
        assert one(key) == "yes", key
    assert one("ProtectSystem") == "strict"
    assert one("ReadWritePaths") == "/var/lib/crossbill"
    assert one("RestrictAddressFamilies").split() == ["AF_INET", "AF_INET6", "AF_UNIX"]
    assert one("CapabilityBoundingSet") == ""
    assert d[("Service", "SystemCallFilter")][0] == "@system-service"
    assert (one("Restart"), one("KillSignal")) == ("on-failure", "SIGTERM")
    assert int(one("RestartSec")) > 0 and int(one("LimitNOFILE")) >= 65536
    assert (one("StateDirectory"), one("ConfigurationDirectory")) == ("crossbill", "crossbill")
    assert one("After", "Unit") == one("Wants", "Unit") == "network-online.target"
    # systemd must not SIGKILL a node still inside its own shutdown deadline.
    example = load_description(DEPLOY / "network.example.toml")
    deadline = max(Tuning().shutdown_deadline_s, int(example.tuning["shutdown_deadline_s"]))
    assert int(one("TimeoutStopSec")) >= deadline + 10
    # What `crossbill network init --layout system` writes is where the unit looks.
    config_dir = "/etc/" + one("ConfigurationDirectory")
    state_dir = "/var/lib/" + one("StateDirectory")
    assert one("ExecStart").endswith(f"--config {config_dir}/node.toml")
    for path in (SYSTEM_LAYOUT.genesis, SYSTEM_LAYOUT.key_file, SYSTEM_LAYOUT.node_key_file,
                 SYSTEM_LAYOUT.passphrase_file):
        assert pathlib.PurePath(path).parent == pathlib.PurePath(config_dir), path
    for path in (SYSTEM_LAYOUT.data_dir, SYSTEM_LAYOUT.backup_dir):  # the writable paths
        assert pathlib.PurePath(path).is_relative_to(state_dir), path

    # systemd's own exposure score (0 safest, 10 unprotected) stays "OK" or better.
    unit = tmp_path / "crossbill.service"
    unit.write_text(UNIT.read_text().replace("/opt/crossbill/venv/bin/crossbill",
                                             crossbill_exe()))
    proc = subprocess.run([tool("systemd-analyze"), "security", "--offline=yes",
                           "--threshold=20", str(unit)], capture_output=True, text=True,
                          timeout=60)
    score = re.search(r"Overall exposure level for crossbill.service: ([0-9.]+)", proc.stdout)
    assert proc.returncode == 0 and score and float(score[1]) <= 2.0, proc.stdout[-500:]


def test_sysusers_and_tmpfiles_create_the_user_and_directories(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    subprocess.run([tool("systemd-sysusers"), f"--root={root}", str(DEPLOY / "crossbill.sysusers")],
                   check=True, capture_output=True, timeout=60)
    users = {line.split(":")[0]: line.split(":") for line in
             (root / "etc" / "passwd").read_text().splitlines()}
    assert users["crossbill"][5:] == ["/var/lib/crossbill", "/usr/sbin/nologin"]
    uid, gid = int(users["crossbill"][2]), int(users["crossbill"][3])
    assert uid < 1000  # a system user
    assert "crossbill" in (root / "etc" / "group").read_text()

    proc = subprocess.run([tool("systemd-tmpfiles"), f"--root={root}", "--create",
                           str(DEPLOY / "crossbill.tmpfiles")], capture_output=True, text=True,
                          timeout=60)
    expected = {"etc/crossbill": (0o750, 0, gid), "var/lib/crossbill": (0o750, uid, gid),
                "var/lib/crossbill/data": (0o700, uid, gid),
                "var/lib/crossbill/backups": (0o700, uid, gid), "opt/crossbill": (0o755, 0, 0),
                "opt/crossbill/releases": (0o755, 0, 0)}
    as_root = os.geteuid() == 0
    if as_root:
        assert proc.returncode == 0, proc.stderr
    else:  # everything but the chown, which needs root
        complaints = proc.stderr.splitlines()
        assert complaints and all("Operation not permitted" in ln for ln in complaints), \
            proc.stderr
    for rel, (mode, owner, group) in expected.items():
        st = (root / rel).stat()
        assert stat.S_IMODE(st.st_mode) == mode, rel
        if as_root:
            assert (st.st_uid, st.st_gid) == (owner, group), rel


def test_install_script_is_valid_bash_and_parses_its_options() -> None:
    script = DEPLOY / "install.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    helped = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert helped.returncode == 0
    for option in ("--rollback", "--status", "--health-timeout", "--no-health-check",
                   "--wheelhouse", "SOURCE"):
        assert option in helped.stdout, option
    bad = subprocess.run([str(script), "--frobnicate"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 1 and "unknown option --frobnicate" in bad.stderr
    bad = subprocess.run([str(script), "--health-timeout", "soon"], capture_output=True,
                         text=True, timeout=30)
    assert bad.returncode == 1 and "--health-timeout: expected seconds" in bad.stderr


def test_install_script_installs_the_files_of_deploy_where_the_unit_expects_them() -> None:
    text = (DEPLOY / "install.sh").read_text()
    for name in re.findall(r'"\$HERE/([^"]+)"', text):
        if name != "$UNIT":
            assert (DEPLOY / name).is_file(), name
    assert (DEPLOY / "crossbill.service").is_file() and "UNIT=crossbill.service" in text
    # The unit runs OPT/venv/bin/crossbill: the symlink the script swaps.
    assert "OPT=/opt/crossbill" in text and 'point "$OPT/venv"' in text
    assert "ETC=/etc/crossbill" in text and "STATE=/var/lib/crossbill" in text
    # Secrets end up 0600 and owned by the node (node.key is refused otherwise).
    assert re.search(r"rpc-key\.pem institution\.key node\.key passphrase; do\n"
                     r".*crossbill:crossbill.*chmod 0600", text)

