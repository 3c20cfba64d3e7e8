"""Sealing and opening confidential fields on the client side (ADR 0024).

`protocol.sealed` is deterministic and never draws a key; this module draws them (data keys,
nonces, salts, X25519 key pairs, the sealed boxes' ephemeral keys) and holds a party's private
encryption keys:

- `Keyring`: a party's X25519 private keys by version (every version it ever registered: old
  records stay readable after a rotation), saved as a JSON file with mode 0600;
- `seal(details, tx_type, record_id, recipients)`: a `Sealed` field for a payload;
- `open_field(sealed, tx_type, record_id, keyring, file_keys)`: the details, or `SealedError`.

Credit files: entries are also sealed to the file's key (`file/<USCC>`, version = epoch); a
reader opens the epoch's private key (wrapped to it by the enterprise's consent) with its own
keyring, then the entry's data key with that.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from nacl.bindings import (
    crypto_box,
    crypto_box_NONCEBYTES,
    crypto_box_seed_keypair,
    crypto_generichash_blake2b_salt_personal,
)
from nacl.public import PrivateKey as BoxPrivateKey
from nacl.signing import SigningKey

from node.files import check_private_file
from protocol import codec, crypto, limits, txtypes
from protocol.errors import CrossbillError, DecodeError
from protocol.ledger import records
from protocol.sealed import (
    Recipient,
    Sealed,
    SealedError,
    WrappedKey,
    context,
    decrypt,
    encrypt,
    file_party,
    public_key_of,
    unwrap,
)
from protocol.txtypes import FileKeyGrant

T = TypeVar("T")

KEYRING_FORMAT: Final = "crossbill-encryption-keyring/1"
KEYRING_VERSIONS_MAX: Final = 64  # rotations one keyring file keeps
KEYRING_FILE_BYTES_MAX: Final = 64 * 1024
ENCRYPTED: Final = "<encrypted>"  # what a non-party is shown instead of a sealed field


Random = Callable[[int], bytes]  # n -> n random bytes; tests pass a seeded one


class DetailsError(CrossbillError):
    """Plain details that do not make the transaction type's details class."""


def salt(rng: Random = secrets.token_bytes) -> bytes:
    return rng(limits.SEALED_SALT_BYTES)


def wrap(secret: bytes, recipient: Recipient, rng: Random = secrets.token_bytes) -> WrappedKey:
    """`secret` (a data key or a file key's private key) sealed to one recipient: libsodium's
    crypto_box_seal (an ephemeral X25519 key, nonce = BLAKE2b(epk || pk)), with the ephemeral
    key drawn from `rng` so that seeded tests are reproducible. `SealedBox` opens it."""
    epk, esk = crypto_box_seed_keypair(rng(limits.ENCRYPTION_KEY_BYTES))
    nonce = crypto_generichash_blake2b_salt_personal(
        epk + recipient.public_key, digest_size=crypto_box_NONCEBYTES)
    box = epk + crypto_box(secret, nonce, recipient.public_key, esk)
    return WrappedKey(recipient.party, recipient.key_version, box)


def seal(details: Any, tx_type: str, record_id: str, recipients: Iterable[Recipient],
         rng: Random = secrets.token_bytes) -> Sealed:
    """`details` (a `txtypes.*Details` or `FinancingTerms`) sealed to `recipients` under a
    fresh data key."""
    data_key = rng(limits.DATA_KEY_BYTES)
    nonce = rng(limits.SEALED_NONCE_BYTES)
    ciphertext, plain_hash = encrypt(details, data_key, nonce,
                                     context(txtypes.SEALED_FIELDS[tx_type].record_kind,
                                             record_id))
    wrapped = tuple(wrap(data_key, r, rng) for r in recipients)
    if not wrapped:
        raise ValueError("a sealed field needs at least one recipient")
    return Sealed(nonce, ciphertext, plain_hash, wrapped)


