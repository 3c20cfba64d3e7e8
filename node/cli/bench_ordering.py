"""`crossbill bench --ordering-only`: the ordering layer alone, no ledger, no blocks.

Starts `--nodes` (default 3) ordering processes on loopback (forked from the bench process,
one per node, each with its own data directory and log): in each, the pure Raft core
(`protocol.raft.Raft`) driven by a Ready loop shaped like the node's
(`node.replica.ordering.Orderer`, which needs a chain and a mempool: this loop has neither),
over the node's own transport and storage:

- Raft messages travel as the node's do: `encode_message`, one-way on `PROTO_RAFT` through
  the node's libp2p host (`node.p2p.host.P2PNode`: Noise, yamux, our framing, allowlist), one
  sender task and bounded queue per peer, a deadline on every send;
- every Ready is persisted as an orderer persists it, before its messages go out:
  `Storage.save_raft` (one synced LevelDB batch), and the log is compacted as the node does
  (`Storage.compact_raft`, keeping `LOG_KEEP_ENTRIES`);
- the Ready loop: step the queued Raft messages, tick, propose every client entry received
  since the last turn (one Raft entry each; many entries per Ready, as etcd batches), then
  persist, send, apply, advance.

Clients reach the nodes over loopback TCP, outside what is measured: the bench process opens one
connection to each node and its `--clients` closed-loop client tasks (default 64) share the
leader's, with length-prefixed frames (`encode_frame`). A client submits one entry of
`--entry-bytes` (default 400) and waits until the leader has applied it (Raft's "committed"
moment, step 5 of `protocol.raft.Ready`), then submits the next. A node that does not lead
answers NOT_LEADER with the leader it knows; a proposal Raft drops or a log suffix a new leader
overwrote answers RETRY, and the client submits the same entry again (it was not committed).

Figures, with the JSON keys of `crossbill bench` where they apply (the last line printed): entries
answered committed during the window per second, submit-to-committed latency percentiles, CPU µs
per committed entry per node (/proc/PID/stat over the window), peak RSS per node, and checks:
every submitted entry committed, every node applied the whole log.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import pathlib
import random
import shutil
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from node.cli.bench_report import percentile
from node.cli.procstat import log_tail, machine_busy_s, proc_cpu_s, proc_hwm_mb
from node.p2p import network as net
from node.p2p.host import P2PNode, attach_libp2p_logging
from node.p2p.identity import generate_seed, key_pair_from_seed, peer_id_from_seed
from node.replica import ordering
from node.storage.store import Storage
from protocol.errors import CrossbillError
from protocol.raft import (
    LEADER,
    Message,
    PersistentState,
    ProposalDropped,
    Raft,
    RaftConfig,
    Ready,
    decode_message,
    encode_message,
)
from protocol.raft import limits as raft_limits
from protocol.types import DEFAULT_TIMING

log = logging.getLogger("crossbill.bench.ordering")

MODE: Final = "ordering-only"
CHAIN_ID: Final = "bench-ordering"
GENESIS_HASH: Final = bytes(32)
DEFAULT_NODES: Final = 3
DEFAULT_CLIENTS: Final = 64
DEFAULT_ENTRY_BYTES: Final = 400
NODES_MAX: Final = 7
CLIENTS_MAX: Final = 1024
ENTRY_BYTES_MIN: Final = 16          # room for the entry's unique tag
ENTRY_BYTES_MAX: Final = raft_limits.ENTRY_BYTES_MAX
# One client frame: kind, request id, entry. Larger frames close the connection.
FRAME_HEADER_BYTES: Final = 4
FRAME_BYTES_MAX: Final = ENTRY_BYTES_MAX + 64
CLIENT_READ_BYTES: Final = 64 * 1024
# Client entries received and not yet committed on one node; beyond it a node answers RETRY.
PENDING_ENTRIES_MAX: Final = 8192
# Raft message queues and the send deadline: the node's (node.replica.ordering, ADR 0030).
RAFT_INBOX_MSGS_MAX: Final = 4096
RAFT_OUTBOX_MSGS_MAX: Final = 1024
RAFT_SEND_TIMEOUT_S: Final = DEFAULT_TIMING.raft_send_timeout_ms / 1000
RAFT_SEND_BATCH_MSGS_MAX: Final = ordering.RAFT_SEND_BATCH_MSGS_MAX
LOG_KEEP_ENTRIES: Final = 1000       # the node's default [tuning] raft_log_keep_entries
CLIENT_WRITE_TIMEOUT_S: Final = 10.0
START_TIMEOUT_S: Final = 60.0        # node processes up and a leader elected
WARMUP_S: Final = 1.0
REQUEST_TIMEOUT_S: Final = 10.0      # a client's entry not answered by then counts as an error
DRAIN_TIMEOUT_S: Final = 20.0        # after the window: outstanding entries answered, logs applied
STOP_TIMEOUT_S: Final = 10.0
RETRY_PAUSE_S: Final = 0.01

# Client frames (after the 4-byte big-endian length): kind (1 byte), request id (u64), body.
PROPOSE: Final = b"P"     # body: the entry
STATUS: Final = b"S"      # body: empty
ANSWER: Final = b"A"      # body: one status byte (+ the leader's Raft id for NOT_LEADER)
STATUS_ANSWER: Final = b"T"  # body: JSON
OK: Final = 0
NOT_LEADER: Final = 1
RETRY: Final = 2
_HEAD = struct.Struct(">cQ")


class OrderingBenchError(CrossbillError):
    pass


# ------------------------------------------------------------------------------ pure helpers


def encode_frame(kind: bytes, request_id: int, body: bytes = b"") -> bytes:
    """One client frame: length (u32, big-endian), kind, request id (u64), body."""
    size = _HEAD.size + len(body)
    if size > FRAME_BYTES_MAX:
        raise ValueError(f"frame of {size} bytes exceeds {FRAME_BYTES_MAX}")
    return size.to_bytes(FRAME_HEADER_BYTES, "big") + _HEAD.pack(kind, request_id) + body


class FrameDecoder:
    """Splits a byte stream into (kind, request id, body) frames; ValueError on a frame that
    is too large or too short (the connection is then closed)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[bytes, int, bytes]]:
        self._buf += data
        buf = self._buf
        pos = 0
        try:
            while len(buf) - pos >= FRAME_HEADER_BYTES:
                size = int.from_bytes(buf[pos:pos + FRAME_HEADER_BYTES], "big")
                if not _HEAD.size <= size <= FRAME_BYTES_MAX:
                    raise ValueError(f"client frame of {size} bytes (allowed {_HEAD.size}.."
                                     f"{FRAME_BYTES_MAX})")
                end = pos + FRAME_HEADER_BYTES + size
                if len(buf) < end:
                    break
                kind, rid = _HEAD.unpack_from(buf, pos + FRAME_HEADER_BYTES)
                body = bytes(buf[pos + FRAME_HEADER_BYTES + _HEAD.size:end])
                pos = end
                yield kind, rid, body
        finally:
            del buf[:pos]


