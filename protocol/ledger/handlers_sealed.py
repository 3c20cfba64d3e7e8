"""Encryption keys, sealed fields' addressing, credit-file key epochs and the audited credit
read (ADR 0024; who may learn what: ADR 0022).

The ledger never decrypts. It checks that every sealed field is wrapped to each party the rules
name (the recording institution, every active regulator, the enterprise when it holds an
encryption key, the credit file's key) at that party's current key version. Whether the wrapped
key really opens is for the parties to find out (a tampered box is detected by its MAC when
opened); a recorder that wraps garbage to a party only fails to disclose to it, which the
party can prove with the signed transaction and `plain_hash`.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol import limits
from protocol.ledger import codes, keys, queries, records
from protocol.ledger.context import TxContext, reject
from protocol.ledger.kv import Overlay
from protocol.ledger.state import State
from protocol.sealed import (
    Sealed,
    SealedError,
    WrappedKey,
    default_encryption_key,
    file_party,
    missing_parties,
    usable_public_key,
)
from protocol.txtypes import (
    ROLE_BANK,
    FileKeyGrant,
    ReadCredit,
    SetEncryptionKey,
)


def key_version(ctx: TxContext, owner: str) -> int:
    """The owner's current encryption key version, 0 when it has none."""
    record = ctx.state.get(keys.encryption_key(owner), records.EncryptionKeyRecord)
    return 0 if record is None else record.version


def active_regulators(ctx: TxContext) -> tuple[str, ...]:
    """`queries.active_regulators`, computed once per block (the block's `BlockMemo`) unless
    this transaction itself wrote an institution record."""
    memo = ctx.memo
    kv = ctx.state.kv
    if memo is None or not isinstance(kv, Overlay) or any(
            k.startswith(keys.INSTITUTION) for k in kv.writes):
        return tuple(queries.active_regulators(ctx.state))
    if memo.regulators is None:
        memo.regulators = tuple(queries.active_regulators(ctx.state))
    return memo.regulators


def require_sealed(ctx: TxContext, sealed: Sealed, what: str, *, parties: Iterable[str],
                   optional: Iterable[str] = ()) -> None:
    """`sealed` is wrapped to each of `parties` and every active regulator (each must hold an
    encryption key), and to each of `optional` that holds one, at their current versions."""
    required: dict[str, int] = {}
    for party in [*parties, *active_regulators(ctx)]:
        version = key_version(ctx, party)
        if version == 0:
            reject(codes.NO_ENCRYPTION_KEY, f"{what} must be sealed to {party}, which has "
                   "registered no encryption key (encryption_key.set)")
        required[party] = version
    for party in optional:
        version = key_version(ctx, party)
        if version:
            required[party] = version
    missing = missing_parties(sealed, required)
    if missing:
        reject(codes.SEALED_PARTIES, f"{what} is not sealed to {', '.join(missing)}")


def require_credit_sealed(ctx: TxContext, sealed: Sealed, uscc: str, what: str) -> None:
    """A credit-file entry: sealed to the recording bank, the regulators, the enterprise (if it
    holds a key) and the file's current key epoch (if the file has one)."""
    require_sealed(ctx, sealed, what, parties=[ctx.signer], optional=[uscc])
    current = ctx.state.get(keys.credit_file(uscc), records.CreditFile)
    if current is not None:
        missing = missing_parties(sealed, {file_party(uscc): current.epoch})
        if missing:
            reject(codes.SEALED_PARTIES, f"{what} is not sealed to {', '.join(missing)}")


def default_key_record(owner: str, signing_public_key: bytes,
                       height: int) -> records.EncryptionKeyRecord | None:
    """Version 1 of a party's encryption key derived from its signing key (ADR 0024)."""
    try:
        public = default_encryption_key(signing_public_key)
    except SealedError:
        return None
    return records.EncryptionKeyRecord(owner=owner, version=1, public_key=public,
                                       height=height)


