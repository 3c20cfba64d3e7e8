"""Sealing for tests (ADR 0024): the client's (node.client.sealing, which draws fresh keys,
nonces and ephemeral keys) or a deterministic one with the same wire format, for tests that
compare state roots across processes or replay a simulator seed exactly.

`DeterministicSealer` derives every data key, nonce, ephemeral key and file key from its seed
and a counter, and builds libsodium's sealed box (`crypto_box_seal`) by hand from that
ephemeral key: `epk || crypto_box(m, blake2b(epk || pk, 24), pk, esk)`, which
`nacl.public.SealedBox.decrypt` opens like any other. Never outside tests: a key derived from
a public seed protects nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from nacl.bindings import (
    crypto_box,
    crypto_box_NONCEBYTES,
    crypto_generichash_blake2b_salt_personal,
    crypto_scalarmult_base,
)

from node.client import sealing
from protocol import limits
from protocol.sealed import Recipient, Sealed, WrappedKey, context, encrypt, public_key_of
from protocol.txtypes import FileKeyGrant


class ClientSealer:
    """The client's own sealing (fresh randomness every call)."""

    def seal(self, details: Any, tx_type: str, record_id: str,
             recipients: Iterable[Recipient]) -> Sealed:
        return sealing.seal(details, tx_type, record_id, recipients)

    def wrap(self, secret: bytes, recipient: Recipient) -> WrappedKey:
        return sealing.wrap(secret, recipient)

    def new_file_key_grant(self, uscc: str, epoch: int, readers: Iterable[Recipient]
                           ) -> tuple[FileKeyGrant, bytes]:
        return sealing.new_file_key_grant(uscc, epoch, readers)


class DeterministicSealer(ClientSealer):
    """The same output for the same seed and the same sequence of calls."""

    def __init__(self, seed: str) -> None:
        self.seed = seed.encode()
        self.count = 0

    def draw(self, what: bytes, size: int) -> bytes:
        self.count += 1
        digest = hashlib.sha256(b"test-sealer/%s/%s/%d" % (self.seed, what, self.count))
        return digest.digest()[:size]

    def wrap(self, secret: bytes, recipient: Recipient) -> WrappedKey:
        esk = self.draw(b"ephemeral", 32)
        epk = crypto_scalarmult_base(esk)
        nonce = crypto_generichash_blake2b_salt_personal(
            epk + recipient.public_key, digest_size=crypto_box_NONCEBYTES)
        box = epk + crypto_box(secret, nonce, recipient.public_key, esk)
        return WrappedKey(recipient.party, recipient.key_version, box)

    def seal(self, details: Any, tx_type: str, record_id: str,
             recipients: Iterable[Recipient]) -> Sealed:
        data_key = self.draw(b"data-key", limits.DATA_KEY_BYTES)
        nonce = self.draw(b"nonce", limits.SEALED_NONCE_BYTES)
        ciphertext, plain_hash = encrypt(details, data_key, nonce, context(tx_type, record_id))
        wrapped = tuple(self.wrap(data_key, r) for r in recipients)
        if not wrapped:
            raise ValueError("a sealed field needs at least one recipient")
        return Sealed(nonce, ciphertext, plain_hash, wrapped)

    def new_file_key_grant(self, uscc: str, epoch: int, readers: Iterable[Recipient]
                           ) -> tuple[FileKeyGrant, bytes]:
        private = self.draw(b"file-key/" + uscc.encode(), limits.ENCRYPTION_KEY_BYTES)
        grant = FileKeyGrant(epoch, public_key_of(private),
                             tuple(self.wrap(private, r) for r in readers))
        return grant, private