def entry_payload(client: int, seq: int, size: int) -> bytes:
    """Entry `seq` of client `client`: `size` bytes, unique per (client, seq)."""
    if size < ENTRY_BYTES_MIN:
        raise ValueError(f"entries need at least {ENTRY_BYTES_MIN} bytes")
    tag = struct.pack(">QQ", client, seq)
    return tag + b"x" * (size - len(tag))


@dataclass
class Sample:
    """What the load generator saw: one (submitted, committed) monotonic pair per entry."""

    done: list[tuple[float, float]] = field(default_factory=list)
    submitted: int = 0
    retries: int = 0
    redirects: int = 0
    errors: int = 0


def figures_of(sample: Sample, start: float, end: float) -> dict[str, Any]:
    """Throughput and latency over the window [start, end): entries answered committed in it
    per second; the percentiles of their submit-to-committed latencies."""
    duration = end - start
    in_window = [c - s for s, c in sample.done if start <= c < end]

    def ms(p: float) -> float | None:
        v = percentile(in_window, p)
        return None if math.isnan(v) else round(v * 1000, 2)

    return {
        "committed_tps": round(len(in_window) / duration, 1) if duration > 0 else 0.0,
        "committed_in_window": len(in_window),
        "latency_p50_ms": ms(0.50),
        "latency_p95_ms": ms(0.95),
        "latency_p99_ms": ms(0.99),
    }


# ------------------------------------------------------------------------------ a node


