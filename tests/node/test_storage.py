"""LevelDB storage: atomic block commits, Raft persistence, refusing foreign or damaged dirs."""

from __future__ import annotations

import pathlib

import plyvel
import pytest

from node.storage.store import Storage, StorageError
from protocol import types
from protocol.raft.messages import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from tests.protocol.helpers import declaration, signed_block, signed_tx

GENESIS = b"\x07" * 32


def _open(path: pathlib.Path, chain: str = "crossbill-test", genesis: bytes = GENESIS) -> Storage:
    return Storage.open(path, chain_id=chain, genesis_hash=genesis)


def _receipts(block: types.Block) -> list[types.Receipt]:
    return [types.Receipt(tx.id, "ok", "OK", "") for tx in block.txs]


def test_block_commit_is_readable_after_reopen(tmp_path: pathlib.Path) -> None:
    store = _open(tmp_path / "db")
    txs = (signed_tx(), signed_tx(declaration("D-2"), nonce=b"\x02" * 16))
    block = signed_block(txs)
    tip = store.commit_block(block, _receipts(block), [(b"k1", b"v1"), (b"k2", b"v2")], 5)
    store.commit_block(signed_block((), height=2, prev_hash=block.hash), [], [(b"k1", None)])
    store.close()

    store = _open(tmp_path / "db")
    assert store.tip() is not None and store.tip().height == 2  # type: ignore[union-attr]
    assert store.block(1) == block
    assert store.height_of(block.hash) == 1
    assert tip.hash == block.hash
    record = store.tx_record(txs[1].id)
    assert record is not None and (record.height, record.index) == (1, 1)
    assert record.receipt.ok
    assert store.receipts(1) == tuple(_receipts(block))
    assert store.state_kv.get(b"k1") is None and store.state_kv.get(b"k2") == b"v2"
    assert list(store.state_kv.iterate(b"k", b"l")) == [(b"k2", b"v2")]
    assert store.raft_state()[3] == 5
    assert store.blocks_range(1, 10) == [block.encoded, store.block_bytes(2)]
    store.close()


def test_blocks_must_be_stored_in_order(tmp_path: pathlib.Path) -> None:
    store = _open(tmp_path / "db")
    with pytest.raises(StorageError, match="next height is 1"):
        store.commit_block(signed_block((), height=2), [], [])
    block = signed_block((signed_tx(),))
    with pytest.raises(StorageError, match="one receipt per transaction"):
        store.commit_block(block, [], [])
    assert store.tip() is None
    store.close()


def test_raft_log_persistence_truncates_conflicts(tmp_path: pathlib.Path) -> None:
    store = _open(tmp_path / "db")
    store.save_raft(HardState(1, 2, 0), [Entry(1, i, 0, b"x%d" % i) for i in range(1, 6)], None)
    store.save_raft(HardState(2, 3, 2), [Entry(2, 4, 0, b"new4")], None)
    store.close()
    store = _open(tmp_path / "db")
    hard, snap, entries, applied = store.raft_state()
    assert hard == HardState(2, 3, 2)
    assert snap is None and applied == 0
    assert [(e.index, e.term, e.data) for e in entries] == [
        (1, 1, b"x1"), (2, 1, b"x2"), (3, 1, b"x3"), (4, 2, b"new4")]
    snapshot = Snapshot(SnapshotMeta(3, 1, ConfState((1, 2, 3), ())), b"height=3")
    assert store.compact_raft(snapshot) == 3
    _, snap, entries, _ = store.raft_state()
    assert snap == snapshot and [e.index for e in entries] == [4]
    store.close()


def test_refuses_another_network(tmp_path: pathlib.Path) -> None:
    _open(tmp_path / "db").close()
    with pytest.raises(StorageError, match="belongs to chain 'crossbill-test'"):
        _open(tmp_path / "db", chain="other-chain")
    with pytest.raises(StorageError, match="wrong data_dir or wrong genesis"):
        _open(tmp_path / "db", genesis=b"\x08" * 32)


