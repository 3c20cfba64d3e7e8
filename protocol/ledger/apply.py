"""Applying a block: the protocol version of its height (protocol/versions.py; a version's
activation writes its new parameters in its first block), the time-driven transitions due at the
block's time (clock.py), then for each transaction the envelope checks (its type must exist in
the block's version), replay protection and its handler, the per-record history index, and the
state root.

Each transaction runs in its own overlay over the block's overlay: accepted, its writes join
the block's write set; rejected, they are dropped and the receipt says why. The block's write
set (records, history, nonces, tree nodes) is what the node commits in one atomic batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from protocol import limits, types, versions
from protocol.ledger import (
    clock,
    codes,
    handlers_capital,
    handlers_enterprise,
    handlers_financing,
    handlers_insurance,
    handlers_regulator,
    handlers_sealed,
    handlers_trade,
    keys,
    records,
    smt,
)
from protocol.ledger.context import BlockMemo, Rejected, TxContext, reject
from protocol.ledger.kv import Overlay
from protocol.ledger.state import State, active_public_key
from protocol.txtypes import REGISTRY

Handler = Callable[[TxContext, Any], None]

HANDLERS: Final[dict[str, Handler]] = {
    "institution.admit": handlers_regulator.admit,
    "institution.suspend": handlers_regulator.suspend,
    "institution.reinstate": handlers_regulator.reinstate,
    "institution.rekey": handlers_regulator.rekey,
    "node.set": handlers_regulator.set_node,
    "orderer.add": handlers_regulator.add_orderer,
    "orderer.remove": handlers_regulator.remove_orderer,
    "enterprise.set_fx_class": handlers_regulator.set_fx_class,
    "enterprise.freeze": handlers_regulator.freeze,
    "enterprise.unfreeze": handlers_regulator.unfreeze,
    "params.set": handlers_regulator.set_param,
    "protocol.activate": handlers_regulator.activate_version,
    "protocol.cancel": handlers_regulator.cancel_activation,
    "fx.publish": handlers_regulator.publish_fx_rate,
    "payment.review": handlers_regulator.review_payment,
    "financing.release": handlers_financing.release_financing,
    "enterprise.register": handlers_enterprise.register,
    "enterprise.rekey": handlers_enterprise.rekey,
    "credit.record": handlers_enterprise.record_credit,
    "consent.grant": handlers_enterprise.grant_consent,
    "consent.revoke": handlers_enterprise.revoke_consent,
    "encryption_key.set": handlers_sealed.set_encryption_key,
    "credit.read": handlers_sealed.read_credit,
    "mandate.record": handlers_financing.record_mandate,
    "mandate.revoke": handlers_financing.revoke_mandate,
    "financing.apply": handlers_financing.apply_for_financing,
    "financing.withdraw": handlers_financing.withdraw_application,
    "financing.open": handlers_financing.open_financing,
    "financing.disburse": handlers_financing.disburse_financing,
    "financing.repay": handlers_financing.repay_financing,
    "financing.close": handlers_financing.close_financing,
    "financing.default": handlers_financing.default_financing,
    "payment.outbound": handlers_trade.record_outbound,
    "payment.reverse": handlers_trade.reverse_outbound,
    "payment.inbound": handlers_trade.record_inbound,
    "declaration.register": handlers_trade.register_declaration,
    "declaration.amend": handlers_trade.amend_declaration,
    "declaration.cancel": handlers_trade.cancel_declaration,
    "taxform.register": handlers_trade.register_tax_form,
    "taxform.revoke": handlers_trade.revoke_tax_form,
    # issue 17: insurance (protocol version 2)
    "policy.register": handlers_insurance.register_policy,
    "policy.assign": handlers_insurance.assign_policy,
    "policy.cancel": handlers_insurance.cancel_policy,
    "policy.finance": handlers_insurance.finance_policy,
    "policy.repay": handlers_insurance.repay_policy_financing,
    "policy.claim": handlers_insurance.pay_claim,

    # issue 17: capital-account income payments (version 2)
    "document.register": handlers_capital.register_document,
    "document.revoke": handlers_capital.revoke_document,
    "capital.pay": handlers_capital.record_payment,
    "capital.reverse": handlers_capital.reverse_payment,
    "capital.review": handlers_capital.review_payment,
}

if set(HANDLERS) != set(REGISTRY):
    raise RuntimeError("every transaction type of protocol.txtypes needs exactly one handler")


class UpgradeRequired(RuntimeError):
    """The block needs a protocol version this code does not implement (or was told not to):
    nothing was applied; the node must stop ordering and following until it is upgraded."""

    def __init__(self, needed: versions.UpgradeNeeded) -> None:
        super().__init__(needed.describe())
        self.needed = needed


# What a version's activation writes in its first block, before anything else in it.
def _activate_v2(state: State) -> None:
    state.put(keys.PARAMS_V2, types.DEFAULT_PARAMS_V2)


ON_ACTIVATION: Final[dict[int, Callable[[State], None]]] = {2: _activate_v2}


class BlockOrderError(RuntimeError):
    """The block does not follow the state's head (wrong height or time went backwards): a
    caller bug, never a transaction's fault."""


