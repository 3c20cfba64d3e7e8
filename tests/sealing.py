"""Sealed payloads for tests on a fresh consortium, where every institution's encryption key
is version 1, derived from its genesis signing key (ADR 0024)."""

from __future__ import annotations

import secrets

from node.client.sealing import Random, salt, seal
from protocol import txtypes, types
from protocol.sealed import Recipient, default_encryption_key

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
