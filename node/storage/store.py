"""LevelDB storage of one node: blocks, the transaction index, ledger state, and Raft's log.

Key layout (one LevelDB; every value is a canonical `protocol.codec` encoding unless noted):

    m:format            StoreMeta: layout version, chain id, genesis hash (refuses foreign dirs)
    c:tip               ChainTip: height, hash, state root and time of the last applied block
    b:h:<height u64>    encoded Block (raw bytes, as received)
    b:r:<height u64>    BlockReceipts
    b:x:<hash>          height (u64 big-endian, raw)
    b:c:<height u64>    CommitCertificate of the block (protocol/replica/certificates.py, ADR
                        0019): with the block on a follower, after it on an orderer
    t:<tx id>           TxRecord: height, position and receipt
    s:<ledger key>      ledger state (protocol.ledger's key layout, behind the KV interface)
    c:tj:<height u64>   TreeJournal: the rooted ledger keys block <height> changed, while the
                        state tree's records for that block wait in memory (below)
    r:hard              Raft HardState
    r:snap              Raft Snapshot (its data names a block height; bulk state is blocks)
    r:e:<index u64>     Raft Entry, binary (protocol.raft.messages.encode_entry: no hex)
    r:applied           Raft index of the last entry applied to the ledger (u64, raw)

A committed block, its receipts, its transaction index entries, its ledger write set, the new
tip and the Raft applied index go to disk in one write batch with sync=True. The state tree's
records (``s:smt\\0...``, derived from the rooted records) are written back: a block's tree
writes wait in memory (`LevelKV`'s pending records) and its batch holds instead its journal
record, the rooted keys it changed; every TREE_WRITE_BACK_BLOCKS_MAX blocks, or once the pending
records reach TREE_WRITE_BACK_BYTES_MAX, one block's batch writes them all and deletes the
journal. Opening the store folds the journal's keys (at their stored values) into the stored
tree again, which gives the tip's tree: the tree is a function of the rooted pairs alone
(docs/adr/0041-state-tree-write-back.md). Raft's hard state,
entries and snapshot are written in one synced batch before any message that depends on them
leaves the node (the Ready contract of protocol/raft/ready.py).

A write that fails for a reason outside this program (a full disk, an I/O error, a read-only
filesystem, LevelDB's sticky error after one of those) raises `StorageUnavailable`, is logged
once and marks the store unwritable; the node stops ordering and applying, probes every
STORAGE_PROBE_INTERVAL_S (`recover`: a probe file, then the LevelDB reopened, then a synced
probe key) and resumes once a write succeeds (docs/adr/0031-disk-full.md).
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import pathlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Final

try:  # CPython 3.11: plyvel's own wheels
    import plyvel
except ImportError:  # CPython 3.12+: plyvel-next, the same API under another name (docs/adr/0014)
    import plyvel_next as plyvel  # type: ignore[no-redef,unused-ignore]

from node.observe.instruments import StorageMetrics, StorageSnapshot
from protocol import codec, types
from protocol.codec import bound
from protocol.errors import CrossbillError, DecodeError
from protocol.ledger import keys as ledger_keys
from protocol.ledger import smt
from protocol.ledger.kv import Overlay, merge_writes
from protocol.raft.messages import Entry, HardState, Snapshot, decode_entry, encode_entry

# 2: Raft entries in binary (encode_entry); 3: the state tree written back, with a journal
# (docs/adr/0041). A store of format 2 is a store of format 3 without a journal: it is read as
# is and marked 3 by the first block that leaves tree records pending (a binary that reads only
# 2 then refuses it by name instead of finding its tree behind the tip).
FORMAT: Final = "crossbill-store-3"
_READABLE_FORMATS: Final = ("crossbill-store-2", FORMAT)
# Ledger state reads cached in memory (hot records, tree nodes, absent nonces): up to about 600
# bytes each with its key (a tree node record is 529 bytes), so about 30 MB at most.
STATE_READ_CACHE_ENTRIES_MAX: Final = 50_000
# LevelDB: a bloom filter per table (10 bits per key, about 1% false positives) so that reading
# a key that does not exist (every new record, nonce and tree node) rarely touches a table
# block; and LevelDB's default block cache of 8 MB. The state read cache above holds the hot
# records decoded, and the OS's page cache the tables: replaying a 120,000-transaction chain
# cost the same CPU per transaction with 8 MB as with 64 MB, while 64 MB held 56 MB more of
# each node's memory, and more again in the C heap's holes (docs/adr/0040).
BLOOM_FILTER_BITS: Final = 10
BLOCK_CACHE_BYTES_MAX: Final = 8 * 1024 * 1024
# LevelDB's memtable (its default is 4 MB): writes collect here before they are sorted into a
# level-0 table, and LevelDB holds at most two (one being written out), so up to 64 MB. A
# block rewrites the state tree's upper nodes and the records it touches; a larger memtable
# keeps only the last version of each in the table it writes, so fewer bytes enter the
# compactions that rewrite every table level by level (docs/adr/0039-leveldb-write-buffer.md:
# a replayed chain's background compaction per transaction fell from 230-610 us to 20-300 us).
WRITE_BUFFER_BYTES: Final = 32 * 1024 * 1024
# Every option the node opens its LevelDB with (benchmarks/ledger_growth.py replays with
# others).
DB_OPTIONS: Final = MappingProxyType({
    "paranoid_checks": True, "bloom_filter_bits": BLOOM_FILTER_BITS,
    "lru_cache_size": BLOCK_CACHE_BYTES_MAX, "write_buffer_size": WRITE_BUFFER_BYTES})
# The state tree's records written back (docs/adr/0041): a block rewrites the tree's upper
# nodes (the root, 16, 256 and most of the 4,096 nodes below them at saturation) and LevelDB
# keeps and compacts every version; held in memory across blocks, each reaches LevelDB once
# per flush. Pending records are flushed with the block that reaches either bound; opening
# the store refolds at most that many blocks' journal.
TREE_WRITE_BACK_BYTES_MAX: Final = 16 * 1024 * 1024
TREE_WRITE_BACK_BLOCKS_MAX: Final = 256
# Rooted keys one block's journal record may name (a block's write set is bounded by its
# transactions: BLOCK_TXS_MAX and the handlers' writes); a key's bytes.
TREE_JOURNAL_KEYS_MAX: Final = 1_000_000
TREE_JOURNAL_KEY_BYTES_MAX: Final = 4096
# After a failed write (disk full, I/O error), how often the node probes whether the store
# takes writes again (docs/adr/0031-disk-full.md).
STORAGE_PROBE_INTERVAL_S: Final = 2.0
# The probe file written (and synced, then removed) in the data directory before the LevelDB
# is reopened: about one filesystem block.
STORAGE_PROBE_FILE_BYTES: Final = 4096
STORAGE_PROBE_FILE: Final = "crossbill-write-probe"

log = logging.getLogger("crossbill.storage")

_META: Final = b"m:format"
_TIP: Final = b"c:tip"
_BLOCK: Final = b"b:h:"
_RECEIPTS: Final = b"b:r:"
_BY_HASH: Final = b"b:x:"
_CERT: Final = b"b:c:"
_TX: Final = b"t:"
_STATE: Final = b"s:"
_RAFT_HARD: Final = b"r:hard"
_RAFT_SNAP: Final = b"r:snap"
_RAFT_ENTRY: Final = b"r:e:"
_RAFT_APPLIED: Final = b"r:applied"
_PROBE: Final = b"m:probe"
_JOURNAL: Final = b"c:tj:"
_TREE: Final = ledger_keys.TREE
# Every Raft key starts with this: backups leave them out (docs/adr/0011).
RAFT_KEY_PREFIX: Final = b"r:"
# The intake log (docs/adr/0021): client transactions this node acknowledged and has not yet
# seen committed, by tx id. Node-local like Raft's keys: backups leave them out too.
INTAKE_KEY_PREFIX: Final = b"i:"

U64 = Annotated[int, bound(min_value=0)]


class StorageError(CrossbillError):
    """The data directory cannot be used: foreign, damaged, locked, or of another network."""


class StorageUnavailable(StorageError):
    """A write to the store failed for a reason outside this program: no space left, an I/O
    error, a read-only filesystem, or LevelDB's sticky error after one of those (every later
    write on the same handle fails until it is reopened). Not a bug and not a damaged chain:
    nothing of the failed write batch is visible, and the node waits until writes succeed
    again (docs/adr/0031-disk-full.md)."""

    def __init__(self, what: str, path: pathlib.Path, error: str) -> None:
        super().__init__(f"cannot write {what} to {path}: {error}")
        self.what = what
        self.path = path
        self.error = error


# What a failed LevelDB write or a failed filesystem call raises (plyvel.IOError and
# plyvel.CorruptionError are plyvel.Error); anything else a write raises is a bug.
WRITE_ERRORS: Final = (plyvel.Error, OSError)


@dataclass(frozen=True)
class StoreMeta:
    format: str
    chain_id: str
    genesis_hash: Annotated[bytes, bound(min_len=32, max_len=32)]


@dataclass(frozen=True)
class ChainTip:
    height: U64
    hash: Annotated[bytes, bound(min_len=32, max_len=32)]
    state_root: Annotated[bytes, bound(min_len=32, max_len=32)]
    timestamp_ms: U64


@dataclass(frozen=True)
class TxRecord:
    height: U64
    index: U64
    receipt: types.Receipt


@dataclass(frozen=True)
class BlockReceipts:
    receipts: Annotated[tuple[types.Receipt, ...], bound(max_len=100_000)]


@dataclass(frozen=True)
class TreeJournal:
    """The rooted ledger keys one block changed (in key order), kept until the state tree's
    records of that block are flushed (docs/adr/0041)."""

    keys: Annotated[tuple[Annotated[bytes, bound(max_len=TREE_JOURNAL_KEY_BYTES_MAX)], ...],
                    bound(max_len=TREE_JOURNAL_KEYS_MAX)]


def _describe_error(exc: BaseException) -> str:
    """An OS error by its name and text (ENOSPC: No space left on device); LevelDB's as it
    says it (its text names the OS error: "IO error: ...: No space left on device")."""
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        return f"{name}: {exc.strerror or os.strerror(exc.errno)}"
    text = exc.args[0] if len(exc.args) == 1 else str(exc)
    if isinstance(text, bytes):  # plyvel's errors carry LevelDB's message as bytes
        text = text.decode("utf-8", "replace")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _put_state(wb: Any, writes: Iterable[tuple[bytes, bytes | None]]) -> None:
    """Ledger state writes into a LevelDB batch (value None: delete)."""
    for key, value in writes:
        if value is None:
            wb.delete(_STATE + key)
        else:
            wb.put(_STATE + key, value)


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _prefix_stop(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


class LevelKV:
    """The ledger's `KV` interface over one key prefix of the LevelDB, with a bounded read
    cache (values and absences) kept exact: every write to the prefix goes through `put`,
    `delete` or `Storage.commit_block`, which update it.

    Records under `write_back` (the state tree's) that committed blocks wrote and LevelDB does
    not hold yet are `pending` (value None: deleted); reads see them first. `Storage` adds to
    them after each block's batch and empties them with the batch that writes them
    (docs/adr/0041)."""

    __slots__ = ("_cache", "_db", "_pending_stop", "_prefix", "pending", "pending_bytes",
                 "write_back")

    def __init__(self, db: plyvel.DB, prefix: bytes, write_back: bytes = _TREE) -> None:
        self._db = db
        self._prefix = prefix
        # Insertion-ordered for O(1) eviction of the oldest entry (a plain dict's first key
        # gets slower to find the more entries were deleted from its front).
        self._cache: OrderedDict[bytes, bytes | None] = OrderedDict()
        self.write_back = write_back
        self._pending_stop = _prefix_stop(write_back)
        self.pending: dict[bytes, bytes | None] = {}
        self.pending_bytes = 0  # keys and values of `pending`

    def get(self, key: bytes) -> bytes | None:
        cache = self._cache
        if key in cache:
            return cache[key]
        pending = self.pending
        if key in pending:
            return pending[key]
        value: bytes | None = self._db.get(self._prefix + key)
        self._remember(key, value)
        return value

    def _remember(self, key: bytes, value: bytes | None) -> None:
        cache = self._cache
        if len(cache) >= STATE_READ_CACHE_ENTRIES_MAX and key not in cache:
            cache.popitem(last=False)  # the oldest entry
        cache[key] = value

    def written(self, writes: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Keep the cache exact after a batch wrote `writes` (value None: deleted)."""
        cache = self._cache
        for key, value in writes:
            if key in cache:
                cache[key] = value

    def hold(self, writes: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Add records under `write_back` to the pending ones (a committed block's, whose
        batch left them out), keeping the read cache exact (it is read first)."""
        pending = self.pending
        cache = self._cache
        size = self.pending_bytes
        for key, value in writes:
            if key in cache:
                cache[key] = value
            if key in pending:
                old = pending[key]
                size -= 0 if old is None else len(old)
            else:
                size += len(key)
            pending[key] = value
            size += 0 if value is None else len(value)
        self.pending_bytes = size

    def release(self) -> None:
        """Forget the pending records (a batch wrote them, or the store was reopened)."""
        self.pending = {}
        self.pending_bytes = 0

    def put(self, key: bytes, value: bytes) -> None:
        self._db.put(self._prefix + key, value)
        self._cache.pop(key, None)
        self._drop_pending(key)

    def delete(self, key: bytes) -> None:
        self._db.delete(self._prefix + key)
        self._cache.pop(key, None)
        self._drop_pending(key)

    def _drop_pending(self, key: bytes) -> None:
        if key in self.pending:
            old = self.pending.pop(key)
            self.pending_bytes -= len(key) + (0 if old is None else len(old))

    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        p = self._prefix
        stop_key = p + stop if stop is not None else _prefix_stop(p)
        n = len(p)
        stored = ((key[n:], value)
                  for key, value in self._db.iterator(start=p + start, stop=stop_key))
        if not self.pending or (stop is not None and stop <= self.write_back) \
                or start >= self._pending_stop:
            return stored
        local = sorted((k, v) for k, v in self.pending.items()
                       if k >= start and (stop is None or k < stop))
        return merge_writes(stored, local)


class Storage:
    """One node's LevelDB. Open it with `Storage.open`; close it with `close`."""

    def __init__(self, db: plyvel.DB, path: pathlib.Path, meta: StoreMeta) -> None:
        self._db = db
        self.path = path
        self.meta = meta
        self.state_kv = LevelKV(db, _STATE)
        self.metrics = StorageMetrics()
        # Set while writes fail (the first failure); cleared by `recover`.
        self.unavailable: StorageUnavailable | None = None
        # Told once per outage, with the failure (from the thread that wrote: the intake log
        # writes from a worker thread).
        self.on_unavailable: Callable[[StorageUnavailable], None] = lambda exc: None
        # Tests only (tests/node/test_disk_full.py): while set, every write and probe raises
        # it before touching LevelDB, as a handle with LevelDB's sticky error would.
        self.write_fault: BaseException | None = None
        self._lock = threading.Lock()
        self._writing_now = 0  # writes under way (the intake log writes from a thread)
        # The heights of the journal records stored (the blocks whose tree records are
        # pending), and when pending records are flushed (docs/adr/0041; 0 and 0: every block).
        self._journal: list[int] = []
        self.tree_write_back_blocks = TREE_WRITE_BACK_BLOCKS_MAX
        self.tree_write_back_bytes = TREE_WRITE_BACK_BYTES_MAX

    # ------------------------------------------------------------------ opening

    @staticmethod
    def open(path: pathlib.Path, *, chain_id: str, genesis_hash: bytes,
             create: bool = True) -> Storage:
        """Open (or create) the store at `path` for this network; refuse anything else."""
        path = pathlib.Path(path)
        if path.exists() and not path.is_dir():
            raise StorageError(f"data directory {path} is a file, not a directory")
        fresh = not path.exists() or not any(path.iterdir())
        if not fresh and not (path / "CURRENT").exists():
            raise StorageError(
                f"{path} is not empty and holds no Crossbill database (no LevelDB CURRENT "
                "file): refusing to use it; point data_dir at an empty or Crossbill directory")
        if fresh and not create:
            raise StorageError(f"no Crossbill database at {path}")
        path.mkdir(parents=True, exist_ok=True)
        try:
            db = Storage._open_db(path, create=fresh)
        except plyvel.CorruptionError as exc:
            raise StorageError(f"database at {path} is damaged: {exc}; restore it from a "
                               "backup (never reset silently)") from None
        except plyvel.IOError as exc:
            raise StorageError(f"cannot open database at {path}: {exc} (is another node "
                               "running on this data directory?)") from None
        except plyvel.Error as exc:
            raise StorageError(f"cannot open database at {path}: {exc}") from None
        try:
            meta = Storage._check_meta(db, path, chain_id, genesis_hash, fresh)
            storage = Storage(db, path, meta)
            storage._refold_tree()
        except BaseException:
            db.close()
            raise
        return storage

    @staticmethod
    def _open_db(path: pathlib.Path, *, create: bool) -> plyvel.DB:
        return plyvel.DB(str(path), create_if_missing=create, **DB_OPTIONS)

    @staticmethod
    def _check_meta(db: plyvel.DB, path: pathlib.Path, chain_id: str, genesis_hash: bytes,
                    fresh: bool) -> StoreMeta:
        raw = db.get(_META)
        if raw is None:
            has_keys = next(db.iterator(include_value=False), None) is not None
            if has_keys or not fresh:
                raise StorageError(f"{path} is a LevelDB database but not a Crossbill store "
                                   "(no format record): refusing to use it")
            meta = StoreMeta(FORMAT, chain_id, genesis_hash)
            db.put(_META, codec.encode(meta), sync=True)
            return meta
        try:
            meta = codec.decode(StoreMeta, raw)
        except DecodeError as exc:
            raise StorageError(f"{path}: unreadable format record: {exc}") from None
        if meta.format not in _READABLE_FORMATS:
            raise StorageError(f"{path} has store format {meta.format!r}; this node reads "
                               + " and ".join(repr(f) for f in _READABLE_FORMATS))
        if meta.chain_id != chain_id or meta.genesis_hash != genesis_hash:
            raise StorageError(
                f"{path} belongs to chain {meta.chain_id!r} with genesis "
                f"{meta.genesis_hash.hex()[:16]}..., not {chain_id!r} with genesis "
                f"{genesis_hash.hex()[:16]}...: wrong data_dir or wrong genesis file")
        return meta

    def _refold_tree(self) -> None:
        """Hold, as pending records, the tip's state tree: the stored tree (as of the last
        flush) with the rooted keys of the journal's blocks folded in at their stored values.
        The tree is a function of the rooted pairs alone, and those keys are all the pairs
        that changed since the flush (docs/adr/0041)."""
        kv = self.state_kv
        kv.release()
        heights: list[int] = []
        changed: set[bytes] = set()
        for key, raw in self._db.iterator(prefix=_JOURNAL):
            heights.append(int.from_bytes(key[len(_JOURNAL):], "big"))
            changed.update(self._decode(TreeJournal, raw, "state tree journal record").keys)
        self._journal = heights
        if not heights:
            return
        tip = self.tip()
        if tip is None or heights != list(range(heights[0], tip.height + 1)):
            raise StorageError(
                f"{self.path}: the state tree's journal holds blocks {heights[0]} to "
                f"{heights[-1]} ({len(heights)} records), not the blocks up to the tip "
                f"({'none' if tip is None else tip.height}): the store is damaged; restore it "
                "from a backup")
        overlay = Overlay(kv)
        try:
            smt.update(overlay, {key: kv.get(key) for key in sorted(changed)})
        except RuntimeError as exc:  # a tree record smt cannot read
            raise StorageError(f"{self.path}: the state tree is damaged ({exc}); restore it "
                               "from a backup") from None
        kv.hold(overlay.write_set())

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    # ------------------------------------------------------------------ write failures

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Around every write: classify a failure as `StorageUnavailable` (marking the store
        unwritable, logged once); refuse at once while the store is marked so (LevelDB's
        error is sticky: the handle would fail anyway)."""
        with self._lock:
            failed = self.unavailable
            if failed is None:
                self._writing_now += 1
        if failed is not None:
            raise StorageUnavailable(what, self.path, failed.error)
        try:
            if self.write_fault is not None:
                raise self.write_fault
            yield
        except WRITE_ERRORS as exc:
            raise self._failed(what, exc) from None
        finally:
            with self._lock:
                self._writing_now -= 1

    def _failed(self, what: str, exc: BaseException) -> StorageUnavailable:
        """Record a failed write; the first one of an outage is logged and told."""
        error = _describe_error(exc)
        failure = StorageUnavailable(what, self.path, error)
        with self._lock:
            self.metrics.write_failures += 1
            first = self.unavailable is None
            if first:
                self.unavailable = failure
        if first:
            log.error("storage: cannot write %s to %s: %s; stopped ordering and applying; "
                      "will retry every %s s", what, self.path, error,
                      f"{STORAGE_PROBE_INTERVAL_S:g}",
                      extra={"path": str(self.path), "error": error, "what": what})
            self.on_unavailable(failure)
        return failure

    def recover(self) -> bool:
        """Probe a store marked unwritable: write, sync and remove a probe file in the data
        directory; if that works, reopen the LevelDB (clearing its sticky error; the state
        read cache is dropped) and write, sync and delete a probe key. True (and the store
        writable again) when all of it succeeded. Call it from the thread that reads the
        store: the handle is closed and replaced in between (no iterator or snapshot of the
        old handle may be in use)."""
        if self.unavailable is None:
            return True
        with self._lock:
            if self._writing_now:  # a write that started before the failure, in a thread
                return False
        try:
            if self.write_fault is not None:
                raise self.write_fault
            probe = self.path / STORAGE_PROBE_FILE
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"\0" * STORAGE_PROBE_FILE_BYTES)
                os.fsync(fd)
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
            if not self._db.closed:
                self._db.close()  # closes its iterators and snapshots too (plyvel)
            db = self._open_db(self.path, create=False)
            self._db = db
            self.state_kv._db = db
            self.state_kv._cache.clear()
            db.put(_PROBE, b"1", sync=True)
            db.delete(_PROBE, sync=True)
            # The failed batch may have reached the disk, whole, or not at all (ADR 0031):
            # the tree pending in memory is the stored journal's again.
            self._refold_tree()
        except WRITE_ERRORS as exc:
            with self._lock:
                self.metrics.write_failures += 1
            log.debug("storage still not writable at %s: %s", self.path,
                      _describe_error(exc))
            return False
        with self._lock:
            self.unavailable = None
        return True

    @property
    def writable(self) -> bool:
        return self.unavailable is None

    # ------------------------------------------------------------------ blocks

    def tip(self) -> ChainTip | None:
        raw = self._db.get(_TIP)
        return None if raw is None else self._decode(ChainTip, raw, "chain tip")

    def block_bytes(self, height: int) -> bytes | None:
        value: bytes | None = self._db.get(_BLOCK + _u64(height))
        return value

    def block(self, height: int) -> types.Block | None:
        raw = self.block_bytes(height)
        return None if raw is None else self._decode_block(raw, height)

    def blocks_range(self, start: int, count: int) -> list[bytes]:
        """Encoded blocks from `start`, at most `count`, stopping at the first gap."""
        out: list[bytes] = []
        for key, value in self._db.iterator(start=_BLOCK + _u64(start),
                                             stop=_BLOCK + _u64(start + count)):
            if int.from_bytes(key[len(_BLOCK):], "big") != start + len(out):
                break
            out.append(value)
        return out

    def certificate(self, height: int) -> bytes | None:
        """The encoded commit certificate stored for block `height` (ADR 0019), if any."""
        value: bytes | None = self._db.get(_CERT + _u64(height))
        return value

    def put_certificate(self, height: int, certificate: bytes) -> None:
        """Store or replace the certificate of an applied block. Not synced: a certificate
        lost in a crash is gathered again from the orderers' gossip or their block sync."""
        with self._writing(f"the certificate of block {height}"):
            self._db.put(_CERT + _u64(height), certificate, sync=False)

    def height_of(self, block_hash: bytes) -> int | None:
        raw = self._db.get(_BY_HASH + block_hash)
        return None if raw is None else int.from_bytes(raw, "big")

    def receipts(self, height: int) -> tuple[types.Receipt, ...] | None:
        raw = self._db.get(_RECEIPTS + _u64(height))
        return None if raw is None else self._decode(BlockReceipts, raw, "receipts").receipts

    def tx_record(self, tx_id: bytes) -> TxRecord | None:
        raw = self._db.get(_TX + tx_id)
        return None if raw is None else self._decode(TxRecord, raw, "tx record")

    def commit_genesis(self, state_writes: Iterable[tuple[bytes, bytes | None]],
                       tip: ChainTip) -> None:
        """Write the genesis state and the height-0 tip in one synced batch."""
        if self.tip() is not None:
            raise StorageError("refusing to write genesis over an existing chain")
        writes = list(state_writes)
        with self._writing("the genesis state"), \
                self._db.write_batch(transaction=True, sync=True) as wb:
            for key, value in writes:
                if value is not None:
                    wb.put(_STATE + key, value)
            wb.put(_TIP, codec.encode(tip))
        self.state_kv.written(writes)

    def commit_block(self, block: types.Block, receipts: Sequence[types.Receipt],
                     state_writes: Iterable[tuple[bytes, bytes | None]],
                     raft_applied: int | None = None,
                     certificate: bytes | None = None) -> ChainTip:
        """Write a block and everything it changed (and the commit certificate it was
        applied with, if any) in one synced, atomic batch."""
        header = block.header
        tip = self.tip()
        expected = 1 if tip is None else tip.height + 1
        if tip is not None and header.prev_hash != tip.hash:
            raise StorageError(f"refusing to store block {header.height}: it does not extend "
                               "the stored tip")
        if header.height != expected:
            raise StorageError(f"refusing to store block {header.height}: the next height "
                               f"is {expected}")
        if len(receipts) != len(block.txs):
            raise StorageError("one receipt per transaction is required")
        new_tip = ChainTip(header.height, block.hash, header.state_root, header.timestamp_ms)
        kv = self.state_kv
        started = time.monotonic()
        with self._writing(f"block {header.height}"):
            writes = list(state_writes)
            tree = [(key, value) for key, value in writes if key.startswith(_TREE)]
            rest = [(key, value) for key, value in writes if not key.startswith(_TREE)]
            tree_bytes = sum(len(key) + (0 if value is None else len(value))
                             for key, value in tree)
            flush = (len(self._journal) >= self.tree_write_back_blocks
                     or kv.pending_bytes + tree_bytes > self.tree_write_back_bytes)
            upgraded = (None if flush or self.meta.format == FORMAT else
                        StoreMeta(FORMAT, self.meta.chain_id, self.meta.genesis_hash))
            with self._db.write_batch(transaction=True, sync=True) as wb:
                self._block_batch(wb, block, receipts, tree if flush else None, rest,
                                  upgraded, new_tip, raft_applied, certificate)
        if flush:
            kv.release()
            self._journal = []
            self.metrics.tree_flushes += 1
        else:
            kv.hold(tree)
            self._journal.append(header.height)
            if upgraded is not None:
                self.meta = upgraded
        kv.written(writes)
        self.metrics.persist_s["block"].observe(time.monotonic() - started)
        return new_tip

    def _block_batch(self, wb: Any, block: types.Block, receipts: Sequence[types.Receipt],
                     tree: list[tuple[bytes, bytes | None]] | None,
                     rest: list[tuple[bytes, bytes | None]], upgraded: StoreMeta | None,
                     new_tip: ChainTip, raft_applied: int | None,
                     certificate: bytes | None) -> None:
        """Fill one block's write batch (`commit_block`): its state writes other than the
        tree's (`rest`), and either its tree writes over the pending ones (`tree`: a flush) or
        its journal record (`tree` None)."""
        header = block.header
        h = _u64(header.height)
        wb.put(_BLOCK + h, block.encoded)
        wb.put(_RECEIPTS + h, codec.encode(BlockReceipts(tuple(receipts))))
        wb.put(_BY_HASH + block.hash, h)
        for i, (tx, receipt) in enumerate(zip(block.txs, receipts, strict=True)):
            wb.put(_TX + tx.id, codec.encode(TxRecord(header.height, i, receipt)))
        if tree is not None:  # the pending tree records, then this block's over them
            _put_state(wb, self.state_kv.pending.items())
            _put_state(wb, tree)
            for height in self._journal:
                wb.delete(_JOURNAL + _u64(height))
        else:
            wb.put(_JOURNAL + h, codec.encode(TreeJournal(tuple(sorted(
                key for key, _ in rest if ledger_keys.is_rooted(key))))))
        if upgraded is not None:
            wb.put(_META, codec.encode(upgraded))
        _put_state(wb, rest)
        wb.put(_TIP, codec.encode(new_tip))
        if raft_applied is not None:
            wb.put(_RAFT_APPLIED, _u64(raft_applied))
        if certificate is not None:
            wb.put(_CERT + h, certificate)

    # ------------------------------------------------------------------ intake log

    def log_intake(self, txs: Sequence[types.Tx]) -> None:
        """Persist client transactions this node acknowledges, in one synced batch (one
        fsync for the group; docs/adr/0021)."""
        started = time.monotonic()
        with self._writing(f"{len(txs)} transactions to the intake log"), \
                self._db.write_batch(sync=True) as wb:
            for tx in txs:
                wb.put(INTAKE_KEY_PREFIX + tx.id, tx.encoded)
        self.metrics.persist_s["intake"].observe(time.monotonic() - started)

    def forget_intake(self, tx_ids: Iterable[bytes]) -> None:
        """Drop transactions from the intake log (committed, expired or refused). Not synced:
        one that comes back after a crash is found committed (or expired) and dropped then."""
        with self._writing("intake log deletions"), self._db.write_batch() as wb:
            for tx_id in tx_ids:
                wb.delete(INTAKE_KEY_PREFIX + tx_id)

    def intake_log(self) -> Iterator[tuple[bytes, bytes]]:
        """(tx id, encoded transaction) of every entry of the intake log, in id order."""
        for key, value in self._db.iterator(prefix=INTAKE_KEY_PREFIX):
            yield key[len(INTAKE_KEY_PREFIX):], value

    # ------------------------------------------------------------------ raft

    def raft_state(self) -> tuple[HardState | None, Snapshot | None, list[Entry], int]:
        """(hard state, snapshot, entries after the snapshot in order, applied index)."""
        hard_raw = self._db.get(_RAFT_HARD)
        snap_raw = self._db.get(_RAFT_SNAP)
        hard = None if hard_raw is None else self._decode(HardState, hard_raw, "raft hard state")
        snap = None if snap_raw is None else self._decode(Snapshot, snap_raw, "raft snapshot")
        entries = [self._decode_entry(v) for _, v in self._db.iterator(prefix=_RAFT_ENTRY)]
        for prev, nxt in itertools.pairwise(entries):
            if nxt.index != prev.index + 1:
                raise StorageError(f"{self.path}: Raft log has a gap after index {prev.index}")
        applied_raw = self._db.get(_RAFT_APPLIED)
        applied = 0 if applied_raw is None else int.from_bytes(applied_raw, "big")
        return hard, snap, entries, applied

    def save_raft(self, hard_state: HardState | None, entries: Sequence[Entry],
                  snapshot: Snapshot | None, *, sync: bool = True) -> None:
        """Persist what a Raft Ready asks for in one batch (see protocol/raft), synced unless
        `sync` is False: a Ready that only moves the commit index (`Ready.must_sync` False, as
        etcd) needs no fsync of its own; the next synced write to this store makes it durable,
        and losing it only lowers the commit index read back (the restart takes the applied
        block's index as committed: `protocol.replica.commit_index_on_restart`)."""
        if hard_state is None and not entries and snapshot is None:
            return
        started = time.monotonic()
        with self._writing("the Raft log"), \
                self._db.write_batch(transaction=True, sync=sync) as wb:
            if snapshot is not None:
                for key in self._db.iterator(prefix=_RAFT_ENTRY, include_value=False):
                    wb.delete(key)
                wb.put(_RAFT_SNAP, codec.encode(snapshot))
            if entries:
                first = entries[0].index
                for key in self._db.iterator(start=_RAFT_ENTRY + _u64(first),
                                             stop=_prefix_stop(_RAFT_ENTRY),
                                             include_value=False):
                    wb.delete(key)
                for e in entries:
                    wb.put(_RAFT_ENTRY + _u64(e.index), encode_entry(e))
            if hard_state is not None:
                wb.put(_RAFT_HARD, codec.encode(hard_state))
        self.metrics.persist_s["raft"].observe(time.monotonic() - started)

    def compact_raft(self, snapshot: Snapshot) -> int:
        """Record `snapshot` and drop the log entries it covers; returns entries dropped."""
        dropped = 0
        started = time.monotonic()
        with self._writing("a Raft log compaction"), \
                self._db.write_batch(transaction=True, sync=True) as wb:
            wb.put(_RAFT_SNAP, codec.encode(snapshot))
            for key in self._db.iterator(start=_RAFT_ENTRY,
                                         stop=_RAFT_ENTRY + _u64(snapshot.meta.index + 1),
                                         include_value=False):
                wb.delete(key)
                dropped += 1
        self.metrics.persist_s["compact"].observe(time.monotonic() - started)
        return dropped

    # ------------------------------------------------------------------ helpers

    def check_writable(self) -> None:
        """Raise StorageError unless a synced write to the store succeeds now (a failure
        marks the store unwritable, as any write's would); StorageUnavailable at once while
        it is marked so."""
        try:
            with self._writing("a readiness probe"):
                self._db.put(_PROBE, b"1", sync=True)
        except RuntimeError as exc:  # the database is closed
            raise StorageError(f"{self.path}: not writable: {exc}") from None

    def metrics_snapshot(self) -> StorageSnapshot:
        """Durations of the synced write batches so far, failed writes, and whether the
        store is writable, for the metrics. (`snapshot` is the store's consistent read
        view.)"""
        failed = self.unavailable
        return self.metrics.snapshot(error="" if failed is None else str(failed),
                                     tree_pending_bytes=self.state_kv.pending_bytes,
                                     tree_pending_blocks=len(self._journal))

    # ------------------------------------------------------------------ operations

    def snapshot(self) -> StoreSnapshot:
        """A consistent read-only view of the whole store as of now. Every committed block is
        one write batch, so the view always lies between two blocks. Close it when done."""
        return StoreSnapshot(self._db.snapshot(), self.path)

    def compact(self) -> None:
        """Compact the whole key range (LevelDB compact_range; may take a while)."""
        self._db.compact_range()

    def _decode_entry(self, raw: bytes) -> Entry:
        try:
            return decode_entry(raw)
        except DecodeError as exc:
            raise StorageError(f"{self.path}: stored raft entry is damaged: {exc}") from None

    def _decode(self, cls: type, raw: bytes, what: str):  # type: ignore[no-untyped-def]
        try:
            return codec.decode(cls, raw)
        except DecodeError as exc:
            raise StorageError(f"{self.path}: damaged {what}: {exc}") from None

    def _decode_block(self, raw: bytes, height: int) -> types.Block:
        try:
            return types.Block.decode(raw)
        except DecodeError as exc:
            raise StorageError(f"{self.path}: damaged block {height}: {exc}") from None


class StoreSnapshot:
    """A LevelDB snapshot of a `Storage`: reads see the store as it was when it was taken.
    Usable from a worker thread; close it before the store closes."""

    def __init__(self, snapshot: Any, path: pathlib.Path) -> None:
        self._snapshot = snapshot
        self.path = path

    def __enter__(self) -> StoreSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._snapshot.close()

    def tip(self) -> ChainTip | None:
        raw = self._snapshot.get(_TIP)
        if raw is None:
            return None
        try:
            return codec.decode(ChainTip, raw)
        except DecodeError as exc:
            raise StorageError(f"{self.path}: damaged chain tip: {exc}") from None

    def items(self, exclude_prefixes: tuple[bytes, ...] = ()) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) in key order, except keys starting with one of the prefixes."""
        for key, value in self._snapshot.iterator():
            if exclude_prefixes and key.startswith(exclude_prefixes):
                continue
            yield key, value


def write_new_store(path: pathlib.Path, items: Iterable[tuple[bytes, bytes]],
                    batch_keys: int) -> int:
    """Create a new LevelDB at `path` (refused if one exists there) holding `items`, written
    in synced batches of `batch_keys`. Returns the number of keys."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        db = plyvel.DB(str(path), create_if_missing=True, error_if_exists=True)
    except plyvel.Error as exc:
        raise StorageError(f"cannot create a database at {path}: {exc}") from None
    count = 0
    try:
        wb = db.write_batch(sync=True)
        pending = 0
        for key, value in items:
            wb.put(key, value)
            count += 1
            pending += 1
            if pending >= batch_keys:
                wb.write()
                wb = db.write_batch(sync=True)
                pending = 0
        wb.write()
    finally:
        db.close()
    return count


def database_in_use(path: pathlib.Path) -> bool:
    """Whether another process (or this one) holds the LevelDB lock at `path`: a running node.
    False when `path` holds no LevelDB."""
    if not (path / "CURRENT").exists():
        return False
    try:
        db = plyvel.DB(str(path), create_if_missing=False)
    except plyvel.IOError:
        return True
    except plyvel.Error:
        return False
    db.close()
    return False