@dataclass(frozen=True)
class BlockResult:
    """What applying a block produced. The state is unchanged until the node commits
    `writes` (one atomic batch; `commit` does it for any `KV`)."""

    height: int
    receipts: tuple[types.Receipt, ...]
    state_root: bytes
    writes: tuple[tuple[bytes, bytes | None], ...]

    @property
    def receipts_root(self) -> bytes:
        return types.receipts_root(self.receipts)

    def commit(self, state: State) -> None:
        for key, value in self.writes:
            if value is None:
                state.kv.delete(key)
            else:
                state.kv.put(key, value)


def apply_block(state: State, block: types.Block, *,
                implemented: int = versions.IMPLEMENTED_VERSION) -> BlockResult:
    """Apply a committed block (already checked with `validate_basic_block`) to `state`."""
    return apply_txs(state, block.header.height, block.header.timestamp_ms, block.txs,
                     implemented=implemented)


def apply_txs(state: State, height: int, timestamp_ms: int,
              txs: Sequence[types.Tx], *,
              implemented: int = versions.IMPLEMENTED_VERSION) -> BlockResult:
    """Apply transactions as the block at `height` stamped `timestamp_ms` (a proposer calls
    this before it can fill in the header's receipts and state roots). Raises
    `UpgradeRequired`, changing nothing, if the block's protocol version is above
    `implemented`."""
    acts = state.activations
    needed = versions.required_upgrade(acts, height, implemented)
    if needed is not None:
        raise UpgradeRequired(needed)
    version = versions.active_version(acts, height)
    head = state.head
    if height != head.height + 1:
        raise BlockOrderError(f"block {height} does not follow the state's head {head.height}")
    if timestamp_ms < head.timestamp_ms:
        raise BlockOrderError(f"block {height} time {timestamp_ms} is before the head's "
                              f"{head.timestamp_ms}")
    block_kv = Overlay(state.kv)
    block_state = State(block_kv)
    for act in acts:
        if act.height == height:
            hook = ON_ACTIVATION.get(act.version)
            if hook is not None:
                hook(block_state)
    params = block_state.params
    params_v2 = block_state.params_v2
    chain_id = block_state.chain.chain_id
    _prune_nonces(block_state, timestamp_ms)
    clock.process_due(block_state, height, timestamp_ms, params, version)
    memo = BlockMemo()
    receipts = tuple(
        _apply_tx(block_kv, TxContext(State(Overlay(block_kv)), tx, height, timestamp_ms, i,
                                      params, signers=state, version=version,
                                      params_v2=params_v2, memo=memo), chain_id)
        for i, tx in enumerate(txs))
    block_state.put(keys.HEAD, records.Head(height, timestamp_ms))
    root = _update_root(block_kv, state)
    return BlockResult(height, receipts, root, tuple(block_kv.write_set()))


def _apply_tx(block_kv: Overlay, ctx: TxContext, chain_id: str) -> types.Receipt:
    tx = ctx.tx
    try:
        _check_envelope(ctx, chain_id)
        HANDLERS[tx.type](ctx, tx.payload)
    except Rejected as exc:
        return types.Receipt(tx.id, types.STATUS_REJECTED, exc.code, exc.message)
    _remember(ctx)
    tx_kv = ctx.state.kv
    if not isinstance(tx_kv, Overlay) or tx_kv.parent is not block_kv:
        raise RuntimeError("a transaction must run in its own overlay over the block's")
    memo = ctx.memo
    if memo is not None and any(k.startswith(keys.INSTITUTION) for k in tx_kv.writes):
        memo.regulators = None  # derived from the institution records this one changed
    tx_kv.merge_into_parent()
    return types.Receipt(tx.id, types.STATUS_OK, types.CODE_OK, "")


# ------------------------------------------------------------------------------ envelope


def _check_envelope(ctx: TxContext, chain_id: str) -> None:
    """Everything about the signer and replay that depends on state (signatures were checked
    by validate_basic before the block was accepted)."""
    tx = ctx.tx
    if tx.chain_id != chain_id:
        reject(codes.WRONG_CHAIN, f"transaction is for chain {tx.chain_id!r}, not {chain_id!r}")
    payload_cls = REGISTRY.get(tx.type)
    if payload_cls is None:
        reject(codes.UNKNOWN_TYPE, f"unknown transaction type {tx.type!r}")
    if ctx.version < payload_cls.SINCE:  # validate_basic_block refuses such a block first
        reject(codes.TYPE_NOT_ACTIVE, f"{tx.type} is part of protocol version "
               f"{payload_cls.SINCE}; this block is under version {ctx.version}")
    _check_signer(ctx, payload_cls.ROLES)
    _check_expiry(ctx)
    _check_replay(ctx)


