"""The intake shell (node/replica/intake.py) against fake leaders on the in-memory network, on
trio's virtual clock (`autojump_clock`): a pause of minutes costs nothing, and every timer due
before a moment has fired by then. Absence is shown by when things happen, not by waiting to
see nothing: the next send of a transaction is awaited and its time compared."""

from __future__ import annotations

import dataclasses
import itertools
import os
import pathlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from node.cli.demo import build_consortium
from node.p2p import network as net
from node.replica import intake as intake_mod
from node.replica import messages as wire
from node.replica.chain import Chain
from node.replica.intake import IntakeSnapshot, TxIntake
from node.replica.mempool import Mempool
from node.storage.store import Storage
from protocol import codec, crypto, limits, types
from protocol.replica.forwarding import HELD_HERE, Forwarding
from tests import sealing
from tests.dates import RECENT_EXPORT_DATE
from tests.node.memnet import MemNet
from tests.waiting import wait_until

CHECK_S = limits.REFORWARD_CHECK_MS / 1000
REFUSED_S = limits.REFORWARD_REFUSED_MS / 1000
AFTER_S = limits.REFORWARD_AFTER_MS / 1000
BATCH_S = 0.005  # the intake's batch interval below
# A re-send leaves at the first round of the re-forward loop past its due time, then waits
# for the batch interval: at most this much later.
LATE_S = CHECK_S + BATCH_S + 0.001


class FakeLeaders:
    """Orderers that record when (trio's clock) each forwarded transaction reached them and
    answer every one with `code`."""

    def __init__(self, memnet: MemNet, names: tuple[str, ...]) -> None:
        self.got: dict[str, list[tuple[bytes, float]]] = {n: [] for n in names}
        self.code = "OK"
        self._arrived = trio.Event()
        for name in names:
            memnet.host(name).register_handler(net.PROTO_TXS, self._handler(name))

    def _handler(self, name: str) -> Callable[[str, bytes], object]:
        async def on_txs(peer: str, payload: bytes) -> bytes:
            ids = [types.Tx.decode(b).id for b in wire.unpack_blobs(payload, items_max=100)]
            self.got[name] += [(i, trio.current_time()) for i in ids]
            self._arrived.set()
            self._arrived = trio.Event()
            return codec.encode(wire.TxAcks(tuple(wire.TxAck(i, self.code, "") for i in ids)))
        return on_txs

    def times(self, name: str, tx_id: bytes) -> list[float]:
        return [at for i, at in self.got[name] if i == tx_id]

    async def until(self, name: str, tx_id: bytes, count: int, timeout_s: float) -> float:
        """Wait for the `count`-th arrival of `tx_id` at `name`; its time."""
        with trio.fail_after(timeout_s):
            while len(self.times(name, tx_id)) < count:
                await self._arrived.wait()
        return self.times(name, tx_id)[count - 1]


@dataclasses.dataclass
class Setup:
    intake: TxIntake
    leaders: FakeLeaders
    config: types.ConsortiumConfig
    keys: dict[str, crypto.PrivateKey]

    def tx(self, expires_in_ms: int = 600_000) -> types.Tx:
        payload = sealing.declaration(self.config, f"IN-{os.urandom(4).hex()}",
                                      sealing.KEYLESS_EXPORTER, 1_000_000, RECENT_EXPORT_DATE)
        return types.Tx.create(self.keys["customs.qd"], chain_id=self.config.chain_id,
                               signer="customs.qd", payload=payload, nonce=os.urandom(16),
                               expires_at_ms=int(time.time() * 1000) + expires_in_ms)

    def commit(self, tx: types.Tx) -> None:
        """What the node does when a block carrying `tx` is applied."""
        header = types.BlockHeader(self.config.chain_id, 1, b"\x00" * 32, 1, b"\x00" * 32,
                                   b"\x00" * 32, b"\x00" * 32, 0, "bank.boc-qd", b"\x00" * 8,
                                   1, 1)
        self.intake.block_applied(types.Block(header=header, txs=(tx,), signature=bytes(64)))


