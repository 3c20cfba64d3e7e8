"""The capital-account income scenario (protocol version 2, docs/domain.md §4.11) as signed
transactions, for `crossbill devnet demo --scenario capital`.

A foreign-invested enterprise, served by two banks, pays out of its FDI proceeds: the regulator
registers the FDI registration with the SHA-256 of its text; the first bank pays against it
after checking the copy it was shown; the second bank, shown a forged copy, is refused; then it
asks for more than the registration has left and is refused; the exact remainder is accepted;
the regulator flags that payment; the tax bureau cannot register an FDI registration.

`capital_steps` assumes protocol version 2 is active. It works on a fresh consortium and after
`headline_steps` (its enterprise and ids are its own); like `headline_steps` it seals to every
party's encryption key version 1, which a fresh consortium derives from the signing keys.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from node.cli.demo import Step
from node.client.sealing import Keyring, salt, seal
from protocol import crypto, txtypes, types
from protocol.sealed import Recipient

INVESTEE = "91370200MA3D6K8Q4W"
INVESTEE_NAME = "Qingdao Harbour Robotics Co., Ltd. (foreign-invested)"
FDI_REGISTRATION = "FDI-QD-2026-0042"
# The registration as its issuer filed it, and the copy a bank is shown by a forger who raised
# the amount: the ledger holds the SHA-256 of the first.
REGISTRATION_TEXT = (b"SAFE Qingdao Branch - FDI registration FDI-QD-2026-0042\n"
                     b"Investee: 91370200MA3D6K8Q4W; foreign investor: Hamburg Robotics GmbH\n"
                     b"Registered capital contribution: USD 1,000,000.00\n")
FORGED_TEXT = REGISTRATION_TEXT.replace(b"1,000,000.00", b"3,000,000.00")


def capital_steps(
    config: types.ConsortiumConfig,
    keys: dict[str, crypto.PrivateKey],
    now_ms: int,
    enterprise_key: crypto.PrivateKey,
    nonce: Callable[[], bytes] = lambda: os.urandom(16),
) -> list[Step]:
    """docs/domain.md §4.11, every step a signed transaction with the code it must get. Step
    numbers: 1 set-up, 2 the document, 3 payments, 4 the regulator."""
    regulators = [i.id for i in config.institutions if i.role == "regulator"]
    regulator = regulators[0]
    tax = next(i.id for i in config.institutions if i.role == "tax")
    bank, bank2 = [i.id for i in config.institutions if i.role == "bank"][:2]
    expires = now_ms + config.params.tx_expiry_window_ms // 2
    rings = {p: Keyring.from_signing_key(p, k) for p, k in keys.items()}
    rings[INVESTEE] = Keyring.from_signing_key(INVESTEE, enterprise_key)

    def tx(signer: str, payload: txtypes.Payload) -> types.Tx:
        key = enterprise_key if signer == INVESTEE else keys[signer]
        return types.Tx.create(key, chain_id=config.chain_id, signer=signer, payload=payload,
                               nonce=nonce(), expires_at_ms=expires)

    def pay(payer_bank: str, payment_id: str, amount: int, shown: bytes, payee: str,
            purpose: str) -> txtypes.RecordCapitalPayment:
        """USD `amount` (cents) of FDI proceeds, the details sealed to the bank, the
        regulators and the enterprise."""
        to = [Recipient(p, 1, rings[p].public_key) for p in (payer_bank, *regulators, INVESTEE)]
        details = seal(txtypes.CapitalPaymentDetails(salt(), payee, "6222 0210 0000 4242",
                                                     purpose), "capital.pay", payment_id, to)
        return txtypes.RecordCapitalPayment(
            payment_id, INVESTEE, "fdi_proceeds", FDI_REGISTRATION,
            hashlib.sha256(shown).digest(), amount, "USD", details)

    registration = txtypes.RegisterDocument(
        FDI_REGISTRATION, txtypes.DOCUMENT_REGISTRATION, INVESTEE, 100_000_000, "USD",
        hashlib.sha256(REGISTRATION_TEXT).digest(), 0)
    steps: list[tuple[int, str, str, txtypes.Payload, str]] = [
        (1, "bank registers the foreign-invested enterprise (KYC, with its key)", bank,
         txtypes.RegisterEnterprise(
             INVESTEE, INVESTEE_NAME, "CN", enterprise_key.public_key,
             txtypes.sign_enterprise_key_proof(enterprise_key, config.chain_id, INVESTEE,
                                               bank)), "OK"),
        (1, "a second bank registers it as its customer too", bank2,
         txtypes.RegisterEnterprise(INVESTEE, INVESTEE_NAME, "CN", b""), "OK"),
        (2, "regulator registers the FDI registration (USD 1,000,000, with its SHA-256)",
         regulator, registration, "OK"),
        (2, "the tax bureau cannot register an FDI registration", tax,
         txtypes.RegisterDocument("FDI-QD-2026-9999", txtypes.DOCUMENT_REGISTRATION, INVESTEE,
                                  100_000_000, "USD", bytes(32), 0), "WRONG_ISSUER"),
        (3, "bank pays USD 600,000 of FDI proceeds, shown the registered document", bank,
         pay(bank, "CAP-BOC-0001", 60_000_000, REGISTRATION_TEXT, "Qingdao Machine Tools Co",
             "purchase of assembly robots"), "OK"),
        (3, "the second bank is shown a forged copy (amount raised): refused", bank2,
         pay(bank2, "CAP-ICBC-0001", 50_000_000, FORGED_TEXT, "Shandong Steel Trading Co",
             "steel frames"), "DOCUMENT_HASH_MISMATCH"),
        (3, "with the real copy, USD 500,000 more would exceed the registration", bank2,
         pay(bank2, "CAP-ICBC-0002", 50_000_000, REGISTRATION_TEXT,
             "Shandong Steel Trading Co", "steel frames"), "DOCUMENT_EXCEEDED"),
        (3, "the USD 400,000 it has left is paid at the second bank", bank2,
         pay(bank2, "CAP-ICBC-0003", 40_000_000, REGISTRATION_TEXT,
             "Shandong Steel Trading Co", "steel frames"), "OK"),
        (4, "regulator accepts the first payment", regulator,
         txtypes.ReviewCapitalPayment("CAP-BOC-0001", txtypes.REVIEW_ACCEPTED, ""), "OK"),
        (4, "regulator flags the second bank's payment for follow-up", regulator,
         txtypes.ReviewCapitalPayment("CAP-ICBC-0003", txtypes.REVIEW_FLAGGED,
                                      "payee shares a director with the investor"), "OK"),
    ]
    return [Step(n, title, tx(signer, payload), code) for n, title, signer, payload, code in steps]
