"""`P2PNode`: the libp2p host of a Crossbill node (ADR 0006).

- Identity: a persistent Ed25519 key (`node.p2p.identity`).
- Security: Noise only. py-libp2p offers plaintext, secio and TLS unless told otherwise; we pass
  exactly one security transport, `_AllowlistNoise`, and yamux as the only muxer.
- Allowlist: `_AllowlistNoise` checks the remote peer id right after the Noise handshake has
  authenticated it, in both directions, and fails the handshake for any other peer: the
  connection is closed before the muxer is negotiated, so no stream of any protocol (identify,
  ping, gossipsub, ours) is ever served to it. Stream handlers, gossip validators and a
  connection notifee check the allowlist again as a second lock.
- Connections: one task per allowlisted peer with an address keeps it connected, redialling with
  exponential backoff and jitter when the connection drops. py-libp2p's own auto-connector and
  dial retries are switched off so that this loop is the only dialler.
- Shutdown: the libp2p host runs in a shielded task and is closed (connections, listener)
  before its tasks are cancelled; py-libp2p otherwise leaks open sockets and its listener.
- Gossip (`node.p2p.gossip`) and request/response (`node.p2p.reqresp`) run on this host.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import multiaddr
import multiaddr.exceptions
import trio
from libp2p import new_host
from libp2p.abc import INetConn, INetStream, INetwork, INotifee, IRawConnection, ISecureConn
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.exceptions import HandshakeFailure
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

from node.p2p import limits
from node.p2p.errors import P2PError
from node.p2p.gossip import Gossip, GossipHandler, Validator
from node.p2p.network import NetworkSnapshot, PeerCounts
from node.p2p.reqresp import Handler, ReqResp

log = logging.getLogger("crossbill.p2p")

LIBP2P_LOGGER = "libp2p"
YAMUX_RELEASE_ON_READ_ENV = "PY_YAMUX_RELEASE_ON_READ"


def apply_yamux_tuning() -> None:
    """Yamux sends a window update on almost every read unless PY_YAMUX_RELEASE_ON_READ=0
    (read by py-libp2p at call time). docs/building-blocks.md measured it faster; on our
    3-process gossip benchmark it lost less past saturation (800 msgs/s: 31-94% delivered vs
    18-80%, noisy; ADR 0006). Not soak-tested: an operator who sets the variable keeps their
    choice."""
    os.environ.setdefault(YAMUX_RELEASE_ON_READ_ENV, "0")


def attach_libp2p_logging(level: int = logging.WARNING) -> None:
    """`import libp2p` cuts its logger off from ours (propagate=False, no handler): hand its
    records back to the root logger's handlers, at `level` and above."""
    lg = logging.getLogger(LIBP2P_LOGGER)
    lg.propagate = True
    lg.setLevel(level)


class _Allowlist:
    """The consortium's peer ids (base58) and their addresses."""

    def __init__(self, peers: Mapping[str, Sequence[str]]) -> None:
        if len(peers) > limits.ALLOWLIST_PEERS_MAX:
            raise ValueError(f"at most {limits.ALLOWLIST_PEERS_MAX} peers in the allowlist")
        self.addrs: dict[str, list[multiaddr.Multiaddr]] = {}
        self.ids: dict[str, ID] = {}
        for peer, addrs in peers.items():
            try:
                pid = ID.from_base58(peer)
            except ValueError:  # not base58
                raise ValueError(f"{peer!r} is not a libp2p peer id") from None
            if pid.to_base58() != peer:
                raise ValueError(f"{peer!r} is not in canonical base58 form")
            self.ids[peer] = pid
            parsed = []
            for a in addrs:
                try:
                    parsed.append(multiaddr.Multiaddr(a))
                except (ValueError, multiaddr.exceptions.Error):
                    raise ValueError(f"{a!r} (peer {peer}) is not a multiaddress") from None
            self.addrs[peer] = parsed

    def __contains__(self, peer: object) -> bool:
        return peer in self.ids