@asynccontextmanager
async def intake_on_memnet(tmp_path: pathlib.Path, forward_peers: Callable[[], list[str]],
                           mempool: Mempool | None = None, run: bool = True,
                           built: tuple[types.ConsortiumConfig, dict[str, crypto.PrivateKey]]
                           | None = None) -> AsyncIterator[Setup]:
    """One intake on its own store in `tmp_path / "db"`; `built` (a consortium and its keys)
    lets a second intake reopen that store, as the node does after a restart."""
    config, keys = built or build_consortium("crossbill-test", int(time.time() * 1000) - 1000)
    storage = Storage.open(tmp_path / "db", chain_id=config.chain_id, genesis_hash=config.hash)
    memnet = MemNet()
    leaders = FakeLeaders(memnet, ("A", "B"))
    intake = TxIntake(chain=Chain(storage, config), mempool=mempool,
                      network=memnet.host("me"), forward_peers=forward_peers,
                      batch_txs_max=10, batch_interval_ms=int(BATCH_S * 1000),
                      request_timeout_s=1, log_in_thread=False)  # virtual clock: no thread
    try:
        async with trio.open_nursery() as nursery:
            if run:
                await nursery.start(intake.run)
            yield Setup(intake, leaders, config, keys)
            nursery.cancel_scope.cancel()
    finally:
        storage.close()


async def test_a_transaction_the_leader_took_goes_again_only_as_a_last_resort(
        tmp_path: pathlib.Path, autojump_clock: trio.testing.MockClock) -> None:
    async with intake_on_memnet(tmp_path, lambda: ["A"]) as s:
        t = s.tx()
        assert s.intake.submit(t).accepted
        first = await s.leaders.until("A", t.id, 1, 1)
        # A took it and still leads: the next send is the last resort, REFORWARD_AFTER_MS on.
        again = await s.leaders.until("A", t.id, 2, AFTER_S + LATE_S)
        assert AFTER_S < again - first <= AFTER_S + LATE_S
        assert s.intake.snapshot().reforwarded == 1


async def test_a_new_leader_gets_the_transaction_at_the_next_round(
        tmp_path: pathlib.Path, autojump_clock: trio.testing.MockClock) -> None:
    target = ["A"]
    async with intake_on_memnet(tmp_path, lambda: list(target)) as s:
        t = s.tx()
        assert s.intake.submit(t).accepted
        await s.leaders.until("A", t.id, 1, 1)
        target[0] = "B"
        changed = trio.current_time()
        assert await s.leaders.until("B", t.id, 1, LATE_S) - changed <= LATE_S
        assert len(s.leaders.times("A", t.id)) == 1  # A got it once: no copy on the change
        assert s.intake.forwarding.sent_to(t.id) == "B"


async def test_one_nobody_took_goes_again_after_the_refused_pause(
        tmp_path: pathlib.Path, autojump_clock: trio.testing.MockClock) -> None:
    async with intake_on_memnet(tmp_path, lambda: ["A"]) as s:
        s.leaders.code = "MEMPOOL_FULL"
        t = s.tx()
        assert s.intake.submit(t).accepted  # this node took it: it answers for it
        sends = [await s.leaders.until("A", t.id, n, REFUSED_S + LATE_S) for n in (1, 2, 3)]
        for earlier, later in itertools.pairwise(sends):
            assert REFUSED_S < later - earlier <= REFUSED_S + LATE_S


async def test_the_leaders_own_transaction_goes_to_the_next_leader(
        tmp_path: pathlib.Path, autojump_clock: trio.testing.MockClock) -> None:
    peers: list[str] = []  # this node leads
    async with intake_on_memnet(tmp_path, lambda: list(peers), mempool=Mempool(100, 1 << 20)
                                ) as s:
        t = s.tx()
        assert s.intake.submit(t).accepted
        await wait_until(lambda: s.intake.forwarding.sent_to(t.id) == HELD_HERE, 1)
        peers.append("A")  # A leads now
        changed = trio.current_time()
        assert await s.leaders.until("A", t.id, 1, LATE_S) - changed <= LATE_S


async def test_a_committed_transaction_is_forgotten(
        tmp_path: pathlib.Path, autojump_clock: trio.testing.MockClock) -> None:
    async with intake_on_memnet(tmp_path, lambda: ["A"]) as s:
        s.leaders.code = "MEMPOOL_FULL"  # every transaction is due again every pause
        t, u = s.tx(), s.tx()
        assert s.intake.submit(t).accepted
        await s.leaders.until("A", t.id, 1, 1)
        s.commit(t)
        assert s.intake.snapshot().awaiting == 0 and t.id not in s.intake.forwarding
        assert s.intake.submit(u).accepted  # the witness: taken after t committed
        await s.leaders.until("A", u.id, 3, 2 * (REFUSED_S + LATE_S) + 1)
        # u went again twice, each time after a pause that would have sent t again too.
        assert len(s.leaders.times("A", t.id)) == 1


