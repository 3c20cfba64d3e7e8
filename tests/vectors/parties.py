"""The fixed parties, keys and sample payloads behind docs/vectors/ (see its README.md).

Every key is an Ed25519 seed derived from a public label, ``SHA-256("crossbill-vectors/key/"
+ name)``, so anyone can rebuild it; such keys protect nothing and must never be used outside
tests. Sealed fields are sealed with `tests.sealing.DeterministicSealer` (every data key, nonce
and ephemeral key drawn from a seed), so the whole set is reproducible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final

from protocol import crypto, txtypes
from protocol.sealed import Recipient, default_encryption_key
from protocol.txtypes import Payload, Pledge
from tests.sealing import DeterministicSealer

CHAIN_ID: Final = "crossbill-vectors"
T0_MS: Final = 1_767_225_600_000  # 2026-01-01T00:00:00Z
EXPIRES_AT_MS: Final = T0_MS + 3_600_000
DAY_MS: Final = 86_400_000

REGULATOR: Final = "reg.safe"
CUSTOMS: Final = "customs.qd"
TAX: Final = "tax.qd"
BANK: Final = "bank.a"
BANK_B: Final = "bank.b"
INSURER: Final = "insurer.x"
EXPORTER: Final = "91370200MA3C00001X"  # an enterprise signs with its USCC as signer

# Who signs a type's vector: the first of its roles in this order.
SIGNER_BY_ROLE: Final = {
    txtypes.ROLE_REGULATOR: REGULATOR,
    txtypes.ROLE_CUSTOMS: CUSTOMS,
    txtypes.ROLE_TAX: TAX,
    txtypes.ROLE_BANK: BANK,
    txtypes.ROLE_INSURER: INSURER,
    txtypes.ROLE_ENTERPRISE: EXPORTER,
}


def seed_of(name: str) -> bytes:
    return hashlib.sha256(b"crossbill-vectors/key/" + name.encode()).digest()


def key_of(name: str) -> crypto.PrivateKey:
    return crypto.PrivateKey(seed_of(name))


def nonce_of(label: str) -> bytes:
    """A transaction nonce: 16 bytes derived from a label."""
    return hashlib.sha256(b"crossbill-vectors/nonce/" + label.encode()).digest()[:16]


def digest_of(label: str) -> bytes:
    """A stand-in SHA-256 (a document's hash, a state root) derived from a label."""
    return hashlib.sha256(b"crossbill-vectors/digest/" + label.encode()).digest()


def signer_of(tx_type: str) -> str:
    roles = txtypes.REGISTRY[tx_type].ROLES
    return next(name for role, name in SIGNER_BY_ROLE.items() if role in roles)


def recipient(party: str) -> Recipient:
    """A party at encryption key version 1: the X25519 form of its signing key (ADR 0024)."""
    return Recipient(party, 1, default_encryption_key(key_of(party).public_key))


def _recipients(*parties: str) -> list[Recipient]:
    return [recipient(p) for p in (*parties, REGULATOR)]


def _salt(label: str) -> bytes:
    return hashlib.sha256(b"crossbill-vectors/salt/" + label.encode()).digest()[:16]


def sample_payloads() -> dict[str, Payload]:
    """One sample payload of every transaction type, in `txtypes.REGISTRY` order: the function
    raises KeyError when a registered type has no sample here."""
    sealer = DeterministicSealer("crossbill-vectors")
    t = txtypes
    pledges = (Pledge("DEC-2026-0001", 600_000_00), Pledge("DEC-2026-0002", 400_000_00))

    def sealed_decl(no: str, goods: str) -> t.Sealed:
        return sealer.seal(t.DeclarationDetails(_salt(no + goods), "Hamburg Buyer GmbH", "DE",
                                                goods),
                           "declaration.register", no, _recipients(CUSTOMS, EXPORTER))

    def grant(epoch: int) -> t.FileKeyGrant:
        return sealer.new_file_key_grant(EXPORTER, epoch, [recipient(EXPORTER),
                                                           recipient(BANK)])[0]

    samples: dict[str, Callable[[], Payload]] = {
        "institution.admit": lambda: t.AdmitInstitution(
            BANK_B, "Bank B (青岛分行) — Qingdao", t.ROLE_BANK, key_of(BANK_B).public_key),
        "institution.suspend": lambda: t.SuspendInstitution(BANK_B, "licence under review"),
        "institution.reinstate": lambda: t.ReinstateInstitution(BANK_B),
        "institution.rekey": lambda: t.RekeyInstitution(
            BANK, key_of(BANK + "/2").public_key, (key_of(BANK).key_id,)),
        "node.set": lambda: t.SetNode(
            BANK_B, "12D3KooWGRUVh7eTbb2rvX8NhpgqXHVpTBNNiMGbgQ4wZoZm5b5K",
            ("/dns4/node.bank-b.example/tcp/7000", "/ip4/192.0.2.10/tcp/7000")),
        "orderer.add": lambda: t.AddOrderer(BANK_B),
        "orderer.remove": lambda: t.RemoveOrderer(BANK_B),
        "enterprise.set_fx_class": lambda: t.SetFxClass(EXPORTER, "B"),
        "enterprise.freeze": lambda: t.FreezeEnterprise(EXPORTER, "court order 2026-17"),
        "enterprise.unfreeze": lambda: t.UnfreezeEnterprise(EXPORTER),
        "params.set": lambda: t.SetParam("advance_rate_bps", 8500),
        "protocol.activate": lambda: t.ActivateVersion(2, 1000),
        "protocol.cancel": lambda: t.CancelActivation(2),
        "fx.publish": lambda: t.PublishFxRate("USD", "CNY", "2026-01-01", 710_000_000),
        "financing.release": lambda: t.ReleaseFinancing("FIN-2026-0001", "fraud finding"),
        "payment.review": lambda: t.ReviewPayment(
            "REV-2026-0001", EXPORTER, "FORM-2026-0001", 25_000_00, EXPIRES_AT_MS),
        "enterprise.register": lambda: t.RegisterEnterprise(
            EXPORTER, "Qingdao Exporter Co., Ltd.", "CN", key_of(EXPORTER).public_key,
            t.sign_enterprise_key_proof(key_of(EXPORTER), CHAIN_ID, EXPORTER, BANK)),
        "credit.record": lambda: t.RecordCredit(EXPORTER, "CR-2026-0001", sealer.seal(
            t.CreditDetails(_salt("credit"), "credit_line", 5_000_000_00, "CNY",
                            "revolving line"),
            "credit.record", "CR-2026-0001", [*_recipients(BANK, EXPORTER)])),
        "mandate.record": lambda: t.RecordMandate(
            EXPORTER, "MAN-2026-0001", digest_of("mandate"), T0_MS + 365 * DAY_MS),
        "mandate.revoke": lambda: t.RevokeMandate(EXPORTER, BANK),
        "financing.open": lambda: t.OpenFinancing(
            "FIN-2026-0001", EXPORTER, "APP-2026-0001", 900_000_00, "USD", pledges,
            T0_MS + 90 * DAY_MS, (sealer.seal(
                t.FinancingTerms(_salt("terms"), 450, 1_000_00, "pre-shipment", "LC 77"),
                "financing.open", "FIN-2026-0001", _recipients(BANK, EXPORTER)),)),
        "financing.disburse": lambda: t.DisburseFinancing("FIN-2026-0001"),
        "financing.repay": lambda: t.RepayFinancing("FIN-2026-0001", 300_000_00),
        "financing.close": lambda: t.CloseFinancing("FIN-2026-0001"),
        "financing.default": lambda: t.DefaultFinancing("FIN-2026-0001", "90 days overdue"),
        "payment.outbound": lambda: t.RecordOutboundPayment(
            "PAY-2026-0001", EXPORTER, "FORM-2026-0001", 25_000_00, "USD", ""),
        "payment.reverse": lambda: t.ReverseOutboundPayment("PAY-2026-0001", "refund"),
        "payment.inbound": lambda: t.RecordInboundProceeds(
            "PRC-2026-0001", EXPORTER, "DEC-2026-0001", 600_000_00, "USD", "FIN-2026-0001"),
        "declaration.register": lambda: t.RegisterDeclaration(
            "DEC-2026-0001", EXPORTER, 600_000_00, "USD", "2025-12-20",
            sealed_decl("DEC-2026-0001", "machine parts")),
        "declaration.amend": lambda: t.AmendDeclaration(
            "DEC-2026-0001", 650_000_00, sealed_decl("DEC-2026-0001", "machine parts, spare")),
        "declaration.cancel": lambda: t.CancelDeclaration("DEC-2026-0001", "shipment void"),
        "taxform.register": lambda: t.RegisterTaxForm(
            "FORM-2026-0001", EXPORTER, 25_000_00, "USD", sealer.seal(
                t.TaxFormDetails(_salt("form"), "Payee Pte Ltd", "consulting", 1_500_00),
                "taxform.register", "FORM-2026-0001", _recipients(TAX, EXPORTER))),
        "taxform.revoke": lambda: t.RevokeTaxForm("FORM-2026-0001", "issued in error"),
        "consent.grant": lambda: t.GrantConsent(BANK, EXPIRES_AT_MS, (grant(1),)),
        "consent.revoke": lambda: t.RevokeConsent(BANK, grant(2)),
        "encryption_key.set": lambda: t.SetEncryptionKey(
            recipient(BANK + "/encryption-2").public_key),
        "credit.read": lambda: t.ReadCredit(EXPORTER, "financing application APP-2026-0001"),
        "financing.apply": lambda: t.ApplyForFinancing(
            "APP-2026-0001", EXPORTER, BANK, 900_000_00, "USD", pledges, EXPIRES_AT_MS),
        "financing.withdraw": lambda: t.WithdrawApplication(EXPORTER, "APP-2026-0001"),
        "enterprise.rekey": lambda: t.RekeyEnterprise(EXPORTER,
                                                      key_of(EXPORTER + "/2").public_key),
        "policy.register": lambda: t.RegisterPolicy(
            "POL-2026-0001", EXPORTER, 2_000_000_00, "USD", T0_MS, T0_MS + 365 * DAY_MS,
            sealer.seal(t.PolicyDetails(_salt("policy"), ("Hamburg Buyer GmbH",), 80, ""),
                        "policy.register", "POL-2026-0001", _recipients(INSURER, EXPORTER))),
        "policy.assign": lambda: t.AssignPolicy(
            "POL-2026-0001", BANK, sealer.wrap(digest_of("policy data key"), recipient(BANK))),
        "policy.cancel": lambda: t.CancelPolicy("POL-2026-0001", "premium unpaid"),
        "policy.finance": lambda: t.FinancePolicy(
            "FIN-2026-0002", "POL-2026-0001", EXPORTER, 1_000_000_00, "USD",
            T0_MS + 120 * DAY_MS),
        "policy.repay": lambda: t.RepayPolicyFinancing("FIN-2026-0002", 250_000_00),
        "policy.claim": lambda: t.PayPolicyClaim(
            "CLM-2026-0001", "POL-2026-0001", "FIN-2026-0002", 750_000_00),
        "document.register": lambda: t.RegisterDocument(
            "DOC-2026-0001", t.DOCUMENT_REGISTRATION, EXPORTER, 5_000_000_00, "USD",
            digest_of("registration"), 0),
        "document.revoke": lambda: t.RevokeDocument("DOC-2026-0001", "superseded"),
        "capital.pay": lambda: t.RecordCapitalPayment(
            "CAP-2026-0001", EXPORTER, "fdi_proceeds", "DOC-2026-0001",
            digest_of("registration"), 1_000_000_00, "USD", sealer.seal(
                t.CapitalPaymentDetails(_salt("capital"), "Supplier AG", "DE89370400440532013000",
                                        "equipment"),
                "capital.pay", "CAP-2026-0001", _recipients(BANK, EXPORTER))),
        "capital.reverse": lambda: t.ReverseCapitalPayment("CAP-2026-0001", "bank error"),
        "capital.review": lambda: t.ReviewCapitalPayment("CAP-2026-0001", t.REVIEW_FLAGGED,
                                                         "document amount looks altered"),
    }
    return {tx_type: samples[tx_type]() for tx_type in txtypes.REGISTRY}
