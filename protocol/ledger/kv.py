"""The key-value interface the ledger state lives behind, an in-memory store and overlays.

`KV` is what LevelDB (plyvel) offers: get, put, delete and ordered iteration over a key range,
bytes keys and bytes values. `MemoryKV` backs tests and benchmarks; the node wraps plyvel.

`Overlay` collects writes over a parent store without touching it: the ledger applies a block
into one overlay (the block's write set, committed by the node in one atomic batch) and each
transaction into a child overlay that is merged into the block overlay when the transaction is
accepted and dropped when it is rejected.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from typing import Final, Protocol

from protocol import limits

# Keys per chunk of `MemoryKV`'s ordered index (a chunked sorted list: O(log n + chunk) insert).
_CHUNK_KEYS: Final = 512


class KV(Protocol):
    """Ordered bytes-to-bytes store. `iterate(start, stop)` yields ``(key, value)`` pairs with
    ``start <= key < stop`` in ascending key order (``stop=None``: to the end)."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]: ...


def prefix_stop(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key that starts with `prefix` (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def iterate_prefix(kv: KV, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    return kv.iterate(prefix, prefix_stop(prefix))


class MemoryKV:
    """A dict with an ordered key index, for tests and benchmarks."""

    __slots__ = ("_chunks", "_data", "_maxes")

    def __init__(self, items: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._data: dict[bytes, bytes] = {}
        self._chunks: list[list[bytes]] = []
        self._maxes: list[bytes] = []
        self.bulk_load(items)

    def bulk_load(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Add many pairs at once (sorts once instead of inserting key by key)."""
        self._data.update((k, _compact(v)) for k, v in items)
        keys = sorted(self._data)
        self._chunks = [keys[i:i + _CHUNK_KEYS] for i in range(0, len(keys), _CHUNK_KEYS)]
        self._maxes = [chunk[-1] for chunk in self._chunks]

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return self.iterate(b"", None)

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        if key not in self._data:
            self._index_insert(key)
        self._data[key] = _compact(value)

    def delete(self, key: bytes) -> None:
        if key in self._data:
            del self._data[key]
            self._index_remove(key)

    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        # Snapshot the keys of the range first so callers may write while iterating.
        return iter([(k, self._data[k]) for k in self._keys_in(start, stop)])

    def _keys_in(self, start: bytes, stop: bytes | None) -> list[bytes]:
        out: list[bytes] = []
        i = bisect_left(self._maxes, start)
        first = True
        while i < len(self._chunks):
            chunk = self._chunks[i]
            j = bisect_left(chunk, start) if first else 0
            first = False
            if stop is not None and chunk[-1] >= stop:
                out.extend(chunk[j:bisect_left(chunk, stop)])
                return out
            out.extend(chunk[j:])
            i += 1
        return out

    def _index_insert(self, key: bytes) -> None:
        if not self._chunks:
            self._chunks.append([key])
            self._maxes.append(key)
            return
        i = bisect_left(self._maxes, key)
        if i == len(self._chunks):
            i -= 1
        chunk = self._chunks[i]
        insort(chunk, key)
        self._maxes[i] = chunk[-1]
        if len(chunk) > 2 * _CHUNK_KEYS:
            self._chunks[i:i + 1] = [chunk[:_CHUNK_KEYS], chunk[_CHUNK_KEYS:]]
            self._maxes[i:i + 1] = [chunk[_CHUNK_KEYS - 1], chunk[-1]]

    def _index_remove(self, key: bytes) -> None:
        i = bisect_left(self._maxes, key)
        chunk = self._chunks[i]
        j = bisect_left(chunk, key)
        if j == len(chunk) or chunk[j] != key:
            raise RuntimeError("MemoryKV index lost a key")
        del chunk[j]
        if chunk:
            self._maxes[i] = chunk[-1]
        else:
            del self._chunks[i]
            del self._maxes[i]


def _compact(value: bytes) -> bytes:
    """A private copy of `value`: bytes made by orjson keep their whole output buffer (about
    4 KB each), which a store holding millions of values cannot afford."""
    return bytes(memoryview(value))


_DELETED: Final = None


class Overlay:
    """Writes buffered over a parent `KV`; reads see the buffered writes first.

    `writes` maps each written key to its new value, or None for a deletion. `merge_into_parent`
    pushes the writes down (a per-transaction overlay into the block overlay); `write_set` is
    what the node commits in one atomic batch.

    Range reads (`iterate`) bisect a sorted list of the written keys instead of scanning every
    write: keys written since the last sort wait in `_fresh` and are sorted in once there are
    more than `limits.OVERLAY_FRESH_KEYS_MAX` of them (a block overlay holds thousands of
    writes, and the ledger reads small index ranges many times per block).
    """

    __slots__ = ("_fresh", "_order", "parent", "writes")

    def __init__(self, parent: KV) -> None:
        self.parent = parent
        self.writes: dict[bytes, bytes | None] = {}
        self._order: list[bytes] = []  # sorted; every key is in `writes`
        self._fresh: list[bytes] = []  # keys of `writes` not in `_order` yet

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self.parent.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        if key not in self.writes:
            self._fresh.append(key)
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        if key not in self.writes:
            self._fresh.append(key)
        self.writes[key] = _DELETED

    def _local_keys(self, start: bytes, stop: bytes | None) -> list[bytes]:
        if len(self._fresh) > limits.OVERLAY_FRESH_KEYS_MAX:
            self._order.extend(self._fresh)
            self._order.sort()
            self._fresh = []
        order = self._order
        lo = bisect_left(order, start)
        hi = len(order) if stop is None else bisect_left(order, stop, lo)
        local = order[lo:hi]
        if self._fresh:
            local.extend(k for k in self._fresh if k >= start and (stop is None or k < stop))
            local.sort()
        return local

    def iterate(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        local = self._local_keys(start, stop)
        parent = self.parent.iterate(start, stop)
        return merge_writes(parent, [(k, self.writes[k]) for k in local])

    def merge_into_parent(self) -> None:
        """Apply the buffered writes to the parent (an `Overlay` or a store) and clear them."""
        parent = self.parent
        if isinstance(parent, Overlay):
            parent_writes = parent.writes
            parent._fresh.extend(k for k in self.writes if k not in parent_writes)
            parent_writes.update(self.writes)
        else:
            for key, value in self.writes.items():
                if value is None:
                    parent.delete(key)
                else:
                    parent.put(key, value)
        self.writes = {}
        self._order = []
        self._fresh = []

    def write_set(self) -> list[tuple[bytes, bytes | None]]:
        """The buffered writes in key order (value None: delete), for one atomic batch."""
        return sorted(self.writes.items())


def merge_writes(parent: Iterator[tuple[bytes, bytes]],
           local: list[tuple[bytes, bytes | None]]) -> Iterator[tuple[bytes, bytes]]:
    """Merge two key-ordered streams; `local` wins on equal keys and None hides a key."""
    li = 0
    for key, value in parent:
        while li < len(local) and local[li][0] < key:
            lk, lv = local[li]
            li += 1
            if lv is not None:
                yield lk, lv
        if li < len(local) and local[li][0] == key:
            lv = local[li][1]
            li += 1
            if lv is not None:
                yield key, lv
            continue
        yield key, value
    for lk, lv in local[li:]:
        if lv is not None:
            yield lk, lv


def apply_write_set(kv: KV, writes: Iterable[tuple[bytes, bytes | None]]) -> None:
    """Apply a write set to a store (what a LevelDB write batch does atomically)."""
    for key, value in writes:
        if value is None:
            kv.delete(key)
        else:
            kv.put(key, value)