class _AllowlistNoise(NoiseTransport):
    """Noise XX, then the allowlist: a peer outside it fails the handshake (both directions)."""

    def __init__(self, key_pair: KeyPair, node: P2PNode) -> None:
        super().__init__(key_pair, noise_privkey=create_x25519_key_pair().private_key)
        self._node = node

    def _admit(self, conn: ISecureConn, direction: str) -> ISecureConn:
        remote = conn.get_remote_peer().to_base58()
        if not self._node.is_allowed(remote):
            self._node.peer_counts.refused += 1
            log.warning("refused %s connection from peer %s: not in the consortium allowlist",
                        direction, remote)
            raise HandshakeFailure(f"peer {remote} is not in the consortium allowlist")
        return conn

    async def secure_inbound(self, conn: IRawConnection) -> ISecureConn:
        secured = await super().secure_inbound(conn)
        try:
            return self._admit(secured, "inbound")
        except HandshakeFailure:
            await secured.close()
            raise

    async def secure_outbound(self, conn: IRawConnection, peer_id: ID) -> ISecureConn:
        secured = await super().secure_outbound(conn, peer_id)
        try:
            return self._admit(secured, "outbound")
        except HandshakeFailure:
            await secured.close()
            raise


@dataclasses.dataclass(slots=True)
class _PeerCounters:
    """The mutable side of `PeerCounts`."""

    connected: int = 0
    disconnected: int = 0
    dials: int = 0
    dial_failures: int = 0
    refused: int = 0

    def freeze(self) -> PeerCounts:
        return PeerCounts(**dataclasses.asdict(self))


class _Notifee(INotifee):
    def __init__(self, node: P2PNode) -> None:
        self._node = node

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        await self._node._on_connected(conn)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._node._on_disconnected(conn)

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass


