"""The fault lab: a 4+3 network with each node in its own Linux network namespace (ADR 0029).

Layout, made and torn down by `running_lab` (root only; `ip` from iproute2):

    root namespace                          namespace cb<id>n<i> (one per node)
    bridge cbr<id>  10.A.B.254/24  <-veth->  eth0 10.A.B.<i>/24, default route via .254
                    10.A.B+1.<i>/24          the node listens here: p2p, RPC, metrics
                    (the shaper's listeners)

Every bridge port is isolated (`bridge link set ... isolated on`), so namespaces cannot reach
each other directly: a node reaches a peer only through the p2p address the genesis file
gives it, which is the peer's *proxy* address 10.A.B+1.<i> in the root namespace, where the
link shaper (tests/faults/shaper.py, its own process) forwards to the peer's real address and
knows from the source address which directed link each byte travels. The kernel has no netem
and no iptables here, so delay, jitter, loss, resets and partitions are the shaper's; the
namespaces give each node its own address, its own loopback and a wire that can be cut;
`tbf` on a veth shapes a node's bandwidth in the kernel.

The harness itself talks to each node's RPC directly over the bridge (unshaped), as an
operator on the node's own site would.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from node.cli import devnet
from node.cli.demo import DEFAULT_MEMBERS
from node.cli.netgen import DEVNET_LAYOUT, NetworkSpec, NodePorts, NodeSpec, write_network
from node.client.transport import RpcError
from protocol import limits, types
from protocol.genesis import load_genesis
from tests.e2e.harness import Devnet
from tests.faults.shaper import Route, Shaper
from tests.waiting import wait_until_sync

P2P_PORT: Final = 7000
RPC_PORT: Final = 8000
METRICS_PORT: Final = 9000
STOP_DEADLINE_S: Final = 10.0
FILL_CHUNK_BYTES: Final = 1024 * 1024
_NAME: Final = re.compile(r"cb(?P<pid>\d+)n\d+")


class LabError(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _run(*cmd: str) -> None:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)}: {proc.stderr.strip()}")


def require_root() -> None:
    """The lab makes namespaces and a bridge: it needs root and iproute2 (CI runs as root and
    `.ci/run` installs iproute2). Fails, never skips: a lab that cannot run is a broken CI."""
    if os.geteuid() != 0:
        raise LabError("the fault lab needs root (network namespaces, a bridge, tmpfs mounts)")
    for tool in ("ip", "bridge", "tc"):
        if shutil.which(tool) is None:
            raise LabError(f"the fault lab needs {tool!r} (Debian package iproute2)")


def remove_stale() -> None:
    """Delete namespaces and bridges left by labs whose process is gone (a killed test run)."""
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        m = _NAME.fullmatch(name)
        if m and not devnet.pid_alive(int(m["pid"])):
            _ip("netns", "del", name, check=False)
    for line in _ip("-o", "link", "show", "type", "bridge", check=False).stdout.splitlines():
        m = re.search(r"\d+: cbr(\d+)[:@]", line)
        if m and not devnet.pid_alive(int(m[1])):
            _ip("link", "del", f"cbr{m[1]}", check=False)


@dataclass
class LabNode:
    name: str
    role: str
    orderer: bool
    index: int
    netns: str
    veth: str
    ip: str  # the node's own address, in its namespace
    proxy_ip: str  # where its peers reach it (the shaper), in the root namespace


@dataclass
class Lab(Devnet):
    """A Devnet (tests/e2e/harness.py) whose nodes live in namespaces behind the shaper."""

    shaper: Shaper | None = None
    lab_nodes: dict[str, LabNode] = field(default_factory=dict)
    faketime_files: dict[str, pathlib.Path] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)
    mounts: list[pathlib.Path] = field(default_factory=list)

    @property
    def links(self) -> Shaper:
        assert self.shaper is not None
        return self.shaper

    def orderers(self) -> list[str]:
        return [n for n, ln in self.lab_nodes.items() if ln.orderer]

    def start_process(self, name: str) -> None:
        node = self.node(name)
        cmd = ["ip", "netns", "exec", self.lab_nodes[name].netns]
        env = devnet.node_env()
        if name in self.faketime_files:
            # libfaketime re-reads the offset file (at most once a second): a clock that can be
            # skewed or made to jump while the node runs. Monotonic time stays real (trio's).
            env.update(FAKETIME_TIMESTAMP_FILE=str(self.faketime_files[name]),
                       FAKETIME_CACHE_DURATION="1", FAKETIME_DONT_FAKE_MONOTONIC="1")
            cmd += ["env", f"LD_PRELOAD={_libfaketime()}"]
        cmd += [sys.executable, "-m", "node.cli.main", "node", "start", "--config",
                node["config"]]
        with open(node["log"], "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        node["pid"] = proc.pid
        self._save()

    def restart(self, name: str) -> None:
        self.start_process(name)

    def _save(self) -> None:
        (self.root / "devnet.json").write_text(json.dumps(self.desc, indent=2) + "\n")

    # ------------------------------------------------------------------ process faults

    def pause(self, name: str) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing (a GC pause, a VM
        migration, an overloaded host)."""
        os.kill(self.node(name)["pid"], signal.SIGSTOP)
        self.paused.add(name)

    def resume(self, name: str) -> None:
        os.kill(self.node(name)["pid"], signal.SIGCONT)
        self.paused.discard(name)

    def alive(self, name: str) -> bool:
        return devnet.pid_alive(self.node(name)["pid"])

    def set_clock_offset(self, name: str, offset_s: float) -> None:
        """Skew (or jump) the wall clock of a node started with faketime (`clock_nodes`)."""
        path = self.faketime_files[name]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{round(offset_s):+d}\n")
        tmp.replace(path)

    # ------------------------------------------------------------------ disks

    def fill_disk(self, name: str) -> pathlib.Path:
        """Fill the tmpfs under the node's data directory (`tmpfs_nodes`) to the last byte."""
        filler = self.root / name / "data-mount" / "filler"
        chunk = FILL_CHUNK_BYTES
        with open(filler, "wb", buffering=0) as f:
            while chunk >= 1:
                try:
                    f.write(b"\xff" * chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    chunk //= 2
        return filler

    def free_disk(self, name: str) -> None:
        (self.root / name / "data-mount" / "filler").unlink(missing_ok=True)

    # ------------------------------------------------------------------ reads

    def heights(self, names: list[str] | None = None) -> dict[str, int]:
        """Each reachable node's height (a node that does not answer is left out)."""
        out: dict[str, int] = {}
        for name in names or self.names():
            if name in self.paused or not self.alive(name):
                continue
            try:
                with self.client_ctx(name, timeout_s=2) as c:
                    out[name] = int(c.status()["height"])
            except (OSError, RpcError):
                continue
        return out

    def leader_seen_by(self, names: list[str]) -> set[str]:
        leaders: set[str] = set()
        for name in names:
            try:
                with self.client_ctx(name, timeout_s=2) as c:
                    leaders.add(str(c.status()["leader"]))
            except (OSError, RpcError):
                leaders.add("?")
        return leaders

    def wait_leader(self, among: list[str], timeout_s: float = 30,
                    not_: str | None = None) -> str:
        """Wait until the nodes `among` agree on one leader (other than `not_`); return it."""
        def agreed() -> tuple[str] | None:
            seen = self.leader_seen_by(among)
            if len(seen) == 1:
                (leader,) = seen
                if leader not in ("", "?") and leader != not_:
                    return (leader,)
            return None

        (leader,) = wait_until_sync(agreed, timeout_s, poll_s=0.1,
                                    what=f"{among} to agree on a leader other than {not_}")
        return leader


_LIBFAKETIME_CANDIDATES: Final = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
)


