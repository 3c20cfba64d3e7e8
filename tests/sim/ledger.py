"""The wider model: Raft plus block cutting, the ledger and membership that follows it.

Every simulated node is a bank's ordering node in miniature, driven by the same pure decisions
as node/replica/ordering.py (`protocol.replica`): the leader cuts blocks with `decide_cut` (the
simulator's tick counter is the clock, `TICK_MS` per tick), builds them with `build_block` and
proposes them; every node applies committed entries through `judge_entry` and `execute_block`
to its own in-memory ledger; the leader moves Raft's configuration towards the ledger's
ordering set with `decide_membership`; role changes go through `on_role_change` and a leader
that lost its signing key hands over with `hand_over_target`. Around them, this module plays
the shell's part (node/replica/ordering.py, intake, block sync) in the simplest faithful way:

- storage: Raft keeps only what a Ready persisted (tests/sim/cluster.py); the ledger (blocks,
  state, the Raft index of the last block applied through Raft) is durable as soon as a block
  is applied, like the node's one synced batch; mempool and proposal are lost in a crash;
- clients submit signed transactions (customs declarations; the regulator's `orderer.add` and
  `orderer.remove`) to random live nodes, and submit them again until one is acknowledged:
  acknowledged means some node applied a block holding it. The first two a schedule submits
  register customs' and the regulator's encryption keys (`encryption_key.set`); declarations
  are sealed to both (ADR 0024), deterministically (tests/sealing.py), so that a seed replays
  the same bytes in any process; one ordered before the keys is refused (NO_ENCRYPTION_KEY),
  which changes nothing the checks look at;
- a node admits a transaction unless its chain holds it, keeps it in its mempool
  (`node.replica.mempool.Mempool`) and forwards it to the leader it knows, over the same
  faulty network as Raft messages;
- a snapshot names a chain position (height, hash); a node that installs one fetches the
  blocks it lacks from a node that has them and verifies them like any block, once the
  attestations of the orderers that applied each block make a commit certificate
  (`protocol.replica.certificates`, ADR 0019): every node attests each block it applies while
  in the ordering set and holding its key.

Checks, besides the Raft checks of tests/sim/checker.py: every node applies the same block and
reaches the same state root at every height; no node applies a transaction twice, and every
acknowledged transaction is in the chain of every member at the end; no committed block is
ever skipped as stale or invalid (what the cutting rule guarantees); a removal is never
proposed while the ledger names a bank that is not yet a member (adds go before removals);
and after the faults stop, Raft's configuration reaches the ledger's ordering set, every
member reaches the same tip, and every submitted transaction commits.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Final

from node.cli.demo import Member, build_consortium
from node.replica.mempool import Mempool
from protocol import crypto, limits, txtypes, types, validation, versions
from protocol.errors import DecodeError, ValidationError
from protocol.genesis import check_config
from protocol.ledger import (
    BlockResult,
    MemoryKV,
    State,
    UpgradeRequired,
    dates,
    initial_state,
    notices,
)
from protocol.ledger.state import active_public_key
from protocol.raft import (
    LEADER,
    NONE,
    ConfOp,
    Entry,
    EntryKind,
    ProposalDropped,
    Raft,
    Snapshot,
)
from protocol.replica import (
    CUT,
    HAND_OVER,
    INVALID_BLOCK,
    SKIP,
    CutDecision,
    CutInputs,
    EntryVerdict,
    MembershipDecision,
    MembershipInputs,
    Tip,
    applied_index_on_restart,
    build_block,
    decide_cut,
    decide_membership,
    execute_block,
    hand_over_target,
    judge_entry,
    on_role_change,
)
from protocol.replica import certificates as certs
from protocol.sealed import Recipient, public_key_of
from tests.sealing import DeterministicSealer

from .cluster import Cluster, RaftFactory, SimNode, SimParams, Storage, snapshot_chain

TICK_MS: Final = 10  # one simulator step is this many milliseconds of node time
CHAIN_ID: Final = "crossbill-sim"
T0_MS: Final = 1_700_000_000_000
REG: Final = "regulator.sim"
CUSTOMS: Final = "customs.sim"
EXPORTER: Final = "91370200MA3C8Y5R2K"
EXPIRES_MS: Final = T0_MS + 3_000_000
RESUBMIT_STEPS: Final = 15  # a client submits an unacknowledged transaction again after this
BURST_P: Final = 0.015  # a client round that submits a burst of transactions
CRASH_AFTER_INSTALL_P: Final = 0.25  # with crash faults: crash right after a snapshot install
HIST_ENTRIES: Final = 16  # checker chain values kept per node, for compaction behind applied
MEMPOOL_TXS_MAX: Final = 100_000
# With `upgrade`: version 2 is scheduled this far ahead of the tallest tip when the regulator
# sends it, and the operator of the node that stopped for it upgrades it after a pause.
ACTIVATION_SLACK_BLOCKS: Final = 3
UPGRADE_PAUSE_STEPS: Final = (20, 80)
MEMPOOL_BYTES_MAX: Final = 1 << 30


def bank(i: int) -> str:
    return f"bank.{i}"


def node_of(institution: str) -> int:
    """The simulator's Raft id of a bank (bank.i is node i)."""
    return int(institution.rsplit(".", 1)[1])


