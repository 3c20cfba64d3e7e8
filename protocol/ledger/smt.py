"""The state root: a sparse Merkle tree of arity 16 over every rooted state key, stored in the
same KV as the state.

Definition (a function of the rooted key-value pairs alone: no history, no insertion order):

- each rooted pair is a leaf at the 256-bit path ``P = SHA-256("crossbill/state-key" NUL key)``
  (64 nibbles) with leaf hash ``SHA-256(0x00 || P || SHA-256("crossbill/state-value" NUL
  value))``;
- a subtree holding no leaf hashes to 32 zero bytes; holding exactly one leaf, to that leaf's
  hash (a lone leaf sits at the shallowest depth where it is alone, as in Diem's Jellyfish
  Merkle tree); holding two or more, to ``SHA-256(0x01 || h_0 || ... || h_15)`` of its 16
  children (split on the next nibble of the path);
- the state root is the hash of the whole tree.

Storage: a tree record at ``smt\\0<depth:1><the depth leading nibbles of the path, big-endian,
ceil(depth/2) bytes>`` for every lone leaf (``b"L" || P || leaf hash || value hash``; the value
hash lets `prove` open another key's leaf for a proof of absence, ADR 0035; a leaf written
before it has none until its key changes or the tree is rebuilt) and every node
(``b"N" || 16 kind bytes (0 empty, 1 leaf, 2 node) || 16 child hashes``); no record means an
empty subtree. With N random paths the tree is about log16(N) deep, so folding k changed keys
into it reads, hashes and writes O(k log16(N / k) + log16(k)) records, never the whole state.

Proofs (ADR 0035): `prove` gives a key's `StateProof` against the stored root, and
`verify_proof` checks one against a root (a block header's state_root) with nothing else.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Final

from protocol import limits
from protocol.codec import bound
from protocol.ledger import keys
from protocol.ledger.kv import KV

EMPTY_HASH: Final = bytes(32)
_NIBBLES: Final = 64
_KEY_DOMAIN: Final = b"crossbill/state-key\x00"
_VALUE_DOMAIN: Final = b"crossbill/state-value\x00"
_LEAF_TAG: Final = 0x4C  # "L"
_NODE_TAG: Final = 0x4E  # "N"
_EMPTY: Final = 0
_LEAF: Final = 1
_NODE: Final = 2
_KINDS_END: Final = 17  # node record: tag, 16 kinds, then 16 hashes of 32 bytes

# (kind, hash, path): the summary of one subtree; path only for a lone leaf.
Summary = tuple[int, bytes, int]
_NONE: Final[Summary] = (_EMPTY, EMPTY_HASH, 0)


def key_path(key: bytes) -> int:
    return int.from_bytes(hashlib.sha256(_KEY_DOMAIN + key).digest(), "big")


def value_hash(value: bytes) -> bytes:
    return hashlib.sha256(_VALUE_DOMAIN + value).digest()


def leaf_hash_of(path: int, vhash: bytes) -> bytes:
    """The leaf hash of the key at `path` whose value hashes to `vhash`."""
    return hashlib.sha256(b"\x00" + path.to_bytes(32, "big") + vhash).digest()


def leaf_hash(path: int, value: bytes) -> bytes:
    return leaf_hash_of(path, value_hash(value))


def _entry(path: int, value: bytes) -> bytes:
    """What a leaf record holds after its path: the leaf hash, then the value hash."""
    vhash = value_hash(value)
    return leaf_hash_of(path, vhash) + vhash


def _node_hash(children: list[bytes]) -> bytes:
    return hashlib.sha256(b"\x01" + b"".join(children)).digest()


def _pos(depth: int, prefix: int) -> bytes:
    return keys.TREE + bytes((depth,)) + prefix.to_bytes((depth + 1) // 2, "big")


def _summary(raw: bytes | None) -> Summary:
    if raw is None:
        return _NONE
    if raw[0] == _LEAF_TAG:
        return (_LEAF, raw[33:65], int.from_bytes(raw[1:33], "big"))
    if raw[0] == _NODE_TAG:
        return (_NODE, hashlib.sha256(b"\x01" + raw[_KINDS_END:]).digest(), 0)
    raise RuntimeError("corrupt state tree record")


def _children(raw: bytes) -> list[bytes]:
    return [raw[i:i + 32] for i in range(_KINDS_END, _KINDS_END + 16 * 32, 32)]


def _put_leaf(kv: KV, depth: int, prefix: int, path: int, entry: bytes) -> None:
    kv.put(_pos(depth, prefix), bytes((_LEAF_TAG,)) + path.to_bytes(32, "big") + entry)


def _put_node(kv: KV, depth: int, prefix: int, kinds: bytearray,
              children: list[bytes]) -> Summary:
    kv.put(_pos(depth, prefix), bytes((_NODE_TAG,)) + bytes(kinds) + b"".join(children))
    return (_NODE, _node_hash(children), 0)


def _group_end(paths: list[int], depth: int, prefix: int, nibble: int, lo: int,
               hi: int) -> int:
    """End of the run in paths[lo:hi] whose nibble at `depth` is `nibble`."""
    if nibble == 15:
        return hi
    return bisect_left(paths, ((prefix << 4) | (nibble + 1)) << (4 * (_NIBBLES - 1 - depth)),
                       lo, hi)


def _nibble(path: int, depth: int) -> int:
    return (path >> (4 * (_NIBBLES - 1 - depth))) & 0xF


def _build(kv: KV, depth: int, prefix: int, paths: list[int], entries: list[bytes],
           lo: int, hi: int) -> Summary:
    """Write the subtree of the sorted leaves [lo, hi) (their `_entry`s) at a position that
    holds nothing."""
    if hi - lo == 0:
        return _NONE
    if hi - lo == 1:
        _put_leaf(kv, depth, prefix, paths[lo], entries[lo])
        return (_LEAF, entries[lo][:32], paths[lo])
    if depth >= _NIBBLES:
        raise RuntimeError("two state keys share a 256-bit path")
    kinds = bytearray(16)
    children = [EMPTY_HASH] * 16
    start = lo
    while start < hi:
        nib = _nibble(paths[start], depth)
        end = _group_end(paths, depth, prefix, nib, start, hi)
        sub = _build(kv, depth + 1, (prefix << 4) | nib, paths, entries, start, end)
        kinds[nib], children[nib] = sub[0], sub[1]
        start = end
    return _put_node(kv, depth, prefix, kinds, children)


def _rebuild_small(kv: KV, depth: int, prefix: int, raw: bytes | None, paths: list[int],
                   hashes: list[bytes | None], lo: int, hi: int) -> Summary:
    """Changes reach a position holding nothing or one leaf: rebuild that small subtree."""
    current = _summary(raw)
    live_paths: list[int] = []
    live_hashes: list[bytes] = []
    kept = current[0] == _LEAF
    for i in range(lo, hi):
        if paths[i] == current[2]:
            kept = False
        h = hashes[i]
        if h is not None:
            live_paths.append(paths[i])
            live_hashes.append(h)
    if kept and raw is not None:
        at = bisect_left(live_paths, current[2])
        live_paths.insert(at, current[2])
        live_hashes.insert(at, raw[33:])  # its entry, kept as stored
    result = _build(kv, depth, prefix, live_paths, live_hashes, 0, len(live_paths))
    if result[0] == _EMPTY and current[0] != _EMPTY:
        kv.delete(_pos(depth, prefix))
    return result


def _update(kv: KV, depth: int, prefix: int, raw: bytes | None, paths: list[int],
            hashes: list[bytes | None], lo: int, hi: int) -> Summary:
    if raw is None or raw[0] != _NODE_TAG:
        return _rebuild_small(kv, depth, prefix, raw, paths, hashes, lo, hi)
    # The node record is patched in place (kind byte and hash of each changed child): the
    # hottest loop of a block's state root, so no per-child lists (ADR 0032).
    rec = bytearray(raw)
    shift = 4 * (_NIBBLES - 1 - depth)
    child_depth = depth + 1
    start = lo
    while start < hi:
        nib = (paths[start] >> shift) & 0xF
        end = hi if nib == 15 else bisect_left(paths, ((prefix << 4) | (nib + 1)) << shift,
                                               start, hi)
        child_prefix = (prefix << 4) | nib
        sub = _update(kv, child_depth, child_prefix, kv.get(_pos(child_depth, child_prefix)),
                      paths, hashes, start, end)
        rec[1 + nib] = sub[0]
        off = _KINDS_END + 32 * nib
        rec[off:off + 32] = sub[1]
        start = end
    return _settle(kv, depth, prefix, rec)


def _settle(kv: KV, depth: int, prefix: int, rec: bytearray) -> Summary:
    """Store a node record whose children changed, or collapse it when it holds one leaf or
    none."""
    kinds = rec[1:_KINDS_END]
    empty = kinds.count(_EMPTY)
    if empty == 16:
        kv.delete(_pos(depth, prefix))
        return _NONE
    if empty == 15:
        only = next(i for i in range(16) if kinds[i] != _EMPTY)
        if kinds[only] == _LEAF:  # a lone leaf moves up
            child_pos = _pos(depth + 1, (prefix << 4) | only)
            raw = kv.get(child_pos)
            leaf = _summary(raw)
            if raw is None or leaf[0] != _LEAF:
                raise RuntimeError("state tree node names a leaf child that is not stored")
            kv.delete(child_pos)
            kv.put(_pos(depth, prefix), raw)
            return leaf
    data = bytes(rec)
    kv.put(_pos(depth, prefix), data)
    return (_NODE, hashlib.sha256(b"\x01" + data[_KINDS_END:]).digest(), 0)


def root(kv: KV) -> bytes:
    """The state root stored in `kv` (32 zero bytes for an empty state)."""
    return _summary(kv.get(_pos(0, 0)))[1]


def _sorted_changes(changes: Iterable[tuple[bytes, bytes | None]]
                    ) -> tuple[list[int], list[bytes | None]]:
    items = sorted((p, None if v is None else _entry(p, v))
                   for p, v in ((key_path(k), v) for k, v in changes))
    paths = [p for p, _ in items]
    for i in range(1, len(paths)):
        if paths[i] == paths[i - 1]:
            raise RuntimeError("two state keys share a 256-bit path")
    return paths, [h for _, h in items]


def update(kv: KV, changes: Mapping[bytes, bytes | None]) -> bytes:
    """Fold changed rooted keys (new value, or None when deleted) into the tree in `kv`; return
    the new root."""
    if not changes:
        return root(kv)
    paths, hashes = _sorted_changes(changes.items())
    return _update(kv, 0, 0, kv.get(_pos(0, 0)), paths, hashes, 0, len(paths))[1]


def rebuild(kv: KV, items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Write the whole tree for `items` (rooted key-value pairs) into `kv`, whose tree table must
    be empty: bulk loading, and rebuilding a state from its records."""
    if kv.get(_pos(0, 0)) is not None:
        raise RuntimeError("rebuild needs an empty state tree")
    paths, hashes = _sorted_changes(items)
    return _build(kv, 0, 0, paths, [h for h in hashes if h is not None], 0, len(paths))[1]