async def test_an_expired_transaction_is_dropped_and_never_sent_again(
        tmp_path: pathlib.Path, autojump_clock: trio.testing.MockClock) -> None:
    async with intake_on_memnet(tmp_path, lambda: ["A"]) as s:
        s.leaders.code = "MEMPOOL_FULL"
        t = s.tx(expires_in_ms=limits.REFORWARD_REFUSED_MS + 3_000)
        assert s.intake.submit(t).accepted
        first = await s.leaders.until("A", t.id, 1, 1)
        await wait_until(lambda: s.intake.snapshot().awaiting_expired == 1,
                         REFUSED_S + 3 + LATE_S)
        expired_at = trio.current_time()
        snap = s.intake.snapshot()
        assert snap.awaiting == 0 and t.id not in s.intake.forwarding
        # Sent at first and once after the pause; dropped at its expiry, before a third send.
        sends = s.leaders.times("A", t.id)
        assert len(sends) == 2 and sends[1] - first > REFUSED_S
        assert expired_at - first <= REFUSED_S + 3 + LATE_S


async def test_a_node_that_cannot_send_on_refuses_instead_of_dropping(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node whose queue towards the leader is full refuses new transactions with
    MEMPOOL_FULL; it never accepts one it would then drop."""
    monkeypatch.setattr(intake_mod, "OUTGOING_TXS_MAX", 2)
    async with intake_on_memnet(tmp_path, lambda: [], run=False) as s:  # nothing sends on
        results = [s.intake.submit(s.tx()) for _ in range(4)]
        assert [r.code for r in results] == ["OK", "OK", "MEMPOOL_FULL", "MEMPOOL_FULL"]
        assert s.intake.stats["outgoing_dropped"] == 0 and s.intake.stats["refused"] == 2


async def test_a_node_answering_for_all_it_may_refuses_new_transactions(
        tmp_path: pathlib.Path) -> None:
    """A node that answers for as many uncommitted transactions as it may refuses new ones
    with MEMPOOL_FULL rather than accept one it would not send again."""
    async with intake_on_memnet(tmp_path, lambda: [], run=False) as s:
        s.intake.forwarding = Forwarding(awaiting_max=2)
        results = [s.intake.submit(s.tx()) for _ in range(3)]
        assert [r.code for r in results] == ["OK", "OK", "MEMPOOL_FULL"]
        assert s.intake.snapshot().awaiting == 2 and s.intake.refusals["MEMPOOL_FULL"] == 1


async def test_the_snapshot_holds_every_counter(tmp_path: pathlib.Path) -> None:
    async with intake_on_memnet(tmp_path, lambda: [], run=False) as s:
        good = s.tx()
        forged = dataclasses.replace(s.tx(), signature=bytes(64))
        assert s.intake.submit(good).accepted
        code = s.intake.submit(forged).code
        assert code != "OK"
        snap = s.intake.snapshot()
        names = {f.name for f in dataclasses.fields(IntakeSnapshot)}
        assert names == set(s.intake.stats) | {"refusals", "awaiting", "pending"}
        assert {k: getattr(snap, k) for k in s.intake.stats} == s.intake.stats
        assert (snap.admitted, snap.refused, snap.refusals, snap.awaiting) == (
            1, 1, ((code, 1),), 1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            snap.admitted = 2  # type: ignore[misc]


async def test_admission_refuses_an_already_expired_transaction(
        tmp_path: pathlib.Path, autojump_clock: trio.testing.MockClock) -> None:
    async with intake_on_memnet(tmp_path, lambda: ["A"], run=False) as s:
        t = s.tx(expires_in_ms=-1_000)  # expired a second ago on the wall clock
        result = s.intake.submit(t)
        assert not result.accepted and result.code == "TX_EXPIRED"
        assert "expired" in result.message
        snap = s.intake.snapshot()
        assert snap.awaiting == 0 and dict(snap.refusals) == {"TX_EXPIRED": 1}
        assert s.intake.submit(s.tx()).accepted  # the witness: a live one is taken


# ---------------------------------------------------------------------- the intake log


async def test_an_acknowledged_transaction_is_sent_on_after_a_crash_and_restart(
        tmp_path: pathlib.Path, autojump_clock: trio.testing.MockClock) -> None:
    async with intake_on_memnet(tmp_path, lambda: []) as s:  # no orderer reachable yet
        built = (s.config, s.keys)
        t = s.tx()
        assert (await s.intake.submit_durable(t)).accepted  # what the client is told
        assert [tx_id for tx_id, _ in s.intake.chain.storage.intake_log()] == [t.id]
    # The process is gone (its memory with it); the store is opened again after the restart.
    async with intake_on_memnet(tmp_path, lambda: ["A"], built=built) as s:
        assert s.intake.snapshot().recovered == 1 and t.id in s.intake.forwarding
        await s.leaders.until("A", t.id, 1, LATE_S)
        s.commit(t)
        assert list(s.intake.chain.storage.intake_log()) == []  # committed: out of the log


async def test_the_intake_log_drops_what_committed_or_expired_and_keeps_the_rest(
        tmp_path: pathlib.Path, autojump_clock: trio.testing.MockClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with intake_on_memnet(tmp_path, lambda: []) as s:
        built = (s.config, s.keys)
        done, short, kept = s.tx(), s.tx(), s.tx(expires_in_ms=3_600_000)
        for t in (done, short, kept):
            assert (await s.intake.submit_durable(t)).accepted
        s.commit(done)
        assert {i for i, _ in s.intake.chain.storage.intake_log()} == {short.id, kept.id}
    # The node restarts 20 minutes later by the wall clock: `short` expired meanwhile.
    wall = time.time
    monkeypatch.setattr(intake_mod.time, "time", lambda: wall() + 1_200)
    async with intake_on_memnet(tmp_path, lambda: ["A"], built=built) as s:
        assert s.intake.snapshot().recovered == 1
        assert [i for i, _ in s.intake.chain.storage.intake_log()] == [kept.id]
        await s.leaders.until("A", kept.id, 1, LATE_S)


async def test_submits_that_arrive_together_share_one_synced_write(
        tmp_path: pathlib.Path, autojump_clock: trio.testing.MockClock) -> None:
    async with intake_on_memnet(tmp_path, lambda: ["A"]) as s:
        txs = [s.tx() for _ in range(20)]
        results: list[bool] = []

        async def one(t: types.Tx) -> None:
            results.append((await s.intake.submit_durable(t)).accepted)

        async with trio.open_nursery() as nursery:
            for t in txs:
                nursery.start_soon(one, t)
        assert results == [True] * 20
        assert s.intake.snapshot().intake_log_groups <= 2  # the first may go alone
        assert {i for i, _ in s.intake.chain.storage.intake_log()} == {t.id for t in txs}


async def test_one_committed_while_its_group_was_written_leaves_no_entry(
        tmp_path: pathlib.Path, autojump_clock: trio.testing.MockClock) -> None:
    async with intake_on_memnet(tmp_path, lambda: ["A"]) as s:
        t = s.tx()
        assert s.intake.submit(t).accepted  # queued for the next group, not written yet
        s.commit(t)  # its block arrives first
        await wait_until(lambda: s.intake.snapshot().intake_log_groups == 1, 5)
        assert list(s.intake.chain.storage.intake_log()) == []
        assert s.intake.snapshot().pending == 0


async def test_a_full_mempool_at_restart_does_not_drop_an_acknowledged_transaction(
        tmp_path: pathlib.Path, autojump_clock: trio.testing.MockClock) -> None:
    async with intake_on_memnet(tmp_path, lambda: []) as s:
        built = (s.config, s.keys)
        t, other = s.tx(), s.tx()
        assert (await s.intake.submit_durable(t)).accepted
    full = Mempool(1, 1 << 20)
    full.add(other)  # this orderer's mempool is full when it takes its log back
    async with intake_on_memnet(tmp_path, lambda: ["A"], mempool=full, built=built) as s:
        assert s.intake.snapshot().recovered == 1
        await s.leaders.until("A", t.id, 1, LATE_S)  # the leader gets it all the same
        assert [i for i, _ in s.intake.chain.storage.intake_log()] == [t.id]
