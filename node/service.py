"""The node: one root nursery with every service started by `nursery.start()`.

`Node` is the runtime, built from parts that are already loaded (genesis, key, a network), so
tests can run several nodes in one process on an in-memory network. `run_from_config` loads the
TOML configuration, the genesis file, the keys and the libp2p host, and runs a `Node` until
SIGTERM or SIGINT, then stops within the configured deadline.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import pathlib
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import trio

from node import allocator
from node.config import NodeConfig, RpcSettings, Tuning
from node.keys import passphrase_from_env_or_file, read_key_file
from node.observe.metrics import MetricsPages, Page
from node.p2p import network as net
from node.p2p.host import P2PNode
from node.p2p.identity import load_or_create_node_key
from node.replica.chain import Chain
from node.replica.evidence import CommitEvidence
from node.replica.intake import TxIntake
from node.replica.mempool import Mempool
from node.replica.ordering import Orderer
from node.replica.sync import BlockSync
from node.rpc.http import HttpServer, Response, RouteHandler
from node.rpc.server import RpcServer
from node.storage.store import STORAGE_PROBE_INTERVAL_S, Storage, StorageUnavailable
from protocol import codec, crypto, types
from protocol.errors import CrossbillError
from protocol.genesis import load_genesis
from protocol.ledger import BlockResult, UpgradeRequired, queries
from protocol.ledger.state import active_public_key
from protocol.timing import Override, effective_timing, timing_problem

# Transaction types after which the node re-reads peers and the ordering set from the ledger.
MEMBERSHIP_TX_TYPES: Final = frozenset({"institution.admit", "node.set", "orderer.add",
                                        "orderer.remove"})
ORDERER_RETIRE_GRACE_S: Final = 10.0
ROLE_CHECK_INTERVAL_S: Final = 1.0
# Recent blocks whose local apply time node.status lists (the console's "time to commit
# everywhere" of its last blocks; ADR 0036).
APPLIED_TIMES_LISTED: Final = 16

log = logging.getLogger("crossbill.node")


class NodeStartError(CrossbillError):
    """The node cannot start with this configuration; the message says what to fix."""


def node_timing(config: types.ConsortiumConfig, tuning: Tuning,
                ) -> tuple[types.ConsensusTiming, tuple[Override, ...]]:
    """The consensus timing this node runs with: genesis's with the keys of [tuning] that the
    node sets in place (ADR 0030); each override is logged as a warning, once."""
    timing, overrides = effective_timing(config.timing, tuning.timing_overrides())
    problem = timing_problem(timing)
    if problem is not None:
        raise NodeStartError(f"[tuning] {problem[0]}: {problem[1]} (the consortium's timing "
                             "from genesis with this node's [tuning] overrides)")
    for override in overrides:
        log.warning("%s", override.describe())
    return timing, overrides


class Node:
    """One node. Who its peers are, whether it orders blocks, and which Raft members exist all
    follow the ledger: the node records (`node.set`) and the ordering set (`orderer.add`,
    `orderer.remove`) in the state after each applied block. A bank that the ledger adds to
    the ordering set switches from following to ordering without a restart, and back."""

    def __init__(self, *, config: types.ConsortiumConfig, institution: str,
                 key: crypto.PrivateKey, data_dir: pathlib.Path, network: net.Network,
                 extra_keys: Sequence[crypto.PrivateKey] = (), tuning: Tuning | None = None,
                 rpc_host: str | None = None, rpc_port: int = 0,
                 rpc_settings: RpcSettings | None = None,
                 metrics_host: str | None = None, metrics_port: int = 0,
                 backup_dir: pathlib.Path | None = None) -> None:
        inst = config.institution(institution)
        self.config = config
        self.institution = institution
        self.keys = (key, *extra_keys)
        self.net = network
        self.tuning = tuning or Tuning()
        self.timing, self.timing_overrides = node_timing(config, self.tuning)
        self.rpc_host = rpc_host
        self.rpc_port = rpc_port
        self.metrics_host = metrics_host
        self.metrics_port = metrics_port
        self.backup_dir = backup_dir if backup_dir is not None else data_dir.parent / "backups"
        self.storage = Storage.open(data_dir, chain_id=config.chain_id,
                                    genesis_hash=config.hash)
        self._role_changed = trio.Event()  # also set when the chain halts for an upgrade
        # ... and when the store stops taking writes (docs/adr/0031), maybe from a thread
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self.storage.on_unavailable = self._storage_failed
        try:
            self.chain = Chain(self.storage, config,
                               implemented=self.tuning.protocol_version_max,
                               on_halt=lambda needed: self._role_changed.set())
        except BaseException:
            self.storage.close()
            raise
        record = self.chain.state.institution(institution)
        if record is None:
            # An institution admitted after genesis, whose node starts from genesis (or from an
            # older backup): it follows the chain until the ledger tells it who it is.
            log.warning("%s is not in the ledger as of block %d: following the chain until "
                        "its admission is applied", institution, self.chain.height)
        self.role = record.role if record is not None else (inst.role if inst else "")
        self.is_orderer = False
        self.mempool: Mempool | None = None
        self.orderer: Orderer | None = None
        self.nodes: dict[str, types.NodeInfo] = {}
        self.peer_of_institution: dict[str, str] = {}
        self._orderers: tuple[str, ...] = ()
        self._refresh_membership()
        t = self.tuning
        self.timeout_s = self.timing.request_timeout_ms / 1000
        self._left_ordering_at: float | None = None
        self._last_proposer: str | None = None  # of the last applied block (None: not read)
        # (height, this node's wall clock in ms) of its last applied blocks: node.status
        # tells them, and the console derives each block's time to commit everywhere.
        self._applied_at: collections.deque[tuple[int, int]] = collections.deque(
            maxlen=APPLIED_TIMES_LISTED)
        self.evidence = CommitEvidence(
            institution=institution, chain=self.chain, storage=self.storage, network=network,
            signing_key=self.signing_key, is_orderer=lambda: self.is_orderer,
            recipients=self._attestation_recipients)
        self.sync = BlockSync(
            institution=institution, chain=self.chain, storage=self.storage,
            network=network, peers=self._sync_peers,
            batch_blocks=self.timing.block_sync_batch_blocks,
            poll_interval_s=self.timing.block_sync_poll_ms / 1000,
            request_timeout_s=self.timeout_s, on_block=self._on_block, leader=self._leader,
            raft_term=self._raft_term, tx_verified=lambda tx: self.intake.verified(tx),
            evidence=self.evidence, institution_of_peer=self._institution_of_peer)
        self.intake = TxIntake(chain=self.chain, mempool=None, network=network,
                               forward_peers=self._forward_peers,
                               batch_txs_max=t.tx_batch_txs_max,
                               batch_interval_ms=t.tx_batch_interval_ms,
                               request_timeout_s=self.timeout_s)
        network.register_handler(net.PROTO_RAFT, self._on_raft_message)
        self.rpc = RpcServer(self, rpc_settings)
        self.rpc_bound_port: int | None = None
        self.metrics_http: HttpServer | None = None  # while the metrics address is served
        self.metrics_bound_port: int | None = None
        self.started_at = time.monotonic()
        if self._wants_to_order():
            self._become_orderer()

    # ------------------------------------------------------------------ membership

    def _refresh_membership(self) -> bool:
        """Read the node records and the ordering set from the ledger; update the allowlist.
        True if anything changed."""
        state = self.chain.state
        if not self.role:
            record = state.institution(self.institution)
            self.role = record.role if record is not None else ""
        nodes = queries.nodes(state)
        orderers = state.chain.orderers
        if nodes == self.nodes and orderers == self._orderers:
            return False
        self.nodes = nodes
        self._orderers = orderers
        self.peer_of_institution = {i: n.peer_id for i, n in nodes.items()
                                    if i != self.institution}
        self.net.set_peers({n.peer_id: list(n.addresses) for i, n in nodes.items()
                            if i != self.institution})
        if self.orderer is not None:
            self.orderer.set_peers(self.peer_of_institution)
        return True

    def _sync_peers(self) -> list[str]:
        """Whom block sync asks: the orderers' nodes when ordering, else everyone's."""
        if self.is_orderer:
            return [self.peer_of_institution[o] for o in self._orderers
                    if o in self.peer_of_institution]
        return list(self.peer_of_institution.values())

    def _wants_to_order(self) -> bool:
        return self.institution in self._orderers

    def _attestation_recipients(self) -> list[str]:
        """Whom an orderer sends its attestations: the nodes outside the ordering set."""
        return [p for i, p in self.peer_of_institution.items() if i not in self._orderers]

    def _institution_of_peer(self, peer_id: str) -> str | None:
        for inst, peer in self.peer_of_institution.items():
            if peer == peer_id:
                return inst
        return None

    def signing_key(self, height: int | None = None) -> crypto.PrivateKey | None:
        """The configured key the ledger lets this institution sign block `height` with (by
        default the next block)."""
        height = self.chain.height + 1 if height is None else height
        for key in self.keys:
            if active_public_key(self.chain.state, self.institution, key.key_id,
                                 height) == key.public_key:
                return key
        return None

    def _become_orderer(self) -> None:
        t = self.tuning
        self.mempool = Mempool(t.mempool_txs_max, t.mempool_bytes_max)
        self.orderer = Orderer(
            institution=self.institution, signing_key=self.signing_key, chain=self.chain,
            storage=self.storage, mempool=self.mempool, network=self.net,
            peer_of_institution=self.peer_of_institution,
            tick_ms=self.timing.raft_tick_ms, election_ticks=self.timing.raft_election_ticks,
            heartbeat_ticks=self.timing.raft_heartbeat_ticks,
            send_timeout_s=self.timing.raft_send_timeout_ms / 1000,
            log_keep_entries=t.raft_log_keep_entries,
            log_keep_bytes=t.raft_log_keep_bytes, on_block=self._on_block,
            catch_up_to=self.sync.catch_up_to, on_new_leader=self._hand_pending_to_leader)
        self.intake.set_mempool(self.mempool)
        self.intake.on_admitted = self.orderer.kick
        self.is_orderer = True
        self._left_ordering_at = None

    def _hand_pending_to_leader(self) -> None:
        """Another orderer leads now: send it what our mempool holds (it may not have seen
        it; it drops what it holds or what committed)."""
        if self.mempool is not None and self.mempool.pending_count:
            handed = self.intake.forward_pending(self.mempool.pending())
            log.info("new leader %s: %d pending transactions forwarded to it", self._leader(),
                     handed)

    def _become_follower(self, why: str = "left the ordering set") -> None:
        mempool = self.mempool
        self.is_orderer = False
        self.orderer = None
        self.mempool = None
        self.intake.on_admitted = lambda: None
        self.intake.set_mempool(None)
        if mempool is not None:
            handed = self.intake.forward_pending(mempool.pending())
            log.info("%s: %d pending transactions forwarded", why, handed)

    def _check_role(self) -> None:
        """After a block: switch between ordering and following when the ledger says so. A
        removed orderer keeps its Raft member running until Raft has removed it (or for
        ORDERER_RETIRE_GRACE_S), so the leader can commit the removal."""
        wants = self._wants_to_order()
        if wants and not self.is_orderer:
            self._role_changed.set()
        elif not wants and self.is_orderer and self.orderer is not None:
            raft = self.orderer.raft
            now = time.monotonic()
            if self._left_ordering_at is None:
                self._left_ordering_at = now
            if (raft.id not in raft.conf.members()
                    or now - self._left_ordering_at > ORDERER_RETIRE_GRACE_S):
                self._role_changed.set()
        elif wants:
            self._left_ordering_at = None

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
        orderers = [o for o in self._orderers if o in self.peer_of_institution]
        if self._last_proposer is None and self.chain.height:
            last = self.storage.block(self.chain.height)  # once: then _on_block keeps it
            self._last_proposer = last.header.proposer if last is not None else ""
        if self._last_proposer in orderers:
            orderers.remove(self._last_proposer)
            orderers.insert(0, self._last_proposer)
        return [self.peer_of_institution[o] for o in orderers]

    def status(self) -> dict[str, Any]:
        tip = self.chain.tip
        leader = self._leader()
        mine = self.nodes.get(self.institution)
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
            "raft_members": (self.orderer.members() if self.orderer is not None else {}),
            "orderers": list(self._orderers),
            "peer_id": mine.peer_id if mine is not None else "",
            "peers": sorted(self.net.connected_peers()),
            "catching_up": self.sync.catching_up,
            "best_known_height": max(self.sync.best_known_height, tip.height),
            "mempool_txs": len(self.mempool) if self.mempool is not None else 0,
            "chain_id": self.config.chain_id,
            "genesis_hash": self.config.hash.hex(),
            "protocol_version": self.chain.protocol_version(),
            "upgrade_required": (None if self.chain.halted is None
                                 else self.chain.halted.describe()),
            "storage_error": (None if self.storage.unavailable is None
                              else str(self.storage.unavailable)),
            # The consensus timing in effect (ADR 0030): genesis's, or the defaults, with the
            # keys this node's [tuning] overrides listed.
            "timing": {**codec.to_json(self.timing),
                       "from_genesis": self.config.timing is not None,
                       "overridden": [o.key for o in self.timing_overrides]},
            "counters": self.counters(),
            "applied": [{"height": h, "applied_at_ms": t} for h, t in self._applied_at],
        }

    def counters(self) -> dict[str, Any]:
        """Every component's counters (the Prometheus metrics read the same snapshots)."""
        sync = self.sync.snapshot()
        rpc = self.rpc.snapshot()
        out: dict[str, Any] = {
            "intake": dict(self.intake.stats),
            "sync": {"blocks_fetched": sync.blocks_fetched,
                     "fetch_failures": sync.fetch_failures,
                     "gossip_blocks_rejected": sync.gossip_blocks_rejected,
                     "status_failures": sync.status_failures,
                     "blocks_waiting": sync.blocks_waiting},
            "evidence": dict(self.evidence.stats),
            "p2p": _plain(self.net.snapshot()),
            "rpc": {**_plain(rpc.http), "ws_message_errors": rpc.ws_message_errors,
                    "subscription_events": rpc.subscription_events,
                    "dropped_sessions": rpc.dropped_sessions,
                    "notice_failures": rpc.notice_failures},
        }
        if self.orderer is not None:
            out["ordering"] = dict(self.orderer.stats)
        if self.metrics_http is not None:
            out["metrics_http"] = _plain(self.metrics_http.snapshot())
        return out

    # ------------------------------------------------------------------ events

    async def _on_raft_message(self, peer_id: str, payload: bytes) -> bytes | None:
        orderer = self.orderer
        if orderer is None:
            return None  # not ordering (now): Raft retransmits to members only
        return await orderer.on_raft_message(peer_id, payload)

    async def _on_block(self, block: types.Block, result: BlockResult, mine: bool) -> None:
        self._last_proposer = block.header.proposer
        self._applied_at.append((block.height, int(time.time() * 1000)))
        # No await before the hub hears of the block: sub.blocks' replay (from_height) reads
        # the chain's height and relies on every later block reaching the hub.
        self.intake.block_applied(block)
        self.rpc.hub.block_applied(block, result.receipts, result.writes)
        if mine:
            await self.net.publish(net.TOPIC_BLOCKS, block.encoded)
        if self.is_orderer:  # committed by Raft (or certified): attest it (ADR 0019)
            await self.evidence.attest(block)
        if (any(tx.type in MEMBERSHIP_TX_TYPES for tx in block.txs)
                and self._refresh_membership()):
            log.info("membership changed at block %d: orderers %s", block.height,
                     ", ".join(self._orderers))
        self._check_role()
        log.debug("applied block %d with %d txs", block.height, len(block.txs))

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self._trio_token = trio.lowlevel.current_trio_token()
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._run_role)
                await nursery.start(self.evidence.run)
                await nursery.start(self.intake.run)
                if self.rpc_host is not None:
                    self.rpc_bound_port = await nursery.start(
                        self.rpc.serve, self.rpc_host, self.rpc_port)
                if self.metrics_host is not None:
                    self.metrics_http = _serve_pages(MetricsPages(self).routes())
                    self.metrics_bound_port = await nursery.start(
                        self.metrics_http.serve, self.metrics_host, self.metrics_port)
                log.info("node started", extra={"institution": self.institution,
                                                "height": self.chain.height,
                                                "orderer": self.is_orderer})
                task_status.started(self)
        finally:
            self.storage.close()

    async def _run_role(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Order blocks or follow them, whichever the ledger says; switch when it changes.
        Stop both, for good, when the chain halts for a protocol upgrade (ADR 0025): the node
        keeps serving reads, metrics and /readyz (which says which version it needs)."""
        started = False
        while True:
            self._role_changed = trio.Event()
            try:
                async with trio.open_nursery() as nursery:
                    if self.chain.halted is None:
                        if self.orderer is not None:
                            await nursery.start(self.orderer.run)
                            nursery.start_soon(self._watch_retirement)
                        else:
                            await nursery.start(self.sync.follow)
                    if not started:
                        task_status.started()
                        started = True
                    if self.chain.halted is None:
                        await self._role_changed.wait()
                    nursery.cancel_scope.cancel()
            except* UpgradeRequired:
                pass  # the chain logged it once and set `halted`
            except* StorageUnavailable:
                pass  # the store logged it once and is marked unwritable (docs/adr/0031)
            if self.storage.unavailable is not None:
                if not started:
                    task_status.started()
                    started = True
                await self._wait_storage_writable()
                continue
            if self.chain.halted is not None:
                if not started:  # it halted while the orderer was catching up to start
                    task_status.started()
                    started = True
                await trio.sleep_forever()
            if self._wants_to_order() and self.orderer is None:
                log.info("the ledger added %s to the ordering set: ordering from block %d",
                         self.institution, self.chain.height)
                self._become_orderer()
            elif not self._wants_to_order() and self.orderer is not None:
                log.info("the ledger removed %s from the ordering set: following from block "
                         "%d", self.institution, self.chain.height)
                self._become_follower()

    def _storage_failed(self, failure: StorageUnavailable) -> None:
        """The store stopped taking writes (told once, by the thread that wrote): stop
        ordering and applying until it takes them again."""
        try:
            trio.lowlevel.current_task()
        except RuntimeError:  # a worker thread (the intake log's writes)
            token = self._trio_token
            if token is not None:
                try:
                    token.run_sync_soon(lambda: self._role_changed.set())
                except trio.RunFinishedError:
                    pass
            return
        self._role_changed.set()

    async def _wait_storage_writable(self) -> None:
        """Stopped because the store cannot be written (docs/adr/0031): leave Raft (an
        orderer that cannot persist must neither vote nor acknowledge entries; the others
        elect without it), keep serving reads and metrics, and probe every
        STORAGE_PROBE_INTERVAL_S; once a probe write succeeds, read the tip again and order
        or follow from it, catching up from the peers as after a restart."""
        if self.orderer is not None:
            self._become_follower("stopped ordering: the store cannot be written")
        failed_at = time.monotonic()
        while not self.storage.recover():
            await trio.sleep(STORAGE_PROBE_INTERVAL_S)
        self.chain.reload()
        log.warning("storage writable again at %s after %.1f s: %s from block %d",
                    self.storage.path, time.monotonic() - failed_at,
                    "ordering" if self._wants_to_order() else "following", self.chain.height)
        if self._wants_to_order() and self.orderer is None:
            self._become_orderer()

    async def _watch_retirement(self) -> None:
        """A removed orderer gets no more blocks through Raft: check its role on a timer."""
        while True:
            await trio.sleep(ROLE_CHECK_INTERVAL_S)
            if not self._wants_to_order():
                self._check_role()


def _serve_pages(pages: Mapping[str, Callable[[], Page]]) -> HttpServer:
    """An HTTP server answering GET on each path with its page (the metrics endpoints)."""

    def route(render: Callable[[], Page]) -> RouteHandler:
        async def handler(body: bytes) -> Response:
            page = render()
            return Response(page.status, page.body, page.content_type)

        return handler

    return HttpServer({("GET", path): route(render) for path, render in pages.items()})


def _plain(value: Any) -> Any:
    """A snapshot (frozen dataclasses, read-only mappings) as plain JSON-able values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------- from a config file


def _check_identity(node: Node, cfg: NodeConfig, peer_id: str) -> None:
    """The institution key must be one the ledger knows for this institution (active now or
    from a later block); the node key should be the one the ledger names (a warning only: after
    a rotation, the operator restarts with the new key before this node has applied the block
    that names it, and its peers are the judges)."""
    state = node.chain.state
    record = state.institution(cfg.institution)
    if record is None:
        return  # admitted later than this node's state: it learns by following the chain
    known = {k.key_id for k in record.keys}
    if not any(k.key_id in known for k in node.keys):
        raise NodeStartError(
            f"{cfg.key_file}: key {node.keys[0].key_id.hex()} is not a key of {cfg.institution} in "
            f"the ledger (as of block {node.chain.height})")
    if node.signing_key() is None:
        log.warning("no configured key of %s may sign the next block: blocks and transactions "
                    "signed by this node will be refused until the ledger lists one",
                    cfg.institution)
    mine = node.nodes.get(cfg.institution)
    if mine is not None and mine.peer_id != peer_id:
        log.warning("%s: node key has peer id %s but the ledger (block %d) names %s for %s: "
                    "peers refuse this node until a node.set transaction names it",
                    cfg.node_key_file, peer_id, node.chain.height, mine.peer_id,
                    cfg.institution)


async def run_from_config(cfg: NodeConfig) -> None:
    """Load everything `cfg` names and run the node until SIGTERM/SIGINT."""
    try:
        genesis_bytes = cfg.genesis.read_bytes()
    except OSError as exc:
        raise NodeStartError(f"cannot read genesis {cfg.genesis}: {exc.strerror}") from None
    config = load_genesis(genesis_bytes)
    passphrase = passphrase_from_env_or_file(cfg.passphrase_file)
    key = read_key_file(cfg.key_file, passphrase)
    extra_keys = [read_key_file(f, passphrase) for f in cfg.extra_key_files]
    identity = load_or_create_node_key(cfg.node_key_file)
    # The allowlist starts from genesis; the node replaces it with the ledger's node records
    # (node.set) as soon as it has opened its store, before the host listens.
    addresses = {i.node.peer_id: list(i.node.addresses) for i in config.institutions
                 if i.node is not None and i.node.peer_id != identity.peer_id}
    p2p = P2PNode(identity.key_pair, cfg.p2p_listen, addresses,
                  topics=(net.TOPIC_TXS, net.TOPIC_BLOCKS))
    node = Node(config=config, institution=cfg.institution, key=key, extra_keys=extra_keys,
                data_dir=cfg.data_dir, network=p2p,
                tuning=cfg.tuning, rpc_host=cfg.rpc_host, rpc_port=cfg.rpc_port,
                rpc_settings=cfg.rpc,
                metrics_host=cfg.metrics_host, metrics_port=cfg.metrics_port,
                backup_dir=cfg.backup_dir)
    try:
        _check_identity(node, cfg, identity.peer_id)
    except BaseException:
        node.storage.close()
        raise
    async with trio.open_nursery() as nursery:
        await nursery.start(p2p.run)
        await nursery.start(node.run)
        await nursery.start(allocator.trim_periodically)  # process-wide: here, not in Node
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("received %s: stopping", signal.Signals(signum).name)
                break
        nursery.cancel_scope.deadline = trio.current_time() + cfg.tuning.shutdown_deadline_s
        nursery.cancel_scope.cancel()