def _key(name: str) -> crypto.PrivateKey:
    return crypto.PrivateKey(crypto.hash_domain(b"crossbill/sim-key", name.encode()))


@cache
def _consortium(banks: int, orderers: int, txs_max: int, bytes_max: int,
                interval_ms: int) -> tuple[types.ConsortiumConfig, tuple[tuple[bytes, bytes], ...]]:
    """The consortium of a schedule and its genesis state (cached per process: every schedule
    with the same shape starts from the same genesis)."""
    members = (Member(REG, "regulator", "Regulator"), Member(CUSTOMS, "customs", "Customs"),
               *(Member(bank(i), "bank", f"Bank {i}") for i in range(1, banks + 1)))
    config, _ = build_consortium(CHAIN_ID, T0_MS, members, keys={m.id: _key(m.id)
                                                                  for m in members})
    params = dataclasses.replace(types.DEFAULT_PARAMS, block_txs_max=txs_max,
                                 block_bytes_max=bytes_max, block_interval_ms=interval_ms,
                                 tx_expiry_window_ms=3_600_000)
    config = types.ConsortiumConfig(config.chain_id, config.genesis_time_ms,
                                    config.institutions,
                                    tuple(bank(i) for i in range(1, orderers + 1)), params)
    check_config(config)
    kv = initial_state(config).kv
    assert isinstance(kv, MemoryKV)
    return config, tuple(kv.items())


# Transactions the simulated clients sign, cached per process (every schedule starts from
# genesis, so the same signed transaction is new in each). The nodes skip re-verifying the
# signatures of these honest transactions, as a node skips those its mempool admitted.
GENUINE: set[types.Tx] = set()


def _encryption_private_key(party: str) -> bytes:
    return crypto.hash_domain(b"crossbill/sim-encryption-key", party.encode())


def _recipient(party: str) -> Recipient:
    """The party's encryption key, version 1: what `encryption_key_tx` registers."""
    return Recipient(party, 1, public_key_of(_encryption_private_key(party)))


@cache
def encryption_key_tx(party: str) -> types.Tx:
    tx = types.Tx.create(_key(party), chain_id=CHAIN_ID, signer=party,
                         payload=txtypes.SetEncryptionKey(_recipient(party).public_key),
                         nonce=b"enc-key\x00", expires_at_ms=EXPIRES_MS)
    GENUINE.add(tx)
    return tx


@cache
def declaration(n: int) -> types.Tx:
    no = f"SIM-{n}"
    details = txtypes.DeclarationDetails(crypto.hash_domain(b"crossbill/sim-salt",
                                                            no.encode())[:16],
                                         "Buyer GmbH", "DE", "pumps")
    sealed = DeterministicSealer(f"sim/{no}").seal(
        details, "declaration.register", no, [_recipient(CUSTOMS), _recipient(REG)])
    tx = types.Tx.create(_key(CUSTOMS), chain_id=CHAIN_ID, signer=CUSTOMS,
                         payload=txtypes.RegisterDeclaration(
                             no, EXPORTER, 1_000 + n, "USD",
                             dates.format_day(dates.day_of(T0_MS) - 2), sealed),
                         nonce=n.to_bytes(8, "big"), expires_at_ms=EXPIRES_MS)
    GENUINE.add(tx)
    return tx


def client_tx(n: int) -> types.Tx:
    """The n-th transaction a schedule's clients submit (from 1): the two encryption keys
    declarations are sealed to, then declarations."""
    if n == 1:
        return encryption_key_tx(CUSTOMS)
    if n == 2:
        return encryption_key_tx(REG)
    return declaration(n)


@cache
def regulator_tx(op: str, institution: str, nonce: int) -> types.Tx:
    payload: txtypes.Payload = (txtypes.AddOrderer(institution) if op == "add"
                                else txtypes.RemoveOrderer(institution))
    tx = types.Tx.create(_key(REG), chain_id=CHAIN_ID, signer=REG, payload=payload,
                         nonce=nonce.to_bytes(8, "big"), expires_at_ms=EXPIRES_MS)
    GENUINE.add(tx)
    return tx


