"""Raft paper §7 (log compaction and InstallSnapshot)."""

from __future__ import annotations

import pytest

from protocol.raft import (
    AppendRequest,
    ConfChange,
    ConfOp,
    Entry,
    EntryKind,
    HardState,
    InstallSnapshot,
    PersistentState,
    Raft,
    RaftInvariantError,
    Snapshot,
    SnapshotMeta,
)
from protocol.raft.log import RaftLog
from protocol.raft.messages import ConfState

from .harness import Net, config


def _compact(net: Net, i: int) -> Snapshot:
    r = net.nodes[i]
    snap = r.compact(r.applied_index, b"state@%d" % r.applied_index)
    st = net.storage[i]
    st.entries = st.entries[snap.meta.index - st.snapshot.meta.index:]
    st.snapshot = snap
    return snap


def test_snapshot_replaces_applied_prefix() -> None:
    """§7: each server compacts independently: the applied prefix of its log is replaced by a
    snapshot recording the last included index and term and the configuration there."""
    net = Net(3)
    net.elect(1)
    for i in range(5):
        net.propose(1, b"%d" % i)
    r = net.nodes[2]
    net.tick_all(2)
    term6 = r.log.term(6)
    snap = _compact(net, 2)
    assert (snap.meta.index, snap.meta.term) == (6, term6)
    assert snap.meta.conf.voters == (1, 2, 3)
    assert r.log.first_index() == 7 and r.log.term(6) == term6 and r.log.term(5) is None


def test_cannot_compact_unapplied() -> None:
    """§7: only committed, applied state goes into a snapshot."""
    net = Net(3)
    net.elect(1)
    net.drop = lambda m: isinstance(m, AppendRequest)
    net.nodes[1].propose(b"x")
    net.deliver()
    r = net.nodes[1]
    with pytest.raises(RaftInvariantError):
        r.compact(r.log.last_index(), b"")


def test_install_snapshot_for_lagging_follower() -> None:
    """§7: when the leader has discarded the entries a follower needs, it sends
    InstallSnapshot; the follower discards its log, restores the snapshot and continues."""
    net = Net(3)
    net.elect(1)
    net.drop = lambda m: m.dst == 3
    for i in range(10):
        net.propose(1, b"%d" % i)
    net.tick_all(1)
    _compact(net, 1)
    net.drop = lambda m: False
    net.tick_all(3)
    assert any(isinstance(m, InstallSnapshot) and m.dst == 3 for m in net.sent)
    assert net.snapshots_installed[3] and net.snapshots_installed[3][-1].data.startswith(b"state")
    net.propose(1, b"after")
    net.tick_all(2)
    assert net.nodes[3].log.last_index() == net.nodes[1].log.last_index()
    assert net.applied_data(3) == [b"after"]  # the rest came in the snapshot


def test_snapshot_keeps_following_entries_when_prefix_matches() -> None:
    """§7: if the follower already holds the snapshot's last entry, it keeps the entries that
    follow instead of discarding its log."""
    ents = tuple(Entry(term=1, index=i, kind=0, data=b"%d" % i) for i in range(1, 6))
    init = PersistentState.bootstrap((1, 2, 3))
    r = Raft(config(2), PersistentState(HardState(term=1, vote=0, commit=1), init.snapshot,
                                        ents))
    conf = init.snapshot.meta.conf
    r.step(InstallSnapshot(term=1, src=1, dst=2, snapshot=Snapshot(
        meta=SnapshotMeta(index=3, term=1, conf=conf), data=b"s")))
    assert r.log.last_index() == 5 and r.commit_index == 3
    assert r.ready().snapshot is None


def test_stale_snapshot_ignored() -> None:
    """§7: a snapshot covering no more than the follower's commit index changes nothing."""
    net = Net(3)
    net.elect(1)
    for i in range(3):
        net.propose(1, b"%d" % i)
    net.tick_all(1)
    r = net.nodes[2]
    before = net.log(2)
    conf = r.conf
    r.step(InstallSnapshot(term=r.term, src=1, dst=2, snapshot=Snapshot(
        meta=SnapshotMeta(index=2, term=1, conf=conf), data=b"old")))
    assert net.log(2) == before and r.ready().snapshot is None


def test_snapshot_carries_configuration() -> None:
    """§7: the snapshot includes the latest configuration as of its last included index, so a
    follower restored from it knows the membership."""
    net = Net(3)
    net.elect(1)
    net.add_node(4)
    net.nodes[1].propose_conf_change(ConfChange(op=ConfOp.ADD_LEARNER, node=4))
    net.deliver()
    net.tick_all(2)
    snap = _compact(net, 1)
    assert snap.meta.conf.learners == (4,)
    net.add_node(5)  # starts from genesis; learns membership from the snapshot
    net.nodes[1].propose_conf_change(ConfChange(op=ConfOp.ADD_LEARNER, node=5))
    net.deliver()
    net.tick_all(3)
    assert net.nodes[5].conf.learners == (4, 5)
    assert net.snapshots_installed[5]


def test_restart_from_snapshot_and_log() -> None:
    """§7: after a restart a server rebuilds from its snapshot plus the log after it."""
    net = Net(3)
    net.elect(1)
    for i in range(4):
        net.propose(1, b"%d" % i)
    net.tick_all(1)
    _compact(net, 2)
    net.propose(1, b"tail")
    net.tick_all(1)
    r = net.crash_restart(2)
    assert r.log.snap_index == 5 and r.log.last_index() == net.nodes[1].log.last_index()
    net.process(2)
    assert net.applied_data(2) == [b"tail"]


def _log_of(sizes: list[int], applied: int) -> RaftLog:
    conf = ConfState(voters=(1, 2, 3), learners=())
    snap = Snapshot(SnapshotMeta(index=0, term=0, conf=conf), b"")
    ents = tuple(Entry(index=i + 1, term=1, kind=EntryKind.NORMAL, data=b"x" * n)
                 for i, n in enumerate(sizes))
    return RaftLog(snap, ents, commit=len(sizes), applied=applied)


def test_compaction_point_waits_for_twice_the_entry_bound() -> None:
    log = _log_of([10] * 19, applied=19)
    assert log.compaction_point(keep_entries=10, keep_bytes=10**6) is None
    log = _log_of([10] * 25, applied=20)
    assert log.data_bytes == 250
    # keeps 10 applied entries; the 5 unapplied ones are never compacted
    assert log.compaction_point(keep_entries=10, keep_bytes=10**6) == 10


def test_compaction_point_bounds_the_bytes_held_whatever_the_count() -> None:
    """Large blocks: a count of entries alone would keep hundreds of megabytes in memory."""
    log = _log_of([1000] * 30, applied=30)
    index = log.compaction_point(keep_entries=1000, keep_bytes=4500)
    # 30,000 bytes held >= 2 x 4,500: keep the newest entries up to 4,500 bytes (4 of them)
    assert index == 26
    log.compact(index)
    assert log.data_bytes == 4000
    assert log.compaction_point(keep_entries=1000, keep_bytes=4500) is None


def test_data_bytes_follow_truncation_and_snapshot_restore() -> None:
    log = _log_of([5, 5, 5], applied=1)
    log.commit = 1
    log.truncate_and_append([Entry(index=2, term=2, kind=EntryKind.NORMAL, data=b"y" * 7)])
    assert log.data_bytes == 12
    conf = ConfState(voters=(1,), learners=())
    log.restore(Snapshot(SnapshotMeta(index=9, term=3, conf=conf), b""))
    assert log.data_bytes == 0