@dataclass
class Keyring:
    """One party's X25519 private keys, by version."""

    party: str
    keys: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def from_signing_key(cls, party: str, key: crypto.PrivateKey) -> Keyring:
        """Version 1 only: the X25519 form of the party's Ed25519 key, which the ledger
        registers for it by default (ADR 0024)."""
        private = SigningKey(key.seed).to_curve25519_private_key()
        return cls(party, {1: bytes(private)})

    @classmethod
    def generate(cls, party: str) -> Keyring:
        ring = cls(party)
        ring.rotate()
        return ring

    @property
    def version(self) -> int:
        return max(self.keys, default=0)

    @property
    def public_key(self) -> bytes:
        return public_key_of(self.keys[self.version])

    def rotate(self) -> bytes:
        """Add a new key as the next version; returns its public key (register it with
        `encryption_key.set`; the ledger numbers versions from 1 in the same order)."""
        if len(self.keys) >= KEYRING_VERSIONS_MAX:
            raise ValueError(f"a keyring keeps at most {KEYRING_VERSIONS_MAX} versions")
        self.keys[self.version + 1] = bytes(BoxPrivateKey.generate())
        return self.public_key

    def private(self, version: int) -> bytes:
        key = self.keys.get(version)
        if key is None:
            raise SealedError(f"{self.party} has no encryption key version {version} in its "
                              "keyring")
        return key

    def save(self, path: pathlib.Path) -> None:
        body = json.dumps({"format": KEYRING_FORMAT, "party": self.party,
                           "keys": {str(v): k.hex() for v, k in sorted(self.keys.items())}},
                          indent=1).encode()
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: pathlib.Path) -> Keyring:
        check_private_file(path, "encryption keyring")
        raw = path.read_bytes()
        if len(raw) > KEYRING_FILE_BYTES_MAX:
            raise ValueError(f"{path}: a keyring file is at most {KEYRING_FILE_BYTES_MAX} "
                             "bytes")
        try:
            body = json.loads(raw)
            if body.get("format") != KEYRING_FORMAT:
                raise ValueError(f"not a {KEYRING_FORMAT} file")
            keys = {int(v): bytes.fromhex(k) for v, k in body["keys"].items()}
            party = str(body["party"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: not an encryption keyring: {exc}") from None
        if not keys or any(len(k) != limits.ENCRYPTION_KEY_BYTES or v < 1
                           for v, k in keys.items()):
            raise ValueError(f"{path}: an encryption keyring holds 32-byte keys, versions "
                             "from 1")
        return cls(party, keys)


@dataclass
class FileKeys:
    """The credit-file keys a reader has opened: (uscc, epoch) -> private key."""

    opened: dict[tuple[str, int], bytes] = field(default_factory=dict)

    def learn(self, epochs: Iterable[records.CreditFileKey], keyring: Keyring) -> None:
        """Open every epoch wrapped to `keyring`'s party (others are skipped)."""
        for epoch in epochs:
            wrapped = next((w for w in epoch.keys if w.party == keyring.party), None)
            if wrapped is None or wrapped.key_version not in keyring.keys:
                continue
            self.opened[(epoch.uscc, epoch.epoch)] = unwrap(
                wrapped, keyring.private(wrapped.key_version))


def data_key_for(sealed: Sealed, keyring: Keyring | None,
                 file_keys: FileKeys | None = None) -> bytes:
    """The data key of `sealed`, through the keyring's own wrap or an opened credit-file key;
    `SealedError` when neither reaches it."""
    if keyring is not None:
        own = sealed.wrapped_for(keyring.party)
        if own is not None and own.key_version in keyring.keys:
            return unwrap(own, keyring.private(own.key_version))
    if file_keys is not None:
        for wrapped in sealed.keys:
            if not wrapped.party.startswith("file/"):
                continue
            private = file_keys.opened.get((wrapped.party[len("file/"):],
                                            wrapped.key_version))
            if private is not None:
                return unwrap(wrapped, private)
    who = keyring.party if keyring is not None else "a caller without a keyring"
    raise SealedError(f"{who} is not a party to this record (sealed to "
                      f"{', '.join(sealed.parties)})")


def open_field(sealed: Sealed, tx_type: str, record_id: str, keyring: Keyring | None,
               file_keys: FileKeys | None = None) -> Any:
    """The details behind `sealed` (the class is the transaction type's), or `SealedError`."""
    spec = txtypes.SEALED_FIELDS[tx_type]
    return decrypt(sealed, data_key_for(sealed, keyring, file_keys),
                   context(spec.record_kind, record_id), spec.details)


def open_credit_file(read: dict[str, Any], keyring: Keyring | None) -> list[dict[str, Any]]:
    """The entries of a `credit.read` answer with their details opened for `keyring`'s party
    (through its own wrap or a credit-file key wrapped to it), `<encrypted>` where it is not a
    party (an entry recorded after its consent was revoked), and the error where a sealed
    field does not open (tampered)."""
    file_keys = FileKeys()
    if keyring is not None:
        epochs = [codec.from_json(records.CreditFileKey, k) for k in read.get("file_keys", ())]
        for epoch in epochs:
            try:
                file_keys.learn([epoch], keyring)
            except SealedError:
                continue  # a tampered wrap of one epoch: its entries stay <encrypted>
    out = []
    for raw in read.get("entries", ()):
        entry = dict(raw)
        sealed = codec.from_json(Sealed, raw["details"])
        try:
            details = open_field(sealed, "credit.record", raw["entry_id"], keyring, file_keys)
            entry["details"] = codec.to_json(details)
            entry["details"].pop("salt", None)
        except SealedError as exc:
            entry["details"] = ENCRYPTED
            entry["details_error"] = str(exc)
        out.append(entry)
    return out


# (tx_type, signer, JSON payload values) -> whom to seal to
Resolver = Callable[[str, str, dict[str, Any]], list[Recipient]]


def seal_values(tx_type: str, signer: str, values: dict[str, Any], resolver: Resolver,
                rng: Random = secrets.token_bytes) -> dict[str, Any]:
    """JSON payload values with plain details (a JSON object without `ciphertext`, or a list
    of them for `terms`) sealed to whom `resolver` names: how a client encrypts for its
    caller without the caller handling keys. Other values pass through."""
    spec = txtypes.SEALED_FIELDS.get(tx_type)
    if spec is None or spec.field not in values:
        return values

    def one(plain: Any) -> Any:
        if not isinstance(plain, dict) or "ciphertext" in plain:
            return plain
        try:
            details: Any = codec.from_json(spec.details, {"salt": salt(rng).hex(), **plain},
                                           spec.field)
        except (DecodeError, ValueError) as exc:
            raise DetailsError(f"{tx_type}: {exc}") from None
        record_id = str(values.get(spec.record_id_field, ""))
        return codec.to_json(seal(details, tx_type, record_id,
                                  resolver(tx_type, signer, values), rng))

    raw = values[spec.field]
    sealed = [one(v) for v in raw] if isinstance(raw, list) else one(raw)
    return {**values, spec.field: sealed}


def node_recipients(client: Any) -> Resolver:
    """A resolver asking a node (a sync `Client`): `sealing.recipients` for the signer, the
    enterprise the record concerns and, for credit entries, the file's key."""
    def resolve(tx_type: str, signer: str, values: dict[str, Any]) -> list[Recipient]:
        enterprise, file_too = _resolve_params(tx_type, values)
        if tx_type == "declaration.amend":
            declaration = client.declaration(values["declaration_no"])["declaration"]
            enterprise = declaration["exporter"]
        answer = client.sealing_recipients(signer, enterprise, enterprise if file_too else "")
        return recipients_of(answer)

    return resolve


def _resolve_params(tx_type: str, values: dict[str, Any]) -> tuple[str, bool]:
    enterprise = str(values.get("uscc") or values.get("exporter") or values.get("payer") or "")
    return enterprise, tx_type == "credit.record"


def recipients_of(answer: dict[str, Any]) -> list[Recipient]:
    """The recipients in a `sealing.recipients` answer."""
    return [Recipient(r["party"], int(r["key_version"]), bytes.fromhex(r["public_key"]))
            for r in answer["recipients"]]


async def seal_values_async(client: Any, tx_type: str, signer: str,
                            values: dict[str, Any]) -> dict[str, Any]:
    """`seal_values` for an `AsyncClient`: asks the node whom to seal to, then seals."""
    spec = txtypes.SEALED_FIELDS.get(tx_type)
    if spec is None or spec.field not in values:
        return values
    enterprise, file_too = _resolve_params(tx_type, values)
    if tx_type == "declaration.amend":
        enterprise = (await client.declaration(values["declaration_no"]))["declaration"][
            "exporter"]
    answer = await client.sealing_recipients(signer, enterprise,
                                             enterprise if file_too else "")
    recipients = recipients_of(answer)
    return seal_values(tx_type, signer, values, lambda *_: recipients)


# record kind -> a transaction type that seals that kind's field (the context is the kind's)
_KIND_TX: Final = {f.record_kind: t for t, f in txtypes.SEALED_FIELDS.items()}
# record view key (what *.get answers) -> (record kind, field naming the record)
_VIEWS: Final = {"declaration": ("declaration", "declaration_no"),
                 "form": ("taxform", "form_no"), "financing": ("financing", "financing_id"),
                 "entry": ("credit", "entry_id")}


def open_record(answer: Any, keyring: Keyring | None,
                file_keys: FileKeys | None = None) -> Any:
    """A `*.get` answer with each sealed field replaced by its opened details (salt left out)
    where `keyring` is a party, `<encrypted>` where it is not; for the CLI and applications
    that show records to people."""
    if not isinstance(answer, dict):
        return answer
    out = dict(answer)
    for view, (kind, id_field) in _VIEWS.items():
        record = out.get(view)
        if not isinstance(record, dict):
            continue
        spec = txtypes.SEALED_FIELDS[_KIND_TX[kind]]
        if spec.field not in record:
            continue
        record = dict(record)
        tx_type, record_id = _KIND_TX[kind], str(record.get(id_field, ""))
        raw = record[spec.field]
        if kind == "policy":  # issue 17: an assignee bank opens through its assignment
            raw = with_assignment_key(raw, record, keyring)
        record[spec.field] = ([_opened(r, tx_type, record_id, keyring, file_keys) for r in raw]
                              if isinstance(raw, list)
                              else _opened(raw, tx_type, record_id, keyring, file_keys))
        out[view] = record
    return out


def _opened(raw: Any, tx_type: str, record_id: str, keyring: Keyring | None,
            file_keys: FileKeys | None) -> Any:
    try:
        details: dict[str, Any] = codec.to_json(open_field(
            codec.from_json(Sealed, raw), tx_type, record_id, keyring, file_keys))
    except (SealedError, ValueError):
        return ENCRYPTED
    details.pop("salt", None)
    return details


def new_file_key_grant(uscc: str, epoch: int,
                       readers: Iterable[Recipient]) -> tuple[FileKeyGrant, bytes]:
    """A new credit-file key epoch wrapped to `readers` (the enterprise, every regulator and
    each bank with live consent): the grant for the ledger and the private key (which the
    enterprise can also recover from its own wrap)."""
    private = bytes(BoxPrivateKey.generate())
    grant = FileKeyGrant(epoch, public_key_of(private), tuple(wrap(private, r) for r in readers))
    return grant, private


def extend_file_key_grant(epoch: records.CreditFileKey, private: bytes,
                          bank: Recipient) -> FileKeyGrant:
    """An existing epoch's private key wrapped to one more bank (a consent)."""
    return FileKeyGrant(epoch.epoch, epoch.public_key, (wrap(private, bank),))


def file_private_key(epoch: records.CreditFileKey, keyring: Keyring) -> bytes:
    wrapped = next((w for w in epoch.keys if w.party == keyring.party), None)
    if wrapped is None:
        raise SealedError(f"credit-file key epoch {epoch.epoch} of {epoch.uscc} is not wrapped "
                          f"to {keyring.party}")
    return unwrap(wrapped, keyring.private(wrapped.key_version))


__all__ = [
    "ENCRYPTED",
    "FileKeys",
    "Keyring",
    "Recipient",
    "SealedError",
    "data_key_for",
    "extend_file_key_grant",
    "file_party",
    "file_private_key",
    "new_file_key_grant",
    "node_recipients",
    "open_field",
    "open_record",
    "recipients_of",
    "salt",
    "seal",
    "seal_values",
    "seal_values_async",
    "wrap",
]


# ------------------------------------------------------------------------------ issue 17: insurance

_VIEWS["policy"] = ("policy", "policy_id")


def with_assignment_key(raw: Any, policy: dict[str, Any], keyring: Keyring | None) -> Any:
    """A policy's sealed details (as JSON) as the keyring's party reaches them: through its own
    wrap, or, for an assignee bank, through the wrap its assignment carries (docs/domain.md
    §4.10)."""
    if keyring is None or not isinstance(raw, dict):
        return raw
    for a in policy.get("assignments", ()):
        if isinstance(a, dict) and a.get("bank") == keyring.party and \
                isinstance(a.get("details_key"), dict):
            return {**raw, "keys": [a["details_key"]]}
    return raw


def assignment_key(details: Sealed, insurer: Keyring, bank: Recipient,
                   rng: Random = secrets.token_bytes) -> WrappedKey:
    """The `details_key` of a `policy.assign`: the policy details' data key, which the insurer
    opens with its own wrap, wrapped to the bank's current encryption key."""
    return wrap(data_key_for(details, insurer), bank, rng)