def _check_signer(ctx: TxContext, roles: frozenset[str]) -> None:
    """Signer, role and key are resolved in the state before the block (`ctx.signers`): a
    signer registered or a key added inside a block may sign from the next block on, so every
    accepted transaction's signature was verified by `validate_basic_block`. Suspension takes
    effect at once."""
    tx = ctx.tx
    signers = ctx.signers if ctx.signers is not None else ctx.state
    role = signers.signer_role(tx.signer)
    if role is None:
        reject(codes.UNKNOWN_SIGNER, f"signer {tx.signer!r} is not known (before this block)")
    if ctx.state.signer_suspended(tx.signer):
        reject(codes.SIGNER_SUSPENDED, f"{tx.signer} is suspended by the regulator")
    if active_public_key(signers, tx.signer, tx.key_id, ctx.height) is None:
        inst = signers.institution(tx.signer)
        if inst is not None and any(k.key_id == tx.key_id for k in inst.keys):
            reject(codes.KEY_RETIRED, f"key {tx.key_id.hex()} of {tx.signer} is retired")
        reject(codes.UNKNOWN_KEY, f"signer {tx.signer!r} has no active key {tx.key_id.hex()}")
    if role not in roles:
        reject(codes.ROLE_FORBIDDEN, f"{tx.signer!r} has role {role!r}; {tx.type} may be sent "
               f"by {', '.join(sorted(roles))} only")


def _check_expiry(ctx: TxContext) -> None:
    expires = ctx.tx.expires_at_ms
    if expires < ctx.timestamp_ms:
        reject(codes.TX_EXPIRED, f"transaction expired at {expires}, the block time is "
               f"{ctx.timestamp_ms}")
    latest = ctx.timestamp_ms + ctx.params.tx_expiry_window_ms
    if expires > latest:
        reject(codes.EXPIRY_TOO_FAR, f"transaction expires at {expires}, later than block "
               f"time + expiry window = {latest}")


def _check_replay(ctx: TxContext) -> None:
    """(signer, nonce) must not be remembered with an expiry still ahead. An entry whose expiry
    passed but which pruning has not reached yet counts as forgotten."""
    tx = ctx.tx
    seen = ctx.state.get(keys.nonce(tx.signer, tx.nonce), records.NonceRecord)
    if seen is None or seen.expires_at_ms < ctx.timestamp_ms:
        return
    if seen.tx_id == tx.id:
        reject(codes.NONCE_REPLAY, f"transaction {tx.id.hex()} was already applied")
    reject(codes.NONCE_REPLAY, f"nonce {tx.nonce.hex()} of {tx.signer} was already used by "
           f"transaction {seen.tx_id.hex()}")


def _remember(ctx: TxContext) -> None:
    """Record the accepted transaction: its nonce until expiry, and a history entry for every
    record it touched."""
    tx, state = ctx.tx, ctx.state
    nonce_key = keys.nonce(tx.signer, tx.nonce)
    old = state.get(nonce_key, records.NonceRecord)
    if old is not None:  # expired but not yet pruned: drop its expiry index entry
        state.delete(keys.expiry(old.expires_at_ms, tx.signer, tx.nonce))
    state.put(nonce_key, records.NonceRecord(tx.id, tx.expires_at_ms))
    state.put(keys.expiry(tx.expires_at_ms, tx.signer, tx.nonce), records.Marker())
    entry = records.HistoryEntry(ctx.height, ctx.tx_index, tx.id, tx.type)
    for record_key in ctx.touched:
        state.put(keys.history(record_key, ctx.height, ctx.tx_index), entry)


def _prune_nonces(state: State, timestamp_ms: int) -> None:
    """Forget (signer, nonce) pairs that expired before this block, oldest first, at most
    NONCE_PRUNE_PER_BLOCK_MAX per block (the rest next block; replay checks ignore them)."""
    expired = state.kv.iterate(keys.EXPIRY, keys.expiry_stop(timestamp_ms))
    for count, (exp_key, _) in enumerate(expired):
        if count >= limits.NONCE_PRUNE_PER_BLOCK_MAX:
            break
        _, signer, nonce_bytes = keys.parse_expiry(exp_key)
        state.delete(exp_key)
        state.delete(keys.nonce(signer, nonce_bytes))


# ------------------------------------------------------------------------------ state root


def _update_root(block_kv: Overlay, base: State) -> bytes:
    """Fold the block's changed rooted keys into the state tree (written to the overlay)."""
    changed: dict[bytes, bytes | None] = {}
    for key, value in block_kv.writes.items():
        if keys.is_rooted(key) and base.kv.get(key) != value:
            changed[key] = value
    return smt.update(block_kv, changed)
