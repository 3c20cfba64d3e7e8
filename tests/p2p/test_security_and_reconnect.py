"""Allowlist gating, Noise only, and reconnection, against real foreign hosts."""

from __future__ import annotations

import pathlib
import socket
import subprocess
import sys

import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

from node.p2p.errors import NotRunning, P2PError, PeerNotAllowed, StreamFailed
from node.p2p.host import P2PNode
from node.p2p.identity import generate_seed, key_pair_from_seed, peer_id_from_seed
from tests.p2p.conftest import (
    ECHO,
    TX_TOPIC,
    addr_of,
    eventually,
    make_node,
    new_key,
    start,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peer_of(key) -> str:  # type: ignore[no-untyped-def]
    return ID.from_pubkey(key.public_key).to_base58()


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    async def handler(self, peer: str, data: bytes) -> bytes:
        self.calls += 1
        return data

    async def gossip(self, data: bytes, origin: str) -> None:
        self.calls += 1


def serving_node(allow: dict[str, list[str]], counter: Counter, key=None) -> P2PNode:  # type: ignore[no-untyped-def]
    node = make_node(key or new_key(), allow)
    node.register_handler(ECHO, counter.handler)
    node.subscribe(TX_TOPIC, lambda d, o: True, counter.gossip)
    return node


async def test_peer_outside_the_allowlist_is_refused_after_the_handshake(
        nursery: trio.Nursery) -> None:
    friend_key, foreign_key = new_key(), new_key()
    served = Counter()
    a = serving_node({peer_of(friend_key): []}, served)
    await start(nursery, a)
    # The foreign node allows us and dials us; it runs our own code, so it speaks Noise.
    foreign = make_node(foreign_key, {a.peer_id: addr_of(a)})
    foreign.subscribe(TX_TOPIC, lambda d, o: True, Counter().gossip)
    await start(nursery, foreign)
    await eventually(lambda: a.snapshot().peers.refused >= 1)
    with pytest.raises(StreamFailed):
        await foreign.request(a.peer_id, ECHO, b"let me in", timeout_s=5)
    # A refuses in the handshake, before any stream: the foreign node never learns a topic
    # peer, and a publication reaches only the topic peers known when it is published.
    assert foreign.topic_peers(TX_TOPIC) == set()
    await foreign.publish(TX_TOPIC, b"foreign gossip")
    assert served.calls == 0
    assert not a.host.get_network().get_connections(ID.from_base58(foreign.peer_id))
    assert a.connected_peers() == set()
    assert foreign.snapshot().peers.dial_failures >= 1


async def test_we_refuse_a_foreign_peer_behind_an_allowlisted_address(
        nursery: trio.Nursery) -> None:
    """The genesis file says peer X listens at an address where someone else answers."""
    served = Counter()
    impostor = serving_node({}, served)
    await start(nursery, impostor)
    a = make_node(new_key(), {peer_of(new_key()): addr_of(impostor)})
    await start(nursery, a)
    await eventually(lambda: a.snapshot().peers.dial_failures >= 1)
    assert a.connected_peers() == set() and served.calls == 0


def plaintext_host(key):  # type: ignore[no-untyped-def]
    return new_host(
        key_pair=key,
        sec_opt={TProtocol(PLAINTEXT_PROTOCOL_ID): InsecureTransport(key)},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")],
    )


async def test_plaintext_only_host_cannot_connect_either_way(nursery: trio.Nursery) -> None:
    allowed_key = new_key()  # allowlisted: only the security protocol differs
    served = Counter()
    host = plaintext_host(allowed_key)
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        plain_addrs = [str(x) for x in host.get_transport_addrs()]
        a = serving_node({peer_of(allowed_key): plain_addrs}, served)
        await start(nursery, a)
        info = PeerInfo(ID.from_base58(a.peer_id), [multiaddr.Multiaddr(x) for x in addr_of(a)])
        with trio.fail_after(15), pytest.raises(Exception):  # noqa: B017 - any failure
            await host.connect(info)
        await eventually(lambda: a.snapshot().peers.dial_failures >= 1)  # and we to it
        assert not host.get_network().get_connections(ID.from_base58(a.peer_id))
        assert a.connected_peers() == set() and served.calls == 0


async def test_reconnects_after_the_peer_restarts_on_the_same_port(nursery: trio.Nursery
                                                                   ) -> None:
    ka, kb = new_key(), new_key()
    served = Counter()
    a = serving_node({peer_of(kb): []}, served, key=ka)
    running_a = await start(nursery, a)
    port = int(multiaddr.Multiaddr(addr_of(a)[0]).value_for_protocol("tcp"))
    b = make_node(kb, {a.peer_id: addr_of(a)})
    await start(nursery, b)
    with trio.fail_after(10):
        await b.wait_connected(a.peer_id)
    assert await b.request(a.peer_id, ECHO, b"before", timeout_s=5) == b"before"

    await running_a.stop()  # closes connections and the listener before returning
    await eventually(lambda: not b.is_connected(a.peer_id))
    with pytest.raises(StreamFailed):  # nobody there: fails fast, does not hang
        await b.request(a.peer_id, ECHO, b"while down", timeout_s=5)

    a2 = make_node(ka, {peer_of(kb): []}, port=port)
    a2.register_handler(ECHO, served.handler)
    await start(nursery, a2)
    with trio.fail_after(20):
        await b.wait_connected(a.peer_id)
    assert await b.request(a.peer_id, ECHO, b"after", timeout_s=5) == b"after"
    assert b.snapshot().peers.disconnected >= 1 and b.snapshot().peers.connected >= 2
    with pytest.raises(P2PError, match="runs once"):
        await nursery.start(a.run)


async def test_local_misuse_fails_fast() -> None:
    friend = peer_of(new_key())
    node = make_node(new_key(), {friend: []})
    with pytest.raises(NotRunning):
        await node.request(friend, ECHO, b"x", timeout_s=1)
    with pytest.raises(PeerNotAllowed):
        await node.request(peer_of(new_key()), ECHO, b"x", timeout_s=1)
    with pytest.raises(ValueError):
        node.subscribe("/not/configured", lambda d, o: True, Counter().gossip)
    with pytest.raises(ValueError):
        make_node(new_key(), {"not-a-peer-id": []})


async def test_gossip_resumes_after_a_peer_restarts_with_the_same_key(nursery: trio.Nursery
                                                                      ) -> None:
    """The restarted peer publishes without subscribing (fanout): it must learn the others'
    subscriptions again, so they must have dropped the old pubsub stream and opened a new one."""
    keys = [new_key() for _ in range(3)]
    ids = [peer_of(k) for k in keys]
    got: list[list[bytes]] = [[], []]

    def subscriber(i: int, allow: dict[str, list[str]]) -> P2PNode:
        async def inbox(data: bytes, origin: str) -> None:
            got[i].append(data)

        n = make_node(keys[i], allow)
        n.subscribe(TX_TOPIC, lambda d, o: True, inbox)
        return n

    a = subscriber(0, {ids[1]: [], ids[2]: []})
    await start(nursery, a)
    b = subscriber(1, {ids[0]: addr_of(a), ids[2]: []})
    await start(nursery, b)
    allow_c = {ids[0]: addr_of(a), ids[1]: addr_of(b)}
    c = make_node(keys[2], allow_c)
    running_c = await start(nursery, c)
    await eventually(lambda: len(c.gossip.topic_peers(TX_TOPIC)) == 2)
    await c.publish(TX_TOPIC, b"before")
    await eventually(lambda: got == [[b"before"], [b"before"]])

    port = int(multiaddr.Multiaddr(addr_of(c)[0]).value_for_protocol("tcp"))
    await running_c.stop()
    await eventually(lambda: not a.is_connected(ids[2]) and not b.is_connected(ids[2]))
    c2 = make_node(keys[2], allow_c, port=port)
    await start(nursery, c2)
    await eventually(lambda: len(c2.gossip.topic_peers(TX_TOPIC)) == 2)
    await c2.publish(TX_TOPIC, b"after")
    await eventually(lambda: got == [[b"before", b"after"], [b"before", b"after"]])


async def test_gossip_resumes_after_a_peer_is_killed_and_replaced(nursery: trio.Nursery
                                                                  ) -> None:
    """kill -9 of a peer that both sides dialled (two connections), then a new process with its
    key on its port: we must send it our subscriptions again (py-libp2p keeps a stale pubsub
    registration otherwise, and the newcomer's publications reach nobody)."""
    seed = generate_seed()
    dead_id = peer_id_from_seed(seed)
    port = free_port()
    got: list[bytes] = []

    async def inbox(data: bytes, origin: str) -> None:
        got.append(data)

    a = make_node(new_key(), {dead_id: [f"/ip4/127.0.0.1/tcp/{port}"]})
    a.subscribe(TX_TOPIC, lambda d, o: True, inbox)
    await start(nursery, a)
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.p2p.child_node", seed.hex(), str(port), TX_TOPIC,
         f"{a.peer_id}={addr_of(a)[0]}"],
        stdout=subprocess.PIPE, cwd=str(pathlib.Path(__file__).resolve().parents[2]))
    try:
        assert proc.stdout is not None
        with trio.fail_after(20):
            assert (await proc.stdout.receive_some(100)).startswith(b"READY")
            await a.wait_connected(dead_id)
        await eventually(lambda: ID.from_base58(dead_id) in a.gossip.pubsub.peers)
    finally:
        proc.kill()  # SIGKILL: no goodbye on any connection
        await proc.wait()
    await eventually(lambda: not a.is_connected(dead_id))
    successor = make_node(key_pair_from_seed(seed), {a.peer_id: addr_of(a)}, port=port)
    await start(nursery, successor)
    await eventually(lambda: a.peer_id in successor.topic_peers(TX_TOPIC), timeout_s=15)
    await successor.publish(TX_TOPIC, b"from the successor")
    await eventually(lambda: got == [b"from the successor"])


