"""Regulator transactions: institutions (admit, suspend, reinstate, re-key), their nodes and
the ordering set, the regulatory status of enterprises (FX class, freeze), consortium
parameters, reference exchange rates, payment reviews (docs/domain.md I-13, I-17) and the
activation of protocol versions (I-25, ADR 0025). Releasing a financing's pledges is in
handlers_financing.py."""

from __future__ import annotations

import dataclasses

from protocol import crypto, limits, types, versions
from protocol.errors import CryptoError
from protocol.ledger import codes, dates, handlers_sealed, keys, records
from protocol.ledger.context import TxContext, reject
from protocol.ledger.state import key_active
from protocol.txtypes import (
    ROLE_BANK,
    ActivateVersion,
    AddOrderer,
    AdmitInstitution,
    CancelActivation,
    FreezeEnterprise,
    PublishFxRate,
    ReinstateInstitution,
    RekeyInstitution,
    RemoveOrderer,
    ReviewPayment,
    SetFxClass,
    SetNode,
    SetParam,
    SuspendInstitution,
    UnfreezeEnterprise,
    check_format,
    institution_roles,
)


def _check_public_key(public_key: bytes) -> None:
    try:
        crypto.check_public_key(public_key)
    except CryptoError as exc:
        reject(codes.BAD_PUBLIC_KEY, f"not a usable Ed25519 public key: {exc}")


def admit(ctx: TxContext, p: AdmitInstitution) -> None:
    roles = institution_roles(ctx.version)  # version 2 adds the insurer
    if p.role not in roles:
        reject(codes.INVALID_ROLE, f"role {p.role!r} is not one of {', '.join(sorted(roles))} "
               f"(protocol version {ctx.version})")
    if ctx.state.institution(p.institution) is not None:
        reject(codes.INSTITUTION_EXISTS, f"institution {p.institution} is already admitted")
    if ctx.state.enterprise(p.institution) is not None:
        reject(codes.ID_TAKEN, f"{p.institution} is an enterprise's id")
    _check_public_key(p.public_key)
    key = records.KeyRecord(crypto.key_id_of(p.public_key), p.public_key, 0)
    ctx.write(keys.institution(p.institution), records.InstitutionRecord(
        id=p.institution, name=p.name, role=p.role, status=records.ACTIVE, keys=(key,),
        suspend_reason=""))
    handlers_sealed.ensure_encryption_key(ctx.state, p.institution, p.public_key, ctx.height)


def suspend(ctx: TxContext, p: SuspendInstitution) -> None:
    inst = ctx.institution(p.institution)
    if p.institution == ctx.signer:
        reject(codes.CANNOT_SUSPEND_SELF, "the regulator cannot suspend itself")
    if inst.status == records.SUSPENDED:
        reject(codes.ALREADY_SUSPENDED, f"{p.institution} is already suspended")
    ctx.write(keys.institution(p.institution),
              dataclasses.replace(inst, status=records.SUSPENDED, suspend_reason=p.reason))


def reinstate(ctx: TxContext, p: ReinstateInstitution) -> None:
    inst = ctx.institution(p.institution)
    if inst.status != records.SUSPENDED:
        reject(codes.NOT_SUSPENDED, f"{p.institution} is not suspended")
    ctx.write(keys.institution(p.institution),
              dataclasses.replace(inst, status=records.ACTIVE, suspend_reason=""))


def rekey(ctx: TxContext, p: RekeyInstitution) -> None:
    """Add a key; the retired keys stop working from the next block on. At most
    KEYS_PER_INSTITUTION_MAX keys are active; keys retired in earlier blocks are dropped."""
    inst = ctx.institution(p.institution)
    _check_public_key(p.new_public_key)
    new_id = crypto.key_id_of(p.new_public_key)
    if any(k.key_id == new_id for k in inst.keys):
        reject(codes.KEY_EXISTS, f"{p.institution} already has key {new_id.hex()}")
    known = {k.key_id for k in inst.keys if key_active(k, ctx.height)}
    for key_id in p.retire_key_ids:
        if key_id not in known:
            reject(codes.UNKNOWN_KEY, f"{p.institution} has no active key {key_id.hex()}")
    retire = frozenset(p.retire_key_ids)
    kept = tuple(
        dataclasses.replace(k, retired_from_height=ctx.height + 1) if k.key_id in retire else k
        for k in inst.keys if key_active(k, ctx.height))
    active = sum(1 for k in kept if k.retired_from_height == 0)
    if active + 1 > limits.KEYS_PER_INSTITUTION_MAX:
        reject(codes.TOO_MANY_KEYS, f"{p.institution} would hold more than "
               f"{limits.KEYS_PER_INSTITUTION_MAX} active keys; retire some")
    new_key = records.KeyRecord(new_id, p.new_public_key, 0)
    ctx.write(keys.institution(p.institution), dataclasses.replace(inst, keys=(*kept, new_key)))