def ensure_encryption_key(state: State, owner: str, signing_public_key: bytes,
                          height: int) -> None:
    """Give `owner` its default encryption key if it has none yet."""
    if state.kv.get(keys.encryption_key(owner)) is None:
        record = default_key_record(owner, signing_public_key, height)
        if record is not None:
            state.put(keys.encryption_key(owner), record)


def set_encryption_key(ctx: TxContext, p: SetEncryptionKey) -> None:
    if not usable_public_key(p.public_key):
        reject(codes.BAD_ENCRYPTION_KEY, "not a usable X25519 public key (a low-order point)")
    current = ctx.state.get(keys.encryption_key(ctx.signer), records.EncryptionKeyRecord)
    if current is not None and current.public_key == p.public_key:
        reject(codes.KEY_EXISTS, f"{ctx.signer} already uses this encryption key")
    version = 1 if current is None else current.version + 1
    ctx.write(keys.encryption_key(ctx.signer), records.EncryptionKeyRecord(
        owner=ctx.signer, version=version, public_key=p.public_key, height=ctx.height))


# ------------------------------------------------------------------------------ credit file


def _wraps_by_party(wraps: Iterable[WrappedKey]) -> dict[str, WrappedKey]:
    out: dict[str, WrappedKey] = {}
    for wrapped in wraps:
        if wrapped.party in out:
            reject(codes.BAD_FILE_KEY, f"the file key is wrapped to {wrapped.party} twice")
        out[wrapped.party] = wrapped
    return out


def _check_wrapped_to(ctx: TxContext, grant: FileKeyGrant, wraps: dict[str, WrappedKey],
                      parties: Iterable[str]) -> None:
    for party in parties:
        version = key_version(ctx, party)
        if version == 0:
            reject(codes.NO_ENCRYPTION_KEY, f"the credit-file key must be wrapped to {party}, "
                   "which has registered no encryption key (encryption_key.set)")
        got = wraps.get(party)
        if got is None or got.key_version != version:
            reject(codes.BAD_FILE_KEY, f"credit-file key epoch {grant.epoch} is not wrapped "
                   f"to {party} (key version {version})")


def live_consents(ctx: TxContext, uscc: str) -> list[records.Consent]:
    return [c for _, c in ctx.state.scan(keys.consent(uscc, ""), records.Consent)
            if c.expires_at_ms > ctx.timestamp_ms]


def start_epoch(ctx: TxContext, uscc: str, grant: FileKeyGrant, readers: Iterable[str]) -> None:
    """A new credit-file key epoch, wrapped to the enterprise, every regulator and `readers`
    (and to nobody else: a new epoch exists to exclude someone)."""
    current = ctx.state.get(keys.credit_file(uscc), records.CreditFile)
    expected = 1 if current is None else current.epoch + 1
    if grant.epoch != expected:
        reject(codes.BAD_FILE_KEY, f"the next credit-file key epoch of {uscc} is {expected}, "
               f"not {grant.epoch}")
    if current is not None and grant.public_key == current.public_key:
        reject(codes.BAD_FILE_KEY, "a new credit-file key epoch needs a new key")
    wraps = _wraps_by_party(grant.keys)
    entitled = {uscc, *active_regulators(ctx), *readers}
    _check_wrapped_to(ctx, grant, wraps, sorted(entitled))
    extra = sorted(set(wraps) - entitled)
    if extra:
        reject(codes.BAD_FILE_KEY, f"credit-file key epoch {grant.epoch} is wrapped to "
               f"{', '.join(extra)}, who hold no live consent")
    ctx.state.put(keys.credit_file(uscc), records.CreditFile(uscc, grant.epoch,
                                                              grant.public_key))
    ctx.state.put(keys.credit_file_key(uscc, grant.epoch), records.CreditFileKey(
        uscc=uscc, epoch=grant.epoch, public_key=grant.public_key, keys=grant.keys,
        height=ctx.height))


