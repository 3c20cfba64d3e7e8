"""The genesis state: the consortium configuration written into the ledger."""

from __future__ import annotations

from protocol import types
from protocol.ledger import keys, records, smt
from protocol.ledger.handlers_sealed import ensure_encryption_key
from protocol.ledger.kv import KV, MemoryKV, Overlay, iterate_prefix
from protocol.ledger.state import State


def init_genesis(state: State, config: types.ConsortiumConfig) -> bytes:
    """Write the institutions, roles, keys, orderers and parameters of `config` into an empty
    state (height 0, time `genesis_time_ms`) and return the genesis state root."""
    if state.kv.get(keys.HEAD) is not None:
        raise RuntimeError("init_genesis needs an empty state")
    block = Overlay(state.kv)
    view = State(block)
    view.put(keys.HEAD, records.Head(0, config.genesis_time_ms))
    view.put(keys.CHAIN, records.ChainInfo(config.chain_id, config.hash, config.orderers))
    view.put(keys.PARAMS, config.params)
    for inst in config.institutions:
        view.put(keys.institution(inst.id), institution_record(inst))
        if inst.keys:  # encryption key version 1: the X25519 form of its first key (ADR 0024)
            ensure_encryption_key(view, inst.id, inst.keys[0].public_key, 0)
        if inst.node is not None:
            view.put(keys.node(inst.id), inst.node)
    rooted = {k: v for k, v in block.writes.items() if keys.is_rooted(k)}
    root = smt.update(block, rooted)
    block.merge_into_parent()
    return root


def institution_record(inst: types.Institution) -> records.InstitutionRecord:
    return records.InstitutionRecord(
        id=inst.id, name=inst.name, role=inst.role, status=records.ACTIVE,
        keys=tuple(records.KeyRecord(k.key_id, k.public_key, 0) for k in inst.keys),
        suspend_reason="")


def initial_state(config: types.ConsortiumConfig, kv: KV | None = None) -> State:
    """A new state (in memory unless `kv` is given) holding the genesis of `config`."""
    state = State(MemoryKV() if kv is None else kv)
    init_genesis(state, config)
    return state


def rebuild_state_tree(kv: KV) -> bytes:
    """Drop and rebuild the state-root tree from the rooted records in `kv` (after a bulk load
    or to audit a stored tree); returns the root."""
    for key, _ in list(iterate_prefix(kv, keys.TREE)):
        kv.delete(key)
    rooted = [(k, v) for k, v in kv.iterate(b"", None) if keys.is_rooted(k)]
    return smt.rebuild(kv, rooted)