async def test_allowlist_changes_at_runtime(nursery: trio.Nursery) -> None:
    """set_peers (the ledger's node.set): a peer taken off the list is disconnected and
    refused; a new one is admitted and dialled; a rotated identity replaces the old one."""
    a_key, b_key, c_key = new_key(), new_key(), new_key()
    served = Counter()
    a = serving_node({peer_of(b_key): []}, served, key=a_key)
    await start(nursery, a)
    b = make_node(b_key, {a.peer_id: addr_of(a)})
    await start(nursery, b)
    await eventually(lambda: a.peer_id in b.connected_peers())
    assert await b.request(a.peer_id, ECHO, b"hello", timeout_s=5) == b"hello"
    # b's identity is rotated to c: a drops b and takes c.
    a.set_peers({peer_of(c_key): []})
    await eventually(lambda: peer_of(b_key) not in a.connected_peers())
    assert not a.is_allowed(peer_of(b_key))
    with pytest.raises(P2PError):
        with trio.fail_after(5):
            await b.request(a.peer_id, ECHO, b"still there?", timeout_s=3)
    c = make_node(c_key, {a.peer_id: addr_of(a)})
    await start(nursery, c)
    await eventually(lambda: a.peer_id in c.connected_peers())
    assert await c.request(a.peer_id, ECHO, b"new me", timeout_s=5) == b"new me"
    # And a dials a peer added with an address.
    d_key = new_key()
    d = serving_node({a.peer_id: []}, Counter(), key=d_key)
    await start(nursery, d)
    a.set_peers({peer_of(c_key): [], peer_of(d_key): addr_of(d)})
    await eventually(lambda: peer_of(d_key) in a.connected_peers())
    with pytest.raises(ValueError):
        a.set_peers({"not-a-peer-id": []})
    assert a.is_allowed(peer_of(d_key))  # a refused update changes nothing