class P2PNode:
    """The networking layer of a node.

    ``P2PNode(key_pair, "/ip4/127.0.0.1/tcp/7101", {peer_id: [multiaddr, ...]}, topics=[...])``,
    then ``await nursery.start(node.run)``. Peers with an empty address list are not dialled:
    they dial us. Register request/response handlers and gossip subscriptions before `run`
    (both may also be added while running). A P2PNode runs once: to restart, make a new one
    with the same key and port.

    Randomness (backoff jitter) comes from `rng`, injectable for tests.
    """

    def __init__(self, key_pair: KeyPair, listen_addr: str,
                 allowlist: Mapping[str, Sequence[str]], *, topics: Iterable[str] = (),
                 rng: random.Random | None = None) -> None:
        apply_yamux_tuning()
        self._key_pair = key_pair
        self._peer_id = ID.from_pubkey(key_pair.public_key)
        self._listen = multiaddr.Multiaddr(listen_addr)
        self._allow = _Allowlist({p: a for p, a in allowlist.items()
                                  if p != self._peer_id.to_base58()})
        self._rng = rng or random.Random()
        self.peer_counts = _PeerCounters()
        self._peer_changed: dict[str, trio.Event] = {}
        self._keepers: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None
        self._running = False
        self._ran = False
        self.host = new_host(
            key_pair=key_pair,
            sec_opt={NOISE_PROTOCOL_ID: _AllowlistNoise(key_pair, self)},
            muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
            listen_addrs=[self._listen],
            connection_config=ConnectionConfig(
                max_connections=limits.CONNECTIONS_MAX,
                min_connections=0,
                low_watermark=0,
                high_watermark=limits.CONNECTIONS_MAX,
                max_connections_per_peer=limits.CONNECTIONS_PER_PEER_MAX,
                dial_timeout=limits.DIAL_TIMEOUT_S,
                inbound_upgrade_timeout=limits.UPGRADE_TIMEOUT_S,
                outbound_upgrade_timeout=limits.UPGRADE_TIMEOUT_S,
                outbound_stream_protocol_negotiation_timeout=limits.STREAM_OPEN_TIMEOUT_S,
                inbound_stream_protocol_negotiation_timeout=limits.STREAM_OPEN_TIMEOUT_S,
            ),
        )
        network: Any = self.host.get_network()
        # We are the only dialler: no retries inside one dial, no auto-connector. Both are
        # members of py-libp2p's Swarm outside its INetwork interface (docs/adr/0016).
        network.retry_config = RetryConfig(max_retries=0)
        network.auto_connector.maybe_connect = _no_auto_connect
        network.register_notifee(_Notifee(self))
        for peer, addrs in self._allow.addrs.items():
            if addrs:
                self.host.get_peerstore().add_addrs(self._allow.ids[peer], addrs, 0)
        self.gossip = Gossip(self.host, topics, self.is_allowed)
        self.reqresp = ReqResp(self.host, self.is_allowed)

    # ------------------------------------------------------------------ identity and peers

    @property
    def peer_id(self) -> str:
        return self._peer_id.to_base58()

    @property
    def listen_addrs(self) -> list[str]:
        """Where we listen (with the real port when the configured port was 0)."""
        return [str(a) for a in self.host.get_transport_addrs()]

    def is_allowed(self, peer_id: str) -> bool:
        return peer_id in self._allow

    def snapshot(self) -> NetworkSnapshot:
        """Peer, gossip and request/response counters since start (for the metrics)."""
        return NetworkSnapshot(
            peers=self.peer_counts.freeze(), gossip=self.gossip.counts(),
            reqresp=self.reqresp.counts(), gossip_stream_failures=self.gossip.stream_failures,
            stream_reset_failures=self.gossip.reset_failures + self.reqresp.reset_failures)

    def set_peers(self, peers: Mapping[str, Sequence[str]]) -> None:
        """Replace the allowlist (peer id -> addresses), e.g. after the ledger named a node's
        new identity or a new institution's node. Peers no longer listed are disconnected and
        refused from now on; new ones are dialled; a peer whose addresses changed is redialled
        at the new ones. Raises ValueError (and changes nothing) on a malformed entry."""
        new = _Allowlist({p: a for p, a in peers.items() if p != self.peer_id})
        old = self._allow
        self._allow = new
        for peer, addrs in new.addrs.items():
            if addrs:
                self.host.get_peerstore().add_addrs(new.ids[peer], addrs, 0)
        for peer in old.ids.keys() - new.ids.keys():
            log.info("peer %s left the allowlist: disconnecting it", peer)
            self._stop_keeper(peer)
            if self._nursery is not None:
                self._nursery.start_soon(self._disconnect, old.ids[peer])
            self._signal(peer)
        for peer in new.ids:
            if peer not in old.ids or old.addrs.get(peer) != new.addrs[peer]:
                self._stop_keeper(peer)
                if self._nursery is not None and new.addrs[peer]:
                    self._nursery.start_soon(self._keep_connected, peer)

    def _stop_keeper(self, peer: str) -> None:
        scope = self._keepers.pop(peer, None)
        if scope is not None:
            scope.cancel()

    async def _disconnect(self, pid: ID) -> None:
        with trio.move_on_after(limits.UPGRADE_TIMEOUT_S):
            try:
                await self.host.disconnect(pid)
            except (BaseLibp2pError, OSError) as exc:  # already gone: nothing to do
                log.debug("disconnecting %s: %s: %s", pid, type(exc).__name__, exc)
        self.gossip.refresh_peer(pid)

    def connected_peers(self) -> set[str]:
        network = self.host.get_network()
        return {p.to_base58() for p in list(network.connections)
                if _open(network.get_connections(p))}

    def is_connected(self, peer_id: str) -> bool:
        pid = self._allow.ids.get(peer_id)
        return pid is not None and _open(self.host.get_network().get_connections(pid))

    # ------------------------------------------------------------------ request/response

    def register_handler(self, protocol_id: str, handler: Handler) -> None:
        """Serve `protocol_id`: ``await handler(peer_id, request) -> response | None``."""
        self.reqresp.register_handler(protocol_id, handler)

    async def request(self, peer_id: str, protocol_id: str, payload: bytes, *,
                      timeout_s: float) -> bytes:
        """Send a request on the long-lived stream to (peer, protocol); its response.

        Raises RequestTimeout (stream reset), RemoteError (the handler failed), StreamFailed,
        TooManyInflight, PeerNotAllowed, PayloadTooLarge, NotRunning."""
        return await self.reqresp.request(peer_id, protocol_id, payload, timeout_s=timeout_s)

    async def send(self, peer_id: str, protocol_id: str, payload: bytes, *,
                   timeout_s: float = limits.FRAME_WRITE_TIMEOUT_S) -> None:
        """One-way message (Raft): delivered in order per stream, no response, no ack."""
        await self.reqresp.send(peer_id, protocol_id, payload, timeout_s=timeout_s)

    async def send_many(self, peer_id: str, protocol_id: str, payloads: list[bytes], *,
                        timeout_s: float = limits.FRAME_WRITE_TIMEOUT_S) -> None:
        """One-way messages in one write (the receiver sees `send`'s frames, in order)."""
        await self.reqresp.send_many(peer_id, protocol_id, payloads, timeout_s=timeout_s)

    # ------------------------------------------------------------------ gossip

    def subscribe(self, topic: str, validator: Validator, handler: GossipHandler) -> None:
        """``validator(data, origin_peer) -> bool`` runs before relay (cheap, synchronous);
        ``await handler(data, origin_peer)`` gets each accepted message once, in order."""
        self.gossip.subscribe(topic, validator, handler)

    def topic_peers(self, topic: str) -> set[str]:
        """Connected peers known to subscribe to `topic`: a publication reaches these (directly
        or through the mesh). Publishing before this is non-empty loses the message."""
        return self.gossip.topic_peers(topic)

    def mesh_peers(self, topic: str) -> set[str]:
        """Our gossipsub mesh for `topic` (empty for a topic we only publish to)."""
        return self.gossip.mesh_peers(topic)

    async def publish(self, topic: str, data: bytes) -> bool:
        """Gossip `data`; False if the same bytes were published or received in the last
        `GOSSIP_SEEN_TTL_S` (the message id is their hash: gossip would drop them anyway)."""
        return await self.gossip.publish(topic, data)

    # ------------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, gossip, serve and keep the consortium's peers connected until cancelled."""
        if self._running or self._ran:
            raise P2PError("a P2PNode runs once (its libp2p host is closed when it stops): "
                           "create a new P2PNode to restart")
        self._running = self._ran = True
        _check_port_free(self._listen)
        stop = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                try:
                    await nursery.start(self._run_host, stop)
                    await nursery.start(self.gossip.run)
                    self.reqresp.attach(nursery)
                    self._nursery = nursery
                    for peer, addrs in self._allow.addrs.items():
                        if addrs:
                            nursery.start_soon(self._keep_connected, peer)
                    log.info("p2p node %s listening on %s", self.peer_id,
                             ", ".join(self.listen_addrs))
                    task_status.started()
                    await trio.sleep_forever()
                finally:
                    self._nursery = None
                    self.reqresp.attach(None)
                    self.reqresp.fail_all("the p2p node is stopping")
                    stop.set()  # the host task closes the host, shielded and bounded
                    nursery.cancel_scope.cancel()
        finally:
            self._running = False

    async def _run_host(self, stop: trio.Event, *,
                        task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run the libp2p host until `stop`, then close it gracefully.

        Shielded: if the caller's cancellation reached py-libp2p's own tasks, they would drop
        connections from their tables without closing the sockets (the peer then sees a frozen
        connection until its timeouts fire) and leave the listener (a trio system task) open.
        So the host is closed first, while its tasks still run, and only then torn down; a
        deadline bounds the whole shutdown."""
        with trio.CancelScope(shield=True) as scope:
            async with self.host.run(listen_addrs=[self._listen]):
                task_status.started()
                await stop.wait()
                scope.deadline = trio.current_time() + 2 * limits.SHUTDOWN_TIMEOUT_S
                with trio.move_on_after(limits.SHUTDOWN_TIMEOUT_S) as closing:
                    await self.host.close()
                if closing.cancelled_caught:
                    log.warning("p2p host did not close within %s s", limits.SHUTDOWN_TIMEOUT_S)
        if scope.cancelled_caught:
            log.warning("p2p host did not stop within %s s", 2 * limits.SHUTDOWN_TIMEOUT_S)

    async def wait_connected(self, peer_id: str) -> None:
        """Return once `peer_id` is connected (callers bound it with trio.fail_after)."""
        while not self.is_connected(peer_id):
            await self._changed(peer_id).wait()

    def _changed(self, peer_id: str) -> trio.Event:
        ev = self._peer_changed.get(peer_id)
        if ev is None:
            ev = self._peer_changed[peer_id] = trio.Event()
        return ev

    def _signal(self, peer_id: str) -> None:
        ev = self._peer_changed.pop(peer_id, None)
        if ev is not None:
            ev.set()

    async def _keep_connected(self, peer: str) -> None:
        if peer not in self._allow or peer in self._keepers:
            return
        with trio.CancelScope() as scope:
            self._keepers[peer] = scope
            try:
                await self._keep_connected_loop(peer)
            finally:
                if self._keepers.get(peer) is scope:
                    del self._keepers[peer]

    async def _keep_connected_loop(self, peer: str) -> None:
        pid = self._allow.ids[peer]
        info = PeerInfo(pid, self._allow.addrs[peer])
        network: Any = self.host.get_network()
        backoff_s = limits.RECONNECT_BACKOFF_MIN_S
        while True:
            if self.is_connected(peer):
                backoff_s = limits.RECONNECT_BACKOFF_MIN_S
                await self._changed(peer).wait()
                continue
            self.peer_counts.dials += 1
            network.unblock_peer(pid)  # libp2p's negative cache would refuse for 60 s
            # Dial only the addresses the consortium gave (genesis or node.set). py-libp2p's
            # identify replaces a peer's addresses with the ones it advertises, which are its
            # *listen* addresses: behind NAT, a proxy or a load balancer those are private
            # and unreachable, and a redial to them fails until the node restarts (found by
            # the fault lab, ADR 0029).
            peerstore = self.host.get_peerstore()
            peerstore.clear_addrs(pid)
            peerstore.add_addrs(pid, info.addrs, 0)
            error = ""
            with trio.move_on_after(limits.DIAL_TIMEOUT_S) as scope:
                try:
                    await self.host.connect(info)
                except Exception as exc:  # counted and logged below, then back off
                    # Broad on purpose: what a dial raises depends on the remote end (TCP,
                    # Noise, multistream, yamux errors, not all BaseLibp2pError), and this
                    # loop must outlive any peer.
                    error = f"{type(exc).__name__}: {exc}"
            if scope.cancelled_caught:
                error = f"timed out after {limits.DIAL_TIMEOUT_S} s"
            if not error and self.is_connected(peer):
                continue
            self.peer_counts.dial_failures += 1
            wait_s = self._rng.uniform(backoff_s / 2, backoff_s)
            log.info("dial to %s failed (%s); next attempt in %.2f s", peer,
                     error or "no connection", wait_s)
            backoff_s = min(backoff_s * 2, limits.RECONNECT_BACKOFF_MAX_S)
            with trio.move_on_after(wait_s):
                # the peer may dial us meanwhile
                await self._changed(peer).wait()

    async def _on_connected(self, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id.to_base58()
        if not self.is_allowed(peer):  # unreachable while _AllowlistNoise gates; second lock
            self.peer_counts.refused += 1
            log.error("connection from %s outside the allowlist got past the handshake; "
                      "closing it", peer)
            with trio.move_on_after(limits.UPGRADE_TIMEOUT_S):
                await conn.close()
            return
        self.peer_counts.connected += 1
        log.info("connected to %s", peer)
        self.gossip.refresh_peer(conn.muxed_conn.peer_id)
        self._signal(peer)

    def _on_disconnected(self, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id.to_base58()
        if not self.is_allowed(peer):
            return
        self.peer_counts.disconnected += 1
        log.info("disconnected from %s", peer)
        self.gossip.refresh_peer(conn.muxed_conn.peer_id)
        self._signal(peer)


def _open(conns: Iterable[INetConn]) -> bool:
    return any(not c.is_closed for c in conns)


def _check_port_free(addr: multiaddr.Multiaddr) -> None:
    """py-libp2p listens with SO_REUSEPORT, so a second node (or a forgotten one) on the same
    port would silently share our inbound connections. Bind once without SO_REUSEPORT first:
    that fails if anyone listens there."""
    try:
        port = int(addr.value_for_protocol("tcp"))
        ip = str(addr.value_for_protocol("ip4"))
    except multiaddr.exceptions.ProtocolLookupError:
        return  # not /ip4/../tcp/..: nothing we can check
    if port == 0:
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
    except OSError as exc:
        raise P2PError(f"cannot listen on {addr}: {exc.strerror}") from None
    finally:
        sock.close()


async def _no_auto_connect() -> None:
    return None