def _libfaketime() -> str:
    for path in _LIBFAKETIME_CANDIDATES:
        if os.path.exists(path):
            return path
    raise LabError("libfaketime not found (Debian package faketime; .ci/run installs it)")


def _subnet(ident: int) -> tuple[str, str]:
    """Two /24s (nodes, proxies) derived from the lab's id, so concurrent labs do not meet."""
    a = 200 + ident % 50
    b = 2 * ((ident // 50) % 120)
    return f"10.{a}.{b}", f"10.{a}.{b + 1}"


@contextlib.contextmanager
def running_lab(root: pathlib.Path, *, seed: int = 0, tuning: dict[str, int] | None = None,
                params: types.Params | None = None, clock_nodes: tuple[str, ...] = (),
                tmpfs_nodes: dict[str, int] | None = None,
                timing: types.ConsensusTiming | None = None) -> Iterator[Lab]:
    """Make the namespaces, the bridge, the network and the shaper; start every node; yield a
    ready Lab; tear everything down (also after a failure)."""
    require_root()
    remove_stale()
    ident = os.getpid()
    node_net, proxy_net = _subnet(ident)
    bridge = f"cbr{ident}"
    members = DEFAULT_MEMBERS
    lab_nodes = {
        m.id: LabNode(m.id, m.role, m.role == "bank", i, f"cb{ident}n{i}", f"cb{ident}v{i}",
                      f"{node_net}.{i}", f"{proxy_net}.{i}")
        for i, m in enumerate(members, start=1)}
    made_ns: list[str] = []
    procs_started = False
    shaper: Shaper | None = None
    lab: Lab | None = None
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("link", "set", bridge, "up")
        _ip("addr", "add", f"{node_net}.254/24", "dev", bridge)
        for ln in lab_nodes.values():
            _ip("addr", "add", f"{ln.proxy_ip}/24", "dev", bridge)
            _ip("netns", "add", ln.netns)
            made_ns.append(ln.netns)
            _ip("link", "add", ln.veth, "type", "veth", "peer", "name", "eth0", "netns",
                ln.netns)
            _ip("link", "set", ln.veth, "master", bridge, "up")
            _run("bridge", "link", "set", "dev", ln.veth, "isolated", "on")
            _ip("-n", ln.netns, "addr", "add", f"{ln.ip}/24", "dev", "eth0")
            _ip("-n", ln.netns, "link", "set", "lo", "up")
            _ip("-n", ln.netns, "link", "set", "eth0", "up")
            _ip("-n", ln.netns, "route", "add", "default", "via", f"{node_net}.254")

        specs = tuple(
            NodeSpec(m.id, m.name, m.role, m.role == "bank", lab_nodes[m.id].proxy_ip,
                     NodePorts(P2P_PORT + i, RPC_PORT + i, METRICS_PORT + i),
                     p2p_listen_host=lab_nodes[m.id].ip, rpc_listen_host=lab_nodes[m.id].ip,
                     metrics_listen_host=lab_nodes[m.id].ip)
            for i, m in enumerate(members, start=1))
        spec = NetworkSpec("crossbill-faultlab", specs, params or types.DEFAULT_PARAMS,
                           tuning or {}, {"level": "info", "format": "json"}, None,
                           timing=timing)
        config, generated = write_network(root, spec, DEVNET_LAYOUT,
                                          scrypt_log_n=limits.KEYFILE_SCRYPT_LOG_N_MIN)
        for g in generated:
            # The harness reads over the bridge, not loopback: let it in without credentials
            # (reads only; admin.* still needs loopback, ADR 0023/0024).
            text = g.config.read_text()
            text = text.replace("[rpc]\n", "[rpc]\nrequire_client_auth = false\n"
                                "anonymous_reads = true\n", 1)
            g.config.write_text(text)
        for name, size_mb in (tmpfs_nodes or {}).items():
            mount = root / name / "data-mount"
            mount.mkdir()
            _run("mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount))
            (mount / "data").mkdir()
            (root / name / "data").symlink_to(mount / "data")

        shaper = Shaper.start(
            [Route(ln.name, ln.proxy_ip, P2P_PORT + ln.index, ln.ip, P2P_PORT + ln.index)
             for ln in lab_nodes.values()],
            {ln.ip: ln.name for ln in lab_nodes.values()}, seed, root)
        desc: dict[str, Any] = {
            "chain_id": config.chain_id, "genesis_hash": config.hash.hex(), "dir": str(root),
            "ca_file": None,
            "nodes": [{
                "name": g.institution, "role": g.role, "orderer": g.orderer, "pid": 0,
                "rpc_url": f"http://{lab_nodes[g.institution].ip}:{g.ports.rpc}",
                "metrics_url": f"http://{lab_nodes[g.institution].ip}:{g.ports.metrics}/metrics",
                "p2p": f"/ip4/{lab_nodes[g.institution].proxy_ip}/tcp/{g.ports.p2p}",
                "config": str(g.config), "log": str(g.dir / "node.log"),
                "data_dir": str(g.dir / "data"),
            } for g in generated],
        }
        lab = Lab(root, desc, load_genesis((root / "genesis.json").read_bytes()),
                  devnet.institution_keys(root, desc), shaper=shaper, lab_nodes=lab_nodes,
                  mounts=[root / n / "data-mount" for n in (tmpfs_nodes or {})])
        for name in clock_nodes:
            lab.faketime_files[name] = root / name / "faketime"
            lab.set_clock_offset(name, 0)
        procs_started = True
        for name in lab_nodes:
            lab.start_process(name)
        devnet.wait_ready(desc, devnet.UP_TIMEOUT_S)
        yield lab
    finally:
        if lab is not None and procs_started:
            _stop_nodes(lab)
        if shaper is not None:
            shaper.stop()
        for mount in (lab.mounts if lab is not None else []):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)
        for ns in made_ns:
            _ip("netns", "del", ns, check=False)
        _ip("link", "del", bridge, check=False)


def _stop_nodes(lab: Lab) -> None:
    for name in list(lab.paused):
        with contextlib.suppress(ProcessLookupError):
            lab.resume(name)
    pids = [n["pid"] for n in lab.desc["nodes"] if n["pid"]]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_DEADLINE_S
    while time.monotonic() < deadline and any(devnet.pid_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if devnet.pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
