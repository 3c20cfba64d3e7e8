"""`crossbill bench --ordering-only` (node/cli/bench_ordering.py): its client framing, figures and
options, and its Ready loop driving three Raft nodes over the in-memory network on virtual time
(the multi-process run is tests/node/test_bench_ordering_run.py)."""

from __future__ import annotations

import argparse
import pathlib
import random
import struct

import pytest
import trio
import trio.testing

from node.cli import bench, bench_ordering
from node.cli import main as cli
from node.cli.bench_ordering import (
    ANSWER,
    FRAME_BYTES_MAX,
    NOT_LEADER,
    OK,
    PROPOSE,
    FrameDecoder,
    OrderingServer,
    Sample,
    encode_frame,
    entry_payload,
    figures_of,
)
from node.p2p import network as net
from node.storage.store import Storage
from tests.node.memnet import MemNet
from tests.waiting import wait_until


def test_frames_survive_any_split_of_the_stream() -> None:
    frames = [(PROPOSE, 1, b"a" * 400), (b"S", 2, b""), (ANSWER, 2**64 - 1, bytes([OK]))]
    stream = b"".join(encode_frame(*f) for f in frames)
    for chunk in (1, 3, 7, len(stream)):
        decoder = FrameDecoder()
        got = [f for i in range(0, len(stream), chunk) for f in decoder.feed(stream[i:i + chunk])]
        assert got == frames


def test_a_frame_outside_the_bounds_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_frame(PROPOSE, 1, b"x" * FRAME_BYTES_MAX)
    for size in (FRAME_BYTES_MAX + 1, 3):
        with pytest.raises(ValueError):
            list(FrameDecoder().feed(struct.pack(">I", size) + b"P" * 16))


def test_entries_have_their_size_and_are_unique() -> None:
    entries = {entry_payload(c, s, 400) for c in range(3) for s in range(50)}
    assert len(entries) == 150 and {len(e) for e in entries} == {400}
    with pytest.raises(ValueError):
        entry_payload(0, 0, 8)


def test_figures_count_what_was_committed_in_the_window() -> None:
    # 100 entries committed in [10, 20): latencies 1..100 ms; two outside the window.
    done = [(10 + i * 0.1 - (i + 1) / 1000, 10 + i * 0.1) for i in range(100)]
    sample = Sample(done=done + [(9.0, 9.5), (19.9, 20.5)], submitted=102)
    fig = figures_of(sample, 10.0, 20.0)
    assert fig["committed_tps"] == 10.0 and fig["committed_in_window"] == 100
    assert (fig["latency_p50_ms"], fig["latency_p95_ms"], fig["latency_p99_ms"]) == (51, 96, 100)
    assert figures_of(Sample(), 0.0, 1.0)["latency_p99_ms"] is None


def test_options_parse_and_defaults_per_mode() -> None:
    args = cli.build_parser().parse_args(["bench", "--ordering-only", "--entry-bytes", "100"])
    assert args.ordering_only and args.entry_bytes == 100
    assert (args.nodes, args.clients) == (None, None)  # each mode fills its own defaults
    plain = cli.build_parser().parse_args(["bench"])
    assert not plain.ordering_only and plain.entry_bytes == 400
    for bad in ({"nodes": 0}, {"clients": 0}, {"entry_bytes": 8}, {"duration_s": 0}):
        values = {"nodes": 3, "clients": 64, "entry_bytes": 400, "duration_s": 1.0} | bad
        with pytest.raises(bench_ordering.OrderingBenchError):
            bench_ordering.check_args(**values)  # type: ignore[arg-type]
    for bad_args in ({"nodes": (9, 0)}, {"rate": 100.0}):
        with pytest.raises(bench_ordering.OrderingBenchError):
            bench.main(argparse.Namespace(**vars(args) | bad_args))


async def test_three_nodes_commit_every_entry_of_closed_loop_clients(
        tmp_path: pathlib.Path, mock_clock: trio.testing.MockClock) -> None:
    # Virtual time that jumps only after 50 ms of real idleness: a synced write under way (in
    # this thread or a worker thread) must not let elections and deadlines fire meanwhile.
    mock_clock.autojump_threshold = 0.05
    memnet = MemNet()
    ids = (1, 2, 3)
    peer = {i: f"peer{i}" for i in ids}
    stores = [Storage.open(tmp_path / f"n{i}", chain_id="c", genesis_hash=bytes(32))
              for i in ids]
    servers = []
    async with trio.open_nursery() as nursery:
        for i, store in zip(ids, stores, strict=True):
            host = memnet.host(peer[i])
            server = OrderingServer(
                node_id=i, voters=ids, peer_of_raft={j: peer[j] for j in ids if j != i},
                storage=store, network=host, tick_s=0.05, election_ticks=20,
                heartbeat_ticks=2, log_keep_entries=20, rng=random.Random(i))
            host.register_handler(net.PROTO_RAFT, server.on_raft_message)
            await nursery.start(host.run)
            await nursery.start(server.run)
            servers.append(server)
        links = []
        for server in servers:
            near, far = trio.testing.memory_stream_pair()
            nursery.start_soon(server.serve_client, far)
            link = bench_ordering._Link(near)  # type: ignore[arg-type]
            nursery.start_soon(link.reader)
            links.append(link)
        load = bench_ordering._Load(links)
        leader = await load.find_leader(30)
        follower = next(i for i in range(3) if i != leader)
        answer = await links[follower].call(PROPOSE, entry_payload(99, 0, 64), 5)
        assert answer[0] == NOT_LEADER and int.from_bytes(answer[1:9], "big") == leader + 1

        load.entries_max = 120  # a busy cluster never lets virtual time run: count, not time
        with trio.fail_after(60):
            async with trio.open_nursery() as clients:
                for k in range(4):
                    clients.start_soon(load.client, k, 64)
        sample = load.sample
        assert sample.errors == 0 and sample.submitted == len(sample.done) == 120
        await wait_until(lambda: len({s.raft.applied_index for s in servers}) == 1, 10,
                         what=lambda: [s.raft.applied_index for s in servers])
        stats = servers[leader].stats
        assert stats["answered_ok"] == len(sample.done)
        assert stats["entries_persisted"] >= 120 and stats["answered_not_leader"] == 0
        assert all(s.stats["compactions"] > 0 for s in servers)  # the log stays bounded
        assert all(s.raft.log.last_index() - s.raft.log.first_index() < 200 for s in servers)
        nursery.cancel_scope.cancel()
    for store in stores:
        store.close()