@cache
def activation_tx(height: int, nonce: int) -> types.Tx:
    tx = types.Tx.create(_key(REG), chain_id=CHAIN_ID, signer=REG,
                         payload=txtypes.ActivateVersion(2, height),
                         nonce=nonce.to_bytes(8, "big"), expires_at_ms=EXPIRES_MS)
    GENUINE.add(tx)
    return tx


def _genuine(tx: types.Tx) -> bool:
    return tx in GENUINE


def ledger_snapshot_data(index: int, chain: bytes, tip: Tip) -> bytes:
    """What a snapshot carries: the checker's chain at `index` (tests/sim/cluster.py), then the
    chain position the node names (its tip, possibly ahead of `index`, as the node does)."""
    return index.to_bytes(8, "big") + chain + tip.height.to_bytes(8, "big") + tip.hash


def snapshot_position(data: bytes) -> tuple[int, bytes] | None:
    if len(data) < 64:
        return None
    return int.from_bytes(data[24:32], "big"), data[32:64]


# ------------------------------------------------------------------------------ the decisions


@dataclass(frozen=True)
class Rules:
    """The decisions the simulated nodes use: protocol.replica's, unless a broken variant
    (tests/sim/broken.py) replaces one to show the checks catch it."""

    decide_cut: Callable[[CutInputs], CutDecision] = decide_cut
    decide_membership: Callable[[MembershipInputs], MembershipDecision] = decide_membership
    judge_entry: Callable[[Entry, types.BlockHeader | None, Tip, bytes | None],
                          EntryVerdict] = judge_entry
    applied_on_restart: Callable[[int, int], int] = applied_index_on_restart
    # The shell drops pending transactions that blocks fetched by block sync committed.
    forget_synced_txs: bool = True
    # The version check before each block (protocol.versions.required_upgrade): a node stops
    # before a block of a version it does not implement (Chain.check_version).
    required_upgrade: Callable[[tuple[versions.Activation, ...], int, int],
                               versions.UpgradeNeeded | None] = versions.required_upgrade


# ------------------------------------------------------------------------------ nodes


@dataclass
class Ledger:
    """A node's durable chain: what survives its crashes."""

    state: State
    tip: Tip
    blocks: list[types.Block] = field(default_factory=list)
    tx_heights: dict[bytes, int] = field(default_factory=dict)
    raft_applied: int = 0  # Raft index of the last block applied through Raft
    raft_applied_chain: bytes = b""  # the checker's chain at raft_applied
    _view: tuple[bytes, tuple[str, ...], types.Params] | None = None

    def view(self) -> tuple[tuple[str, ...], types.Params]:
        """The ordering set and parameters in the state at the tip (read once per tip)."""
        if self._view is None or self._view[0] != self.tip.hash:
            self._view = (self.tip.hash, self.state.chain.orderers, self.state.params)
        return self._view[1], self._view[2]


@dataclass
class Proposed:
    block: types.Block
    result: BlockResult
    tip_hash: bytes


@dataclass(eq=False)
class LedgerNode(SimNode):
    ledger: Ledger | None = None
    mempool: Mempool = field(default_factory=lambda: Mempool(MEMPOOL_TXS_MAX,
                                                             MEMPOOL_BYTES_MAX))
    proposal: Proposed | None = None
    last_cut_ms: int = 0
    key_lost_until: int = -1
    chain_hist: dict[int, bytes] = field(default_factory=dict)
    implemented: int = versions.IMPLEMENTED_VERSION  # the protocol versions its binary has
    awaiting_upgrade: bool = False  # stopped for an upgrade; restarts upgraded

    @property
    def institution(self) -> str:
        return bank(self.id)


@dataclass
class ClientTx:
    tx: types.Tx
    sent_at: int
    acked_height: int = 0


# ------------------------------------------------------------------------------ the cluster


