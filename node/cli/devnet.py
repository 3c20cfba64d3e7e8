"""A local network on loopback: generate, start every node as its own process, stop, demo.

`up` writes DIR/devnet.json listing each node's name, role, pid, RPC URL, metrics URL and RPC
client (its name and key file, which the node lists in [rpc] clients), once
every node answers and the orderers agree on a leader. Every RPC serves https:// (wss://) with a
certificate signed by the devnet's own test CA, DIR/ca.pem, which devnet.json names as
"ca_file" for clients (`--ca-file`); `up --no-tls` serves plain http:// (ADR 0023, "Test
networks", has the measured cost). `down` stops them (SIGTERM, then SIGKILL
after a deadline). `demo` walks docs/domain.md's headline workflow through the RPC API and waits for
every step to be committed on every node.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from node.cli.demo import Step, headline_steps
from node.cli.netgen import DEVNET_CLIENT, generate_network
from node.client.transport import RpcClient, RpcError
from node.keys import generate_key, read_key_file
from protocol import crypto, types
from protocol.errors import CrossbillError
from protocol.genesis import load_genesis
from protocol.timing import timing_for_rtt

UP_TIMEOUT_S: Final = 60.0
DOWN_DEADLINE_S: Final = 15.0
STEP_TIMEOUT_S: Final = 15.0
CONSOLE_PORT_OFFSET: Final = 300  # the regulator's console listens on base+300
CONSOLE_UP_TIMEOUT_S: Final = 20.0


class DevnetError(CrossbillError):
    pass


def free_base_port(nodes: int = 7) -> int:
    """A base port whose p2p, RPC and metrics ports (base+1.., +101.., +201..) are all free on
    127.0.0.1. Bases stay below Linux's ephemeral range (32768+), where outgoing connections
    would otherwise take a port our nodes are about to listen on."""
    offsets = [o + i for o in (0, 100, 200) for i in range(1, nodes + 1)]
    offsets.append(CONSOLE_PORT_OFFSET)
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(10_000, 32_000 - 210, 10)
        if all(_port_free(base + offset) for offset in offsets):
            return base
    raise DevnetError("no free port range on 127.0.0.1")


def free_port() -> int:
    """One port free on 127.0.0.1 now, below the ephemeral range (a base port itself is not
    checked: base+300 is another devnet's console port)."""
    return free_base_port(nodes=1) + 1


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def node_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")
    return env


def start_node(config: pathlib.Path, log_path: pathlib.Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "node.cli.main", "node", "start", "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=node_env(), start_new_session=True)
    finally:
        log.close()


def up(root: pathlib.Path, *, base_port: int = 7100, tuning: dict[str, int] | None = None,
       out: Callable[[str], None] = print, wait: bool = True,
       params: types.Params | None = None, tls: bool = True,
       rtt_ms: int | None = None, console: bool = True) -> dict[str, Any]:
    """Generate and start a devnet in `root`. `rtt_ms`: genesis gets the consensus timing
    `protocol.timing.timing_for_rtt(rtt_ms)` picks (ADR 0030); None: no timing, the defaults.
    `console`: start the regulator's console too (when waiting for the network)."""
    try:
        timing = None if rtt_ms is None else timing_for_rtt(rtt_ms)
    except ValueError as exc:
        raise DevnetError(f"--rtt-ms: {exc}") from None
    root = root.resolve()
    if (root / "devnet.json").exists():
        raise DevnetError(f"{root}/devnet.json exists: run 'crossbill devnet down --dir {root}'"
                          " first, or pick another directory")
    config, nodes = generate_network(root, base_port=base_port, tuning=tuning,
                                     params=params or types.DEFAULT_PARAMS, tls=tls,
                                     timing=timing)
    out(f"generated {len(nodes)} nodes for chain {config.chain_id} in {root}")
    if timing is not None:
        out(f"  consensus timing for {rtt_ms} ms RTT: election timeout "
            f"{timing.election_timeout_ms} ms, heartbeat {timing.heartbeat_ms} ms, request "
            f"deadline {timing.request_timeout_ms} ms")
    procs = []
    for n in nodes:
        proc = start_node(n.config, n.dir / "node.log")
        procs.append(proc)
        out(f"  started {n.institution:<20} {n.role:<9} pid {proc.pid:<7} rpc {n.rpc_url}")
    description: dict[str, Any] = {
        "chain_id": config.chain_id,
        "genesis_hash": config.hash.hex(),
        "dir": str(root),
        "ca_file": str(nodes[0].ca_file) if nodes and nodes[0].ca_file else None,
        "nodes": [{
            "name": n.institution, "role": n.role, "orderer": n.orderer, "pid": p.pid,
            "rpc_url": n.rpc_url, "metrics_url": n.metrics_url,
            "p2p": f"/ip4/{n.host}/tcp/{n.ports.p2p}", "config": str(n.config),
            "log": str(n.dir / "node.log"), "data_dir": str(n.dir / "data"),
            # the RPC client its node.toml lists, and that client's key (PKCS#8 PEM)
            "rpc_client": {"name": DEVNET_CLIENT, "key_file": str(n.client_key_file)},
        } for n, p in zip(nodes, procs, strict=True)],
    }
    if wait and console:  # the regulator's console starts beside the nodes (it waits for them)
        description["console"] = start_console(root, description,
                                               base_port + CONSOLE_PORT_OFFSET)
    (root / "devnet.json").write_text(json.dumps(description, indent=2) + "\n")
    if wait:
        try:
            leader = wait_ready(description, UP_TIMEOUT_S)
            if "console" in description:
                wait_console(description["console"])
        except BaseException:
            down(root, out=lambda _: None)  # never leave half a network running
            raise
        out(f"network is up: leader {leader}; description in {root / 'devnet.json'}")
        if "console" in description:
            out(f"console (the regulator's view): {description['console']['url']}")
        if description["ca_file"]:
            out(f"RPC over TLS: clients verify with the devnet's CA, e.g. crossbill node status "
                f"--rpc {nodes[0].rpc_url} --ca-file {description['ca_file']}")
    return description


def start_console(root: pathlib.Path, description: dict[str, Any], port: int
                  ) -> dict[str, Any]:
    """Start `crossbill console` for the regulator's node, with its RPC client key and every
    node as a --peer (it waits for its node to answer). Its pid, URL and log."""
    regulator = next(n for n in description["nodes"] if n["role"] == "regulator")
    log_path = root / "console.log"
    argv = [sys.executable, "-m", "node.cli.main", "console", "--rpc", regulator["rpc_url"],
            "--client-name", regulator["rpc_client"]["name"],
            "--client-key", regulator["rpc_client"]["key_file"],
            "--listen", f"127.0.0.1:{port}", "--wait-node-s", str(int(UP_TIMEOUT_S))]
    if description.get("ca_file"):
        argv += ["--ca-file", description["ca_file"]]
    for n in description["nodes"]:
        argv += ["--peer", f"{n['name']}={n['rpc_url']}"]
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    try:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=node_env(),
                                start_new_session=True)
    finally:
        log.close()
    return {"pid": proc.pid, "url": f"http://127.0.0.1:{port}/network", "log": str(log_path),
            "institution": regulator["name"]}


def wait_console(console: dict[str, Any]) -> None:
    """Wait until the console serves its network page."""
    import urllib.request

    deadline = time.monotonic() + CONSOLE_UP_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(console["url"], timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if not pid_alive(console["pid"]) or time.monotonic() > deadline:
            raise DevnetError(f"the console did not serve {console['url']} in "
                              f"{CONSOLE_UP_TIMEOUT_S:.0f} s; its log ends:\n"
                              f"{_tail(pathlib.Path(console['log']))}")
        time.sleep(0.1)


def load(root: pathlib.Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((root / "devnet.json").read_text())
    except OSError as exc:
        raise DevnetError(f"no devnet at {root}: {exc.strerror}") from None
    return data


def client(description: dict[str, Any], node: dict[str, Any], timeout_s: float) -> RpcClient:
    """A client for `node` of the devnet `description`, verifying its certificate against the
    devnet's CA when it serves https."""
    return RpcClient(node["rpc_url"], timeout_s=timeout_s, ca_file=description.get("ca_file"))


def wait_ready(description: dict[str, Any], timeout_s: float) -> str:
    """Wait until every node answers and the orderers agree on one leader; return it."""
    deadline = time.monotonic() + timeout_s
    clients = {n["name"]: client(description, n, 2) for n in description["nodes"]}
    last_error = "no answer yet"
    try:
        while time.monotonic() < deadline:
            try:
                statuses = {name: c.status() for name, c in clients.items()}
            except (OSError, RpcError) as exc:
                last_error = str(exc)
                _check_alive(description)
                time.sleep(0.2)
                continue
            leaders = {s["leader"] for s in statuses.values() if s["orderer"]}
            if len(leaders) == 1 and "" not in leaders:
                return str(leaders.pop())
            last_error = f"orderers see leaders {sorted(leaders)}"
            time.sleep(0.2)
    finally:
        for c in clients.values():
            c.close()
    raise DevnetError(f"the network did not become ready in {timeout_s:.0f} s: {last_error}")


def _check_alive(description: dict[str, Any]) -> None:
    for n in description["nodes"]:
        if not pid_alive(n["pid"]):
            tail = _tail(pathlib.Path(n["log"]))
            raise DevnetError(f"node {n['name']} (pid {n['pid']}) exited; its log ends:\n"
                              f"{tail}")


def _tail(path: pathlib.Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def pid_alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def down(root: pathlib.Path, out: Callable[[str], None] = print) -> None:
    description = load(root)
    pids = [n["pid"] for n in description["nodes"]]
    if description.get("console"):  # the regulator's console (start_console)
        pids.append(description["console"]["pid"])
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + DOWN_DEADLINE_S
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    killed = [p for p in pids if pid_alive(p)]
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    (root / "devnet.json").rename(root / "devnet.stopped.json")
    out(f"stopped {len(description['nodes'])} nodes" + (f" ({len(killed)} killed after "
                                         f"{DOWN_DEADLINE_S:.0f} s)" if killed else ""))


def demo(root: pathlib.Path, out: Callable[[str], None] = print) -> float:
    """Walk the headline workflow via RPC; every step must commit on every node. Returns the
    total seconds."""
    session = DemoSession.open(root)
    steps = headline_steps(session.genesis, session.keys, int(time.time() * 1000),
                           generate_key())
    scheme = "https (TLS)" if session.description.get("ca_file") else "plain http"
    out(f"headline workflow on {len(session.clients)} nodes of {session.genesis.chain_id}, "
        f"RPC over {scheme}")
    try:
        return session.walk(steps, out)
    finally:
        session.close()


def institution_keys(root: pathlib.Path, description: dict[str, Any]
                     ) -> dict[str, crypto.PrivateKey]:
    """Every node's institution key of the devnet in `root` (its passphrase file opens them)."""
    passphrase = (root / "passphrase").read_text().splitlines()[0]
    return {n["name"]: read_key_file(root / n["name"] / "institution.key", passphrase)
            for n in description["nodes"]}


@dataclass
class DemoSession:
    """A devnet's description, genesis, institution keys and one RPC client per node."""

    root: pathlib.Path
    description: dict[str, Any]
    genesis: types.ConsortiumConfig
    keys: dict[str, crypto.PrivateKey]
    clients: dict[str, RpcClient]

    @classmethod
    def open(cls, root: pathlib.Path) -> DemoSession:
        description = load(root)
        genesis = load_genesis((root / "genesis.json").read_bytes())
        keys = institution_keys(root, description)
        clients = {n["name"]: client(description, n, STEP_TIMEOUT_S)
                   for n in description["nodes"]}
        return cls(root, description, genesis, keys, clients)

    def close(self) -> None:
        for c in self.clients.values():
            c.close()

    @property
    def first_bank(self) -> str:
        return str(next(n["name"] for n in self.description["nodes"] if n["role"] == "bank"))

    def commit(self, tx: types.Tx) -> dict[str, Any]:
        """Submit through the signer's node (a bank's for a party without one); wait until
        every node holds it; the receipt."""
        signer = self.clients.get(tx.signer) or self.clients[self.first_bank]
        reply = signer.submit(tx, wait=True, timeout_ms=int(STEP_TIMEOUT_S * 1000))
        if reply["status"] != "committed":
            raise DevnetError(f"{tx.type} {tx.id.hex()[:16]} did not commit in "
                              f"{STEP_TIMEOUT_S} s")
        _wait_everywhere(self.clients, tx.id, time.perf_counter() + STEP_TIMEOUT_S)
        receipt: dict[str, Any] = reply["receipt"]
        return receipt

    def walk(self, steps: list[Step], out: Callable[[str], None]) -> float:
        """Each step signed, submitted, committed on every node, with the expected code."""
        started = time.perf_counter()
        width = max([66, *(len(step.title) for step in steps)])
        for i, step in enumerate(steps, 1):
            t0 = time.perf_counter()
            signer = self.clients.get(step.tx.signer) or self.clients[self.first_bank]
            reply = signer.submit(step.tx, wait=True, timeout_ms=int(STEP_TIMEOUT_S * 1000))
            if reply["status"] != "committed":
                raise DevnetError(f"step {step.title!r} did not commit in {STEP_TIMEOUT_S} s")
            committed = time.perf_counter() - t0
            code = reply["receipt"]["code"]
            if code != step.expect_code:
                raise DevnetError(f"step {step.title!r}: expected {step.expect_code}, the "
                                  f"ledger said {code}: {reply['receipt']['message']}")
            _wait_everywhere(self.clients, step.tx.id, t0 + STEP_TIMEOUT_S)
            everywhere = time.perf_counter() - t0
            out(f"  {i:>2}. {step.title:<{width}} {code:<22} committed "
                f"{committed * 1000:6.0f} ms, on all {len(self.clients)} nodes "
                f"{everywhere * 1000:6.0f} ms")
        total = time.perf_counter() - started
        out(f"total: {len(steps)} steps, each signed, ordered, replicated and committed on "
            f"every node, in {total:.2f} s")
        return total


def _wait_everywhere(clients: dict[str, RpcClient], tx_id: bytes, deadline: float) -> None:
    pending = set(clients)
    while pending:
        for name in sorted(pending):
            try:
                if clients[name].tx(tx_id)["status"] == "committed":
                    pending.discard(name)
            except RpcError:
                pass
        if pending:
            if time.perf_counter() > deadline:
                raise DevnetError(f"not committed on {sorted(pending)} in time")
            time.sleep(0.005)
