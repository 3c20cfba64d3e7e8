"""The headline workflow of docs/domain.md §6 as signed transactions, and a consortium to run
it in.

`headline_steps` is shared by the local demo and (later) the devnet demo, so both walk exactly
the same workflow.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from node.client.sealing import Keyring, new_file_key_grant, salt, seal
from protocol import crypto, txtypes, types
from protocol.genesis import check_config
from protocol.ledger import dates
from protocol.sealed import Recipient, file_party

EXPORTER = "91370200MA3C8Y5R2K"
EXPORTER_NAME = "Qingdao Harbour Pumps Co., Ltd."


@dataclass(frozen=True)
class Member:
    id: str
    role: str
    name: str


DEFAULT_MEMBERS = (
    Member("regulator.safe-qd", "regulator", "SAFE Qingdao Branch"),
    Member("customs.qd", "customs", "Qingdao Customs"),
    Member("tax.qd", "tax", "Qingdao Tax Bureau"),
    Member("bank.boc-qd", "bank", "Bank of China Qingdao"),
    Member("bank.icbc-qd", "bank", "ICBC Qingdao"),
    Member("bank.ccb-qd", "bank", "CCB Qingdao"),
    Member("bank.abc-qd", "bank", "ABC Qingdao"),
)


def build_consortium(
    chain_id: str,
    genesis_time_ms: int,
    members: tuple[Member, ...] = DEFAULT_MEMBERS,
    keys: dict[str, crypto.PrivateKey] | None = None,
    nodes: dict[str, types.NodeInfo] | None = None,
) -> tuple[types.ConsortiumConfig, dict[str, crypto.PrivateKey]]:
    """A checked consortium configuration, with a fresh key per member unless given."""
    keys = dict(keys or {})
    nodes = nodes or {}
    institutions = []
    for m in members:
        k = keys.setdefault(m.id, crypto.PrivateKey(os.urandom(32)))
        default_node = types.NodeInfo(f"peer-{m.id}", ()) if m.role == "bank" else None
        institutions.append(types.Institution(
            m.id, m.name, m.role, (types.InstitutionKey(k.key_id, k.public_key),),
            nodes.get(m.id, default_node)))
    orderers = tuple(m.id for m in members if m.role == "bank")
    config = types.ConsortiumConfig(chain_id, genesis_time_ms, tuple(institutions), orderers,
                                    types.DEFAULT_PARAMS)
    check_config(config)
    return config, keys


def headline_keyrings(keys: dict[str, crypto.PrivateKey],
                      enterprise_key: crypto.PrivateKey) -> dict[str, Keyring]:
    """Every party's encryption keyring on a fresh consortium (version 1, derived from its
    signing key; the exporter's from its key)."""
    rings = {party: Keyring.from_signing_key(party, key) for party, key in keys.items()}
    rings[EXPORTER] = Keyring.from_signing_key(EXPORTER, enterprise_key)
    return rings


@dataclass(frozen=True)
class Step:
    """One step of the headline workflow: what a person would say, and the transaction."""

    number: int
    title: str
    tx: types.Tx
    expect_code: str  # "OK", or the reason code the ledger must give


DAY_MS = 24 * 60 * 60 * 1000
USD_CNY_E8 = 710_000_000  # the day's reference rate: 7.1 fen per cent (CNY per USD), x 10^8


def _date(time_ms: int) -> str:
    return dates.format_day(dates.day_of(time_ms))