class _Client:
    """One client connection to a node: answers are appended to `out` and written by the
    connection's writer task (many answers of one Ready in one write)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.out = bytearray()
        self.has_out = trio.Event()
        self.closed = False

    def answer(self, kind: bytes, rid: int, body: bytes) -> None:
        if self.closed:
            return
        self.out += encode_frame(kind, rid, body)
        self.has_out.set()


class OrderingServer:
    """The Ready loop of `node.replica.ordering.Orderer` without a chain: client entries in,
    committed answers out."""

    def __init__(self, *, node_id: int, voters: tuple[int, ...], peer_of_raft: dict[int, str],
                 storage: Storage, network: net.Network, tick_s: float, election_ticks: int,
                 heartbeat_ticks: int, log_keep_entries: int = LOG_KEEP_ENTRIES,
                 send_timeout_s: float = RAFT_SEND_TIMEOUT_S,
                 rng: random.Random | None = None) -> None:
        self.id = node_id
        self.peer_of_raft = dict(peer_of_raft)
        self.raft_of_peer = {p: r for r, p in peer_of_raft.items()}
        self.storage = storage
        self.net = network
        self.tick_s = tick_s
        self.log_keep_entries = log_keep_entries
        self.send_timeout_s = send_timeout_s
        self.raft = Raft(RaftConfig(node_id=node_id, rng=rng or random.Random(),
                                    election_timeout_ticks=election_ticks,
                                    heartbeat_interval_ticks=heartbeat_ticks),
                         PersistentState.bootstrap(voters))
        self._inbox_send, self._inbox = trio.open_memory_channel[Message](RAFT_INBOX_MSGS_MAX)
        self._outboxes: dict[int, trio.MemorySendChannel[Message]] = {}
        self._nursery: trio.Nursery | None = None
        self._kick = trio.Event()
        self._ticks_due = 0
        self._queued: list[tuple[_Client, int, bytes]] = []
        self._waiting: dict[int, tuple[int, _Client, int]] = {}  # log index -> term, client, rid
        self.stats: dict[str, int] = {
            "readys": 0, "readys_with_entries": 0, "entries_persisted": 0, "applied_entries": 0,
            "applied_bytes": 0, "proposed": 0, "answered_ok": 0, "answered_retry": 0,
            "answered_not_leader": 0, "raft_msgs_dropped_inbox": 0,
            "raft_msgs_dropped_outbox": 0, "raft_send_failures": 0, "raft_msgs_refused": 0,
            "compactions": 0}

    # -------------------------------------------------------------- views

    @property
    def is_leader(self) -> bool:
        return self.raft.soft_state().role == LEADER

    def status(self) -> dict[str, Any]:
        raft = self.raft
        persist = self.storage.metrics.persist_s["raft"]
        return {"id": self.id, "role": raft.soft_state().role, "leader": raft.leader_id,
                "term": raft.term, "commit": raft.commit_index, "applied": raft.applied_index,
                "last_index": raft.log.last_index(), "pending": len(self._waiting),
                "save_raft_ms_mean": round(persist.sum / persist.count * 1000, 2)
                if persist.count else None, **self.stats}

    # -------------------------------------------------------------- tasks

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._ticker)
            task_status.started()
            await self._ready_loop()

    async def _ticker(self) -> None:
        next_at = trio.current_time()
        while True:
            next_at += self.tick_s
            await trio.sleep_until(next_at)
            self._ticks_due += 1
            self._kick.set()

    async def on_raft_message(self, peer_id: str, payload: bytes) -> bytes | None:
        """PROTO_RAFT, as the Orderer takes it: a malformed message or one from a peer that is
        not a member is counted and dropped, never fatal."""
        src = self.raft_of_peer.get(peer_id)
        try:
            msg = decode_message(payload)
        except CrossbillError:
            self.stats["raft_msgs_refused"] += 1
            return None
        if src is None or msg.src != src:
            self.stats["raft_msgs_refused"] += 1
            return None
        try:
            self._inbox_send.send_nowait(msg)
        except trio.WouldBlock:
            self.stats["raft_msgs_dropped_inbox"] += 1
        self._kick.set()
        return None

    def _outbox(self, rid: int) -> trio.MemorySendChannel[Message] | None:
        outbox = self._outboxes.get(rid)
        if outbox is None and rid in self.peer_of_raft and self._nursery is not None:
            outbox, recv = trio.open_memory_channel[Message](RAFT_OUTBOX_MSGS_MAX)
            self._outboxes[rid] = outbox
            self._nursery.start_soon(self._sender, self.peer_of_raft[rid], recv)
        return outbox

    async def _sender(self, peer_id: str, outbox: trio.MemoryReceiveChannel[Message]) -> None:
        async for msg in outbox:
            batch = [msg]  # as the Orderer: what queued meanwhile goes in one write
            while len(batch) < RAFT_SEND_BATCH_MSGS_MAX:
                try:
                    batch.append(outbox.receive_nowait())
                except trio.WouldBlock:
                    break
            try:
                with trio.fail_after(self.send_timeout_s):
                    await self.net.send_many(peer_id, net.PROTO_RAFT,
                                             [encode_message(m) for m in batch])
            except (trio.TooSlowError, Exception) as exc:  # Raft retransmits; never die here
                self.stats["raft_send_failures"] += len(batch)
                log.debug("raft send to %s failed: %s", peer_id, exc)

    async def _ready_loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick = trio.Event()
            while True:
                try:
                    msg = self._inbox.receive_nowait()
                except trio.WouldBlock:
                    break
                if self.raft.step(msg):
                    self.stats["raft_msgs_refused"] += 1
            ticks, self._ticks_due = self._ticks_due, 0
            for _ in range(ticks):
                self.raft.tick()
            self._propose_queued()
            while self.raft.has_ready():
                rd = self.raft.ready()
                await self._handle_ready(rd)
                self.raft.advance(rd)
            self._maybe_compact()

    def _propose_queued(self) -> None:
        queued, self._queued = self._queued, []
        leader = self.is_leader
        for client, rid, data in queued:
            if not leader:
                self.stats["answered_not_leader"] += 1
                client.answer(ANSWER, rid, bytes([NOT_LEADER])
                              + self.raft.leader_id.to_bytes(8, "big"))
                continue
            try:
                eid = self.raft.propose(data)
            except ProposalDropped:
                self.stats["answered_retry"] += 1
                client.answer(ANSWER, rid, bytes([RETRY]))
                continue
            self.stats["proposed"] += 1
            self._waiting[eid.index] = (eid.term, client, rid)

    async def _handle_ready(self, rd: Ready) -> None:
        """Persist (one synced batch), send, apply: the Orderer's order (`_handle_ready`)."""
        self.stats["readys"] += 1
        if rd.entries:
            self.stats["readys_with_entries"] += 1
            self.stats["entries_persisted"] += len(rd.entries)
        # as the Orderer: one batch, synced only when the Ready must be
        self.storage.save_raft(rd.hard_state, rd.entries, rd.snapshot, sync=rd.must_sync)
        for msg in rd.messages:
            outbox = self._outbox(msg.dst)
            if outbox is None:
                continue
            try:
                outbox.send_nowait(msg)
            except trio.WouldBlock:
                self.stats["raft_msgs_dropped_outbox"] += 1
        for entry in rd.committed_entries:
            self.stats["applied_entries"] += 1
            self.stats["applied_bytes"] += len(entry.data)
            waiting = self._waiting.pop(entry.index, None)
            if waiting is None:
                continue
            term, client, rid = waiting
            ok = term == entry.term
            self.stats["answered_ok" if ok else "answered_retry"] += 1
            client.answer(ANSWER, rid, bytes([OK if ok else RETRY]))

    def _maybe_compact(self) -> None:
        """As `Orderer._maybe_compact`: keep `log_keep_entries` applied entries."""
        raft = self.raft
        first = raft.snapshot.meta.index if raft.snapshot is not None else 0
        applied = raft.applied_index
        if applied - first < 2 * self.log_keep_entries:
            return
        snapshot = raft.compact(applied - self.log_keep_entries, b"")
        self.storage.compact_raft(snapshot)
        self.stats["compactions"] += 1

    # -------------------------------------------------------------- clients

    async def serve_client(self, stream: trio.SocketStream) -> None:
        client = _Client(stream)
        decoder = FrameDecoder()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._client_writer, client)
            try:
                async for data in stream:
                    for kind, rid, body in decoder.feed(data):
                        if kind == PROPOSE:
                            if len(self._queued) + len(self._waiting) >= PENDING_ENTRIES_MAX:
                                self.stats["answered_retry"] += 1
                                client.answer(ANSWER, rid, bytes([RETRY]))
                                continue
                            self._queued.append((client, rid, body))
                            self._kick.set()
                        elif kind == STATUS:
                            client.answer(STATUS_ANSWER, rid,
                                          json.dumps(self.status()).encode())
                        else:
                            raise ValueError(f"unknown client frame kind {kind!r}")
            except (ValueError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                log.info("client connection closed: %s", exc)
            finally:
                client.closed = True
                nursery.cancel_scope.cancel()

    async def _client_writer(self, client: _Client) -> None:
        while True:
            await client.has_out.wait()
            client.has_out = trio.Event()
            data = bytes(client.out)
            client.out.clear()
            try:
                with trio.fail_after(CLIENT_WRITE_TIMEOUT_S):
                    await client.stream.send_all(data)
            except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError):
                client.closed = True
                return


