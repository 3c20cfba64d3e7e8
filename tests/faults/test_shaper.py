"""The fault lab's link shaper (tests/faults/shaper.py), as a real process on loopback.

Three "nodes" a, b, c dial from their own loopback addresses (127.0.0.21-23: a client binds its
socket to its node's address before connecting, so the shaper tells them apart by source IP);
each node's route leads to one echo server standing in for the node. One shaper process serves
the whole module (its rules are cleared before each test); one test starts its own to check
the process's lifecycle.
"""

from __future__ import annotations

import os
import pathlib
import random
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults.shaper import (
    SHAPER_RTO_DOUBLINGS_MAX,
    Link,
    Route,
    Rules,
    Shaper,
    ShaperError,
)
from tests.waiting import wait_until_sync

SOURCES = {"127.0.0.21": "a", "127.0.0.22": "b", "127.0.0.23": "c"}
ADDRESS = {name: ip for ip, name in SOURCES.items()}
STRANGER = "127.0.0.99"     # not in SOURCES: forwarded unshaped
REPLY_TIMEOUT_S = 5.0
# The one "nothing arrives" wait of these tests: a cut link must hold the echo this long.
STALL_CHECK_S = 0.5
# Timing is asserted as a lower bound only, with this much slack for timer rounding.
TOLERANCE_S = 0.005


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: EchoServer = self.server  # type: ignore[assignment]
        with server.lock:
            server.accepted += 1
        sock: socket.socket = self.request
        try:
            while data := sock.recv(65536):
                sock.sendall(data)
        except OSError:
            pass


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.lock = threading.Lock()
        self.accepted = 0


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def routes_to(echo: EchoServer) -> list[Route]:
    port = echo.server_address[1]
    return [Route(name, "127.0.0.1", 0, "127.0.0.1", port) for name in ("a", "b", "c")]


@pytest.fixture(scope="module")
def module_shaper(echo: EchoServer, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Shaper]:
    with Shaper.start(routes_to(echo), SOURCES, seed=7,
                      workdir=tmp_path_factory.mktemp("shaper")) as shaper:
        yield shaper


@pytest.fixture
def shaper(module_shaper: Shaper) -> Shaper:
    """The module's shaper, without rules and with no connection left from a test before."""
    module_shaper.clear()

    def idle() -> bool:
        stats = module_shaper.stats()
        return stats["unshaped"]["connections"] == 0 and not any(
            link["connections"] for link in stats["links"].values())

    wait_until_sync(idle, 5, what="the connections of earlier tests closed")
    return module_shaper


def delta(before: dict[str, Any], after: dict[str, Any], name: str, counter: str) -> int:
    return int(after["links"][name][counter] - before["links"][name][counter])