def headline_steps(
    config: types.ConsortiumConfig,
    keys: dict[str, crypto.PrivateKey],
    now_ms: int,
    enterprise_key: crypto.PrivateKey,
    nonce: Callable[[], bytes] = lambda: os.urandom(16),
) -> list[Step]:
    """docs/domain.md §6, every step a signed transaction: an enterprise-signed application and
    a CNY financing against USD declarations, a refused double financing, proceeds in USD that
    repay it, a refused refinancing of the collected receivable, and a tax form.

    Confidential fields (the credit line, buyers and goods, the financing's terms, the form's
    payee) are sealed to their parties (ADR 0024) at encryption key version 1, which a fresh
    consortium derives from each party's signing key: `keyrings` opens them."""
    regulators = [i.id for i in config.institutions if i.role == "regulator"]
    regulator = regulators[0]
    customs = next(i.id for i in config.institutions if i.role == "customs")
    tax = next(i.id for i in config.institutions if i.role == "tax")
    bank, bank2 = [i.id for i in config.institutions if i.role == "bank"][:2]
    expires = now_ms + config.params.tx_expiry_window_ms // 2

    def tx(signer: str, payload: txtypes.Payload, key: crypto.PrivateKey | None = None) -> (
            types.Tx):
        return types.Tx.create(key or keys[signer], chain_id=config.chain_id, signer=signer,
                               payload=payload, nonce=nonce(), expires_at_ms=expires)

    rings = headline_keyrings(keys, enterprise_key)

    def to(*parties: str) -> list[Recipient]:
        return [Recipient(p, 1, rings[p].public_key) for p in (*parties, *regulators)]

    usd, cny = "USD", "CNY"
    def declaration(no: str, value: int, days_ago: int, buyer: str, destination: str,
                    goods: str) -> txtypes.RegisterDeclaration:
        """A USD export `days_ago` days back; buyer, destination and goods sealed to customs,
        the regulators and the exporter."""
        details = txtypes.DeclarationDetails(salt(), buyer, destination, goods)
        return txtypes.RegisterDeclaration(no, EXPORTER, value, usd,
                                           _date(now_ms - days_ago * DAY_MS),
                                           seal(details, "declaration.register", no,
                                                to(customs, EXPORTER)))

    # The consent starts the credit file's key (epoch 1); the entry is sealed to it too, so
    # every bank the exporter consents to later can read it (ADR 0024).
    file_key, _ = new_file_key_grant(EXPORTER, 1, to(EXPORTER, bank))
    credit_line = seal(txtypes.CreditDetails(salt(), "credit_line", 200_000_000, usd,
                                             "revolving export credit line"),
                       "credit.record", "CL-2026-001",
                       [*to(bank, EXPORTER),
                        Recipient(file_party(EXPORTER), 1, file_key.public_key)])
    decl1, decl2 = "QD-2026-EX-0001", "QD-2026-EX-0002"
    app1, app2 = "APP-BOC-0001", "APP-ICBC-0001"
    fin, fin2 = "FIN-BOC-0001", "FIN-ICBC-0001"
    form = "TX-2026-0001"
    maturity = now_ms + 90 * DAY_MS
    applied_until = now_ms + 7 * DAY_MS
    # USD 900,000 pledged (540,000 + 360,000) at 7.1 = CNY 6,390,000 (in fen).
    principal_cny = 90_000_000 * USD_CNY_E8 // 10**8
    second_try = txtypes.OpenFinancing(fin2, EXPORTER, app2, 30_000_000, usd, (
        txtypes.Pledge(decl1, 30_000_000),), maturity)
    steps = [
        (2, "bank registers the exporter (KYC, with the exporter's key)", bank,
         txtypes.RegisterEnterprise(
             EXPORTER, EXPORTER_NAME, "CN", enterprise_key.public_key,
             # the exporter's proof that it holds the key, made for this bank on this chain
             txtypes.sign_enterprise_key_proof(enterprise_key, config.chain_id, EXPORTER, bank)),
         "OK"),
        (1, "regulator classes the exporter A", regulator,
         txtypes.SetFxClass(EXPORTER, "A"), "OK"),
        (2, "exporter grants the bank consent to read its credit file (with the file's key)",
         EXPORTER, txtypes.GrantConsent(bank, now_ms + DAY_MS, (file_key,)), "OK"),
        (2, "bank records the exporter's credit line (sealed)", bank, txtypes.RecordCredit(
            EXPORTER, "CL-2026-001", credit_line), "OK"),
        (3, "customs registers declaration 1 (USD 600,000)", customs,
         declaration(decl1, 60_000_000, 10, "Hamburg Marine GmbH", "DE",
                     "centrifugal marine pumps"), "OK"),
        (3, "customs registers declaration 2 (USD 450,000)", customs,
         declaration(decl2, 45_000_000, 5, "Rotterdam Pumps BV", "NL", "pump spare parts"),
         "OK"),
        (4, "regulator publishes the day's USD/CNY reference rate (7.1)", regulator,
         txtypes.PublishFxRate(usd, cny, _date(now_ms), USD_CNY_E8), "OK"),
        (5, "exporter applies to its bank for CNY 6,390,000 on both", EXPORTER,
         txtypes.ApplyForFinancing(app1, EXPORTER, bank, principal_cny, cny, (
             txtypes.Pledge(decl1, 54_000_000), txtypes.Pledge(decl2, 36_000_000)),
             applied_until), "OK"),
        (5, "bank opens the CNY financing against the USD declarations", bank,
         txtypes.OpenFinancing(fin, EXPORTER, app1, principal_cny, cny, (
             txtypes.Pledge(decl1, 54_000_000), txtypes.Pledge(decl2, 36_000_000)),
             maturity, (seal(txtypes.FinancingTerms(salt(), 385, 120_000,
                                                    "pre-shipment working capital",
                                                    "BOC-QD-TF-2026-0117"),
                             "financing.open", fin, to(bank, EXPORTER)),)), "OK"),
        (5, "bank disburses the financing", bank, txtypes.DisburseFinancing(fin), "OK"),
        (6, "a second bank registers the exporter as its customer (KYC)", bank2,
         txtypes.RegisterEnterprise(EXPORTER, EXPORTER_NAME, "CN", b""), "OK"),
        (6, "exporter also applies to the second bank on declaration 1", EXPORTER,
         txtypes.ApplyForFinancing(app2, EXPORTER, bank2, 30_000_000, usd, (
             txtypes.Pledge(decl1, 30_000_000),), applied_until), "OK"),
        (6, "the second bank tries to finance declaration 1 again", bank2, second_try,
         "DOUBLE_FINANCING"),
        (7, "USD 600,000 proceeds of declaration 1 repay CNY 4,260,000", bank,
         txtypes.RecordInboundProceeds("PRC-0001", EXPORTER, decl1, 60_000_000, usd, fin),
         "OK"),
        (7, "proceeds of declaration 2 repay the remaining CNY 2,130,000", bank,
         txtypes.RecordInboundProceeds("PRC-0002", EXPORTER, decl2, 45_000_000, usd, fin),
         "OK"),
        (7, "bank closes the repaid financing", bank, txtypes.CloseFinancing(fin), "OK"),
        (8, "the second bank tries again: declaration 1 is collected", bank2, second_try,
         "RECEIVABLE_COLLECTED"),
        (9, "tax bureau registers a filing form (USD 50,000)", tax, txtypes.RegisterTaxForm(
            form, EXPORTER, 5_000_000, usd, seal(
                txtypes.TaxFormDetails(salt(), "Singapore Design Pte Ltd",
                                       "technical services", 300_000),
                "taxform.register", form, to(tax, EXPORTER))), "OK"),
        (9, "bank records an outbound payment of USD 30,000 against the form", bank,
         txtypes.RecordOutboundPayment("PAY-0001", EXPORTER, form, 3_000_000, usd, ""), "OK"),
        (9, "a second payment of USD 25,000 would exceed the form", bank2,
         txtypes.RecordOutboundPayment("PAY-0002", EXPORTER, form, 2_500_000, usd, ""),
         "FORM_EXCEEDED"),
        (2, "bank reads the exporter's credit file under consent (the read is on the ledger)",
         bank, txtypes.ReadCredit(EXPORTER, "annual review of the export credit line"), "OK"),
    ]
    return [Step(n, title, tx(signer, payload, enterprise_key if signer == EXPORTER else None),
                 code) for n, title, signer, payload, code in steps]