def set_node(ctx: TxContext, p: SetNode) -> None:
    ctx.institution(p.institution)
    for addr in p.addresses:
        if not check_format("multiaddr", addr):
            reject(codes.BAD_NODE, f"{addr!r} is not a multiaddress like /ip4/10.0.0.1/tcp/7001")
    if len(set(p.addresses)) != len(p.addresses):
        reject(codes.BAD_NODE, "an address is listed twice")
    for key, node in ctx.state.scan(keys.NODE, types.NodeInfo):
        owner = key[len(keys.NODE):].decode("utf-8")
        if node.peer_id == p.peer_id and owner != p.institution:
            reject(codes.PEER_ID_TAKEN, f"peer id {p.peer_id} is the node of {owner}")
    ctx.write(keys.node(p.institution), types.NodeInfo(p.peer_id, p.addresses))


def add_orderer(ctx: TxContext, p: AddOrderer) -> None:
    inst = ctx.institution(p.institution)
    if inst.role != ROLE_BANK:
        reject(codes.NOT_A_BANK, f"{p.institution} is a {inst.role}; only banks order blocks")
    if inst.status != records.ACTIVE:
        reject(codes.SIGNER_SUSPENDED, f"{p.institution} is suspended")
    if ctx.state.get(keys.node(p.institution), types.NodeInfo) is None:
        reject(codes.NO_NODE, f"{p.institution} has no node: name it with node.set first")
    chain = ctx.state.chain
    if p.institution in chain.orderers:
        reject(codes.ALREADY_ORDERER, f"{p.institution} already orders blocks")
    if len(chain.orderers) >= limits.ORDERERS_MAX:
        reject(codes.TOO_MANY_ORDERERS, f"the ordering set is full ({limits.ORDERERS_MAX})")
    ctx.write(keys.CHAIN, dataclasses.replace(chain, orderers=(*chain.orderers, p.institution)))


def remove_orderer(ctx: TxContext, p: RemoveOrderer) -> None:
    chain = ctx.state.chain
    if p.institution not in chain.orderers:
        reject(codes.NOT_ORDERER, f"{p.institution} does not order blocks")
    if len(chain.orderers) == 1:
        reject(codes.LAST_ORDERER, f"{p.institution} is the last orderer")
    ctx.write(keys.CHAIN, dataclasses.replace(
        chain, orderers=tuple(o for o in chain.orderers if o != p.institution)))


def set_fx_class(ctx: TxContext, p: SetFxClass) -> None:
    status = ctx.state.regulatory(p.uscc)
    ctx.state.put(keys.regulatory(p.uscc), dataclasses.replace(status, fx_class=p.fx_class))
    ctx.touch(keys.enterprise(p.uscc))


def freeze(ctx: TxContext, p: FreezeEnterprise) -> None:
    status = ctx.state.regulatory(p.uscc)
    if status.frozen:
        reject(codes.ALREADY_FROZEN, f"enterprise {p.uscc} is already frozen")
    ctx.state.put(keys.regulatory(p.uscc),
              dataclasses.replace(status, frozen=True, freeze_reason=p.reason))
    ctx.touch(keys.enterprise(p.uscc))


def unfreeze(ctx: TxContext, p: UnfreezeEnterprise) -> None:
    status = ctx.state.regulatory(p.uscc)
    if not status.frozen:
        reject(codes.NOT_FROZEN, f"enterprise {p.uscc} is not frozen")
    ctx.state.put(keys.regulatory(p.uscc),
              dataclasses.replace(status, frozen=False, freeze_reason=""))
    ctx.touch(keys.enterprise(p.uscc))


def set_param(ctx: TxContext, p: SetParam) -> None:
    """Change one parameter of `types.CHANGEABLE_PARAMS` (or, from version 2, of
    `types.CHANGEABLE_PARAMS_V2`). The block's transactions keep the parameters of the block's
    start (`ctx.params`, `ctx.params_v2`): the change applies from the next block."""
    v2 = ctx.params_v2
    if v2 is not None and p.name in types.CHANGEABLE_PARAMS_V2:
        low, high = types.CHANGEABLE_PARAMS_V2[p.name]
        if not low <= p.value <= high:
            reject(codes.PARAM_OUT_OF_RANGE, f"{p.name} must lie in [{low}, {high}], not "
                   f"{p.value}")
        current = ctx.state.params_v2 or v2
        ctx.write(keys.PARAMS_V2, dataclasses.replace(current, **{p.name: p.value}))
        return
    bounds = types.CHANGEABLE_PARAMS.get(p.name)
    if bounds is None:
        names = sorted(types.CHANGEABLE_PARAMS) + (
            sorted(types.CHANGEABLE_PARAMS_V2) if v2 is not None else [])
        reject(codes.UNKNOWN_PARAM, f"{p.name!r} is not a changeable parameter (one of "
               f"{', '.join(names)}; protocol version {ctx.version})")
    low, high = bounds
    if not low <= p.value <= high:
        reject(codes.PARAM_OUT_OF_RANGE, f"{p.name} must lie in [{low}, {high}], not {p.value}")
    params = dataclasses.replace(ctx.state.params, **{p.name: p.value})
    if params.heartbeat_interval_ms < params.block_interval_ms:
        reject(codes.PARAM_OUT_OF_RANGE, f"heartbeat_interval_ms {params.heartbeat_interval_ms} "
               f"is shorter than the block interval {params.block_interval_ms}")
    ctx.write(keys.PARAMS, params)