def dial(shaper: Shaper, src: str, dst: str) -> socket.socket:
    """A connection from node `src` (or a raw IP) to node `dst` through the shaper."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((ADDRESS.get(src, src), 0))
    sock.settimeout(REPLY_TIMEOUT_S)
    sock.connect(shaper.address(dst))
    return sock


def recv_exactly(sock: socket.socket, n: int, timeout_s: float = REPLY_TIMEOUT_S) -> bytes:
    sock.settimeout(timeout_s)
    data = bytearray()
    while len(data) < n:
        more = sock.recv(min(65536, n - len(data)))
        if not more:
            raise EOFError(f"EOF after {len(data)} of {n} bytes")
        data.extend(more)
    return bytes(data)


def round_trip_s(sock: socket.socket, message: bytes = b"ping") -> float:
    started = time.monotonic()
    sock.sendall(message)
    assert recv_exactly(sock, len(message)) == message
    return time.monotonic() - started


def assert_stalled(sock: socket.socket) -> None:
    """Nothing arrives on `sock` within STALL_CHECK_S (a cut link holds it)."""
    sock.settimeout(STALL_CHECK_S)
    with pytest.raises(TimeoutError):
        got = sock.recv(1)
        raise AssertionError(f"received {got!r} through a cut link")


def link(shaper: Shaper, src: str, dst: str) -> dict[str, Any]:
    return shaper.link_stats(src, dst)


# --- the rules, in process ---------------------------------------------------------------

def test_release_times_are_seeded_ordered_and_loss_doubles_a_capped_rto() -> None:
    def times(seed: str, rules: Rules, n: int) -> list[float]:
        one = Link("a->b", random.Random(seed), rules)
        out, previous = [], 0.0
        for i in range(n):
            previous = one.release_time(i * 0.001, 100, previous)
            out.append(previous)
        return out

    jittery = Rules(delay_ms=50, jitter_ms=40, loss=0.3, rto_ms=20)
    first = times("7:a->b", jittery, 200)
    assert first == times("7:a->b", jittery, 200)            # same seed, same schedule
    assert first != times("8:a->b", jittery, 200)
    assert first == sorted(first)                            # never reordered
    assert all(t >= i * 0.001 + 0.010 for i, t in enumerate(first))  # delay - jitter

    lost = times("s", Rules(loss=1.0, rto_ms=100), 6)
    waits = [round(t - i * 0.001, 6) for i, t in enumerate(lost)]
    cap = 0.1 * 2 ** SHAPER_RTO_DOUBLINGS_MAX
    assert waits == [0.1, 0.2, 0.4, cap, cap, cap]

    narrow = times("s", Rules(bandwidth_bytes_s=1000), 3)   # 100 bytes occupy 0.1 s each
    assert [round(t, 6) for t in narrow] == [0.1, 0.2, 0.3]


def test_bad_rules_are_refused() -> None:
    bads: list[object] = [{"loss": 2}, {"delay_ms": -1}, {"delay_ms": "5"}, {"cut": 1},
                          {"delay_ms": float("nan")}, {"latency": 5}, {"delay_ms": True}, []]
    for bad in bads:
        with pytest.raises(ValueError):
            Rules.parse(bad)
    assert Rules.parse({}) == Rules()


# --- the process -------------------------------------------------------------------------

def test_bytes_pass_unchanged_and_in_order_under_delay_jitter_and_loss(shaper: Shaper) -> None:
    shaper.set_both("a", "b", delay_ms=5, jitter_ms=5, loss=0.2, rto_ms=10)
    payload = os.urandom(2 * 1024 * 1024)
    before = shaper.stats()
    with dial(shaper, "a", "b") as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        echoed = recv_exactly(sock, len(payload), timeout_s=30)
        sender.join()
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""      # the half-close went through both ways
    assert echoed == payload
    stats = wait_until_sync(lambda: (s := shaper.stats())["links"]["a->b"]["connections"] == 0
                            and s, 5, what="the connection closed")
    assert delta(before, stats, "a->b", "bytes") == len(payload)
    assert delta(before, stats, "b->a", "bytes") == len(payload)
    assert delta(before, stats, "a->b", "dialed") == 1
    assert delta(before, stats, "b->a", "dialed") == 0
    assert stats["links"]["a->b"]["rules"]["jitter_ms"] == 5


def test_a_delay_per_direction_adds_twice_to_the_round_trip(shaper: Shaper) -> None:
    with dial(shaper, "a", "b") as sock:
        round_trip_s(sock)
        shaper.set_both("a", "b", delay_ms=100)
        assert round_trip_s(sock) >= 0.2 - TOLERANCE_S
        shaper.set_link("a", "b", delay_ms=100)     # b->a back to no delay
        assert round_trip_s(sock) >= 0.1 - TOLERANCE_S


def test_loss_holds_a_chunk_a_retransmission_timeout(shaper: Shaper) -> None:
    shaper.set_link("b", "a", loss=1.0, rto_ms=80)
    with dial(shaper, "a", "b") as sock:
        assert round_trip_s(sock) >= 0.08 - TOLERANCE_S


def test_bandwidth_spreads_the_bytes(shaper: Shaper) -> None:
    shaper.set_link("a", "b", bandwidth_bytes_s=200_000)
    payload = os.urandom(100_000)
    with dial(shaper, "a", "b") as sock:
        started = time.monotonic()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        assert time.monotonic() - started >= 0.5 - TOLERANCE_S


@pytest.mark.parametrize("cut", [("a", "b"), ("b", "a")], ids=["request-cut", "reply-cut"])
def test_a_cut_direction_stalls_and_the_connection_continues_after_heal(
        shaper: Shaper, cut: tuple[str, str]) -> None:
    with dial(shaper, "a", "b") as sock:
        round_trip_s(sock)
        shaper.cut(*cut)
        assert link(shaper, *cut)["rules"]["cut"] is True
        sock.sendall(b"held")
        assert_stalled(sock)
        shaper.heal()
        assert recv_exactly(sock, 4) == b"held"
        round_trip_s(sock, b"and on")
        assert link(shaper, "a", "b")["connections"] == 1


def test_a_new_connection_during_a_cut_waits_for_the_heal(shaper: Shaper,
                                                          echo: EchoServer) -> None:
    shaper.cut("b", "a")    # either direction cut holds the upstream connect
    before = echo.accepted
    with dial(shaper, "a", "b") as sock:    # accepted by the shaper...
        sock.sendall(b"early")
        assert_stalled(sock)
        assert echo.accepted == before      # ...but not connected upstream
        shaper.heal()
        assert recv_exactly(sock, 5) == b"early"    # what it sent meanwhile is kept
        assert echo.accepted == before + 1
    wait_until_sync(lambda: link(shaper, "a", "b")["connections"] == 0, 5,
                    what="the first connection closed")

    # a client that gives up while cut is dropped without an upstream connection
    shaper.partition(["a"], ["b"])
    with dial(shaper, "a", "b"):
        wait_until_sync(lambda: link(shaper, "a", "b")["connections"] == 1, 5,
                        what="the shaper holding the connection")
    wait_until_sync(lambda: link(shaper, "a", "b")["connections"] == 0, 5,
                    what="the closed connection dropped")
    shaper.heal()
    with dial(shaper, "a", "b") as sock:
        round_trip_s(sock)
    assert echo.accepted == before + 2


def test_reset_closes_every_connection_between_the_pair_and_counts_them(
        shaper: Shaper) -> None:
    before = shaper.stats()
    ab, ba, ac = dial(shaper, "a", "b"), dial(shaper, "b", "a"), dial(shaper, "a", "c")
    try:
        for sock in (ab, ba, ac):
            round_trip_s(sock)
        assert shaper.reset("a", "b") == 2
        for sock in (ab, ba):
            sock.settimeout(REPLY_TIMEOUT_S)
            try:
                assert sock.recv(1) == b""
            except ConnectionResetError:
                pass
        round_trip_s(ac)        # another pair's connection is untouched
    finally:
        for sock in (ab, ba, ac):
            sock.close()
    stats = wait_until_sync(lambda: (s := shaper.stats())["links"]["a->b"]["connections"] == 0
                            and s, 5, what="the reset connections gone")
    assert delta(before, stats, "a->b", "resets") == 2
    assert delta(before, stats, "b->a", "resets") == 2
    assert delta(before, stats, "a->c", "resets") == 0
    assert shaper.reset("a", "b") == 0


def test_a_client_that_resets_mid_transfer_does_not_hurt_the_shaper(shaper: Shaper) -> None:
    shaper.set_both("a", "b", delay_ms=50)
    sock = dial(shaper, "a", "b")
    sock.sendall(os.urandom(200_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()    # an RST while the shaper holds delayed bytes for it
    wait_until_sync(lambda: link(shaper, "a", "b")["connections"] == 0, 5,
                    what="the broken connection closed")
    with dial(shaper, "a", "b") as again:
        round_trip_s(again)


def test_partition_groups_and_a_bridge_node(shaper: Shaper) -> None:
    shaper.set_both("a", "c", delay_ms=1)
    shaper.partition(["a"], ["b"])      # c is in no group: a bridge between a and b

    def cuts() -> dict[str, bool]:
        return {name: s["rules"]["cut"] for name, s in shaper.stats()["links"].items()}

    assert cuts() == {"a->b": True, "b->a": True, "a->c": False, "c->a": False,
                      "b->c": False, "c->b": False}
    with dial(shaper, "a", "c") as sock:
        round_trip_s(sock)                  # through the bridge
    with dial(shaper, "c", "b") as sock:
        round_trip_s(sock)

    shaper.isolate("c")                     # a partition replaces the previous one
    assert cuts() == {"a->b": False, "b->a": False, "a->c": True, "c->a": True,
                      "b->c": True, "c->b": True}
    shaper.partition(["a", "b"], ["c"])
    assert cuts() == {"a->b": False, "b->a": False, "a->c": True, "c->a": True,
                      "b->c": True, "c->b": True}
    shaper.heal()
    assert not any(cuts().values())
    assert link(shaper, "a", "c")["rules"]["delay_ms"] == 1   # heal keeps the delays
    shaper.clear()
    assert link(shaper, "a", "c")["rules"]["delay_ms"] == 0


def test_an_unknown_source_is_forwarded_unshaped(shaper: Shaper) -> None:
    shaper.isolate("b")
    before = shaper.stats()["unshaped"]
    with dial(shaper, STRANGER, "b") as sock:
        round_trip_s(sock, b"x" * 1000)
    after = wait_until_sync(lambda: (u := shaper.stats()["unshaped"])["connections"] == 0
                            and u, 5, what="the unshaped connection closed")
    assert after["dialed"] == before["dialed"] + 1
    assert after["bytes"] == before["bytes"] + 2000


def test_bad_control_requests_answer_an_error_and_change_nothing(shaper: Shaper) -> None:
    shaper.set_link("a", "b", delay_ms=30)

    def rules() -> dict[str, Any]:      # (counters may still move: connections closing)
        return {name: s["rules"] for name, s in shaper.stats()["links"].items()}

    before = rules()
    assert before["a->b"]["delay_ms"] == 30
    bad: list[dict[str, Any]] = [
        {"op": "explode"}, {}, {"op": "set", "src": "a"},
        {"op": "set", "src": "a", "dst": "zz", "rules": {}},
        {"op": "set", "src": "a", "dst": "a", "rules": {}},
        {"op": "set", "src": "a", "dst": "b", "rules": {"loss": 1.5}},
        {"op": "set", "src": "a", "dst": "b", "rules": {"latency_ms": 5}},
        {"op": "set", "src": "a", "dst": "b", "rules": "fast"},
        {"op": "cut", "src": "a", "dst": "b", "cut": "yes"},
        {"op": "partition", "groups": [["a"], ["a", "b"]]},
        {"op": "partition", "groups": [["a"], ["nobody"]]},
        {"op": "partition", "groups": "a,b"},
        {"op": "reset", "a": "a"},
    ]
    for request in bad:
        with pytest.raises(ShaperError):
            shaper.request(request)
    for line in (b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 50_000):
        assert "error" in shaper.request_raw(line)
    assert rules() == before
    assert shaper.request({"op": "ping"})["ok"] is True


def test_the_process_is_gone_after_the_context_manager(echo: EchoServer,
                                                       tmp_path: pathlib.Path) -> None:
    with socket.socket() as closed:     # a port nothing listens on: a node that is down
        closed.bind(("127.0.0.1", 0))
        down = closed.getsockname()[1]
    routes = [*routes_to(echo)[:1], Route("c", "127.0.0.1", 0, "127.0.0.1", down)]
    with Shaper.start(routes, SOURCES, seed=1, workdir=tmp_path) as shaper:
        process, address = shaper.process, shaper.address("a")
        with dial(shaper, "b", "a") as sock:
            round_trip_s(sock)
        # The shaper resets it (the node is down): during the connect already, or at the first
        # exchange, as the machine's load orders its accept and its failed dial.
        with pytest.raises(ConnectionResetError), dial(shaper, "b", "c") as sock:
            sock.sendall(b"anyone?")
            sock.recv(1)
        assert process.poll() is None
    assert process.poll() is not None
    assert not shaper.control_path.exists()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(address, timeout=5):
        pass
    assert (tmp_path / "shaper.log").read_text().count("shaper up") == 1