class LedgerCluster(Cluster):
    def __init__(self, seed: int, params: SimParams, factory: RaftFactory = Raft,
                 rules: Rules | None = None) -> None:
        self.rules = rules or Rules()
        spare = 2 if "membership" in params.faults else 0
        self.config, self.genesis_items = _consortium(
            params.nodes + spare, params.nodes, params.block_txs_max, params.block_bytes_max,
            params.block_interval_ms)
        self.genesis_tip = Tip(0, self.config.hash, self.config.genesis_time_ms)
        self.canon: dict[int, tuple[bytes, bytes]] = {}  # height -> (block hash, state root)
        self.canon_notices: dict[int, tuple[notices.Notice, ...]] = {}  # height -> party notices
        self.client: dict[bytes, ClientTx] = {}
        self.submitted = 0
        self.reg_nonce = 0
        self.fwd: list[tuple[int, int, int, int, types.Tx]] = []
        self.decoded: dict[bytes, types.Block | None] = {}
        # (height, block hash) -> the orderers' attestations, by institution (ADR 0019)
        self.attested: dict[tuple[int, bytes], dict[str, certs.CommitSignature]] = {}
        # What the schedule exercised: blocks applied (on any node), blocks fetched by block
        # sync, hand-overs started, and each decision's reasons (cut:..., membership:...,
        # entry:...).
        self.stats: dict[str, int] = {"blocks_applied": 0, "synced_blocks": 0, "hand_overs": 0}
        self.activation_sent = False
        super().__init__(seed, params, factory)
        if params.upgrade:  # one node runs a binary that lacks version 2
            old = self.nodes[sorted(self.nodes)[seed % params.nodes]]
            assert isinstance(old, LedgerNode)
            old.implemented = 1

    # ------------------------------------------------------------------ lifecycle hooks

    def _new_node(self, node_id: int) -> SimNode:
        state = State(MemoryKV(self.genesis_items))
        return LedgerNode(node_id, Storage(self.voters0),
                          ledger=Ledger(state, self.genesis_tip))

    def _restart_point(self, n: SimNode) -> tuple[int, bytes]:
        led = _ledger(n)
        snap = n.storage.snapshot
        applied = self.rules.applied_on_restart(led.raft_applied, snap.meta.index)
        if applied == led.raft_applied and applied > snap.meta.index:
            return applied, led.raft_applied_chain
        return applied, snapshot_chain(snap.data)

    def _after_start(self, n: SimNode) -> None:
        assert isinstance(n, LedgerNode)
        if n.awaiting_upgrade:  # its operator installed the binary with version 2
            n.awaiting_upgrade = False
            n.implemented = versions.IMPLEMENTED_VERSION
            self._count("upgrade:resumed")
        n.last_cut_ms = self.now * TICK_MS
        n.chain_hist = {n.applied: n.chain}
        pos = snapshot_position(n.storage.snapshot.data)
        if pos is not None:
            self._catch_up(n, *pos)  # Orderer.run: catch up to the snapshot before ordering

    def _after_crash(self, n: SimNode) -> None:
        assert isinstance(n, LedgerNode)
        n.mempool = Mempool(MEMPOOL_TXS_MAX, MEMPOOL_BYTES_MAX)
        n.proposal = None

    def _on_soft_state(self, n: SimNode, role: str, leader_id: int) -> None:
        assert isinstance(n, LedgerNode)
        actions = on_role_change(role, leader_id, n.id)
        if actions.drop_proposal:
            n.proposal = None
        if actions.requeue_proposed:
            n.mempool.requeue_proposed()
        if actions.hand_pending_to != NONE:
            for tx in n.mempool.pending():
                self._forward(n.id, actions.hand_pending_to, tx)

    # ------------------------------------------------------------------ applying

    def _decode(self, e: Entry) -> types.Block | None:
        if e.kind == EntryKind.CONF_CHANGE or not e.data:
            return None
        if e.data not in self.decoded:  # decoding is pure: once per schedule and bytes
            try:
                self.decoded[e.data] = types.Block.decode(e.data)
            except DecodeError:
                self.decoded[e.data] = None
        return self.decoded[e.data]

    def _halted(self, n: LedgerNode) -> bool:
        """Chain.check_version: a node whose next block needs a version its binary lacks stops
        ordering and following (here: it goes down until its operator upgrades it)."""
        if n.raft is None:
            return True  # stopped earlier in this Ready
        led = _ledger(n)
        if self.rules.required_upgrade(led.state.activations, led.tip.height + 1,
                                       n.implemented) is None:
            return False
        self._count("upgrade:halted")
        n.awaiting_upgrade = True
        self.crash(n, self.rng.randint(*UPGRADE_PAUSE_STEPS))
        return True

    def _apply_entry(self, n: SimNode, e: Entry) -> None:
        assert isinstance(n, LedgerNode)
        if e.kind != EntryKind.CONF_CHANGE and e.data and self._halted(n):
            return
        led = _ledger(n)
        n.chain_hist[e.index] = n.chain
        n.chain_hist.pop(e.index - HIST_ENTRIES, None)
        block = self._decode(e)
        header = block.header if block is not None else None
        known = None
        if header is not None and header.height <= led.tip.height:
            known = led.blocks[header.height - 1].hash if header.height >= 1 else None
        verdict = self.rules.judge_entry(e, header, led.tip, known)
        self._count(f"entry:{verdict.reason}")
        if verdict.action == SKIP or block is None:
            self._skipped(n, e, verdict, block)
            return
        proposal = n.proposal
        try:
            if (proposal is not None and proposal.block.hash == block.hash
                    and proposal.tip_hash == led.tip.hash):  # Chain.apply's fast path
                validation.validate_chain_link(led.tip.hash, led.tip.height,
                                               led.tip.timestamp_ms, block.header)
                result = proposal.result
            else:
                result = execute_block(led.state, led.tip, block, tx_verified=_genuine,
                                       implemented=n.implemented)
        except UpgradeRequired as exc:  # only when the version check above is skipped
            self.checker.fail(f"node {n.id} reached block {block.height} of a version it does "
                              f"not implement: {exc}")
            return
        except ValidationError as exc:
            self._skipped(n, e, INVALID_BLOCK, block, str(exc))
            return
        self._commit(n, block, result)
        led.raft_applied, led.raft_applied_chain = e.index, n.chain
        n.mempool.remove(tx.id for tx in block.txs)
        if proposal is not None and proposal.block.hash == block.hash:
            n.proposal = None

    def _skipped(self, n: LedgerNode, e: Entry, verdict: EntryVerdict,
                 block: types.Block | None, why: str = "") -> None:
        if verdict.stale:
            self.checker.fail(f"node {n.id} skipped committed block at raft index {e.index} "
                              f"({verdict.reason}{': ' + why if why else ''}): the cutting "
                              "rule let a block commit that does not extend the tip")
        if (verdict.drops_proposal and block is not None and n.proposal is not None
                and n.proposal.block.hash == block.hash):
            n.proposal = None
            n.mempool.requeue_proposed()

    def _attest(self, n: LedgerNode, block: types.Block, ordering: bool | None = None) -> None:
        """An orderer attests each block it applies (Node._on_block), if it has its key."""
        led = _ledger(n)
        if ordering is None:
            ordering = n.institution in led.view()[0]
        if not ordering or n.key_lost_until > self.now:
            return
        sigs = self.attested.setdefault((block.height, block.hash), {})
        if n.institution not in sigs:
            sigs[n.institution] = certs.attest(_key(n.institution), n.institution, CHAIN_ID,
                                               block.height, block.hash).sig

    def _certified(self, led: Ledger, block: types.Block) -> certs.CertificateVerdict:
        """What block sync decides before applying a fetched block (node/replica/evidence.py):
        the attestations gathered so far, and those of the live orderers that hold the block
        and sign it when they serve it (CommitEvidence.served), against the ordering set in
        force for it."""
        h = block.height
        for m in self.nodes.values():
            if (isinstance(m, LedgerNode) and m.raft is not None
                    and _ledger(m).tip.height >= h
                    and _ledger(m).blocks[h - 1].hash == block.hash):
                self._attest(m, block, ordering=m.institution in _ledger(m).view()[0])
        cert = certs.merge(certs.AttestedBlock(CHAIN_ID, h, block.hash),
                           self.attested.get((h, block.hash), {}).values())
        state = led.state
        return certs.check_certificate(
            cert, chain_id=CHAIN_ID, height=h, block_hash=block.hash,
            orderers=led.view()[0],
            key_of=lambda signer, key_id: active_public_key(state, signer, key_id, h))

    def _commit(self, n: LedgerNode, block: types.Block, result: BlockResult) -> None:
        """Store an applied block (one atomic, durable step, like the node's write batch)."""
        led = _ledger(n)
        h = block.header
        self._attest(n, block)  # the ordering set before the block: the one in force for it
        version = versions.active_version(led.state.activations, h.height)
        if version > n.implemented:
            self.checker.fail(f"node {n.id} applied block {h.height} of protocol version "
                              f"{version}, implementing only {n.implemented}")
        if version == 2 and versions.active_version(led.state.activations, h.height - 1) == 1:
            self._count("upgrade:activated")
        result.commit(led.state)
        led.blocks.append(block)
        led.tip = Tip(h.height, block.hash, h.timestamp_ms)
        for tx in block.txs:
            if tx.id in led.tx_heights:
                self.checker.fail(f"node {n.id} applied transaction {tx.id.hex()[:12]} twice "
                                  f"(blocks {led.tx_heights[tx.id]} and {h.height})")
            led.tx_heights[tx.id] = h.height
            c = self.client.get(tx.id)
            if c is not None and not c.acked_height:
                c.acked_height = h.height  # the client is told: committed
        canon = self.canon.setdefault(h.height, (block.hash, result.state_root))
        if canon != (block.hash, result.state_root):
            self.checker.fail(f"ledger divergence: node {n.id} applied block "
                              f"{block.hash.hex()[:12]} with state root "
                              f"{result.state_root.hex()[:12]} at height {h.height}; another "
                              f"node applied {canon[0].hex()[:12]} with {canon[1].hex()[:12]}")
        # the party notices of the block (sub.party) are the same on every node
        told = notices.block_notices(led.state, block, result.receipts, result.writes)
        if self.canon_notices.setdefault(h.height, told) != told:
            self.checker.fail(f"party notices diverge: node {n.id} derived {len(told)} at "
                              f"height {h.height}, another node "
                              f"{len(self.canon_notices[h.height])}")
        self.stats["party_notices"] = self.stats.get("party_notices", 0) + len(told)
        self.stats["blocks_applied"] += 1

    def _install_snapshot(self, n: SimNode, snap: Snapshot) -> None:
        pos = snapshot_position(snap.data)
        if pos is not None:
            assert isinstance(n, LedgerNode)
            self._catch_up(n, *pos)
        p = self.p
        if self.faults_on and p.crash_p and self.rng.random() < CRASH_AFTER_INSTALL_P:
            # The snapshot is durable and the blocks fetched, but no block was applied through
            # Raft since: the store's Raft index lies behind the snapshot's (restart point).
            self.crash(n, self.rng.randrange(1, 20))

    def _catch_up(self, n: LedgerNode, height: int, block_hash: bytes) -> None:
        """Block sync: fetch the blocks up to `height` from a node that has them and apply
        each like any block (node/replica/sync.py: the mempool is not told); then the
        orderer drops the pending transactions they committed (Orderer._catch_up)."""
        led = _ledger(n)
        if height <= led.tip.height:
            return
        source = next((m for m in self.nodes.values() if isinstance(m, LedgerNode)
                       and _ledger(m).tip.height >= height), None)
        if source is None:
            self.checker.fail(f"node {n.id} cannot catch up to {height}: no node has it")
            return
        fetched = _ledger(source).blocks[led.tip.height:height]
        # Without certificates, blocks that hash-link to the snapshot's block hash (BlockSync's
        # walk back from Raft's anchor) are taken; they link to this tip, or it is a fork.
        anchored = (bool(fetched) and fetched[-1].hash == block_hash
                    and fetched[0].header.prev_hash == led.tip.hash
                    and all(b.header.prev_hash == a.hash
                            for a, b in itertools.pairwise(fetched)))
        for block in fetched:
            verdict = self._certified(led, block)
            if verdict.ok:
                self._count("sync:certified")
            elif anchored:
                self._count("sync:anchored")
            else:
                self.checker.fail(f"node {n.id} fetched block {block.height} without a "
                                  f"commit certificate: {verdict.reason}")
                return
            if self._halted(n):
                return
            try:
                result = execute_block(led.state, led.tip, block, tx_verified=_genuine,
                                       implemented=n.implemented)
            except ValidationError as exc:
                self.checker.fail(f"node {n.id} refused block {block.height} from block sync: "
                                  f"{exc}")
                return
            self._commit(n, block, result)
            self.stats["synced_blocks"] += 1
        if led.tip.hash != block_hash:
            self.checker.fail(f"node {n.id} caught up to height {height} but its block there "
                              "is not the snapshot's")
        if self.rules.forget_synced_txs:
            n.mempool.remove([tx.id for tx in n.mempool.pending() if tx.id in led.tx_heights])

    # ------------------------------------------------------------------ deciding

    def _after_tick(self, n: SimNode) -> None:
        """Orderer._ready_loop: transactions pending in the mempool wake Raft (no quiet mode
        while work waits for the leader, ADR 0037)."""
        assert isinstance(n, LedgerNode)
        if n.raft is not None and n.mempool.pending_count:
            n.raft.wake()

    def _before_ready(self, n: SimNode) -> None:
        assert isinstance(n, LedgerNode)
        r = n.raft
        if r is None:
            return
        if self.p.keep_entries:
            self._maybe_compact(n)
        if r.role != LEADER:
            return  # both decisions wait when not leading (claims tested in tests/replica)
        self._maybe_cut(n)
        if n.raft is not None:  # not stopped for an upgrade while cutting
            self._reconcile(n)

    def _match(self, n: LedgerNode) -> tuple[tuple[int, int], ...]:
        assert n.raft is not None
        return tuple(sorted((rid, pr.match) for rid, pr in n.raft.prs.items()))

    def _maybe_cut(self, n: LedgerNode) -> None:
        r, led = n.raft, _ledger(n)
        assert r is not None
        now_ms = self.now * TICK_MS
        orderers, params = led.view()
        d = self.rules.decide_cut(CutInputs(
            is_leader=r.role == LEADER,
            in_ordering_set=n.institution in orderers,
            proposal_in_flight=n.proposal is not None, term=r.term,
            commit_index=r.commit_index, commit_term=r.log.term(r.commit_index),
            applied_index=r.applied_index, pending_txs=n.mempool.pending_count,
            pending_bytes=n.mempool.bytes, now_ms=now_ms, last_cut_ms=n.last_cut_ms,
            params=params, has_signing_key=n.key_lost_until < self.now))
        if d.action != "wait":
            self._count(f"cut:{d.reason}")
        if d.action == HAND_OVER:
            target = hand_over_target(n.id, r.conf.voters, self._match(n)).target
            if target != NONE:
                try:
                    r.transfer_leadership(target)
                    self.stats["hand_overs"] += 1
                except ProposalDropped:
                    pass
            return
        if d.action != CUT:
            return
        if self._halted(n):
            return
        txs = n.mempool.reap(d.txs_max, d.bytes_max)
        if not txs:
            return
        index, term = r.log.last_index() + 1, r.term
        block, result = build_block(led.state, led.tip, _key(n.institution), n.institution,
                                    txs, T0_MS + now_ms, term, index,
                                    implemented=n.implemented)
        try:
            eid = r.propose(block.encoded)
        except ProposalDropped:
            n.mempool.requeue_proposed()
            return
        if (eid.index, eid.term) != (index, term):
            self.checker.fail(f"node {n.id}: Raft put the block at {eid}, not ({index}, {term})")
        n.proposal = Proposed(block, result, led.tip.hash)
        n.last_cut_ms = now_ms

    def _reconcile(self, n: LedgerNode) -> None:
        r, led = n.raft, _ledger(n)
        assert r is not None
        wanted = tuple(sorted(node_of(o) for o in led.view()[0]))
        d = self.rules.decide_membership(MembershipInputs(
            is_leader=r.role == LEADER, commit_index=r.commit_index,
            applied_index=r.applied_index, conf_index=r.log.conf_index(),
            last_index=r.log.last_index(), voters=r.conf.voters, learners=r.conf.learners,
            match=self._match(n), wanted=wanted))
        change = d.change
        if change is None:
            return
        missing = set(wanted) - set(r.conf.members())
        if change.op == ConfOp.REMOVE and missing:
            self.checker.fail(f"leader {n.id} removes {change.node} while the ordering set "
                              f"names {sorted(missing)}, not yet members: removals before adds")
        try:
            r.propose_conf_change(change)
            self._count(f"membership:{d.reason}")
        except ProposalDropped:
            pass

    # ------------------------------------------------------------------ clients

    def _submit(self, tx: types.Tx) -> None:
        c = self.client.get(tx.id)
        if c is None:
            self.client[tx.id] = c = ClientTx(tx, self.now)
        c.sent_at = self.now
        up = [n for n in self.nodes.values() if n.raft is not None]
        if up:
            n = self.rng.choice(up)
            assert isinstance(n, LedgerNode)
            self._admit(n, tx)

    def _admit(self, n: LedgerNode, tx: types.Tx) -> None:
        """The node's intake: refuse what its chain holds; keep the rest in the mempool and
        forward it to the leader it knows."""
        r = n.raft
        if r is None or tx.id in _ledger(n).tx_heights:
            return
        n.mempool.add(tx)
        if r.leader_id not in (NONE, n.id):
            self._forward(n.id, r.leader_id, tx)

    def _forward(self, src: int, dst: int, tx: types.Tx) -> None:
        p = self.p
        if self.faults_on and p.drop_p and self.rng.random() < p.drop_p:
            return
        delay = 1 if p.delay_max <= 1 or not self.faults_on else self.rng.randint(1,
                                                                                   p.delay_max)
        self.msg_seq += 1
        heapq.heappush(self.fwd, (self.now + delay, self.msg_seq, src, dst, tx))

    def _deliver_forwarded(self) -> None:
        while self.fwd and self.fwd[0][0] <= self.now:
            _, _, src, dst, tx = heapq.heappop(self.fwd)
            n = self.nodes.get(dst)
            if (src, dst) in self.blocked or not isinstance(n, LedgerNode):
                continue
            self._admit(n, tx)

    def _propose(self) -> None:
        count = self.rng.randint(1, 2)
        if self.rng.random() < BURST_P:
            count = self.rng.randint(20, 30)  # fills a block by bytes before the interval
        for _ in range(count):
            self.submitted += 1
            self._submit(client_tx(self.submitted))

    def _resubmit(self) -> None:
        for c in list(self.client.values()):
            if not c.acked_height and self.now - c.sent_at >= RESUBMIT_STEPS:
                self._submit(c.tx)

    def _membership(self) -> None:
        """The regulator adds a bank to the ordering set or removes one (the leader's
        reconciliation then moves Raft)."""
        rng = self.rng
        orderers = self._latest_orderers()
        voters_min = 2 if self.p.nodes == 3 else 3
        banks = [bank(i) for i in self.ids]
        outside = [b for b in banks if b not in orderers]
        self.reg_nonce += 1
        if len(orderers) > voters_min and (not outside or rng.random() < 0.5):
            tx = regulator_tx("remove", rng.choice(orderers), self.reg_nonce)
        elif outside:
            tx = regulator_tx("add", rng.choice(outside), self.reg_nonce)
        else:
            return
        self._submit(tx)

    def _latest_orderers(self) -> tuple[str, ...]:
        best = max((n for n in self.nodes.values() if isinstance(n, LedgerNode)),
                   key=lambda m: _ledger(m).tip.height)
        return _ledger(best).view()[0]

    def _maybe_compact(self, n: LedgerNode) -> None:
        """Orderer._maybe_compact with `log_keep_entries` = `keep_entries`: once twice that
        many entries are applied past the snapshot, a snapshot `keep_entries` behind the
        applied index that names the current tip (which may cover more than the index)."""
        r, keep = n.raft, self.p.keep_entries
        assert r is not None
        if r.applied_index - r.log.snap_index < 2 * keep:
            return
        index = r.applied_index - keep
        chain = n.chain_hist.get(index)
        if chain is None:
            return  # restarted past it: the checker has no chain value there (the node would)
        snap = r.compact(index, ledger_snapshot_data(index, chain, _ledger(n).tip))
        n.storage.compact(snap)

    # ------------------------------------------------------------------ running

    def step(self, propose: bool = True) -> None:
        super().step(propose)
        if self.p.upgrade and not self.activation_sent:
            best = max(_ledger(m).tip.height for m in self.nodes.values())
            if best >= 2:  # the regulator schedules version 2 (through an upgraded node)
                self.reg_nonce += 1
                self._submit(activation_tx(best + limits.ACTIVATION_LEAD_BLOCKS_MIN
                                           + ACTIVATION_SLACK_BLOCKS, self.reg_nonce))
                self.activation_sent = True
        self._deliver_forwarded()
        self._resubmit()
        self._check_mempools()
        if self.faults_on and self.p.key_loss_p and self.rng.random() < self.p.key_loss_p:
            lead = self.leader()  # an operator forgot the new key: it cannot sign for a while
            if isinstance(lead, LedgerNode):
                lead.key_lost_until = self.now + self.rng.randrange(5, 40)

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    def _check_mempools(self) -> None:
        """No node holds a pending transaction its own chain already committed: a later leader
        term of that node would propose it again."""
        for n in self.nodes.values():
            if n.raft is None or not isinstance(n, LedgerNode):
                continue
            heights = _ledger(n).tx_heights
            for tx in n.mempool.pending():
                if tx.id in heights:
                    self.checker.fail(f"node {n.id} holds pending transaction "
                                      f"{tx.id.hex()[:12]}, committed at height "
                                      f"{heights[tx.id]} in its chain")
                    return

    def _progress(self) -> int:
        return super()._progress() + sum(_ledger(n).tip.height for n in self.nodes.values()) \
            + sum(1 for c in self.client.values() if c.acked_height)

    def converged(self) -> str:
        missing = super().converged()
        if missing:
            return missing
        lead = self.leader()
        assert lead is not None and lead.raft is not None
        conf, led = lead.raft.conf, _ledger(lead)
        wanted = tuple(sorted(node_of(o) for o in led.view()[0]))
        if conf.voters != wanted or conf.learners:
            return (f"Raft voters {conf.voters}, learners {conf.learners}; the ledger's "
                    f"ordering set is {wanted}")
        for m in conf.members():
            if _ledger(self.nodes[m]).tip != led.tip:
                return f"member {m} is at height {_ledger(self.nodes[m]).tip.height}, the " \
                       f"leader at {led.tip.height}"
        waiting = sum(1 for c in self.client.values() if not c.acked_height)
        if waiting:
            return f"{waiting} submitted transactions not committed"
        return ""

    def heal(self) -> None:
        for n in self.nodes.values():
            if isinstance(n, LedgerNode):
                n.key_lost_until = -1
        super().heal()

    def run(self) -> list[str]:
        violations = super().run()
        if violations:
            return violations
        lead = self.leader()
        assert lead is not None and lead.raft is not None
        for m in lead.raft.conf.members():
            heights = _ledger(self.nodes[m]).tx_heights
            lost = [c for c in self.client.values() if c.tx.id not in heights]
            if lost:
                self.checker.fail(f"acknowledged transaction {lost[0].tx.id.hex()[:12]} "
                                  f"(committed at height {lost[0].acked_height}) is not in "
                                  f"member {m}'s chain")
        return self.checker.violations


def _ledger(n: SimNode) -> Ledger:
    led = getattr(n, "ledger", None)
    assert isinstance(led, Ledger)
    return led


__all__ = ["TICK_MS", "LedgerCluster", "Rules", "client_tx", "declaration",
           "encryption_key_tx", "regulator_tx"]
