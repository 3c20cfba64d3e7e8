"""Request/response between real hosts on 127.0.0.1: one long-lived stream, ids, deadlines."""

from __future__ import annotations

import random

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from node.p2p import limits
from node.p2p.errors import PayloadTooLarge, RemoteError, RequestTimeout, StreamFailed
from node.p2p.host import P2PNode
from tests.p2p.conftest import ECHO, addr_of, eventually, make_node, new_key, start

SLOW = "/crossbill/test/slow/1"
FAIL = "/crossbill/test/fail/1"
ONEWAY = "/crossbill/test/oneway/1"


def pid(node: P2PNode) -> str:
    return node.peer_id


async def pair(nursery: trio.Nursery, server_setup=None) -> tuple[P2PNode, P2PNode]:  # type: ignore[no-untyped-def]
    """Server A (dialled) and client B (dials A), connected."""
    ka, kb = new_key(), new_key()
    pb = ID.from_pubkey(kb.public_key).to_base58()
    a = make_node(ka, {pb: []})

    async def echo(peer: str, data: bytes) -> bytes:
        return data

    a.register_handler(ECHO, echo)
    if server_setup is not None:
        server_setup(a)
    await start(nursery, a)
    b = make_node(kb, {a.peer_id: addr_of(a)})
    await start(nursery, b)
    with trio.fail_after(10):
        await b.wait_connected(a.peer_id)
    return a, b


async def test_round_trip_and_stream_reuse(nursery: trio.Nursery) -> None:
    a, b = await pair(nursery)
    assert await b.request(a.peer_id, ECHO, b"hello", timeout_s=5) == b"hello"
    assert await b.request(a.peer_id, ECHO, b"", timeout_s=5) == b""
    for i in range(20):
        assert await b.request(a.peer_id, ECHO, b"%d" % i, timeout_s=5) == b"%d" % i
    assert b.snapshot().reqresp[ECHO].streams_opened == 1
    assert a.snapshot().reqresp[ECHO].streams_accepted == 1
    for conn in b.host.get_network().get_connections(ID.from_base58(a.peer_id)):
        assert conn.get_negotiated_security_protocol() == "/noise"  # type: ignore[attr-defined]


async def test_concurrent_requests_on_one_stream_are_matched_by_id(nursery: trio.Nursery
                                                                   ) -> None:
    parked: list[trio.Event] = []

    async def swapping(peer: str, data: bytes) -> bytes:
        """Answers come back out of order: the first of each pair of requests in the handler
        waits for the second, which answers first and then lets it go."""
        if parked:
            parked.pop().set()
        else:
            parked.append(trio.Event())
            await parked[-1].wait()
        return data[::-1]

    a, b = await pair(nursery, lambda n: n.register_handler(SLOW, swapping))
    results: dict[int, bytes] = {}

    async def one(i: int) -> None:
        results[i] = await b.request(a.peer_id, SLOW, b"req-%03d" % i, timeout_s=10)

    async with trio.open_nursery() as n:
        for i in range(60):
            n.start_soon(one, i)
    assert results == {i: (b"req-%03d" % i)[::-1] for i in range(60)}
    assert b.snapshot().reqresp[SLOW].streams_opened == 1


async def test_one_megabyte_payloads_both_ways(nursery: trio.Nursery) -> None:
    a, b = await pair(nursery)
    payload = random.Random(2).randbytes(1024 * 1024)
    assert await b.request(a.peer_id, ECHO, payload, timeout_s=20) == payload
    big = bytes(limits.FRAME_PAYLOAD_BYTES_MAX)
    assert await b.request(a.peer_id, ECHO, big, timeout_s=30) == big
    with pytest.raises(PayloadTooLarge):
        await b.request(a.peer_id, ECHO, big + b"x", timeout_s=5)


async def test_handler_error_reaches_the_caller_and_stream_survives(nursery: trio.Nursery
                                                                    ) -> None:
    async def failing(peer: str, data: bytes) -> bytes:
        if data == b"bad":
            raise ValueError("height 7 is beyond our tip")
        return b"ok"

    a, b = await pair(nursery, lambda n: n.register_handler(FAIL, failing))
    with pytest.raises(RemoteError, match="ValueError: height 7 is beyond our tip"):
        await b.request(a.peer_id, FAIL, b"bad", timeout_s=5)
    assert await b.request(a.peer_id, FAIL, b"good", timeout_s=5) == b"ok"
    assert b.snapshot().reqresp[FAIL].streams_opened == 1
    assert a.snapshot().reqresp[FAIL].handler_errors == 1


