"""The node: one root nursery with every service started by `nursery.start()`.

`Node` is the runtime, built from parts that are already loaded (genesis, key, a network), so
tests can run several nodes in one process on an in-memory network. `run_from_config` loads the
TOML configuration, the genesis file, the keys and the libp2p host, and runs a `Node` until
SIGTERM or SIGINT, then stops within the configured deadline.
"""

from __future__ import annotations

import logging
import pathlib
import signal
import time
from typing import Any

import trio

from node import net
from node.chain import Chain
from node.config import NodeConfig, RpcSettings, Tuning
from node.intake import TxIntake
from node.mempool import Mempool
from node.metrics import MetricsServer
from node.ordering import Orderer
from node.rpc.server import RpcServer
from node.storage import Storage
from node.sync import BlockSync
from protocol import crypto, types
from protocol.errors import CrossbillError

log = logging.getLogger("crossbill.node")


class NodeStartError(CrossbillError):
    """The node cannot start with this configuration; the message says what to fix."""


class Node:
    def __init__(self, *, config: types.ConsortiumConfig, institution: str,
                 key: crypto.PrivateKey, data_dir: pathlib.Path, network: net.Network,
                 peer_of_institution: dict[str, str], tuning: Tuning | None = None,
                 rpc_host: str | None = None, rpc_port: int = 0,
                 rpc_settings: RpcSettings | None = None,
                 metrics_host: str | None = None, metrics_port: int = 0) -> None:
        inst = config.institution(institution)
        if inst is None:
            raise ValueError(f"{institution!r} is not in the consortium")
        self.config = config
        self.institution = institution
        self.role = inst.role
        self.key = key
        self.net = network
        self.tuning = tuning or Tuning()
        self.rpc_host = rpc_host
        self.rpc_port = rpc_port
        self.metrics_host = metrics_host
        self.metrics_port = metrics_port
        self.peer_of_institution = peer_of_institution
        self.storage = Storage.open(data_dir, chain_id=config.chain_id,
                                    genesis_hash=config.hash)
        try:
            self.chain = Chain(self.storage, config)
        except BaseException:
            self.storage.close()
            raise
        self.is_orderer = institution in self.chain.orderers()
        t = self.tuning
        self.mempool = Mempool(t.mempool_txs_max, t.mempool_bytes_max) if self.is_orderer \
            else None
        orderer_peers = [peer_of_institution[o] for o in self.chain.orderers()
                         if o != institution and o in peer_of_institution]
        all_peers = [p for i, p in peer_of_institution.items() if i != institution]
        timeout_s = t.request_timeout_ms / 1000
        self.orderer: Orderer | None = None
        self.sync = BlockSync(
            institution=institution, chain=self.chain, storage=self.storage,
            network=network, peers=orderer_peers if self.is_orderer else all_peers,
            batch_blocks=t.block_sync_batch_blocks, request_timeout_s=timeout_s,
            on_block=self._on_block, leader=self._leader, raft_term=self._raft_term)
        self.intake = TxIntake(chain=self.chain, mempool=self.mempool, network=network,
                               forward_peers=self._forward_peers,
                               batch_txs_max=t.tx_batch_txs_max,
                               batch_interval_ms=t.tx_batch_interval_ms,
                               request_timeout_s=timeout_s)
        if self.mempool is not None:
            self.orderer = Orderer(
                institution=institution, key=key, chain=self.chain, storage=self.storage,
                mempool=self.mempool, network=network,
                peer_of_institution={o: peer_of_institution[o] for o in self.chain.orderers()
                                     if o != institution},
                tick_ms=t.raft_tick_ms, election_ticks=t.raft_election_ticks,
                heartbeat_ticks=t.raft_heartbeat_ticks,
                log_keep_entries=t.raft_log_keep_entries, on_block=self._on_block,
                catch_up_to=self.sync.catch_up_to)
            self.intake.on_admitted = self.orderer.kick
        self.rpc = RpcServer(self, rpc_settings)
        self.rpc_bound_port: int | None = None
        self.metrics_bound_port: int | None = None
        self.started_at = time.monotonic()

    # ------------------------------------------------------------------ views

    def _leader(self) -> str:
        return self.orderer.leader if self.orderer is not None else ""

    def _raft_term(self) -> int:
        return self.orderer.raft.term if self.orderer is not None else 0

    def _forward_peers(self) -> list[str]:
        """Where this node sends client transactions: the leader (orderers), else orderers
        with the last block's proposer first."""
        if self.orderer is not None:
            leader = self.orderer.leader
            if not leader or leader == self.institution:
                return []
            peer = self.peer_of_institution.get(leader)
            return [peer] if peer else []
        orderers = [o for o in self.chain.orderers() if o in self.peer_of_institution]
        last = self.storage.block(self.chain.height) if self.chain.height else None
        if last is not None and last.header.proposer in orderers:
            orderers.remove(last.header.proposer)
            orderers.insert(0, last.header.proposer)
        return [self.peer_of_institution[o] for o in orderers]

    def status(self) -> dict[str, Any]:
        tip = self.chain.tip
        leader = self._leader()
        return {
            "institution": self.institution,
            "role": self.role,
            "orderer": self.is_orderer,
            "height": tip.height,
            "tip_hash": tip.hash.hex(),
            "state_root": tip.state_root.hex(),
            "block_time_ms": tip.timestamp_ms,
            "leader": leader,
            "is_leader": bool(leader) and leader == self.institution,
            "raft_term": self._raft_term(),
            "peers": sorted(self.net.connected_peers()),
            "catching_up": self.sync.catching_up,
            "best_known_height": max(self.sync.best_known_height, tip.height),
            "mempool_txs": len(self.mempool) if self.mempool is not None else 0,
            "chain_id": self.config.chain_id,
            "genesis_hash": self.config.hash.hex(),
            "counters": self.counters(),
        }

    def counters(self) -> dict[str, Any]:
        """Every component's counters (the Prometheus metrics read the same numbers)."""
        out: dict[str, Any] = {"intake": dict(self.intake.stats),
                               "sync": dict(self.sync.stats)}
        if self.orderer is not None:
            out["ordering"] = dict(self.orderer.stats)
        net_stats = getattr(self.net, "stats", None)
        if isinstance(net_stats, dict):
            out["p2p"] = net_stats
        return out

    # ------------------------------------------------------------------ events

    async def _on_block(self, block: types.Block, receipts: tuple[types.Receipt, ...],
                        mine: bool) -> None:
        self.intake.block_applied(block)
        self.rpc.hub.block_applied(block, receipts)
        if mine:
            await self.net.publish(net.TOPIC_BLOCKS, block.encoded)
        log.debug("applied block %d with %d txs", block.height, len(block.txs))

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                if self.orderer is not None:
                    await nursery.start(self.orderer.run)
                else:
                    await nursery.start(self.sync.follow)
                await nursery.start(self.intake.run)
                if self.rpc_host is not None:
                    self.rpc_bound_port = await nursery.start(
                        self.rpc.serve, self.rpc_host, self.rpc_port)
                if self.metrics_host is not None:
                    self.metrics_bound_port = await nursery.start(
                        MetricsServer(self).serve, self.metrics_host, self.metrics_port)
                log.info("node started", extra={"institution": self.institution,
                                                "height": self.chain.height,
                                                "orderer": self.is_orderer})
                task_status.started(self)
        finally:
            self.storage.close()