@dataclass(frozen=True)
class ServeConfig:
    node_id: int
    seed: bytes
    p2p_port: int
    client_port: int
    data_dir: pathlib.Path
    peers: tuple[tuple[int, str, str], ...]   # (raft id, peer id, multiaddr) of the others
    voters: tuple[int, ...]


async def serve(cfg: ServeConfig, stop: Any, ready: Any) -> None:
    """One ordering process, until `stop` (a multiprocessing Event) is set; sets `ready` once it
    listens for peers and clients."""
    storage = Storage.open(cfg.data_dir, chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH)
    try:
        p2p = P2PNode(key_pair_from_seed(cfg.seed), f"/ip4/127.0.0.1/tcp/{cfg.p2p_port}",
                      {peer: [addr] for _, peer, addr in cfg.peers})
        timing = DEFAULT_TIMING
        server = OrderingServer(
            node_id=cfg.node_id, voters=cfg.voters,
            peer_of_raft={rid: peer for rid, peer, _ in cfg.peers}, storage=storage,
            network=p2p, tick_s=timing.raft_tick_ms / 1000,
            election_ticks=timing.raft_election_ticks,
            heartbeat_ticks=timing.raft_heartbeat_ticks)
        p2p.register_handler(net.PROTO_RAFT, server.on_raft_message)
        async with trio.open_nursery() as nursery:
            await nursery.start(p2p.run)
            listeners = await trio.open_tcp_listeners(cfg.client_port, host="127.0.0.1")
            nursery.start_soon(trio.serve_listeners, server.serve_client, listeners)
            await nursery.start(server.run)
            ready.set()
            await trio.to_thread.run_sync(stop.wait,  # type: ignore[call-arg]
                                          abandon_on_cancel=True)
            nursery.cancel_scope.cancel()
    finally:
        storage.close()