def extend_epoch(ctx: TxContext, uscc: str, grant: FileKeyGrant, bank: str) -> None:
    """Wrap an existing epoch's key to `bank` as well (a consent disclosing it)."""
    stored = ctx.state.get(keys.credit_file_key(uscc, grant.epoch), records.CreditFileKey)
    if stored is None:
        reject(codes.BAD_FILE_KEY, f"{uscc}'s credit file has no key epoch {grant.epoch}")
    if stored.public_key != grant.public_key:
        reject(codes.BAD_FILE_KEY, f"credit-file key epoch {grant.epoch} has another key")
    wraps = _wraps_by_party(grant.keys)
    if set(wraps) != {bank}:
        reject(codes.BAD_FILE_KEY, f"a consent wraps an existing epoch to the consented bank "
               f"{bank} only")
    _check_wrapped_to(ctx, grant, wraps, [bank])
    kept = tuple(w for w in stored.keys if w.party != bank)
    if len(kept) + 1 > limits.CREDIT_FILE_WRAPS_MAX:
        reject(codes.BAD_FILE_KEY, f"credit-file key epoch {grant.epoch} has "
               f"{limits.CREDIT_FILE_WRAPS_MAX} readers; start a new epoch")
    ctx.state.put(keys.credit_file_key(uscc, grant.epoch), records.CreditFileKey(
        uscc=uscc, epoch=stored.epoch, public_key=stored.public_key,
        keys=(*kept, wraps[bank]), height=stored.height))


def grant_file_keys(ctx: TxContext, uscc: str, bank: str,
                    grants: tuple[FileKeyGrant, ...]) -> None:
    """Consent carries the key: the current epoch (or a new one) reaches `bank`, with any
    earlier epochs the enterprise chooses to disclose."""
    current = ctx.state.get(keys.credit_file(uscc), records.CreditFile)
    current_epoch = 0 if current is None else current.epoch
    epochs = [g.epoch for g in grants]
    if len(set(epochs)) != len(epochs):
        reject(codes.BAD_FILE_KEY, "a consent names one credit-file key epoch twice")
    if max(epochs) not in (current_epoch, current_epoch + 1) or max(epochs) == 0:
        reject(codes.BAD_FILE_KEY, f"a consent must wrap the current credit-file key epoch "
               f"({current_epoch}) or start epoch {current_epoch + 1}")
    readers = [c.bank for c in live_consents(ctx, uscc) if c.bank != bank]
    for grant in sorted(grants, key=lambda g: g.epoch):
        if grant.epoch > current_epoch:
            start_epoch(ctx, uscc, grant, [*readers, bank])
        else:
            extend_epoch(ctx, uscc, grant, bank)


def read_credit(ctx: TxContext, p: ReadCredit) -> None:
    """A bank needs a consent that is live at this block's time; the regulator needs none."""
    ctx.enterprise(p.uscc)
    inst = ctx.institution(ctx.signer)
    expires = 0
    if inst.role == ROLE_BANK:
        consent = ctx.state.get(keys.consent(p.uscc, ctx.signer), records.Consent)
        if consent is None:
            reject(codes.NO_CONSENT, f"{p.uscc} has granted {ctx.signer} no consent")
        if consent.expires_at_ms <= ctx.timestamp_ms:
            reject(codes.CONSENT_EXPIRED, f"the consent of {p.uscc} for {ctx.signer} expired "
                   f"at {consent.expires_at_ms}")
        expires = consent.expires_at_ms
    ctx.state.put(keys.credit_read(ctx.height, ctx.tx_index), records.CreditRead(
        uscc=p.uscc, reader=ctx.signer, purpose=p.purpose, consent_expires_at_ms=expires,
        height=ctx.height, tx_index=ctx.tx_index, tx_id=ctx.tx.id))
    ctx.touch(keys.enterprise(p.uscc))
