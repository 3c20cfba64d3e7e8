"""The library half of backup, restore and the ledger check (docs/adr/0011): what the running
node does for `admin.backup` and what the offline commands of node/cli/ops.py call.

A backup is made by the node itself (`admin.backup`, node/rpc/methods.py): the node holds the
LevelDB lock, so nothing else can read its store while it runs. It takes a LevelDB snapshot on
the event loop (every committed block is one write batch, so the snapshot lies between two
blocks) and copies every key except Raft's (`r:`) into a new LevelDB in a worker thread:

    <backup_dir>/<name>/store/          the LevelDB (Crossbill store format, no Raft state)
    <backup_dir>/<name>/manifest.json   format, chain, genesis, height, tip, state root, key
                                        count, content digest, creation time, version

A backup appears under its name only when complete (written under a hidden staging name,
then renamed). `restore` copies a backup into a node's data directory after checking it
against the node's genesis and re-checking the whole ledger; `check_ledger` re-applies every
block from genesis on a fresh in-memory state and compares everything the store holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pathlib
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any, Final

import orjson
import trio

from node.config import NodeConfig, load_config
from node.observe.progress import CopyProgress
from node.storage.store import (
    INTAKE_KEY_PREFIX,
    RAFT_KEY_PREFIX,
    Storage,
    StorageError,
    StoreSnapshot,
    TxRecord,
    database_in_use,
    write_new_store,
)
from protocol import ledger, limits, types, validation
from protocol.errors import CrossbillError, DecodeError, ValidationError
from protocol.genesis import load_genesis
from protocol.ledger import keys as ledger_keys

MANIFEST_FORMAT: Final = "crossbill-backup-1"
MANIFEST_FILE: Final = "manifest.json"
STORE_DIR: Final = "store"
EXCLUDED_PREFIXES: Final = (RAFT_KEY_PREFIX, INTAKE_KEY_PREFIX)
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CONTENT_DOMAIN: Final = b"crossbill/backup-content\x00"
# The copy looks at the clock for a progress line every this many keys (lines themselves come
# at most every PROGRESS_INTERVAL_S, node/observe/progress.py).
BACKUP_PROGRESS_CHECK_KEYS: Final = 256

log = logging.getLogger("crossbill.backup")


class OpsError(CrossbillError):
    """An operator command that cannot be carried out; the message says why and what to do."""


class BusyError(OpsError):
    """Another admin job (backup or compaction) is running on this node."""


def version() -> str:
    try:
        return metadata.version("crossbill")
    except metadata.PackageNotFoundError:
        return "unknown"


def check_backup_name(name: object) -> str:
    """`name` if it is a safe single directory name, else `OpsError`."""
    if (not isinstance(name, str) or not 0 < len(name) <= limits.BACKUP_NAME_CHARS_MAX
            or not _NAME.fullmatch(name)):
        raise OpsError(f"a backup name is 1-{limits.BACKUP_NAME_CHARS_MAX} characters of "
                       "[A-Za-z0-9._-] starting with a letter or digit")
    return name


# ---------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class Manifest:
    format: str
    institution: str
    chain_id: str
    genesis_hash: str
    height: int
    tip_hash: str
    state_root: str
    key_count: int
    content_sha256: str
    excluded_prefixes: tuple[str, ...]
    created_at: str
    created_ms: int
    crossbill_version: str

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["excluded_prefixes"] = list(self.excluded_prefixes)
        return out

    def dumps(self) -> bytes:
        return orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


_HEX64: Final = re.compile(r"[0-9a-f]{64}")


def read_manifest(backup: pathlib.Path) -> Manifest:
    """The manifest of the backup directory `backup`, checked field by field."""
    path = backup / MANIFEST_FILE
    try:
        with open(path, "rb") as f:
            raw = f.read(limits.BACKUP_MANIFEST_BYTES_MAX + 1)
    except OSError as exc:
        raise OpsError(f"{backup} is not a Crossbill backup: cannot read {path.name} "
                       f"({exc.strerror})") from None
    if len(raw) > limits.BACKUP_MANIFEST_BYTES_MAX:
        raise OpsError(f"{path}: larger than {limits.BACKUP_MANIFEST_BYTES_MAX} bytes")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise OpsError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise OpsError(f"{path}: expected a JSON object")
    if data.get("format") != MANIFEST_FORMAT:
        raise OpsError(f"{path}: format {data.get('format')!r}; this Crossbill reads "
                       f"{MANIFEST_FORMAT!r}")
    fields: dict[str, Any] = {f: data.get(f) for f in Manifest.__dataclass_fields__}
    for name in ("institution", "chain_id", "created_at", "crossbill_version"):
        if not isinstance(fields[name], str):
            raise OpsError(f"{path}: {name} must be a string")
    for name in ("height", "key_count", "created_ms"):
        if type(fields[name]) is not int or fields[name] < 0:
            raise OpsError(f"{path}: {name} must be a non-negative integer")
    for name in ("genesis_hash", "tip_hash", "state_root", "content_sha256"):
        if not isinstance(fields[name], str) or not _HEX64.fullmatch(fields[name]):
            raise OpsError(f"{path}: {name} must be 64 lowercase hex characters")
    prefixes = fields["excluded_prefixes"]
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
        raise OpsError(f"{path}: excluded_prefixes must be a list of strings")
    fields["excluded_prefixes"] = tuple(prefixes)
    if RAFT_KEY_PREFIX.decode() not in prefixes:
        raise OpsError(f"{path}: this backup may hold Raft state (r: is not excluded): "
                       "refusing it")
    return Manifest(**fields)


class _Digest:
    """SHA-256 over the (key, value) pairs of a store, in key order, length-prefixed."""

    def __init__(self) -> None:
        self._h = hashlib.sha256(_CONTENT_DOMAIN)
        self.count = 0

    def add(self, key: bytes, value: bytes) -> None:
        self._h.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(8, "big"))
        self._h.update(value)
        self.count += 1

    def hexdigest(self) -> str:
        return self._h.hexdigest()


# ---------------------------------------------------------------------- backup


def write_backup(snapshot: StoreSnapshot, dest: pathlib.Path, *, institution: str,
                 chain_id: str, genesis_hash: bytes,
                 checkpoint: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic,
                 on_progress: Callable[[int, int], None] = lambda keys, nbytes: None
                 ) -> Manifest:
    """Copy `snapshot` (without Raft state) into a new backup directory `dest`.

    Blocking: run it in a worker thread. `checkpoint` is called every
    `BACKUP_CANCEL_CHECK_KEYS` keys and may raise to abort (the staging directory is removed).
    Logs a progress line (keys and bytes copied) at info level at most every
    PROGRESS_INTERVAL_S seconds of `clock`, and a summary at the end. No percentage: the
    number of keys is known only once they are all read. `on_progress(keys, bytes)` hears
    the counts every `BACKUP_PROGRESS_CHECK_KEYS` keys (`admin.job` tells them).
    """
    tip = snapshot.tip()
    if tip is None:
        raise OpsError("the store holds no chain yet: nothing to back up")
    if dest.exists():
        raise OpsError(f"a backup named {dest.name!r} already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.partial-{os.getpid()}-{os.urandom(4).hex()}"
    digest = _Digest()
    progress = CopyProgress(f"backup {dest.name}", clock())
    copied_bytes = 0

    def items() -> Iterator[tuple[bytes, bytes]]:
        nonlocal copied_bytes
        for key, value in snapshot.items(exclude_prefixes=EXCLUDED_PREFIXES):
            if digest.count % limits.BACKUP_CANCEL_CHECK_KEYS == 0:
                checkpoint()
            if digest.count % BACKUP_PROGRESS_CHECK_KEYS == 0:
                on_progress(digest.count, copied_bytes)
                if line := progress.observe(clock(), digest.count, copied_bytes):
                    log.info("%s", line)
            digest.add(key, value)
            copied_bytes += len(key) + len(value)
            yield key, value

    now = time.time()
    try:
        count = write_new_store(staging / STORE_DIR, items(), limits.BACKUP_WRITE_BATCH_KEYS)
        manifest = Manifest(
            format=MANIFEST_FORMAT, institution=institution, chain_id=chain_id,
            genesis_hash=genesis_hash.hex(), height=tip.height, tip_hash=tip.hash.hex(),
            state_root=tip.state_root.hex(), key_count=count,
            content_sha256=digest.hexdigest(),
            excluded_prefixes=tuple(p.decode() for p in EXCLUDED_PREFIXES),
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            created_ms=int(now * 1000), crossbill_version=version())
        _write_synced(staging / MANIFEST_FILE, manifest.dumps() + b"\n")
        _fsync_tree(staging)
        if dest.exists():
            raise OpsError(f"a backup named {dest.name!r} already exists")
        os.rename(staging, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("%s, height %d, to %s", progress.summary(clock(), count, copied_bytes),
             tip.height, dest)
    return manifest


class AdminJobs:
    """Runs one admin job (backup or compaction) of a live node at a time, in a worker
    thread; a second request while one runs gets `BusyError`."""

    def __init__(self) -> None:
        self.running: str | None = None
        self.started = 0.0
        self.keys = 0      # copied so far by the running backup (written by its thread)
        self.bytes = 0

    def status(self) -> dict[str, Any]:
        """The running job, if any: what, for how long, and what a backup copied so far."""
        if self.running is None:
            return {"running": None}
        return {"running": self.running, "seconds": round(time.monotonic() - self.started, 3),
                "keys": self.keys, "bytes": self.bytes}

    def _progress(self, keys: int, nbytes: int) -> None:
        self.keys, self.bytes = keys, nbytes

    @contextlib.contextmanager
    def _slot(self, job: str) -> Iterator[None]:
        if self.running is not None:
            raise BusyError(f"busy: a {self.running} started "
                            f"{time.monotonic() - self.started:.1f} s ago is still running; "
                            "retry when it has finished")
        self.running, self.started = job, time.monotonic()
        self.keys = self.bytes = 0
        try:
            yield
        finally:
            self.running = None

    async def backup(self, storage: Storage, backup_dir: pathlib.Path, name: str,
                     institution: str) -> dict[str, Any]:
        dest = backup_dir / check_backup_name(name)
        with self._slot("backup"):
            started = time.monotonic()
            # Taken on the event loop, between two blocks' write batches.
            snapshot = storage.snapshot()
            try:
                manifest = await trio.to_thread.run_sync(lambda: write_backup(
                    snapshot, dest, institution=institution, chain_id=storage.meta.chain_id,
                    genesis_hash=storage.meta.genesis_hash,
                    checkpoint=trio.from_thread.check_cancelled, on_progress=self._progress))
            finally:
                snapshot.close()
            return {"name": name, "dir": str(dest), "bytes": dir_bytes(dest),
                    "seconds": round(time.monotonic() - started, 3),
                    "manifest": manifest.to_json()}

    async def compact(self, storage: Storage) -> dict[str, Any]:
        with self._slot("compaction"):
            started = time.monotonic()
            before = dir_bytes(storage.path)
            await trio.to_thread.run_sync(storage.compact)
            return {"bytes_before": before, "bytes_after": dir_bytes(storage.path),
                    "seconds": round(time.monotonic() - started, 3)}


# ---------------------------------------------------------------------- ledger check


@dataclass
class CheckReport:
    """What `check_ledger` found. `problem` names the first mismatch (None: all agree)."""

    height: int = 0
    blocks: int = 0
    txs: int = 0
    state_keys: int = 0
    state_root: bytes = b""
    tip_hash: bytes = b""
    seconds: float = 0.0
    problem: str | None = None
    problem_height: int | None = None
    problem_key: bytes | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def blocks_per_s(self) -> float:
        return self.blocks / self.seconds if self.seconds > 0 else 0.0


class _Mismatch(Exception):
    def __init__(self, message: str, height: int | None = None,
                 key: bytes | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.height = height
        self.key = key


def show_key(key: bytes) -> str:
    """A ledger or store key for people: NUL separators as '/', other bytes escaped."""
    text = key.replace(b"\x00", b"/").decode("utf-8", "backslashreplace")
    return text if len(text) <= 160 else text[:157] + "..."


Progress = Callable[[int, int, float], None]


def check_ledger(storage: Storage, config: types.ConsortiumConfig,
                 progress: Progress | None = None) -> CheckReport:
    """Re-apply every stored block from genesis on a fresh in-memory ledger state and compare.

    Per block: it is present and decodes, the hash index points at it, it links to its parent,
    `validate_basic_block` passes (proposer and transaction signatures, tx root), and the
    re-computed state root, receipts root, receipts and transaction index entries equal the
    stored ones. Then the chain tip, no block past it, and the stored ledger state key by key
    (and its state root recomputed from scratch). Stops at the first mismatch.
    """
    report = CheckReport()
    started = time.monotonic()
    try:
        _check(storage, config, report, progress, started)
    except _Mismatch as exc:
        report.problem, report.problem_height, report.problem_key = (
            exc.message, exc.height, exc.key)
    report.seconds = time.monotonic() - started
    return report


def _check(storage: Storage, config: types.ConsortiumConfig, report: CheckReport,
           progress: Progress | None, started: float) -> None:
    if storage.meta.chain_id != config.chain_id or storage.meta.genesis_hash != config.hash:
        raise _Mismatch(f"the store belongs to chain {storage.meta.chain_id!r}, not "
                        f"{config.chain_id!r} with this genesis")
    try:
        tip = storage.tip()
    except StorageError as exc:
        raise _Mismatch(f"chain tip: {exc}") from None
    if tip is None:
        raise _Mismatch("the store holds no chain tip (genesis was never written)")
    state = ledger.initial_state(config)
    prev_hash, prev_height, prev_time = config.hash, 0, config.genesis_time_ms
    state_root = state.state_root()
    last_report = started
    for height in range(1, tip.height + 1):
        header = _check_block(storage, state, config, height, prev_hash, prev_height,
                              prev_time, report)
        prev_hash, prev_height, prev_time = header.hash, height, header.timestamp_ms
        state_root = header.state_root
        report.height = height
        report.blocks += 1
        now = time.monotonic()
        if progress is not None and now - last_report >= limits.LEDGER_CHECK_PROGRESS_INTERVAL_S:
            last_report = now
            progress(height, tip.height, now - started)
    if (tip.height, tip.hash, tip.state_root, tip.timestamp_ms) != (
            prev_height, prev_hash, state_root, prev_time):
        raise _Mismatch(f"the chain tip (height {tip.height}, hash {tip.hash.hex()[:16]}..., "
                        f"root {tip.state_root.hex()[:16]}...) does not match block "
                        f"{prev_height} (hash {prev_hash.hex()[:16]}..., root "
                        f"{state_root.hex()[:16]}...)", height=tip.height)
    if storage.blocks_range(tip.height + 1, 1):
        raise _Mismatch(f"a block is stored at height {tip.height + 1}, past the chain tip",
                        height=tip.height + 1)
    report.tip_hash, report.state_root = tip.hash, tip.state_root
    report.state_keys = _compare_state(storage, state)
    rooted = ((k, v) for k, v in storage.state_kv.iterate(b"", None)
              if ledger_keys.is_rooted(k))
    scratch_root = ledger.compute_root(rooted)
    if scratch_root != tip.state_root:
        raise _Mismatch(f"the stored ledger records hash to state root "
                        f"{scratch_root.hex()[:16]}... from scratch, the tip says "
                        f"{tip.state_root.hex()[:16]}...", height=tip.height)


def _check_block(storage: Storage, state: ledger.State, config: types.ConsortiumConfig,
                 height: int, prev_hash: bytes, prev_height: int, prev_time: int,
                 report: CheckReport) -> types.BlockHeader:
    def fail(message: str) -> _Mismatch:
        return _Mismatch(f"block {height}: {message}", height=height)

    raw = storage.block_bytes(height)
    if raw is None:
        raise fail("missing")
    try:
        block = types.Block.decode(raw)
    except DecodeError as exc:
        raise fail(f"does not decode: {exc}") from None
    header = block.header
    if header.height != height:
        raise fail(f"stored at height {height} but says height {header.height}")
    indexed = storage.height_of(block.hash)
    if indexed != height:
        raise fail(f"its hash {block.hash.hex()[:16]}... is indexed at "
                   f"{'no height' if indexed is None else f'height {indexed}'}: the block "
                   "bytes were altered or the hash index is damaged")
    try:
        validation.validate_chain_link(prev_hash, prev_height, prev_time, header)
        validation.validate_basic_block(
            block, chain_id=config.chain_id, registry=state, orderers=state.chain.orderers,
            params=state.params, protocol_version=state.protocol_version(height))
    except ValidationError as exc:
        raise fail(str(exc)) from None
    result = ledger.apply_block(state, block)
    if result.state_root != header.state_root:
        raise fail(f"re-applied state root {result.state_root.hex()[:16]}..., the header says "
                   f"{header.state_root.hex()[:16]}...")
    if result.receipts_root != header.receipts_root:
        raise fail(f"re-applied receipts root {result.receipts_root.hex()[:16]}..., the "
                   f"header says {header.receipts_root.hex()[:16]}...")
    try:
        stored = storage.receipts(height)
    except StorageError as exc:
        raise fail(f"stored receipts: {exc}") from None
    if stored is None:
        raise fail("its receipts are missing")
    if stored != result.receipts:
        first = next((i for i, (a, b) in enumerate(zip(stored, result.receipts, strict=False))
                      if a != b), min(len(stored), len(result.receipts)))
        raise fail(f"stored receipt {first} differs from the re-computed one")
    for index, (tx, receipt) in enumerate(zip(block.txs, result.receipts, strict=True)):
        _check_tx_record(storage, tx, height, index, receipt, fail)
    result.commit(state)
    report.txs += len(block.txs)
    return header


def _check_tx_record(storage: Storage, tx: types.Tx, height: int, index: int,
                     receipt: types.Receipt, fail: Callable[[str], _Mismatch]) -> None:
    try:
        record = storage.tx_record(tx.id)
    except StorageError as exc:
        raise fail(f"transaction index entry of tx {index}: {exc}") from None
    if record is None:
        raise fail(f"transaction {index} ({tx.id.hex()[:16]}...) is missing from the index")
    # A later block may carry the same transaction again (rejected as a replay): the index
    # names the latest place.
    if (record.height, record.index) < (height, index):
        raise fail(f"the index places transaction {index} at block {record.height} "
                   f"position {record.index}")
    if (record.height, record.index) == (height, index) and record != TxRecord(
            height, index, receipt):
        raise fail(f"the index holds another receipt for transaction {index}")


def _compare_state(storage: Storage, state: ledger.State) -> int:
    """Compare the stored ledger state with the recomputed one key by key; returns the count."""
    stored = storage.state_kv.iterate(b"", None)
    computed = iter(state.kv.iterate(b"", None))
    count = 0
    end = (None, None)
    a_key, a_value = next(stored, end)
    b_key, b_value = next(computed, end)
    while a_key is not None or b_key is not None:
        if b_key is None or (a_key is not None and a_key < b_key):
            assert a_key is not None
            raise _Mismatch(f"state key {show_key(a_key)} is stored but the re-applied "
                            "chain does not have it", key=a_key)
        if a_key is None or b_key < a_key:
            raise _Mismatch(f"state key {show_key(b_key)} is missing from the store",
                            key=b_key)
        if a_value != b_value:
            raise _Mismatch(f"state key {show_key(a_key)}: the stored value differs from "
                            "the re-applied one", key=a_key)
        count += 1
        a_key, a_value = next(stored, end)
        b_key, b_value = next(computed, end)
    return count


def format_report(report: CheckReport) -> str:
    lines = ["ledger check: " + ("OK" if report.ok else "FAILED")]
    if not report.ok:
        lines.append(f"  first mismatch  {report.problem}")
    lines += [
        f"  blocks          {report.blocks} checked (up to height {report.height}), "
        f"{report.txs} transactions",
        f"  time            {report.seconds:.2f} s, {report.blocks_per_s:.0f} blocks/s",
    ]
    if report.ok:
        lines += [f"  state           {report.state_keys} keys, root "
                  f"{report.state_root.hex()}",
                  f"  tip             {report.tip_hash.hex()}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------- restore


@dataclass(frozen=True)
class RestoreResult:
    data_dir: pathlib.Path
    moved_aside: pathlib.Path | None
    manifest: Manifest
    report: CheckReport


def restore(backup: pathlib.Path, data_dir: pathlib.Path, config: types.ConsortiumConfig, *,
            force: bool = False, progress: Progress | None = None) -> RestoreResult:
    """Restore `backup` into `data_dir` for the network of `config` (the node is stopped).

    Refuses a backup of another chain or genesis, a backup that fails the ledger check or its
    manifest, a data directory in use, and a non-empty data directory unless `force` (which
    moves it aside, never deletes it). Raft state is never restored.
    """
    backup = pathlib.Path(backup)
    data_dir = pathlib.Path(data_dir)
    manifest = read_manifest(backup)
    if manifest.chain_id != config.chain_id or manifest.genesis_hash != config.hash.hex():
        raise OpsError(f"{backup} is a backup of chain {manifest.chain_id!r} with genesis "
                       f"{manifest.genesis_hash[:16]}..., but this node's genesis is chain "
                       f"{config.chain_id!r} with genesis {config.hash.hex()[:16]}...: "
                       "refusing a foreign backup")
    if not (backup / STORE_DIR / "CURRENT").is_file():
        raise OpsError(f"{backup} holds no {STORE_DIR}/ LevelDB: not a complete backup")
    if data_dir.exists() and not data_dir.is_dir():
        raise OpsError(f"data directory {data_dir} is a file")
    if database_in_use(data_dir):
        raise OpsError(f"data directory {data_dir} is in use: stop the node first")
    occupied = data_dir.is_dir() and any(data_dir.iterdir())
    if occupied and not force:
        raise OpsError(f"data directory {data_dir} is not empty: pass --force to move it "
                       "aside (it is kept, never deleted) and restore into a fresh one")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = data_dir.parent / f".{data_dir.name}.restore-{stamp}-{os.urandom(4).hex()}"
    moved: pathlib.Path | None = None
    try:
        shutil.copytree(backup / STORE_DIR, staging)
        report = _verify_staged(staging, manifest, config, progress)
        _fsync_tree(staging)
        if occupied:
            moved = _free_name(data_dir.parent / f"{data_dir.name}.before-restore-{stamp}")
            os.rename(data_dir, moved)
        elif data_dir.exists():
            data_dir.rmdir()
        os.rename(staging, data_dir)
        _fsync_dir(data_dir.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RestoreResult(data_dir, moved, manifest, report)


def _verify_staged(staging: pathlib.Path, manifest: Manifest,
                   config: types.ConsortiumConfig, progress: Progress | None) -> CheckReport:
    try:
        storage = Storage.open(staging, chain_id=config.chain_id, genesis_hash=config.hash,
                               create=False)
    except StorageError as exc:
        raise OpsError(f"the backup's store cannot be opened: {exc}") from None
    try:
        report = check_ledger(storage, config, progress)
        if not report.ok:
            raise OpsError(f"the backup fails the ledger check: {report.problem}")
        if (report.height, report.tip_hash.hex(), report.state_root.hex()) != (
                manifest.height, manifest.tip_hash, manifest.state_root):
            raise OpsError(f"the backup's store ends at height {report.height} "
                           f"({report.tip_hash.hex()[:16]}...), its manifest says "
                           f"{manifest.height} ({manifest.tip_hash[:16]}...)")
        digest = _Digest()
        with storage.snapshot() as snap:
            for key, value in snap.items():
                if key.startswith(RAFT_KEY_PREFIX):
                    raise OpsError(f"the backup holds Raft state ({show_key(key)}): refusing it")
                digest.add(key, value)
        if (digest.count, digest.hexdigest()) != (manifest.key_count, manifest.content_sha256):
            raise OpsError(f"the backup's store ({digest.count} keys) does not match its "
                           f"manifest ({manifest.key_count} keys, content digest "
                           f"{manifest.content_sha256[:16]}...): it was altered")
    finally:
        storage.close()
    return report


def _free_name(path: pathlib.Path) -> pathlib.Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


# ---------------------------------------------------------------------- files


def _write_synced(path: pathlib.Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: pathlib.Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(pathlib.Path(dirpath))


def dir_bytes(root: pathlib.Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            with contextlib.suppress(OSError):  # LevelDB may delete a file under us
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


# ---------------------------------------------------------------------- command line


def load_node_config_file(path: pathlib.Path) -> NodeConfig:
    return load_config(path)


def load_genesis_file(path: pathlib.Path) -> types.ConsortiumConfig:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OpsError(f"cannot read genesis {path}: {exc.strerror}") from None
    return load_genesis(data)


def open_store(data_dir: pathlib.Path, config: types.ConsortiumConfig) -> Storage:
    if not data_dir.is_dir():
        raise OpsError(f"no data directory at {data_dir}")
    if database_in_use(data_dir):
        raise OpsError(f"data directory {data_dir} is in use: stop the node first (offline "
                       "command)")
    return Storage.open(data_dir, chain_id=config.chain_id, genesis_hash=config.hash,
                        create=False)