def test_refuses_a_foreign_directory(tmp_path: pathlib.Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("hello")
    with pytest.raises(StorageError, match="holds no Crossbill database"):
        _open(tmp_path / "docs")
    assert (tmp_path / "docs" / "notes.txt").read_text() == "hello"
    db = plyvel.DB(str(tmp_path / "other"), create_if_missing=True)
    db.put(b"their", b"data")
    db.close()
    with pytest.raises(StorageError, match="not a Crossbill store"):
        _open(tmp_path / "other")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match="is a file"):
        _open(tmp_path / "file")


def test_refuses_a_locked_directory(tmp_path: pathlib.Path) -> None:
    store = _open(tmp_path / "db")
    with pytest.raises(StorageError, match="another node"):
        _open(tmp_path / "db")
    store.close()


def test_refuses_a_damaged_database(tmp_path: pathlib.Path) -> None:
    store = _open(tmp_path / "db")
    prev = b"\x00" * 32
    for h in range(1, 30):
        block = signed_block((), height=h, prev_hash=prev)
        store.commit_block(block, [], [(b"k%d" % h, b"v" * 2000)])
        prev = block.hash
    store.close()
    # Damage every table and log file the way a bad disk would.
    for f in (tmp_path / "db").iterdir():
        if f.suffix in (".ldb", ".log") and f.stat().st_size > 100:
            data = bytearray(f.read_bytes())
            for i in range(20, len(data), 97):
                data[i] ^= 0xFF
            f.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="damaged"):
        s = _open(tmp_path / "db")
        # Corruption may only show when the damaged blocks are read.
        for h in range(1, 30):
            s.block(h)
        s.close()


def test_state_read_cache_stays_exact(tmp_path: pathlib.Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from node.storage import store as storage_mod

    monkeypatch.setattr(storage_mod, "STATE_READ_CACHE_ENTRIES_MAX", 4)
    store = _open(tmp_path / "db")
    kv = store.state_kv
    assert kv.get(b"k1") is None  # an absence, cached
    store.commit_genesis([(b"k1", b"v0")], storage_mod.ChainTip(0, b"\x00" * 32, b"\x00" * 32, 0))
    assert kv.get(b"k1") == b"v0"
    block = signed_block((signed_tx(),))
    store.commit_block(block, _receipts(block), [(b"k1", b"v1"), (b"k2", b"v2")])
    assert kv.get(b"k1") == b"v1" and kv.get(b"k2") == b"v2"
    block2 = signed_block((), height=2, prev_hash=block.hash)
    store.commit_block(block2, [], [(b"k1", None)])
    assert kv.get(b"k1") is None
    kv.put(b"k3", b"direct")
    assert kv.get(b"k3") == b"direct"
    kv.delete(b"k3")
    assert kv.get(b"k3") is None
    for i in range(10):  # bounded: old entries leave, reads stay right
        assert kv.get(b"x%d" % i) is None
    assert len(kv._cache) <= 4
    assert kv.get(b"k2") == b"v2"
    store.close()


def test_the_memtable_holds_more_than_leveldbs_default(tmp_path: pathlib.Path) -> None:
    """ADR 0039: blocks' writes collect in a 32 MB memtable, not LevelDB's 4 MB one. 12 MB of
    writes would have been sorted into level-0 tables twice over with the
    default (the memtable counts bytes before compression); here they all stay in the memtable
    (and its log) and survive a reopen."""
    store = _open(tmp_path / "db")
    value = bytes(range(256)) * 4
    block_writes = 3_000  # x 1 KB keys and values per batch, 4 batches: 12 MB
    for batch in range(4):
        with store._db.write_batch() as wb:
            for i in range(block_writes):
                wb.put(b"S" + batch.to_bytes(2, "big") + i.to_bytes(4, "big"),
                       value[i % 256:] + value[:i % 256])
    assert not list((tmp_path / "db").glob("*.ldb"))
    store.close()
    store = _open(tmp_path / "db")
    assert store._db.get(b"S" + (3).to_bytes(2, "big") + (2_999).to_bytes(4, "big")) is not None
    store.close()
