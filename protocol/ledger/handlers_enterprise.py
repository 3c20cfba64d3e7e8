"""Bank and enterprise transactions about enterprises: KYC registration, the enterprise's own
key, the credit file and consent to read it (docs/domain.md I-10)."""

from __future__ import annotations

import dataclasses

from protocol import crypto, limits
from protocol.errors import CryptoError
from protocol.ledger import codes, handlers_sealed, keys, records
from protocol.ledger.context import TxContext, reject
from protocol.txtypes import (
    ROLE_BANK,
    GrantConsent,
    RecordCredit,
    RegisterEnterprise,
    RekeyEnterprise,
    RevokeConsent,
    enterprise_key_proof_message,
)


def _check_public_key(public_key: bytes) -> None:
    try:
        if len(public_key) != limits.PUBLIC_KEY_BYTES:
            raise CryptoError(f"a public key is {limits.PUBLIC_KEY_BYTES} bytes")
        crypto.check_public_key(public_key)
    except CryptoError as exc:
        reject(codes.BAD_PUBLIC_KEY, f"not a usable Ed25519 public key: {exc}")


def _check_key_proof(ctx: TxContext, p: RegisterEnterprise) -> None:
    """A bank binds a key only with the enterprise's own signature, made with that key, over
    this chain, the USCC, the key and this bank (ENTERPRISE_KEY_UNPROVEN otherwise)."""
    if not p.public_key:
        if p.key_proof:
            reject(codes.ENTERPRISE_KEY_UNPROVEN, "a key proof without a key")
        return
    message = enterprise_key_proof_message(ctx.tx.chain_id, p.uscc, p.public_key, ctx.signer)
    if len(p.key_proof) != limits.SIGNATURE_BYTES or not crypto.verify(
            p.public_key, message, p.key_proof):
        reject(codes.ENTERPRISE_KEY_UNPROVEN, f"no valid signature of enterprise {p.uscc} "
               f"with this key for {ctx.signer} on this chain: a bank binds only a key the "
               "enterprise proves it holds")


def register(ctx: TxContext, p: RegisterEnterprise) -> None:
    """KYC by a serving bank. The first bank creates the record; another bank adds itself to
    the serving banks (name and country must match). A bank may set the key of an enterprise
    that has none, with the enterprise's proof that it holds the key (`key_proof`); a key the
    enterprise holds is never replaced by a bank (it rotates it with enterprise.rekey)."""
    if p.public_key:
        _check_public_key(p.public_key)
    _check_key_proof(ctx, p)
    if ctx.state.institution(p.uscc) is not None:
        reject(codes.ID_TAKEN, f"{p.uscc} is an institution's id")
    ent = ctx.state.enterprise(p.uscc)
    key = keys.enterprise(p.uscc)
    if ent is None:
        ctx.write(key, records.EnterpriseRecord(
            uscc=p.uscc, name=p.name, country=p.country, serving_banks=(ctx.signer,),
            public_key=p.public_key, key_set_by=ctx.signer if p.public_key else "",
            registered_height=ctx.height))
        if p.public_key:
            handlers_sealed.ensure_encryption_key(ctx.state, p.uscc, p.public_key, ctx.height)
        return
    if ent.name != p.name or ent.country != p.country:
        reject(codes.ENTERPRISE_MISMATCH, f"enterprise {p.uscc} is registered as "
               f"{ent.name!r} ({ent.country}); KYC data differ")
    ctx.write(key, _reregister(ctx, ent, p.public_key))
    if p.public_key:
        handlers_sealed.ensure_encryption_key(ctx.state, p.uscc, p.public_key, ctx.height)


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
    if ent.public_key:
        reject(codes.ENTERPRISE_KEY_CONFLICT, f"enterprise {ent.uscc} holds a key; it rotates "
               "it itself (enterprise.rekey), no bank replaces it")
    return dataclasses.replace(ent, serving_banks=serving, public_key=public_key,
                               key_set_by=ctx.signer)


def rekey(ctx: TxContext, p: RekeyEnterprise) -> None:
    """The enterprise rotates its own key (signed with the current one), or the regulator sets
    one for an enterprise that lost its key. The new key signs from the next block on."""
    if ctx.state.institution(ctx.signer) is None and ctx.signer != p.uscc:
        reject(codes.SIGNER_MISMATCH, f"{ctx.signer} cannot re-key enterprise {p.uscc}")
    ent = ctx.enterprise(p.uscc)
    _check_public_key(p.new_public_key)
    if p.new_public_key == ent.public_key:
        reject(codes.KEY_EXISTS, f"enterprise {p.uscc} already holds this key")
    ctx.write(keys.enterprise(p.uscc), dataclasses.replace(
        ent, public_key=p.new_public_key, key_set_by=ctx.signer))


def record_credit(ctx: TxContext, p: RecordCredit) -> None:
    ctx.served_enterprise(p.uscc)
    key = keys.credit(p.uscc, p.entry_id)
    if ctx.state.kv.get(key) is not None:
        reject(codes.DUPLICATE_ENTRY, f"credit entry {p.entry_id} of {p.uscc} already exists")
    handlers_sealed.require_credit_sealed(ctx, p.details, p.uscc,
                                          f"credit entry {p.entry_id}")
    ctx.state.put(key, records.CreditEntry(
        entry_id=p.entry_id, bank=ctx.signer, details=p.details, height=ctx.height,
        tx_id=ctx.tx.id))
    ctx.touch(keys.enterprise(p.uscc))


def grant_consent(ctx: TxContext, p: GrantConsent) -> None:
    """The signer is the enterprise (its USCC). A grant replaces an earlier one."""
    bank = ctx.state.institution(p.bank)
    if bank is None or bank.role != ROLE_BANK:
        reject(codes.UNKNOWN_BANK, f"{p.bank} is not an admitted bank")
    if p.expires_at_ms <= ctx.timestamp_ms:
        reject(codes.CONSENT_EXPIRED, f"consent would expire at {p.expires_at_ms}, not after "
               f"the block time {ctx.timestamp_ms}")
    handlers_sealed.grant_file_keys(ctx, ctx.signer, p.bank, p.file_keys)
    ctx.state.put(keys.consent(ctx.signer, p.bank),
                  records.Consent(ctx.signer, p.bank, p.expires_at_ms, ctx.height))
    ctx.touch(keys.enterprise(ctx.signer))


def revoke_consent(ctx: TxContext, p: RevokeConsent) -> None:
    key = keys.consent(ctx.signer, p.bank)
    if ctx.state.kv.get(key) is None:
        reject(codes.NO_CONSENT, f"{ctx.signer} has granted {p.bank} no consent")
    ctx.state.delete(key)
    # A new file-key epoch the revoked bank never gets: later entries are closed to it.
    readers = [c.bank for c in handlers_sealed.live_consents(ctx, ctx.signer)]
    handlers_sealed.start_epoch(ctx, ctx.signer, p.file_key, readers)
    ctx.touch(keys.enterprise(ctx.signer))
