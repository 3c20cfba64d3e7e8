"""Sealed fields: confidential content as AES-256-GCM ciphertext, its data key wrapped to each
party entitled to read it (ADR 0024; who may learn what: ADR 0022).

A sealed field carries:

- `nonce` and `ciphertext`: AES-256-GCM (OpenSSL's, through the `cryptography` package: 30-40
  times faster than pycryptodome's for records this small, ADR 0024; the same standard, so
  either opens the other's) of the canonical encoding of a details dataclass
  (`protocol.txtypes`), under a fresh 32-byte data key, with the record's context (record kind
  and id) as associated data, so a ciphertext cannot be moved to another record;
- `plain_hash`: SHA-256 of the plain text behind its own domain tag. Every plain text holds a
  16-byte random salt, so the hash reveals nothing guessable (an amount or a country code would
  otherwise be found by trying them all) and a party can prove what it was shown;
- `keys`: the data key wrapped to each party, a libsodium sealed box (X25519 + XSalsa20-Poly1305)
  to the party's registered encryption key `key_version`. Parties are institution ids,
  enterprises' USCCs, or a credit file's key (`file/<USCC>`, its epoch as `key_version`).

This module is deterministic: it opens and checks, and it encrypts only with a key and nonce it
is given. Drawing keys, nonces and salts, and sealing boxes (which draws an ephemeral key),
happen in the client (`node.client.sealing`). Validation never decrypts: the ledger checks only
that a sealed field is addressed to the parties the rules name, at their current keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.bindings import crypto_scalarmult, crypto_sign_ed25519_pk_to_curve25519
from nacl.exceptions import CryptoError as NaclCryptoError
from nacl.public import PrivateKey as BoxPrivateKey
from nacl.public import SealedBox

from protocol import codec, crypto, limits
from protocol.codec import bound
from protocol.errors import DecodeError

T = TypeVar("T")

FILE_PARTY_PREFIX: Final = "file/"


class SealedError(Exception):
    """A sealed field that does not open: wrong key, tampered ciphertext or wrapped key (the
    GCM tag or the box's MAC fails), or a plain text that does not match its hash."""


@dataclass(frozen=True)
class WrappedKey:
    """A record's data key sealed to one party's encryption key."""

    party: Annotated[str, bound(min_len=1, max_len=limits.PARTY_CHARS_MAX)]
    key_version: Annotated[int, bound(min_value=1)]
    box: Annotated[bytes, bound(min_len=limits.WRAPPED_KEY_BYTES,
                                max_len=limits.WRAPPED_KEY_BYTES)]


@dataclass(frozen=True)
class Sealed:
    nonce: Annotated[bytes, bound(min_len=limits.SEALED_NONCE_BYTES,
                                  max_len=limits.SEALED_NONCE_BYTES)]
    ciphertext: Annotated[bytes, bound(min_len=limits.SEALED_TAG_BYTES,
                                       max_len=limits.SEALED_CIPHERTEXT_BYTES_MAX)]
    plain_hash: Annotated[bytes, bound(min_len=limits.HASH_BYTES, max_len=limits.HASH_BYTES)]
    keys: Annotated[tuple[WrappedKey, ...], bound(min_len=1,
                                                  max_len=limits.SEALED_RECIPIENTS_MAX)]

    def wrapped_for(self, party: str) -> WrappedKey | None:
        for wrapped in self.keys:
            if wrapped.party == party:
                return wrapped
        return None

    @property
    def parties(self) -> tuple[str, ...]:
        return tuple(w.party for w in self.keys)


@dataclass(frozen=True)
class Recipient:
    """A party a record is sealed to: its name, key version and X25519 public key."""

    party: str
    key_version: int
    public_key: bytes


def file_party(uscc: str) -> str:
    """The party name of an enterprise's credit-file key."""
    return FILE_PARTY_PREFIX + uscc


def context(record_kind: str, record_id: str) -> bytes:
    """The associated data binding a ciphertext to its record (`txtypes.SEALED_FIELDS`)."""
    return crypto.hash_domain_prefix(crypto.DOMAIN_SEALED_CONTEXT) + codec.encode(
        _Context(record_kind, record_id))


@dataclass(frozen=True)
class _Context:
    record_kind: str
    record_id: str


def plain_hash(plain: bytes) -> bytes:
    return crypto.hash_domain(crypto.DOMAIN_SEALED_PLAIN, plain)


def encrypt(details: Any, data_key: bytes, nonce: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """(ciphertext with its tag, plain_hash) of `details`' canonical encoding. Deterministic:
    the caller draws `data_key` and `nonce` and never reuses a pair."""
    if len(data_key) != limits.DATA_KEY_BYTES or len(nonce) != limits.SEALED_NONCE_BYTES:
        raise ValueError("a data key is 32 bytes and a nonce 12")
    plain = codec.encode(details)
    return AESGCM(data_key).encrypt(nonce, plain, aad), plain_hash(plain)


def decrypt(sealed: Sealed, data_key: bytes, aad: bytes, cls: type[T]) -> T:
    """The details dataclass behind `sealed`, or `SealedError` (never another exception for
    bad input)."""
    if len(data_key) != limits.DATA_KEY_BYTES:
        raise SealedError("a data key is 32 bytes")
    try:
        plain = AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, aad)
    except InvalidTag:
        raise SealedError("the ciphertext does not authenticate (GCM tag): tampered, moved to "
                          "another record, or the wrong data key") from None
    if plain_hash(plain) != sealed.plain_hash:
        raise SealedError("the plain text does not match plain_hash")
    try:
        return codec.decode(cls, plain, max_bytes=limits.SEALED_CIPHERTEXT_BYTES_MAX)
    except (DecodeError, ValueError) as exc:  # a party sealed something that is not a `cls`
        raise SealedError(f"the plain text is not a {cls.__name__}: {exc}") from None


def unwrap(wrapped: WrappedKey, private_key: bytes) -> bytes:
    """The data key in `wrapped`, opened with the party's X25519 private key."""
    if len(private_key) != limits.ENCRYPTION_KEY_BYTES:
        raise SealedError("an X25519 private key is 32 bytes")
    try:
        key = SealedBox(BoxPrivateKey(private_key)).decrypt(wrapped.box)
    except NaclCryptoError:
        raise SealedError(f"the key wrapped to {wrapped.party} (version "
                          f"{wrapped.key_version}) does not open with this private key: "
                          "tampered or another key") from None
    if len(key) != limits.DATA_KEY_BYTES:
        raise SealedError("the wrapped data key is not 32 bytes")
    return key


def public_key_of(private_key: bytes) -> bytes:
    """The X25519 public key of a private key (deterministic)."""
    return bytes(BoxPrivateKey(private_key).public_key)


def default_encryption_key(signing_public_key: bytes) -> bytes:
    """A party's encryption key version 1 when it registered none: the X25519 form of its
    Ed25519 signing key (libsodium's crypto_sign_ed25519_pk_to_curve25519), whose private part
    the party already holds. Parties should rotate to an independent key (encryption_key.set).
    Raises `SealedError` for a key with no X25519 form."""
    try:
        return bytes(crypto_sign_ed25519_pk_to_curve25519(signing_public_key))
    except (NaclCryptoError, RuntimeError, ValueError, TypeError):
        raise SealedError("this signing key has no X25519 form") from None


_PROBE_SCALAR: Final = bytes(range(1, limits.ENCRYPTION_KEY_BYTES + 1))


def usable_public_key(public_key: bytes) -> bool:
    """False for X25519 points of small order (every shared secret with them is zero, so a
    box sealed to one protects nothing); libsodium reports those as an error."""
    if len(public_key) != limits.ENCRYPTION_KEY_BYTES:
        return False
    try:
        crypto_scalarmult(_PROBE_SCALAR, public_key)
    except (NaclCryptoError, RuntimeError, ValueError):
        return False
    return True


def missing_parties(sealed: Sealed, required: dict[str, int]) -> list[str]:
    """The parties of `required` (party -> current key version) that `sealed` is not wrapped
    to at that version, in order. Duplicated parties count as missing: one wrap per party."""
    seen: dict[str, int] = {}
    dupes: set[str] = set()
    for wrapped in sealed.keys:
        if wrapped.party in seen:
            dupes.add(wrapped.party)
        seen[wrapped.party] = wrapped.key_version
    return sorted(f"{party} (key version {version})" for party, version in required.items()
                  if seen.get(party) != version or party in dupes)
