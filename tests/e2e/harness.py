"""Multi-process devnets on loopback for end-to-end tests: start, kill -9, restart, load."""

from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from node.cli import devnet
from node.client.transport import RpcClient, RpcError
from protocol import crypto, types
from protocol.genesis import load_genesis
from tests import sealing
from tests.waiting import wait_until_sync

free_base_port = devnet.free_base_port
free_port = devnet.free_port


@dataclass
class Devnet:
    root: pathlib.Path
    desc: dict[str, Any]
    config: types.ConsortiumConfig
    keys: dict[str, crypto.PrivateKey]
    clients: dict[str, RpcClient] = field(default_factory=dict)

    def node(self, name: str) -> dict[str, Any]:
        return next(n for n in self.desc["nodes"] if n["name"] == name)

    def client(self, name: str, timeout_s: float = 10) -> RpcClient:
        return devnet.client(self.desc, self.node(name), timeout_s)

    def status(self, name: str) -> dict[str, Any]:
        with self.client_ctx(name) as c:
            result: dict[str, Any] = c.status()
            return result

    @contextmanager
    def client_ctx(self, name: str, timeout_s: float = 10) -> Iterator[RpcClient]:
        c = self.client(name, timeout_s)
        try:
            yield c
        finally:
            c.close()

    def names(self) -> list[str]:
        return [n["name"] for n in self.desc["nodes"]]

    def leader(self) -> str:
        return devnet.wait_ready(self.desc, 30)

    def kill9(self, name: str) -> None:
        node = self.node(name)
        os.kill(node["pid"], signal.SIGKILL)
        wait_until_sync(lambda: not devnet.pid_alive(node["pid"]), 10,
                        what=f"{name} (pid {node['pid']}) gone after SIGKILL")

    def restart(self, name: str) -> None:
        node = self.node(name)
        proc = devnet.start_node(pathlib.Path(node["config"]), pathlib.Path(node["log"]))
        node["pid"] = proc.pid
        # `devnet down` stops the pids written in devnet.json: keep it current.
        (self.root / "devnet.json").write_text(json.dumps(self.desc, indent=2) + "\n")

    def assert_all_have(self, tx_ids: list[bytes]) -> None:
        """Every node reports every one of `tx_ids` committed."""
        for name in self.names():
            with self.client_ctx(name) as c:
                missing = [t.hex() for t in tx_ids if c.tx(t)["status"] != "committed"]
            assert missing == [], f"{name} lacks {len(missing)} acknowledged transactions"

    def wait_agree(self, names: list[str] | None = None, min_height: int = 1,
                   timeout_s: float = 60) -> int:
        """Wait until the named nodes (default: all) report one height and state root."""
        chosen = names or self.names()

        def agreed() -> tuple[int] | None:
            tips = {(s["height"], s["state_root"]) for s in (self.status(n) for n in chosen)}
            height = int(next(iter(tips))[0]) if len(tips) == 1 else -1
            return (height,) if height >= min_height else None

        (height,) = wait_until_sync(agreed, timeout_s, poll_s=0.2, retry_on=(OSError, RpcError),
                                    what=f"{chosen} to agree on a tip >= {min_height}")
        return height


@contextmanager
def running_devnet(root: pathlib.Path, tuning: dict[str, int] | None = None,
                   params: types.Params | None = None, console: bool = False
                   ) -> Iterator[Devnet]:
    """A devnet of processes; `console`: with the regulator's console (most tests need the
    nodes only)."""
    desc = devnet.up(root, base_port=free_base_port(), tuning=tuning, out=lambda _: None,
                     params=params, console=console)
    try:
        config = load_genesis((root / "genesis.json").read_bytes())
        yield Devnet(root, desc, config, devnet.institution_keys(root, desc))
    finally:
        try:
            devnet.down(root, out=lambda _: None)
        except devnet.DevnetError:
            pass
        # whatever `down` could not reach: never leak a node (or the console)
        for pid in [n["pid"] for n in desc["nodes"]] + (
                [desc["console"]["pid"]] if "console" in desc else []):
            if devnet.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


class Load:
    """Steady load: customs registers declarations, submitted with wait=True from a few
    threads to the given nodes; `acknowledged` holds the ids the API said were committed."""

    def __init__(self, net: Devnet, targets: list[str], signer: str = "customs.qd",
                 threads: int = 4, pause_s: float = 0.0) -> None:
        self.net = net
        self.pause_s = pause_s  # between one thread's submissions (a steady, slower load)
        self.targets = targets
        self.signer = signer
        self.threads = threads
        self.acknowledged: list[bytes] = []
        self.failures = 0
        self._stop = threading.Event()
        self._seq = 0
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def make_tx(self) -> types.Tx:
        with self._lock:
            self._seq += 1
            n = self._seq
        payload = sealing.declaration(self.net.config, f"LOAD-{os.getpid()}-{n}",
                                      sealing.KEYLESS_EXPORTER, 1_000_000 + n, "2026-11-20")
        return types.Tx.create(self.net.keys[self.signer], chain_id=self.net.config.chain_id,
                               signer=self.signer, payload=payload, nonce=os.urandom(16),
                               expires_at_ms=int(time.time() * 1000) + 600_000)

    def _worker(self, idx: int) -> None:
        clients: dict[str, RpcClient] = {}
        i = idx
        while not self._stop.is_set():
            target = self.targets[i % len(self.targets)]
            i += 1
            client = clients.setdefault(target, self.net.client(target, timeout_s=10))
            tx = self.make_tx()
            try:
                reply = client.submit(tx, wait=True, timeout_ms=5000)
                if reply["status"] == "committed":
                    with self._lock:
                        self.acknowledged.append(tx.id)
                if self.pause_s:
                    self._stop.wait(self.pause_s)
            except (OSError, RpcError):
                self.failures += 1
                client.close()
                time.sleep(0.05)
        for c in clients.values():
            c.close()

    def __enter__(self) -> Load:
        self._pool = concurrent.futures.ThreadPoolExecutor(self.threads)
        for i in range(self.threads):
            self._pool.submit(self._worker, i)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def wait_acknowledged(self, n: int, timeout_s: float = 30) -> None:
        wait_until_sync(lambda: len(self.acknowledged) >= n, timeout_s, what=lambda: (
            f"{n} transactions acknowledged: {len(self.acknowledged)} were, "
            f"{self.failures} failures"))