def publish_fx_rate(ctx: TxContext, p: PublishFxRate) -> None:
    """A reference rate for a date from today to FX_RATE_AHEAD_DAYS_MAX days ahead; a rate may
    be replaced until its day has passed."""
    if p.base == p.quote:
        reject(codes.SAME_CURRENCY, f"a rate needs two currencies, not {p.base}/{p.quote}")
    day = dates.parse_day(p.date)
    if day is None:
        reject(codes.BAD_DATE, f"{p.date} is not a calendar date")
    today = dates.day_of(ctx.timestamp_ms)
    if not today <= day <= today + limits.FX_RATE_AHEAD_DAYS_MAX:
        reject(codes.FX_DATE_OUT_OF_RANGE, f"a rate is published for today "
               f"({dates.format_day(today)}) or up to {limits.FX_RATE_AHEAD_DAYS_MAX} days "
               f"ahead, not for {p.date}")
    ctx.write(keys.fx_rate(p.base, p.quote, p.date),
              records.FxRate(p.base, p.quote, p.date, p.rate_e8, ctx.height))


def review_payment(ctx: TxContext, p: ReviewPayment) -> None:
    key = keys.review(p.payer, p.review_id)
    if ctx.state.kv.get(key) is not None:
        reject(codes.REVIEW_EXISTS, f"review {p.review_id} of {p.payer} exists")
    form = ctx.tax_form(p.form_no)
    if form.payer != p.payer:
        reject(codes.PAYER_MISMATCH, f"tax filing form {p.form_no} is for payer {form.payer}, "
               f"not {p.payer}")
    ctx.check_expiry(p.expires_at_ms, limits.REVIEW_VALIDITY_MS_MAX, "the review")
    ctx.write(key, records.PaymentReview(
        uscc=p.payer, review_id=p.review_id, form_no=p.form_no, amount=p.amount,
        expires_at_ms=p.expires_at_ms, status=records.OPEN, payment_id="", height=ctx.height))
    ctx.touch(keys.enterprise(p.payer))


# ------------------------------------------------------------------------------ versions


def activate_version(ctx: TxContext, p: ActivateVersion) -> None:
    """Schedule the next protocol version at a height far enough ahead (I-25)."""
    acts = ctx.state.activations
    latest = versions.latest_version(acts)
    if p.version <= latest:
        reject(codes.VERSION_SCHEDULED, f"protocol version {p.version} is already active or "
               f"scheduled; the next version is {latest + 1}")
    if p.version != latest + 1:
        reject(codes.UNKNOWN_VERSION, f"protocol version {p.version} cannot be scheduled: "
               f"versions activate in order and the next is {latest + 1}")
    if p.height <= ctx.height:
        reject(codes.ACTIVATION_PAST, f"height {p.height} is not ahead of this block "
               f"({ctx.height})")
    earliest = max(ctx.height + limits.ACTIVATION_LEAD_BLOCKS_MIN,
                   max((a.height + 1 for a in acts), default=0))
    if p.height < earliest:
        reject(codes.ACTIVATION_TOO_SOON, f"height {p.height} is too soon: an activation is "
               f"at least {limits.ACTIVATION_LEAD_BLOCKS_MIN} blocks ahead and after the "
               f"previous one; the earliest is {earliest}")
    if p.height > ctx.height + limits.ACTIVATION_LEAD_BLOCKS_MAX:
        reject(codes.ACTIVATION_TOO_FAR, f"height {p.height} is more than "
               f"{limits.ACTIVATION_LEAD_BLOCKS_MAX} blocks ahead of this block ({ctx.height})")
    if len(acts) >= limits.PROTOCOL_ACTIVATIONS_MAX:  # unreachable below PROTOCOL_VERSION_MAX
        reject(codes.UNKNOWN_VERSION, "no more protocol versions can be scheduled")
    schedule = records.ProtocolSchedule(
        acts + (versions.Activation(p.version, p.height, ctx.height),))
    ctx.write(keys.PROTOCOL, schedule)


def cancel_activation(ctx: TxContext, p: CancelActivation) -> None:
    """Cancel the latest scheduled activation before its height."""
    acts = ctx.state.activations
    act = next((a for a in acts if a.version == p.version), None)
    if act is None:
        reject(codes.NO_ACTIVATION, f"protocol version {p.version} is not scheduled")
    if act.height <= ctx.height:
        reject(codes.VERSION_ACTIVE, f"protocol version {p.version} is active since height "
               f"{act.height}; it cannot be cancelled")
    if p.version != versions.latest_version(acts):
        reject(codes.NOT_LATEST_ACTIVATION, f"version {versions.latest_version(acts)} is "
               f"scheduled after {p.version}: cancel it first")
    ctx.write(keys.PROTOCOL, records.ProtocolSchedule(
        tuple(a for a in acts if a.version != p.version)))
