"""Bank and enterprise transactions about enterprises: KYC registration, the credit file and
consent to read it."""

from __future__ import annotations

import dataclasses

from protocol import crypto, limits
from protocol.errors import CryptoError
from protocol.ledger import codes, keys, records
from protocol.ledger.context import TxContext, reject
from protocol.txtypes import (
    ROLE_BANK,
    GrantConsent,
    RecordCredit,
    RegisterEnterprise,
    RevokeConsent,
)


def register(ctx: TxContext, p: RegisterEnterprise) -> None:
    """KYC by a serving bank. The first bank creates the record; another bank adds itself to
    the serving banks (name and country must match). The enterprise's key may be set by any
    serving bank while none is set, and replaced only by the bank that set it."""
    if p.public_key:
        try:
            if len(p.public_key) != limits.PUBLIC_KEY_BYTES:
                raise CryptoError(f"a public key is {limits.PUBLIC_KEY_BYTES} bytes")
            crypto.check_public_key(p.public_key)
        except CryptoError as exc:
            reject(codes.BAD_PUBLIC_KEY, f"not a usable Ed25519 public key: {exc}")
    if ctx.state.institution(p.uscc) is not None:
        reject(codes.ID_TAKEN, f"{p.uscc} is an institution's id")
    ent = ctx.state.enterprise(p.uscc)
    key = keys.enterprise(p.uscc)
    if ent is None:
        ctx.write(key, records.EnterpriseRecord(
            uscc=p.uscc, name=p.name, country=p.country, serving_banks=(ctx.signer,),
            public_key=p.public_key, key_bank=ctx.signer if p.public_key else "",
            registered_height=ctx.height))
        return
    if ent.name != p.name or ent.country != p.country:
        reject(codes.ENTERPRISE_MISMATCH, f"enterprise {p.uscc} is registered as "
               f"{ent.name!r} ({ent.country}); KYC data differ")
    ctx.write(key, _reregister(ctx, ent, p.public_key))


def _reregister(ctx: TxContext, ent: records.EnterpriseRecord,
                public_key: bytes) -> records.EnterpriseRecord:
    serving = ent.serving_banks
    already = ctx.signer in serving
    if already and (not public_key or public_key == ent.public_key):
        reject(codes.ALREADY_REGISTERED, f"{ctx.signer} already serves enterprise {ent.uscc}")
    if not already:
        if len(serving) >= limits.SERVING_BANKS_MAX:
            reject(codes.TOO_MANY_BANKS, f"enterprise {ent.uscc} has "
                   f"{limits.SERVING_BANKS_MAX} serving banks already")
        serving = (*serving, ctx.signer)
    if not public_key or public_key == ent.public_key:
        return dataclasses.replace(ent, serving_banks=serving)
    if ent.public_key and ent.key_bank != ctx.signer:
        reject(codes.ENTERPRISE_KEY_CONFLICT, f"enterprise {ent.uscc}'s key was registered by "
               f"{ent.key_bank}; only that bank may replace it")
    return dataclasses.replace(ent, serving_banks=serving, public_key=public_key,
                               key_bank=ctx.signer)


def record_credit(ctx: TxContext, p: RecordCredit) -> None:
    ctx.served_enterprise(p.uscc)
    key = keys.credit(p.uscc, p.entry_id)
    if ctx.state.kv.get(key) is not None:
        reject(codes.DUPLICATE_ENTRY, f"credit entry {p.entry_id} of {p.uscc} already exists")
    ctx.state.put(key, records.CreditEntry(
        entry_id=p.entry_id, bank=ctx.signer, kind=p.kind, amount=p.amount,
        currency=p.currency, note=p.note, height=ctx.height, tx_id=ctx.tx.id))
    ctx.touch(keys.enterprise(p.uscc))


def grant_consent(ctx: TxContext, p: GrantConsent) -> None:
    """The signer is the enterprise (its USCC). A grant replaces an earlier one."""
    bank = ctx.state.institution(p.bank)
    if bank is None or bank.role != ROLE_BANK:
        reject(codes.UNKNOWN_BANK, f"{p.bank} is not an admitted bank")
    if p.expires_at_ms <= ctx.timestamp_ms:
        reject(codes.CONSENT_EXPIRED, f"consent would expire at {p.expires_at_ms}, not after "
               f"the block time {ctx.timestamp_ms}")
    ctx.state.put(keys.consent(ctx.signer, p.bank),
                  records.Consent(ctx.signer, p.bank, p.expires_at_ms, ctx.height))
    ctx.touch(keys.enterprise(ctx.signer))


def revoke_consent(ctx: TxContext, p: RevokeConsent) -> None:
    key = keys.consent(ctx.signer, p.bank)
    if ctx.state.kv.get(key) is None:
        reject(codes.NO_CONSENT, f"{ctx.signer} has granted {p.bank} no consent")
    ctx.state.delete(key)
    ctx.touch(keys.enterprise(ctx.signer))