# ---------------------------------------------------------------------- from a config file


async def run_from_config(cfg: NodeConfig) -> None:
    """Load everything `cfg` names and run the node until SIGTERM/SIGINT."""
    from node.keys import passphrase_from_env_or_file, read_key_file
    from node.p2p.host import P2PNode
    from node.p2p.identity import load_or_create_node_key
    from protocol.genesis import load_genesis

    try:
        genesis_bytes = cfg.genesis.read_bytes()
    except OSError as exc:
        raise NodeStartError(f"cannot read genesis {cfg.genesis}: {exc.strerror}") from None
    config = load_genesis(genesis_bytes)
    inst = config.institution(cfg.institution)
    if inst is None:
        raise NodeStartError(f"{cfg.path}: [node] institution: {cfg.institution!r} is not in "
                             f"the genesis file {cfg.genesis}")
    key = read_key_file(cfg.key_file, passphrase_from_env_or_file(cfg.passphrase_file))
    if not any(k.key_id == key.key_id for k in inst.keys):
        raise NodeStartError(f"{cfg.key_file}: key {key.key_id.hex()} is not a key of "
                             f"{cfg.institution} in the genesis file")
    identity = load_or_create_node_key(cfg.node_key_file)
    if inst.node is not None and inst.node.peer_id != identity.peer_id:
        raise NodeStartError(
            f"{cfg.node_key_file}: node key has peer id {identity.peer_id}, but the genesis "
            f"file lists {inst.node.peer_id} for {cfg.institution}")
    peers = {i.id: i.node.peer_id for i in config.institutions
             if i.node is not None and i.id != cfg.institution}
    addresses = {i.node.peer_id: list(i.node.addresses) for i in config.institutions
                 if i.node is not None and i.id != cfg.institution}
    p2p = P2PNode(identity.key_pair, cfg.p2p_listen, addresses,
                  topics=(net.TOPIC_TXS, net.TOPIC_BLOCKS))
    async with trio.open_nursery() as nursery:
        await nursery.start(p2p.run)
        node = Node(config=config, institution=cfg.institution, key=key,
                    data_dir=cfg.data_dir, network=p2p, peer_of_institution=peers,
                    tuning=cfg.tuning, rpc_host=cfg.rpc_host, rpc_port=cfg.rpc_port,
                    rpc_settings=cfg.rpc,
                    metrics_host=cfg.metrics_host, metrics_port=cfg.metrics_port)
        await nursery.start(node.run)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("received %s: stopping", signal.Signals(signum).name)
                break
        nursery.cancel_scope.deadline = trio.current_time() + cfg.tuning.shutdown_deadline_s
        nursery.cancel_scope.cancel()