async def test_redials_the_configured_address_not_the_one_the_peer_advertised(
        nursery: trio.Nursery) -> None:
    """py-libp2p's identify replaces a peer's addresses with its advertised listen addresses;
    behind NAT or a proxy those are unreachable. After a disconnect the node must redial the
    address the consortium configured. Here the "advertised" address accepts TCP and never
    answers, as a private address reached by mistake would stall the dial."""
    ka, kb = new_key(), new_key()
    served = Counter()
    a = serving_node({peer_of(kb): []}, served, key=ka)
    await start(nursery, a)
    b = make_node(kb, {a.peer_id: addr_of(a)})
    await start(nursery, b)
    with trio.fail_after(10):
        await b.wait_connected(a.peer_id)

    silent = trio.socket.socket()
    await silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held: list[trio.socket.SocketType] = []
    accepting = trio.CancelScope()

    async def accept_and_say_nothing() -> None:
        with accepting:
            while True:
                conn, _ = await silent.accept()
                held.append(conn)

    nursery.start_soon(accept_and_say_nothing)
    port = silent.getsockname()[1]
    pid = ID.from_base58(a.peer_id)
    peerstore = b.host.get_peerstore()
    peerstore.clear_addrs(pid)  # what identify does with what the peer advertises
    peerstore.add_addrs(pid, [multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{port}")], 7200)
    await b.host.disconnect(pid)
    with trio.fail_after(20):
        await b.wait_connected(a.peer_id)
    assert await b.request(a.peer_id, ECHO, b"again", timeout_s=5) == b"again"
    accepting.cancel()
    await trio.sleep(0)
    silent.close()
    for conn in held:
        conn.close()