def _node_process(cfg: ServeConfig, log_path: pathlib.Path, stop: Any, ready: Any) -> None:
    """The body of a forked ordering process: its log to `log_path`, then `serve`."""
    with log_path.open("ab") as log_file:
        os.dup2(log_file.fileno(), 2)
    logging.basicConfig(level=logging.WARNING, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    attach_libp2p_logging()
    trio.run(serve, cfg, stop, ready)


# ------------------------------------------------------------------------------ the load


class _Link:
    """The bench's connection to one node: many requests in flight, answers by request id."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._next = 0
        self._waiters: dict[int, tuple[trio.Event, list[bytes]]] = {}
        self._lock = trio.Lock()
        self.broken = False

    async def reader(self) -> None:
        decoder = FrameDecoder()
        try:
            async for data in self.stream:
                for _kind, rid, body in decoder.feed(data):
                    waiter = self._waiters.pop(rid, None)
                    if waiter is not None:
                        waiter[1].append(body)
                        waiter[0].set()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ValueError):
            pass
        self.broken = True
        for event, _ in self._waiters.values():
            event.set()

    async def call(self, kind: bytes, body: bytes, timeout_s: float) -> bytes:
        """Send one request; its answer's body. OrderingBenchError if the link broke, or
        trio.TooSlowError after `timeout_s`."""
        if self.broken:
            raise OrderingBenchError("connection to the node lost")
        self._next += 1
        rid = self._next
        event, box = trio.Event(), list[bytes]()
        self._waiters[rid] = (event, box)
        try:
            with trio.fail_after(timeout_s):
                async with self._lock:
                    await self.stream.send_all(encode_frame(kind, rid, body))
                await event.wait()
        finally:
            self._waiters.pop(rid, None)
        if not box:
            raise OrderingBenchError("connection to the node lost")
        return box[0]

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(await self.call(STATUS, b"", REQUEST_TIMEOUT_S))
        return result


@dataclass
class _Load:
    links: list[_Link]
    leader: int = 0            # index into links
    stop: bool = False
    entries_max: int | None = None  # stop once this many entries were submitted (tests)
    sample: Sample = field(default_factory=Sample)

    async def find_leader(self, timeout_s: float) -> int:
        """Poll the nodes until one leads and every node names it."""
        with trio.fail_after(timeout_s):
            while True:
                statuses = [await link.status() for link in self.links]
                leaders = {s["leader"] for s in statuses}
                lead = [i for i, s in enumerate(statuses) if s["role"] == LEADER]
                if len(lead) == 1 and leaders == {statuses[lead[0]]["id"]}:
                    self.leader = lead[0]
                    return self.leader
                await trio.sleep(0.05)

    async def client(self, k: int, entry_bytes: int) -> None:
        seq = 0
        while not self.stop and (self.entries_max is None
                                 or self.sample.submitted < self.entries_max):
            payload = entry_payload(k, seq, entry_bytes)
            seq += 1
            self.sample.submitted += 1
            sent_at = time.monotonic()
            while True:
                link = self.links[self.leader]
                try:
                    body = await link.call(PROPOSE, payload, REQUEST_TIMEOUT_S)
                except (trio.TooSlowError, OrderingBenchError, OSError,
                        trio.BrokenResourceError) as exc:
                    self.sample.errors += 1
                    log.warning("client %d: entry %d not answered: %s", k, seq - 1, exc)
                    break
                if body[0] == OK:
                    self.sample.done.append((sent_at, time.monotonic()))
                    break
                if body[0] == NOT_LEADER:
                    self.sample.redirects += 1
                    hint = int.from_bytes(body[1:9], "big")
                    if 1 <= hint <= len(self.links) and hint - 1 != self.leader:
                        self.leader = hint - 1
                    else:
                        await trio.sleep(RETRY_PAUSE_S)
                    continue
                self.sample.retries += 1
                await trio.sleep(RETRY_PAUSE_S)


# ------------------------------------------------------------------------------ measuring


@dataclass(frozen=True)
class _Node:
    name: str
    raft_id: int
    proc: Any              # multiprocessing.Process
    stop: Any              # multiprocessing.Event
    client_port: int
    log_path: pathlib.Path


def _start_nodes(root: pathlib.Path, nodes: int, base: int) -> list[_Node]:
    """Fork one process per node (this process has imported the node's code already, so a
    node starts in a moment), each with its own data directory and log."""
    ctx = multiprocessing.get_context("fork")
    seeds = [generate_seed() for _ in range(nodes)]
    ids = [peer_id_from_seed(s) for s in seeds]
    p2p_ports = [base + 1 + i for i in range(nodes)]
    voters = tuple(range(1, nodes + 1))
    started: list[_Node] = []
    readies = []
    try:
        for i in range(nodes):
            peers = tuple((j + 1, ids[j], f"/ip4/127.0.0.1/tcp/{p2p_ports[j]}")
                          for j in range(nodes) if j != i)
            cfg = ServeConfig(i + 1, seeds[i], p2p_ports[i], base + 101 + i,
                              root / f"node{i + 1}", peers, voters)
            log_path = root / f"node{i + 1}.log"
            stop, ready = ctx.Event(), ctx.Event()
            proc = ctx.Process(target=_node_process, args=(cfg, log_path, stop, ready),
                               name=f"orderer{i + 1}", daemon=True)
            proc.start()
            started.append(_Node(f"orderer{i + 1}", i + 1, proc, stop, base + 101 + i,
                                 log_path))
            readies.append(ready)
        deadline = time.monotonic() + START_TIMEOUT_S
        for node, ready in zip(started, readies, strict=True):
            while not ready.wait(0.1):
                if not node.proc.is_alive() or time.monotonic() > deadline:
                    raise OrderingBenchError(f"{node.name} did not start; its log:\n"
                                             f"{log_tail(node.log_path)}")
        return started
    except BaseException:
        _stop_nodes(started)
        raise


def _stop_nodes(nodes: list[_Node]) -> None:
    for node in nodes:
        node.stop.set()
    for node in nodes:
        node.proc.join(STOP_TIMEOUT_S)
        if node.proc.is_alive():
            node.proc.kill()
            node.proc.join(STOP_TIMEOUT_S)


@dataclass
class _Window:
    start: float = 0.0
    end: float = 0.0
    cpu0: list[float] = field(default_factory=list)
    cpu1: list[float] = field(default_factory=list)
    bench0: float = 0.0
    bench1: float = 0.0
    machine0: float = 0.0
    machine1: float = 0.0
    statuses: list[dict[str, Any]] = field(default_factory=list)
    drained: bool = False
    applied_everywhere: bool = False


async def _drive(nodes: list[_Node], clients: int, entry_bytes: int, duration_s: float
                 ) -> tuple[_Load, _Window]:
    win = _Window()
    async with trio.open_nursery() as nursery:
        links = []
        for node in nodes:
            stream = await trio.open_tcp_stream("127.0.0.1", node.client_port)
            link = _Link(stream)
            nursery.start_soon(link.reader)
            links.append(link)
        load = _Load(links)
        await load.find_leader(START_TIMEOUT_S)
        pids = [n.proc.pid for n in nodes]
        async with trio.open_nursery() as clients_nursery:
            for k in range(clients):
                clients_nursery.start_soon(load.client, k, entry_bytes)
            await trio.sleep(WARMUP_S)
            win.start = time.monotonic()
            win.cpu0 = [proc_cpu_s(p) for p in pids]
            win.bench0, win.machine0 = proc_cpu_s(os.getpid()), machine_busy_s()
            await trio.sleep(duration_s)
            win.end = time.monotonic()
            win.cpu1 = [proc_cpu_s(p) for p in pids]
            win.bench1, win.machine1 = proc_cpu_s(os.getpid()), machine_busy_s()
            load.stop = True  # each client finishes its entry in flight, then stops
            clients_nursery.cancel_scope.deadline = trio.current_time() + DRAIN_TIMEOUT_S
        win.drained = not clients_nursery.cancel_scope.cancelled_caught
        with trio.move_on_after(DRAIN_TIMEOUT_S):
            while True:
                win.statuses = [await link.status() for link in links]
                last = max(s["last_index"] for s in win.statuses)
                if all(s["applied"] == last for s in win.statuses):
                    win.applied_everywhere = True
                    break
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
        for link in links:
            await link.stream.aclose()
    return load, win


def summarize(nodes: list[_Node], load: _Load, win: _Window, clients: int, entry_bytes: int,
              duration_s: float) -> tuple[list[str], dict[str, Any]]:
    sample = load.sample
    fig = figures_of(sample, win.start, win.end)
    committed = fig["committed_in_window"]
    cpu_node: dict[str, float | None] = {}
    cpu_pct: dict[str, float] = {}
    rss_node: dict[str, float] = {}
    for i, n in enumerate(nodes):
        cpu_s = win.cpu1[i] - win.cpu0[i]
        cpu_node[n.name] = round(cpu_s / committed * 1e6, 1) if committed else None
        cpu_pct[n.name] = round(cpu_s / duration_s * 100, 1)
        rss_node[n.name] = round(proc_hwm_mb(n.proc.pid), 1)
    leader_status = next((s for s in win.statuses if s.get("role") == LEADER), {})
    exited = [n.name for n in nodes if not n.proc.is_alive()]
    not_committed = sample.submitted - len(sample.done)
    applied = {n.name: s.get("applied") for n, s in zip(nodes, win.statuses, strict=False)}
    last = max((s["last_index"] for s in win.statuses), default=0)
    lagging = sum(max(0, last - (a or 0)) for a in applied.values())
    readys = leader_status.get("readys_with_entries", 0)
    per_ready = round(leader_status.get("entries_persisted", 0) / readys, 1) if readys else None
    figures: dict[str, Any] = {
        "mode": MODE,
        **{k: v for k, v in fig.items() if k != "committed_in_window"},
        "cpu_us_per_tx_node": cpu_node,
        "cpu_us_per_tx_all_nodes": round(sum(v for v in cpu_node.values() if v), 1),
        "cpu_pct_node": cpu_pct,
        "rss_mb_max": max(rss_node.values()) if rss_node else 0.0,
        "rss_mb_node": rss_node,
        "nodes": len(nodes),
        "duration_s": duration_s,
        "offered_tps": "max",
        "clients": clients,
        "entry_bytes": entry_bytes,
        "submitted": sample.submitted,
        "committed": len(sample.done),
        "committed_in_window": committed,
        "not_committed": not_committed,
        "errors": sample.errors,
        "retries": sample.retries,
        "redirects": sample.redirects,
        "not_applied_everywhere": lagging,
        "applied_index_node": applied,
        "leader_entries_per_ready": per_ready,
        "save_raft_ms_mean_node": {n.name: s.get("save_raft_ms_mean")
                                   for n, s in zip(nodes, win.statuses, strict=False)},
        "nodes_cpu_pct": round((sum(win.cpu1) - sum(win.cpu0)) / duration_s * 100, 1),
        "machine_cpu_pct": round((win.machine1 - win.machine0) / duration_s * 100, 1),
        "bench_cpu_pct": round((win.bench1 - win.bench0) / duration_s * 100, 1),
        "cores": os.cpu_count(),
        "nodes_exited": exited,
        "client_transport": "loopback TCP, length-prefixed frames; the clients share one "
                            "connection to the leader",
    }
    lines = [
        f"ordering only: {len(nodes)} Raft nodes (libp2p transport, synced LevelDB per Ready), "
        f"{clients} closed-loop clients, {entry_bytes}-byte entries, {duration_s:g} s",
        f"committed entries/s: {figures['committed_tps']} ({committed} answered committed "
        f"during the window; {figures['leader_entries_per_ready']} entries per Ready on "
        "the leader)",
        f"latency submit->committed (applied on the leader): p50 {figures['latency_p50_ms']} "
        f"ms, p95 {figures['latency_p95_ms']} ms, p99 {figures['latency_p99_ms']} ms",
        f"submitted {sample.submitted}, committed {len(sample.done)}, not committed "
        f"{not_committed} (errors {sample.errors}); retried {sample.retries}, redirected "
        f"{sample.redirects}; log entries not applied on every node after the run: {lagging}"
        + ("" if win.drained else " (DRAIN TIMED OUT)"),
        f"{'node':<10} {'cpu %':>6} {'cpu us/entry':>12} {'rss MB':>7} {'applied':>8} "
        f"{'save_raft ms':>12}",
    ]
    for n in nodes:
        lines.append(f"{n.name:<10} {cpu_pct[n.name]:>6.1f} "
                     f"{cpu_node[n.name] if cpu_node[n.name] is not None else '-':>12} "
                     f"{rss_node[n.name]:>7.1f} {applied.get(n.name)!s:>8} "
                     f"{figures['save_raft_ms_mean_node'].get(n.name)!s:>12}")
    for name in exited:
        node = next(n for n in nodes if n.name == name)
        lines.append(f"WARNING: node {name} EXITED during the run; its log ends:\n"
                     f"{log_tail(node.log_path)}")
    lines.append(f"clients reach the leader over {figures['client_transport']}; machine: "
                 f"{os.cpu_count()} cores, {figures['machine_cpu_pct']}% of one core busy: the "
                 f"nodes {figures['nodes_cpu_pct']}%, the bench process (clients) "
                 f"{figures['bench_cpu_pct']}%")
    return lines, figures


# ------------------------------------------------------------------------------ the command


def check_args(nodes: int, clients: int, entry_bytes: int, duration_s: float) -> None:
    if not 1 <= nodes <= NODES_MAX:
        raise OrderingBenchError(f"--nodes must be 1..{NODES_MAX} for --ordering-only")
    if not 1 <= clients <= CLIENTS_MAX:
        raise OrderingBenchError(f"--clients must be 1..{CLIENTS_MAX} for --ordering-only")
    if not ENTRY_BYTES_MIN <= entry_bytes <= ENTRY_BYTES_MAX:
        raise OrderingBenchError(f"--entry-bytes must be {ENTRY_BYTES_MIN}..{ENTRY_BYTES_MAX}")
    if not 0 < duration_s <= 3600:
        raise OrderingBenchError("--duration must be in (0, 3600] seconds")


def run_bench(*, nodes: int = DEFAULT_NODES, clients: int = DEFAULT_CLIENTS,
              entry_bytes: int = DEFAULT_ENTRY_BYTES, duration_s: float = 20.0,
              directory: pathlib.Path | None = None, keep: bool = False, base_port: int = 0,
              out: Any = print) -> dict[str, Any]:
    """Run the ordering-only bench; print its lines and, last, its JSON; return the figures."""
    from node.cli import devnet

    check_args(nodes, clients, entry_bytes, duration_s)
    root = directory or pathlib.Path(tempfile.mkdtemp(prefix="crossbill-bench-ordering-"))
    root.mkdir(parents=True, exist_ok=True)
    base = base_port or devnet.free_base_port(nodes)
    started = time.monotonic()
    running = _start_nodes(root, nodes, base)
    try:
        out(f"{nodes} ordering processes up in {time.monotonic() - started:.1f} s "
            f"(p2p ports {base + 1}.., client ports {base + 101}.., {root})")
        load, win = trio.run(_drive, running, clients, entry_bytes, duration_s)
        lines, figures = summarize(running, load, win, clients, entry_bytes, duration_s)
        for line in lines:
            out(line)
    finally:
        _stop_nodes(running)
        if directory is None and not keep:
            shutil.rmtree(root, ignore_errors=True)
        elif directory is None:
            out(f"directory kept: {root}")
    out(json.dumps(figures))
    return figures


def main(args: argparse.Namespace) -> int:
    """`crossbill bench --ordering-only`: --nodes takes the orderers only (followers have no
    part here); --nodes and --clients left unset mean 3 and 64."""
    if args.rate:
        raise OrderingBenchError("--ordering-only is a closed loop: --rate does not apply")
    nodes = args.nodes[0] if args.nodes is not None else DEFAULT_NODES
    clients = args.clients if args.clients is not None else DEFAULT_CLIENTS
    figures = run_bench(nodes=nodes, clients=clients, entry_bytes=args.entry_bytes,
                        duration_s=float(args.duration), directory=args.dir, keep=args.keep,
                        base_port=args.base_port)
    ok = (not figures["nodes_exited"] and figures["not_committed"] == 0
          and figures["not_applied_everywhere"] == 0)
    return 0 if ok else 1
