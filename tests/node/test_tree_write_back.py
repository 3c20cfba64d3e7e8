"""The state tree written back (docs/adr/0041): a block's tree records wait in memory, its
journal (the rooted keys it changed) goes to disk, and a store opened again, after a clean
close or with a journal left behind, holds the same tree as one that wrote every record at
once."""

from __future__ import annotations

import pathlib
import random

import pytest

from node.storage import store as store_mod
from node.storage.store import Storage, StorageError
from protocol import codec
from protocol.ledger import smt
from protocol.ledger.kv import MemoryKV, Overlay
from tests.protocol.helpers import signed_block

GENESIS = b"\x07" * 32
TREE = b"smt\x00"
TREE_STOP = b"smt\x01"


def _open(path: pathlib.Path, *, blocks: int | None = None,
          size: int | None = None) -> Storage:
    s = Storage.open(path, chain_id="crossbill-test", genesis_hash=GENESIS)
    if blocks is not None:
        s.tree_write_back_blocks = blocks
    if size is not None:
        s.tree_write_back_bytes = size
    return s


class Ledger:
    """A store driven as the chain drives it: each block's rooted changes and the tree
    records `smt.update` derives from them, in one write set. The model is the pairs."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.prev = b"\x00" * 32
        self.height = 0

    def block(self, changes: dict[bytes, bytes | None]) -> bytes:
        overlay = Overlay(self.storage.state_kv)
        for key, value in changes.items():
            if value is None:
                overlay.delete(key)
            else:
                overlay.put(key, value)
        root = smt.update(overlay, changes)
        self.height += 1
        block = signed_block((), height=self.height, prev_hash=self.prev)
        self.storage.commit_block(block, [], overlay.write_set())
        self.prev = block.hash
        return root


def _changes(rng: random.Random, model: dict[bytes, bytes]) -> dict[bytes, bytes | None]:
    """A block's changes: new keys, changed values, deletions (lone leaves move up and down
    the tree), and sometimes a key deleted that never existed."""
    out: dict[bytes, bytes | None] = {}
    for _ in range(rng.randrange(1, 40)):
        roll = rng.random()
        if model and roll < 0.3:
            out[rng.choice(sorted(model))] = None
        elif model and roll < 0.6:
            out[rng.choice(sorted(model))] = rng.randbytes(rng.randrange(1, 60))
        elif roll < 0.62:
            out[b"never-" + rng.randbytes(4)] = None
        else:
            out[b"k" + rng.randbytes(3)] = rng.randbytes(rng.randrange(1, 60))
    for key, value in out.items():
        if value is None:
            model.pop(key, None)
        else:
            model[key] = value
    return out


def _stored_tree(storage: Storage) -> list[tuple[bytes, bytes]]:
    """The tree records LevelDB itself holds (not the pending ones)."""
    return [(k, v) for k, v in storage._db.iterator(prefix=b"s:" + TREE)]


def _journal(storage: Storage) -> list[bytes]:
    return [k for k in storage._db.iterator(prefix=b"c:tj:", include_value=False)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_tree_after_every_block_and_every_reopen_is_the_one_written_at_once(
        tmp_path: pathlib.Path, seed: int) -> None:
    """Two stores take the same blocks: one writes the tree with every block (bounds 0), the
    other holds it for up to 5 blocks or 64 KB. After every block both give the model's root;
    the second is closed and opened again at random points, with a journal on disk, and
    refolds it. Once it flushes, its stored records are the first one's, byte for byte."""
    rng = random.Random(seed)
    at_once = Ledger(_open(tmp_path / "at-once", blocks=0, size=0))
    held_path = tmp_path / "held"
    held = Ledger(_open(held_path, blocks=5, size=65536))
    model: dict[bytes, bytes] = {}
    reopened_with_journal = 0
    for _ in range(60):
        changes = _changes(rng, model)
        root = at_once.block(changes)
        assert held.block(changes) == root == smt.compute_root(model.items())
        assert smt.root(held.storage.state_kv) == root
        assert not _journal(at_once.storage)
        assert len(_journal(held.storage)) <= 5
        if rng.random() < 0.3:
            reopened_with_journal += bool(_journal(held.storage))
            held.storage.close()
            held.storage = _open(held_path, blocks=5, size=65536)
            assert smt.root(held.storage.state_kv) == root
        # reads and range reads see the pending records over LevelDB's
        tree = list(held.storage.state_kv.iterate(TREE, TREE_STOP))
        assert tree == list(at_once.storage.state_kv.iterate(TREE, TREE_STOP))
        key = rng.choice(tree)[0]
        assert held.storage.state_kv.get(key) == at_once.storage.state_kv.get(key)
    assert reopened_with_journal >= 5  # the refold itself was exercised
    held.storage.tree_write_back_blocks = 0
    root = held.block({b"last": b"block"})
    assert at_once.block({b"last": b"block"}) == root
    assert not _journal(held.storage) and held.storage.state_kv.pending_bytes == 0
    assert _stored_tree(held.storage) == _stored_tree(at_once.storage)
    held.storage.close()
    at_once.storage.close()


