"""The fault lab's link shaper: a user-space TCP proxy that delays, slows, "loses", cuts and
resets the traffic between nodes (issue 22; the approach of toxiproxy).

This machine's kernel has no `netem` and no iptables, so the lab cannot shape links in the
kernel. Instead every node's p2p address in the genesis file is a proxy address on the bridge,
where this process listens (one listener per `Route`), and every accepted connection is
forwarded to the node's real address. The source IP of an accepted connection names the node
that dialed (`sources`), so each connection belongs to one unordered pair of nodes {S, D}, and
its bytes flow in two directed links: S->D (client to upstream) and D->S (upstream to client).
A connection from an unknown source IP (or from a node to itself) is forwarded unshaped.

Rules, per directed link, all off by default:

- `delay_ms`, `jitter_ms`: each chunk read is released `delay + U(-jitter, +jitter)` ms after it
  was read (never earlier than now), from a `random.Random` per link seeded from the config's
  seed and the link's name. The bytes of one direction are never reordered: a chunk's release
  time is max(previous chunk's release, its own).
- `loss` (probability 0..1): TCP never loses bytes, so loss is modelled as its effect on a TCP
  stream: a "lost" chunk is held an extra retransmission timeout, `rto_ms` (default 200),
  doubled for each consecutive loss on that link (at most `SHAPER_RTO_DOUBLINGS_MAX` times),
  and since release times never go backwards every later chunk of that direction waits behind
  it (head-of-line blocking). A chunk that is not lost resets the doubling.
- `bandwidth_bytes_s`: a token bucket per link (shared by the link's connections): a chunk of
  n bytes occupies the link n / bandwidth seconds.
- `cut`: a partition of that direction. Its pumps stop reading from their source (so TCP
  backpressure stalls the sender, as in a real partition; nothing is dropped or reset) and stop
  writing what they had already read; both resume when the link is healed. A NEW connection
  whose S->D or D->S direction is cut is accepted but not connected upstream until both are
  healed (the dialer's own handshake deadline fires, as with a real partition); what the
  client sends meanwhile is kept (bounded) and forwarded after; if it closes meanwhile it is
  dropped.

Rules apply to the chunks read after they change (a chunk already queued keeps its release
time; a cut holds it nonetheless). A connection whose upstream cannot be reached (the node is
down) is accepted and then reset, which the dialer sees as it would a refused connect. The
seed makes each link's random stream reproducible, not the schedule of the whole network:
chunk boundaries depend on the kernel's timing.

Each direction of a connection has a reader (receive_some of at most `SHAPER_CHUNK_BYTES`) and
a writer joined by a queue of at most `SHAPER_QUEUE_CHUNKS_MAX` chunks, so that a delay does
not limit throughput; a full queue makes the reader wait (backpressure). Every upstream connect
has a deadline. An error in a pump closes only its connection; nothing a node sends can crash
the shaper.

Control: a Unix socket, one JSON object per line in, one JSON object per line out:

    {"op": "ping"}                                   -> {"ok": true, "listeners": {...}}
    {"op": "set", "src": A, "dst": B, "rules": {..}} replaces the rules of link A->B
                                                     (missing keys are off, `cut` included)
    {"op": "cut", "src": A, "dst": B, "cut": true}   cuts (or heals) link A->B, rules kept
    {"op": "partition", "groups": [[A, B], [C]]}     the cut state of every link becomes:
                                                     cut iff its ends are in different groups;
                                                     a node not listed keeps all its links (a
                                                     bridge node); other rules are kept
    {"op": "heal"}                                   every link uncut, other rules kept
    {"op": "clear"}                                  every link back to no rules, healed
    {"op": "reset", "a": A, "b": B}                  -> {"ok": true, "reset": n}: closes every
                                                     connection between A and B with an RST
    {"op": "stats"}                                  -> {"ok": true, "links": {"A->B": {...}},
                                                         "unshaped": {...}}

Stats per directed link: `bytes` and `chunks` forwarded in that direction, `connections` open
between the pair (a connection carries both directions, so it counts on both links),
`dialed` connections accepted from src to dst since start, `resets` connections closed by
`reset` (counted on both directions), `rules` in force (with `cut`). An unknown op, or a bad
argument, answers {"error": "..."} and changes nothing.

Run: `python -m tests.faults.shaper --config FILE --control SOCKET_PATH`; the config is JSON:
{"routes": [{"name", "listen_host", "listen_port", "upstream_host", "upstream_port"}],
"sources": {"10.77.0.1": "bank.a"}, "seed": 1}; a route is named after the node it reaches
(listen_port 0 takes a free port; `ping` reports the bound ones). Listeners are bound before
the control socket, so a control socket that answers means every route is listening. Tests and
the fault runner use the synchronous `Shaper` below, which starts and stops this process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import pathlib
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import trio

log = logging.getLogger("shaper")

SHAPER_CHUNK_BYTES: Final = 64 * 1024            # one receive_some
SHAPER_QUEUE_CHUNKS_MAX: Final = 1024            # chunks between reader and writer, per direction
SHAPER_PENDING_BYTES_MAX: Final = 256 * 1024     # kept from a client while its link is cut
SHAPER_CONNECT_TIMEOUT_S: Final = 5.0            # upstream connect deadline
SHAPER_RTO_DEFAULT_MS: Final = 200.0             # retransmission timeout of a "lost" chunk
SHAPER_RTO_DOUBLINGS_MAX: Final = 3              # consecutive losses double the RTO up to this
SHAPER_DELAY_MS_MAX: Final = 60_000.0            # bound on delay, jitter and rto
SHAPER_CONTROL_LINE_BYTES_MAX: Final = 64 * 1024  # one control request
SHAPER_CONTROL_TIMEOUT_S: Final = 5.0            # client side: one control request
SHAPER_START_TIMEOUT_S: Final = 15.0             # client side: process up and listening
SHAPER_STOP_TIMEOUT_S: Final = 5.0               # client side: SIGTERM before SIGKILL

RULE_KEYS: Final = ("delay_ms", "jitter_ms", "loss", "rto_ms", "bandwidth_bytes_s", "cut")


# --- configuration -------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """A listener of the shaper: connections to listen_host:listen_port reach node `name` at
    upstream_host:upstream_port."""
    name: str
    listen_host: str
    listen_port: int
    upstream_host: str
    upstream_port: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "listen_host": self.listen_host,
                "listen_port": self.listen_port, "upstream_host": self.upstream_host,
                "upstream_port": self.upstream_port}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Route:
        return cls(str(obj["name"]), str(obj["listen_host"]), int(obj["listen_port"]),
                   str(obj["upstream_host"]), int(obj["upstream_port"]))


@dataclass(frozen=True)
class Config:
    routes: tuple[Route, ...]
    sources: dict[str, str]     # source IP -> node name
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"routes": [r.to_json() for r in self.routes], "sources": dict(self.sources),
                "seed": self.seed}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Config:
        return cls(tuple(Route.from_json(r) for r in obj["routes"]),
                   {str(k): str(v) for k, v in obj.get("sources", {}).items()},
                   int(obj.get("seed", 0)))

    def nodes(self) -> list[str]:
        return sorted({r.name for r in self.routes} | set(self.sources.values()))


@dataclass(frozen=True)
class Rules:
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    rto_ms: float = SHAPER_RTO_DEFAULT_MS
    bandwidth_bytes_s: float = 0.0      # 0: unlimited
    cut: bool = False

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in RULE_KEYS}

    @classmethod
    def parse(cls, obj: object) -> Rules:
        """Rules from a control request; ValueError names what is wrong."""
        if not isinstance(obj, dict):
            raise ValueError("rules must be an object")
        unknown = sorted(set(obj) - set(RULE_KEYS))
        if unknown:
            raise ValueError(f"unknown rules {unknown}; known: {list(RULE_KEYS)}")
        values: dict[str, Any] = {}
        for key, value in obj.items():
            if key == "cut":
                if not isinstance(value, bool):
                    raise ValueError("cut must be true or false")
                values[key] = value
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"{key} must be a finite number >= 0")
            if key == "loss" and value > 1:
                raise ValueError("loss is a probability in [0, 1]")
            if key.endswith("_ms") and value > SHAPER_DELAY_MS_MAX:
                raise ValueError(f"{key} is at most {SHAPER_DELAY_MS_MAX}")
            values[key] = float(value)
        return cls(**values)


# --- the server ----------------------------------------------------------------------------

@dataclass
class Link:
    """One directed link src->dst: its rules, its random stream and its counters."""
    name: str
    rng: random.Random
    rules: Rules = field(default_factory=Rules)
    bytes: int = 0
    chunks: int = 0
    dialed: int = 0
    resets: int = 0
    losses_in_a_row: int = 0
    busy_until: float = 0.0     # token bucket: when the link is free again

    def release_time(self, now: float, n: int, previous: float) -> float:
        """When a chunk of n bytes read now may be written, after the chunk released at
        `previous` on the same direction."""
        r = self.rules
        start = now
        if r.bandwidth_bytes_s > 0:
            start = max(now, self.busy_until) + n / r.bandwidth_bytes_s
            self.busy_until = start
        delay_ms = r.delay_ms
        if r.jitter_ms > 0:
            delay_ms += self.rng.uniform(-r.jitter_ms, r.jitter_ms)
        if r.loss > 0 and self.rng.random() < r.loss:
            doublings = min(self.losses_in_a_row, SHAPER_RTO_DOUBLINGS_MAX)
            delay_ms += r.rto_ms * (2 ** doublings)
            self.losses_in_a_row += 1
        else:
            self.losses_in_a_row = 0
        return max(previous, start + max(0.0, delay_ms) / 1000.0)

    def stats(self, open_connections: int) -> dict[str, Any]:
        return {"bytes": self.bytes, "chunks": self.chunks, "connections": open_connections,
                "dialed": self.dialed, "resets": self.resets, "rules": self.rules.to_json()}


@dataclass(eq=False)
class Conn:
    """One accepted connection and, once connected, its upstream."""
    client: trio.SocketStream
    pair: tuple[str, str] | None        # (dialer, dialed), None: unshaped
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    upstream: trio.SocketStream | None = None

    def reset(self) -> None:
        """Abort: SO_LINGER 0 on both sockets, so that closing them sends an RST."""
        for stream in (self.client, self.upstream):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                             struct.pack("ii", 1, 0))
        self.scope.cancel()


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.nodes = config.nodes()
        self.links: dict[tuple[str, str], Link] = {
            (a, b): Link(f"{a}->{b}", random.Random(f"{config.seed}:{a}->{b}"))
            for a in self.nodes for b in self.nodes if a != b}
        self.conns: set[Conn] = set()
        self.unshaped_bytes = 0
        self.unshaped_dialed = 0
        self.listeners: dict[str, tuple[str, int]] = {}
        self._changed = trio.Event()    # set (and replaced) whenever a rule changes

    # rules ----------------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _cut(self, link: tuple[str, str]) -> bool:
        return self.links[link].rules.cut

    async def _wait_uncut(self, *links: tuple[str, str]) -> None:
        while any(self._cut(link) for link in links):
            await self._changed.wait()

    def _set_cut(self, link: tuple[str, str], cut: bool) -> None:
        rules = self.links[link].rules
        if rules.cut != cut:
            self.links[link].rules = Rules(**{**rules.to_json(), "cut": cut})

    # control --------------------------------------------------------------------------------

    def _node(self, request: dict[str, Any], key: str) -> str:
        name = request.get(key)
        if not isinstance(name, str) or name not in self.nodes:
            raise ValueError(f"{key} must be one of the nodes {self.nodes}, got {name!r}")
        return name

    def _pair(self, request: dict[str, Any], a: str, b: str) -> tuple[str, str]:
        pair = (self._node(request, a), self._node(request, b))
        if pair[0] == pair[1]:
            raise ValueError(f"{a} and {b} must be different nodes")
        return pair

    def handle(self, request: object) -> dict[str, Any]:
        """One control request -> its reply; a bad one changes nothing."""
        try:
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            return self._handle(request)
        except ValueError as exc:
            return {"error": str(exc)}
        except Exception as exc:    # a bug here must not stop the shaper
            log.exception("control request %r", request)
            return {"error": f"internal error: {exc!r}"}

    def _handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            return {"ok": True, "listeners": {k: list(v) for k, v in self.listeners.items()},
                    "nodes": self.nodes}
        if op == "set":
            link = self._pair(request, "src", "dst")
            rules = Rules.parse(request.get("rules", {}))
            self.links[link].rules = rules
            self.links[link].losses_in_a_row = 0
        elif op == "cut":
            link = self._pair(request, "src", "dst")
            cut = request.get("cut", True)
            if not isinstance(cut, bool):
                raise ValueError("cut must be true or false")
            self._set_cut(link, cut)
        elif op == "partition":
            groups = request.get("groups")
            if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
                raise ValueError("groups must be a list of lists of node names")
            group_of: dict[str, int] = {}
            for i, group in enumerate(groups):
                for name in group:
                    if not isinstance(name, str) or name not in self.nodes:
                        raise ValueError(f"unknown node {name!r}; nodes: {self.nodes}")
                    if name in group_of:
                        raise ValueError(f"node {name!r} is in two groups")
                    group_of[name] = i
            for a, b in self.links:
                self._set_cut((a, b), a in group_of and b in group_of
                              and group_of[a] != group_of[b])
        elif op == "heal":
            for link in self.links:
                self._set_cut(link, False)
        elif op == "clear":
            for each in self.links.values():
                each.rules = Rules()
                each.losses_in_a_row = 0
        elif op == "reset":
            a, b = self._pair(request, "a", "b")
            hit = [c for c in self.conns if c.pair in ((a, b), (b, a))]
            for conn in hit:
                conn.reset()
            self.links[(a, b)].resets += len(hit)
            self.links[(b, a)].resets += len(hit)
            log.info("reset %d connection(s) between %s and %s", len(hit), a, b)
            return {"ok": True, "reset": len(hit)}
        elif op == "stats":
            open_by_pair: dict[frozenset[str], int] = {}
            unshaped_open = 0
            for conn in self.conns:
                if conn.pair is None:
                    unshaped_open += 1
                else:
                    key = frozenset(conn.pair)
                    open_by_pair[key] = open_by_pair.get(key, 0) + 1
            return {"ok": True,
                    "links": {link.name: link.stats(open_by_pair.get(frozenset(k), 0))
                              for k, link in sorted(self.links.items())},
                    "unshaped": {"connections": unshaped_open, "dialed": self.unshaped_dialed,
                                 "bytes": self.unshaped_bytes}}
        else:
            raise ValueError(f"unknown op {op!r}")
        self._notify()
        log.info("control: %s", json.dumps(request, sort_keys=True))
        return {"ok": True}

    async def serve_control(self, listener: trio.SocketListener) -> None:
        async def one(stream: trio.SocketStream) -> None:
            buffer = b""
            try:
                async with stream:
                    while True:
                        while b"\n" not in buffer:
                            if len(buffer) > SHAPER_CONTROL_LINE_BYTES_MAX:
                                await stream.send_all(b'{"error": "request too long"}\n')
                                return
                            data = await stream.receive_some(SHAPER_CONTROL_LINE_BYTES_MAX)
                            if not data:
                                return
                            buffer += data
                        line, buffer = buffer.split(b"\n", 1)
                        try:
                            request = json.loads(line)
                        except (ValueError, RecursionError):
                            reply: dict[str, Any] = {"error": "not a JSON object"}
                        else:
                            reply = self.handle(request)
                        await stream.send_all(json.dumps(reply).encode() + b"\n")
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
        await trio.serve_listeners(one, [listener])

    # forwarding -----------------------------------------------------------------------------

    async def serve_route(self, route: Route, listener: trio.SocketListener) -> None:
        async def one(stream: trio.SocketStream) -> None:
            try:
                await self._connection(route, stream)
            except Exception:       # nothing a node sends may crash the shaper
                log.exception("connection to %s failed", route.name)
        await trio.serve_listeners(one, [listener])

    async def _connection(self, route: Route, client: trio.SocketStream) -> None:
        try:
            source = client.socket.getpeername()[0]
        except OSError:
            await client.aclose()
            return
        dialer = self.config.sources.get(source)
        pair = (dialer, route.name) if dialer is not None and dialer != route.name else None
        conn = Conn(client, pair)
        self.conns.add(conn)
        if pair is None:
            self.unshaped_dialed += 1
        else:
            self.links[pair].dialed += 1
        try:
            with conn.scope:
                await self._forward(route, conn)
        finally:
            self.conns.discard(conn)
            with trio.CancelScope(shield=True):
                await client.aclose()
                if conn.upstream is not None:
                    await conn.upstream.aclose()

    async def _forward(self, route: Route, conn: Conn) -> None:
        pending = b""
        forward = backward = None
        if conn.pair is not None:
            forward, backward = conn.pair, (conn.pair[1], conn.pair[0])
            if self._cut(forward) or self._cut(backward):
                kept = await self._hold_while_cut(conn.client, forward, backward)
                if kept is None:
                    return      # the client closed while cut: dropped
                pending = kept
        try:
            with trio.fail_after(SHAPER_CONNECT_TIMEOUT_S):
                conn.upstream = await trio.open_tcp_stream(route.upstream_host,
                                                           route.upstream_port)
        except (OSError, trio.TooSlowError) as exc:
            log.info("upstream %s unreachable: %s", route.name, exc)
            conn.reset()    # the dialer sees a reset, as it would see a refused connect
            return
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, conn.client, conn.upstream, forward, pending)
                nursery.start_soon(self._pump, conn.upstream, conn.client, backward, b"")
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass    # the connection ends; the others go on

    async def _hold_while_cut(self, client: trio.SocketStream, *links: tuple[str, str]
                              ) -> bytes | None:
        """Wait, without connecting upstream, until `links` are healed; keep what the client
        sends meanwhile (bounded). None if the client closes first."""
        kept = bytearray()
        closed = False
        async with trio.open_nursery() as nursery:
            async def watch_client() -> None:
                nonlocal closed
                while len(kept) < SHAPER_PENDING_BYTES_MAX:
                    try:
                        data = await client.receive_some(SHAPER_CHUNK_BYTES)
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                        data = b""
                    if not data:
                        closed = True
                        nursery.cancel_scope.cancel()
                        return
                    kept.extend(data)
                await trio.sleep_forever()

            async def wait_healed() -> None:
                await self._wait_uncut(*links)
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_client)
            nursery.start_soon(wait_healed)
        return None if closed else bytes(kept)

    async def _pump(self, source: trio.SocketStream, sink: trio.SocketStream,
                    key: tuple[str, str] | None, first: bytes) -> None:
        """One direction of a connection: a reader and a writer joined by a bounded queue.
        `key` is its directed link (src, dst), None when unshaped."""
        send, receive = trio.open_memory_channel[tuple[float, bytes]](SHAPER_QUEUE_CHUNKS_MAX)
        released = 0.0
        link = None if key is None else self.links[key]

        def stamp(data: bytes) -> tuple[float, bytes]:
            nonlocal released
            if link is not None:
                released = link.release_time(trio.current_time(), len(data), released)
            return released, data

        async def reader() -> None:
            async with send:
                if first:
                    await send.send(stamp(first))
                while True:
                    if key is not None:
                        await self._wait_uncut(key)
                    data = await source.receive_some(SHAPER_CHUNK_BYTES)
                    await send.send(stamp(data))
                    if not data:
                        return

        async def writer() -> None:
            async with receive:
                async for at, data in receive:
                    await trio.sleep_until(at)
                    if key is not None:
                        await self._wait_uncut(key)
                    if not data:
                        with contextlib.suppress(OSError):
                            await sink.send_eof()
                        return
                    await sink.send_all(data)
                    if link is None:
                        self.unshaped_bytes += len(data)
                    else:
                        link.bytes += len(data)
                        link.chunks += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            nursery.start_soon(writer)


async def _bind(host: str, port: int) -> trio.SocketListener:
    listeners = await trio.open_tcp_listeners(port, host=host)
    if len(listeners) != 1:
        for extra in listeners:
            await extra.aclose()
        raise OSError(f"{host}:{port} resolves to {len(listeners)} addresses; give one IP")
    return listeners[0]


async def serve(config: Config, control_path: str) -> None:
    server = Server(config)
    listeners: list[tuple[Route, trio.SocketListener]] = []
    for route in config.routes:
        listener = await _bind(route.listen_host, route.listen_port)
        host, port = listener.socket.getsockname()[:2]
        server.listeners[route.name] = (host, port)
        listeners.append((route, listener))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(control_path)
    control_sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await control_sock.bind(control_path)
    control_sock.listen(16)
    log.info("shaper up: %s; control %s", server.listeners, control_path)
    async with trio.open_nursery() as nursery:
        for route, listener in listeners:
            nursery.start_soon(server.serve_route, route, listener)
        nursery.start_soon(server.serve_control, trio.SocketListener(control_sock))
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("signal %d: stopping", signum)
                nursery.cancel_scope.cancel()
                break
    with contextlib.suppress(OSError):
        os.unlink(control_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.shaper",
                                     description="The fault lab's user-space link shaper.")
    parser.add_argument("--config", required=True, help="JSON: routes, sources, seed")
    parser.add_argument("--control", required=True, help="path of the control Unix socket")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    config = Config.from_json(json.loads(pathlib.Path(args.config).read_text()))
    trio.run(serve, config, args.control)
    return 0


# --- the synchronous client and process manager --------------------------------------------

class ShaperError(RuntimeError):
    """The shaper answered {"error": ...} or could not be reached."""


REPO_ROOT: Final = pathlib.Path(__file__).resolve().parents[2]


class Shaper:
    """A running shaper process and its control client (a context manager):

        with Shaper.start(routes, sources, seed=1, workdir=tmp) as shaper:
            shaper.set_both("bank.a", "bank.b", delay_ms=75)    # 150 ms RTT
            shaper.partition(["bank.a"], ["bank.b", "bank.c"])
    """

    def __init__(self, process: subprocess.Popen[bytes], control_path: pathlib.Path,
                 workdir: pathlib.Path) -> None:
        self.process = process
        self.control_path = control_path
        self.workdir = workdir
        self.listeners: dict[str, tuple[str, int]] = {}
        self.nodes: list[str] = []

    @classmethod
    def start(cls, routes: Iterable[Route], sources: dict[str, str], seed: int,
              workdir: str | os.PathLike[str], netns: str | None = None) -> Shaper:
        workdir = pathlib.Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        config = Config(tuple(routes), dict(sources), seed)
        config_path = workdir / "shaper.json"
        config_path.write_text(json.dumps(config.to_json(), indent=1))
        control_path = workdir / "shaper.sock"
        if len(os.fsencode(control_path)) >= 100:
            raise ShaperError(f"control socket path too long for AF_UNIX: {control_path}")
        with contextlib.suppress(FileNotFoundError):
            control_path.unlink()
        command = [sys.executable, "-m", "tests.faults.shaper", "--config", str(config_path),
                   "--control", str(control_path)]
        if netns is not None:
            command = ["ip", "netns", "exec", netns, *command]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        with open(workdir / "shaper.log", "ab") as log_file:
            process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                       stdout=log_file, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        shaper = cls(process, control_path, workdir)
        try:
            shaper._wait_up()
        except BaseException:
            shaper.stop()
            raise
        return shaper

    def _wait_up(self) -> None:
        deadline = time.monotonic() + SHAPER_START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise ShaperError(f"shaper exited with {self.process.returncode}; see "
                                  f"{self.workdir / 'shaper.log'}")
            try:
                reply = self.request({"op": "ping"})
            except (OSError, ShaperError):
                if time.monotonic() >= deadline:
                    raise ShaperError(f"shaper not up after {SHAPER_START_TIMEOUT_S} s; see "
                                      f"{self.workdir / 'shaper.log'}") from None
                time.sleep(0.02)
                continue
            self.listeners = {k: (v[0], int(v[1])) for k, v in reply["listeners"].items()}
            self.nodes = list(reply["nodes"])
            return

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after SHAPER_STOP_TIMEOUT_S; waits for the process."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(SHAPER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait(SHAPER_STOP_TIMEOUT_S)
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()

    def __enter__(self) -> Shaper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # control ------------------------------------------------------------------------------

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        """One control request; ShaperError if the shaper answers an error."""
        reply = self.request_raw(json.dumps(request).encode())
        if "error" in reply:
            raise ShaperError(reply["error"])
        return reply

    def request_raw(self, line: bytes) -> dict[str, Any]:
        """Send one line as is; the reply, error or not (for tests of bad requests)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(SHAPER_CONTROL_TIMEOUT_S)
            sock.connect(str(self.control_path))
            sock.sendall(line + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                more = sock.recv(SHAPER_CONTROL_LINE_BYTES_MAX)
                if not more:
                    raise ShaperError(f"control socket closed; got {data!r}")
                data += more
        reply = json.loads(data)
        if not isinstance(reply, dict):
            raise ShaperError(f"not a JSON object: {data!r}")
        return reply

    def set_link(self, src: str, dst: str, **rules: Any) -> None:
        """Replace the rules of link src->dst (keys not given are off)."""
        self.request({"op": "set", "src": src, "dst": dst, "rules": rules})

    def set_both(self, a: str, b: str, **rules: Any) -> None:
        """The same rules in both directions; for a round trip of R ms give delay_ms=R/2."""
        self.set_link(a, b, **rules)
        self.set_link(b, a, **rules)

    def cut(self, src: str, dst: str) -> None:
        """Cut one direction (an asymmetric fault), other rules kept."""
        self.request({"op": "cut", "src": src, "dst": dst, "cut": True})

    def uncut(self, src: str, dst: str) -> None:
        self.request({"op": "cut", "src": src, "dst": dst, "cut": False})

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut every direction between nodes of different groups (and heal every other
        link); nodes in no group keep all their links."""
        self.request({"op": "partition", "groups": [list(g) for g in groups]})

    def isolate(self, name: str) -> None:
        """Cut `name` from every other node."""
        self.partition([name], [n for n in self.nodes if n != name])

    def heal(self) -> None:
        self.request({"op": "heal"})

    def clear(self) -> None:
        self.request({"op": "clear"})

    def reset(self, a: str, b: str) -> int:
        """Close every connection between a and b with an RST; how many there were."""
        return int(self.request({"op": "reset", "a": a, "b": b})["reset"])

    def stats(self) -> dict[str, Any]:
        return self.request({"op": "stats"})

    def link_stats(self, src: str, dst: str) -> dict[str, Any]:
        return dict(self.stats()["links"][f"{src}->{dst}"])

    def address(self, name: str) -> tuple[str, int]:
        """The proxy address of node `name` (its route's bound listener)."""
        return self.listeners[name]


if __name__ == "__main__":
    sys.exit(main())