def compute_root(items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The state root of rooted key-value pairs, computed from scratch without storing anything
    (audits and tests)."""
    paths, entries = _sorted_changes(items)
    return _hash_only(0, 0, paths, [e[:32] for e in entries if e is not None], 0, len(paths))


def _hash_only(depth: int, prefix: int, paths: list[int], hashes: list[bytes],
               lo: int, hi: int) -> bytes:
    if hi - lo == 0:
        return EMPTY_HASH
    if hi - lo == 1:
        return hashes[lo]
    children = [EMPTY_HASH] * 16
    start = lo
    while start < hi:
        nib = _nibble(paths[start], depth)
        end = _group_end(paths, depth, prefix, nib, start, hi)
        children[nib] = _hash_only(depth + 1, (prefix << 4) | nib, paths, hashes, start, end)
        start = end
    return _node_hash(children)


# ------------------------------------------------------------------------------ proofs (ADR 0035)

Siblings = Annotated[bytes, bound(min_len=limits.STATE_PROOF_SIBLINGS_BYTES,
                                  max_len=limits.STATE_PROOF_SIBLINGS_BYTES)]
_Hash = Annotated[bytes, bound(min_len=limits.HASH_BYTES, max_len=limits.HASH_BYTES)]


@dataclass(frozen=True)
class LoneLeaf:
    """Another key's leaf where the proven key's path ends: the key is absent. Opened (its
    path and its value's hash, not only its leaf hash) so that the verifier sees that it is
    another key's: a bare leaf hash could be the proven key's own leaf under a made-up path."""

    path: _Hash
    value_hash: _Hash


@dataclass(frozen=True)
class StateProof:
    """A state key's proof against a state root: the tree nodes on the key's path from the
    root, each as the hashes of its 15 children off the path (in nibble order: the child on
    the path is the one the verifier computes), then where the path ends. With `other` None
    the path ends at the key's own leaf (the key is present) or at an empty slot (absent);
    with `other`, at another key's lone leaf (absent)."""

    siblings: Annotated[tuple[Siblings, ...],
                        bound(max_len=limits.STATE_PROOF_DEPTH_NIBBLES_MAX)]
    other: LoneLeaf | None


def prove(kv: KV, key: bytes) -> StateProof:
    """The proof of `key`'s value (or of its absence) against the root stored in `kv` (the
    state `kv` holds now: the tree is updated in place, so older roots cannot be proven)."""
    path = key_path(key)
    steps: list[bytes] = []
    depth = prefix = 0
    raw = kv.get(_pos(0, 0))
    while raw is not None and raw[0] == _NODE_TAG:
        nib = _nibble(path, depth)
        start, end = _KINDS_END + 32 * nib, _KINDS_END + 32 * (nib + 1)
        steps.append(raw[_KINDS_END:start] + raw[end:])
        if raw[1 + nib] == _EMPTY:
            return StateProof(tuple(steps), None)
        depth, prefix = depth + 1, (prefix << 4) | nib
        raw = kv.get(_pos(depth, prefix))
        if raw is None:
            raise RuntimeError("state tree node names a child that is not stored")
    if raw is None or int.from_bytes(raw[1:33], "big") == path:
        return StateProof(tuple(steps), None)
    if raw[0] != _LEAF_TAG:
        raise RuntimeError("corrupt state tree record")
    if len(raw) < 97:
        raise RuntimeError("the state tree's leaf has no value hash (written before ADR 0035): "
                           "rebuild the state tree to prove this key's absence")
    return StateProof(tuple(steps), LoneLeaf(raw[1:33], raw[65:97]))


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> bool:
    """Whether `proof` shows that the state of root `root` holds `value` at `key` (None: holds
    no value at `key`). Pure: the proof, the key and the root are all it reads."""
    path = key_path(key)
    depth = len(proof.siblings)
    if depth > limits.STATE_PROOF_DEPTH_NIBBLES_MAX or any(
            len(s) != limits.STATE_PROOF_SIBLINGS_BYTES for s in proof.siblings):
        return False
    if value is not None:
        if proof.other is not None:
            return False
        node = leaf_hash(path, value)
    elif proof.other is None:
        node = EMPTY_HASH
    else:
        other = int.from_bytes(proof.other.path, "big")
        shift = 4 * (_NIBBLES - depth)
        if (len(proof.other.path) != 32 or len(proof.other.value_hash) != 32 or other == path
                or other >> shift != path >> shift):
            return False  # not another key's leaf at this position
        node = leaf_hash_of(other, proof.other.value_hash)
    for d in range(depth - 1, -1, -1):
        nib = _nibble(path, d)
        s = proof.siblings[d]
        node = hashlib.sha256(b"\x01" + s[:32 * nib] + node + s[32 * nib:]).digest()
    return node == root