async def test_deadline_resets_stream_and_late_reply_never_answers_next(nursery: trio.Nursery
                                                                        ) -> None:
    release = trio.Event()

    async def stuck_first(peer: str, data: bytes) -> bytes:
        if data == b"first":
            await release.wait()  # a frozen peer: never answers in time
            return b"late reply to first"
        return b"reply to " + data

    a, b = await pair(nursery, lambda n: n.register_handler(SLOW, stuck_first))
    with trio.fail_after(5):
        with pytest.raises(RequestTimeout):
            await b.request(a.peer_id, SLOW, b"first", timeout_s=0.3)
    release.set()
    assert await b.request(a.peer_id, SLOW, b"second", timeout_s=5) == b"reply to second"
    stats = b.snapshot().reqresp[SLOW]
    assert stats.timeouts == 1 and stats.streams_opened == 2


async def test_timeout_fails_every_request_pending_on_the_stream(nursery: trio.Nursery
                                                                 ) -> None:
    async def never(peer: str, data: bytes) -> bytes:
        await trio.sleep_forever()
        raise AssertionError

    a, b = await pair(nursery, lambda n: n.register_handler(SLOW, never))
    outcomes: list[type[BaseException]] = []

    async def one(timeout_s: float) -> None:
        try:
            await b.request(a.peer_id, SLOW, b"x", timeout_s=timeout_s)
        except StreamFailed as exc:
            outcomes.append(type(exc))

    # The connection first (TCP, Noise, yamux): on a busy machine its set-up alone can take
    # longer than the short timeout, which then fires before the second request shares the
    # stream.
    assert await b.request(a.peer_id, ECHO, b"warm", timeout_s=10) == b"warm"
    with trio.fail_after(10):
        async with trio.open_nursery() as n:
            n.start_soon(one, 1.0)
            n.start_soon(one, 8.0)
    assert sorted(o.__name__ for o in outcomes) == ["RequestTimeout", "StreamFailed"]


async def test_oversize_and_garbage_frames_close_only_that_stream(nursery: trio.Nursery
                                                                  ) -> None:
    a, b = await pair(nursery)
    for junk in (
        (limits.FRAME_BODY_BYTES_MAX + 1).to_bytes(4, "big") + b"\x01" + bytes(8),
        (9).to_bytes(4, "big") + b"\x07" + bytes(8),  # unknown kind
        (9).to_bytes(4, "big") + b"\x02" + bytes(8),  # a RESPONSE sent to a server
    ):
        raw = await b.host.new_stream(ID.from_base58(a.peer_id), [TProtocol(ECHO)])
        await raw.write(junk)
        with trio.fail_after(5):
            with pytest.raises(Exception):  # noqa: B017 - reset or EOF, both mean closed
                while True:
                    if not await raw.read(1024):
                        raise EOFError
    await eventually(lambda: a.snapshot().reqresp[ECHO].frames_refused == 3)
    assert await b.request(a.peer_id, ECHO, b"still serving", timeout_s=5) == b"still serving"


async def test_one_way_messages_arrive_in_order(nursery: trio.Nursery) -> None:
    got: list[bytes] = []

    async def record(peer: str, data: bytes) -> None:
        got.append(data)

    a, b = await pair(nursery, lambda n: n.register_handler(ONEWAY, record))
    for i in range(100):
        await b.send(a.peer_id, ONEWAY, b"%d" % i)
    await eventually(lambda: len(got) == 100)
    assert got == [b"%d" % i for i in range(100)]


async def test_requests_in_both_directions_share_nothing(nursery: trio.Nursery) -> None:
    a, b = await pair(nursery)

    async def echo(peer: str, data: bytes) -> bytes:
        return b"b:" + data

    b.register_handler("/crossbill/test/echo-b/1", echo)
    assert await a.request(b.peer_id, "/crossbill/test/echo-b/1", b"x", timeout_s=5) == b"b:x"
    assert await b.request(a.peer_id, ECHO, b"y", timeout_s=5) == b"y"


async def test_handler_deadline_and_unknown_protocol(nursery: trio.Nursery,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "HANDLER_TIMEOUT_S", 0.2)

    async def sluggish(peer: str, data: bytes) -> bytes:
        await trio.sleep_forever()  # past any deadline
        raise AssertionError

    a, b = await pair(nursery, lambda n: n.register_handler(SLOW, sluggish))
    with pytest.raises(RemoteError, match="handler timed out"):
        await b.request(a.peer_id, SLOW, b"x", timeout_s=5)
    with pytest.raises(StreamFailed):  # A never registered it: negotiation fails
        await b.request(a.peer_id, "/crossbill/test/unknown/1", b"x", timeout_s=5)
    assert await b.request(a.peer_id, ECHO, b"fine", timeout_s=5) == b"fine"
