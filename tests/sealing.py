"""Sealing for tests (ADR 0024).

- `recipients`, `declaration`, `tax_form`: sealed payloads on a fresh consortium, where every
  institution's encryption key is version 1, derived from its genesis signing key;
- `ClientSealer`: the client's sealing (node.client.sealing: fresh keys, nonces and ephemeral
  keys every call); `DeterministicSealer`: the same wire format with every draw derived from a
  seed and a counter, for tests that compare state roots across processes or replay a
  simulator seed exactly. Never outside tests: a key derived from a public seed protects
  nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from node.client import sealing
from node.client.sealing import Random, salt, seal
from protocol import limits, txtypes, types
from protocol.sealed import Recipient, Sealed, WrappedKey, default_encryption_key, public_key_of
from protocol.txtypes import FileKeyGrant

# An exporter no test registers with a key: a declaration of it is sealed to customs and the
# regulators only (the headline workflow's exporter holds a key, so it must be a party).
KEYLESS_EXPORTER = "91370200MA3C8Y5R2L"


def recipients(config: types.ConsortiumConfig, *parties: str) -> list[Recipient]:
    """`parties` and every regulator of `config`, at encryption key version 1."""
    by_id = {i.id: i for i in config.institutions}
    names = [*parties, *(i.id for i in config.institutions if i.role == "regulator")]
    return [Recipient(p, 1, default_encryption_key(by_id[p].keys[0].public_key))
            for p in dict.fromkeys(names)]


def declaration(config: types.ConsortiumConfig, declaration_no: str, exporter: str,
                value: int, export_date: str, *, currency: str = "USD",
                customs: str = "customs.qd", buyer: str = "Buyer GmbH",
                goods: str = "goods", rng: Random = secrets.token_bytes,
                ) -> txtypes.RegisterDeclaration:
    """Customs registers a declaration of a keyless exporter, its details sealed to customs
    and the regulators."""
    details = seal(txtypes.DeclarationDetails(salt(rng), buyer, "DE", goods),
                   "declaration.register", declaration_no, recipients(config, customs), rng)
    return txtypes.RegisterDeclaration(declaration_no, exporter, value, currency, export_date,
                                       details)


def tax_form(config: types.ConsortiumConfig, form_no: str, payer: str, amount: int, *,
             currency: str = "USD", tax: str = "tax.qd", payee: str = "Payee Pte",
             rng: Random = secrets.token_bytes) -> txtypes.RegisterTaxForm:
    """The tax bureau registers a form of a keyless payer, sealed to it and the regulators."""
    details = seal(txtypes.TaxFormDetails(salt(rng), payee, "services", 1000),
                   "taxform.register", form_no, recipients(config, tax), rng)
    return txtypes.RegisterTaxForm(form_no, payer, amount, currency, details)


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

    def rng(self, size: int) -> bytes:
        return self.draw(b"random", size)

    def wrap(self, secret: bytes, recipient: Recipient) -> WrappedKey:
        return sealing.wrap(secret, recipient, self.rng)

    def seal(self, details: Any, tx_type: str, record_id: str,
             recipients: Iterable[Recipient]) -> Sealed:
        return sealing.seal(details, tx_type, record_id, recipients, self.rng)

    def new_file_key_grant(self, uscc: str, epoch: int, readers: Iterable[Recipient]
                           ) -> tuple[FileKeyGrant, bytes]:
        private = self.draw(b"file-key/" + uscc.encode(), limits.ENCRYPTION_KEY_BYTES)
        grant = FileKeyGrant(epoch, public_key_of(private),
                             tuple(self.wrap(private, r) for r in readers))
        return grant, private