def test_flushes_happen_at_the_block_and_byte_bounds(tmp_path: pathlib.Path) -> None:
    s = _open(tmp_path / "db", blocks=3, size=1 << 30)
    ledger = Ledger(s)
    for i in range(3):
        ledger.block({b"k%d" % i: b"v"})
        assert len(_journal(s)) == i + 1 and s.metrics.tree_flushes == 0
        assert s.metrics_snapshot().tree_pending_blocks == i + 1
    assert not _stored_tree(s)  # everything still pending
    root = ledger.block({b"k3": b"v"})  # the fourth block's batch flushes
    assert not _journal(s) and s.metrics.tree_flushes == 1
    snap = s.metrics_snapshot()
    assert (snap.tree_pending_bytes, snap.tree_pending_blocks, snap.tree_flushes) == (0, 0, 1)
    assert smt.root(MemoryKV((k[2:], v) for k, v in _stored_tree(s))) == root
    s.tree_write_back_blocks = 100
    s.tree_write_back_bytes = 2000  # a leaf record is about 110 bytes with its key
    held_blocks = []
    for i in range(40):
        ledger.block({b"n%d" % i: b"v"})
        assert s.state_kv.pending_bytes <= 2000
        held_blocks.append(len(_journal(s)))
        if s.metrics.tree_flushes == 2:
            break
    # records were held over several blocks, then the block that would pass 2,000 bytes
    # flushed them (the block bound, 100, was never near)
    assert s.metrics.tree_flushes == 2 and held_blocks[-1] == 0 and max(held_blocks) >= 2
    s.close()


def test_a_journal_that_does_not_reach_the_tip_is_refused(tmp_path: pathlib.Path) -> None:
    s = _open(tmp_path / "db", blocks=10)
    ledger = Ledger(s)
    for i in range(3):
        ledger.block({b"k%d" % i: b"v"})
    s._db.delete(b"c:tj:" + (2).to_bytes(8, "big"))  # a record lost from the middle
    s.close()
    with pytest.raises(StorageError, match=r"journal holds blocks 1 to 3 .*damaged"):
        _open(tmp_path / "db")
    # the store is left as it was found: nothing was written or dropped
    assert plyvel_get(tmp_path / "db", b"c:tj:" + (3).to_bytes(8, "big")) is not None


def plyvel_get(path: pathlib.Path, key: bytes) -> bytes | None:
    db = store_mod.plyvel.DB(str(path))
    try:
        value: bytes | None = db.get(key)
        return value
    finally:
        db.close()


def test_a_format_2_store_is_read_and_marked_3_once_it_holds_a_journal(
        tmp_path: pathlib.Path) -> None:
    s = _open(tmp_path / "db", blocks=0, size=0)
    Ledger(s).block({b"a": b"1"})
    s._db.put(b"m:format", codec.encode(store_mod.StoreMeta(
        "crossbill-store-2", "crossbill-test", GENESIS)))
    s.close()
    s = _open(tmp_path / "db", blocks=0, size=0)  # read as it is
    assert s.meta.format == "crossbill-store-2"
    ledger = Ledger(s)
    ledger.height, ledger.prev = 1, s.tip().hash  # type: ignore[union-attr]
    ledger.block({b"b": b"2"})  # flushed at once: still readable by a format-2 binary
    assert plyvel_meta(s) == "crossbill-store-2"
    s.tree_write_back_blocks = 64
    s.tree_write_back_bytes = 1 << 20
    root = ledger.block({b"c": b"3"})  # leaves records pending: marked in the same batch
    assert s.meta.format == plyvel_meta(s) == store_mod.FORMAT == "crossbill-store-3"
    s.close()
    s = _open(tmp_path / "db")
    assert smt.root(s.state_kv) == root
    s._db.put(b"m:format", codec.encode(store_mod.StoreMeta(
        "crossbill-store-9", "crossbill-test", GENESIS)))
    s.close()
    with pytest.raises(StorageError, match="store format 'crossbill-store-9'; this node reads "
                                           "'crossbill-store-2' and 'crossbill-store-3'"):
        _open(tmp_path / "db")


def plyvel_meta(s: Storage) -> str:
    return str(codec.decode(store_mod.StoreMeta, s._db.get(b"m:format")).format)
