"""Capital-account income payments checked for authenticity (protocol version 2;
docs/domain.md §4.11, I-30 .. I-33): documents registered by their issuers, payments citing
them that never exceed them at any bank, reversals, the regulator's review, the lists."""

from __future__ import annotations

import dataclasses
import pathlib
import re

import pytest

from node.client import sealing
from protocol import limits, txtypes
from protocol.ledger import codes, keys, lifecycle, queries, queries_capital, records
from protocol.sealed import SealedError
from tests.ledger.capital_helpers import capital_chain, content, document, pay, sha
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    BANK_C,
    DAY_MS,
    EXPORTER,
    EXPORTER2,
    PAYER,
    REG,
    TAX,
    Chain,
)

DOMAIN_MD = pathlib.Path(__file__).parents[2] / "docs" / "domain.md"


@pytest.fixture
def cap() -> Chain:
    return capital_chain()


def doc_of(chain: Chain, document_id: str) -> records.SupportingDocument:
    return chain.record(keys.capital_document(document_id), records.SupportingDocument)


def payment_of(chain: Chain, payment_id: str) -> records.CapitalPayment:
    return chain.record(keys.capital_payment(payment_id), records.CapitalPayment)


def code(chain: Chain, signer: str, payload: txtypes.Payload) -> str:
    receipt = chain.one(signer, payload)
    return receipt.code


# ------------------------------------------------------------------------------ versions


def test_every_capital_type_is_refused_before_version_two() -> None:
    chain = Chain()
    refused = [(REG, document("FDI-1", 100_000)),
               (REG, txtypes.RevokeDocument("FDI-1", "withdrawn")),
               (BANK_A, pay(chain, BANK_A, "CP-1", "FDI-1", 1)),
               (BANK_A, txtypes.ReverseCapitalPayment("CP-1", "error")),
               (REG, txtypes.ReviewCapitalPayment("CP-1", "accepted", ""))]
    for signer, payload in refused:
        receipt = chain.one(signer, payload)
        assert receipt.code == codes.TYPE_NOT_ACTIVE, payload.TYPE
    assert chain.state.kv.get(keys.capital_document("FDI-1")) is None
    chain.activate(2)
    assert chain.one(REG, document("FDI-1", 100_000)).ok


# ------------------------------------------------------------------------------ accepted path


def test_the_accepted_path_across_two_banks(cap: Chain) -> None:
    cap.ok(REG, document("FDI-1", 100_000))
    doc = doc_of(cap, "FDI-1")
    assert (doc.issuer, doc.status, doc.used, doc.document_hash) == (
        REG, records.REGISTERED, 0, sha(content("FDI-1")))
    cap.ok(BANK_A, pay(cap, BANK_A, "CP-1", "FDI-1", 60_000))
    cap.ok(BANK_B, pay(cap, BANK_B, "CP-2", "FDI-1", 40_000, category="external_debt"))
    assert doc_of(cap, "FDI-1").used == 100_000
    p = payment_of(cap, "CP-1")
    assert (p.bank, p.uscc, p.document_id, p.amount, p.status, p.review) == (
        BANK_A, EXPORTER, "FDI-1", 60_000, records.RECORDED, "")
    view = queries_capital.document_view(cap.state, "FDI-1")
    assert (view.used, view.remaining, view.live) == (100_000, 0, True)
    assert [h.tx_type for h in view.history] == ["document.register", "capital.pay",
                                                 "capital.pay"]
    # one more cent at any bank is refused: the guarantee
    receipt = cap.one(BANK_A, pay(cap, BANK_A, "CP-3", "FDI-1", 1))
    assert receipt.code == codes.DOCUMENT_EXCEEDED
    assert "has 0 left" in receipt.message
    # a reversal gives the amount back, and another bank may use it
    cap.ok(BANK_A, txtypes.ReverseCapitalPayment("CP-1", "payee account closed"))
    assert doc_of(cap, "FDI-1").used == 40_000
    assert payment_of(cap, "CP-1").status == records.REVERSED
    cap.ok(BANK_B, pay(cap, BANK_B, "CP-4", "FDI-1", 60_000))
    assert doc_of(cap, "FDI-1").used == 100_000


def test_the_sealed_details_open_to_the_bank_the_regulator_and_the_enterprise(
        cap: Chain) -> None:
    cap.ok(REG, document("FDI-1", 100_000))
    cap.ok(BANK_A, pay(cap, BANK_A, "CP-1", "FDI-1", 10_000))
    sealed = payment_of(cap, "CP-1").details
    for party in (BANK_A, REG, EXPORTER):
        opened = cap.open(sealed, "capital.pay", "CP-1", party)
        assert opened.purpose == "purchase of production lines"
    with pytest.raises(SealedError):
        cap.open(sealed, "capital.pay", "CP-1", BANK_B)
    assert sealing.open_field(sealed, "capital.pay", "CP-1", cap.keyring(REG)).payee


def test_a_payment_not_sealed_to_the_regulator_is_refused(cap: Chain) -> None:
    cap.ok(REG, document("FDI-1", 100_000))
    p = pay(cap, BANK_A, "CP-1", "FDI-1", 10_000)
    only_bank = cap.sealer.seal(sealing.open_field(p.details, "capital.pay", "CP-1",
                                                   cap.keyring(BANK_A)),
                                "capital.pay", "CP-1", [cap.recipient(BANK_A)])
    assert code(cap, BANK_A, dataclasses.replace(p, details=only_bank)) == codes.SEALED_PARTIES


# ------------------------------------------------------------------------------ the race


def test_two_banks_racing_for_one_document_in_one_block(cap: Chain) -> None:
    cap.ok(REG, document("FDI-1", 100_000))
    receipts = cap.apply(cap.tx(BANK_A, pay(cap, BANK_A, "CP-A", "FDI-1", 70_000)),
                         cap.tx(BANK_B, pay(cap, BANK_B, "CP-B", "FDI-1", 70_000)),
                         cap.tx(BANK_B, pay(cap, BANK_B, "CP-C", "FDI-1", 30_000)))
    assert [(r.ok, r.code) for r in receipts] == [
        (True, "OK"), (False, codes.DOCUMENT_EXCEEDED), (True, "OK")]
    assert doc_of(cap, "FDI-1").used == 100_000
    assert cap.state.kv.get(keys.capital_payment("CP-B")) is None


def test_a_reversal_and_a_payment_in_one_block(cap: Chain) -> None:
    cap.ok(REG, document("FDI-1", 100_000))
    cap.ok(BANK_A, pay(cap, BANK_A, "CP-1", "FDI-1", 100_000))
    receipts = cap.apply(cap.tx(BANK_B, pay(cap, BANK_B, "CP-2", "FDI-1", 50_000)),
                         cap.tx(BANK_A, txtypes.ReverseCapitalPayment("CP-1", "duplicate")),
                         cap.tx(BANK_B, pay(cap, BANK_B, "CP-3", "FDI-1", 50_000)))
    assert [r.code for r in receipts] == [codes.DOCUMENT_EXCEEDED, "OK", "OK"]
    assert doc_of(cap, "FDI-1").used == 50_000


# ------------------------------------------------------------------------------ documents


def test_each_kind_is_registered_by_its_issuer_only(cap: Chain) -> None:
    cap.ok(REG, document("REG-1", 1_000, kind="registration"))
    cap.ok(TAX, document("INV-1", 1_000, kind="invoice"))
    cap.ok(EXPORTER, document("CON-1", 1_000, kind="contract"))
    assert [doc_of(cap, d).issuer for d in ("REG-1", "INV-1", "CON-1")] == [REG, TAX, EXPORTER]
    assert code(cap, TAX, document("X-1", 1, kind="registration")) == codes.WRONG_ISSUER
    assert code(cap, REG, document("X-2", 1, kind="invoice")) == codes.WRONG_ISSUER
    assert code(cap, REG, document("X-3", 1, kind="contract")) == codes.WRONG_ISSUER
    assert code(cap, EXPORTER, document("X-4", 1, kind="invoice")) == codes.WRONG_ISSUER
    assert code(cap, EXPORTER, document("X-5", 1, kind="contract", uscc=EXPORTER2)) == \
        codes.SIGNER_MISMATCH
    assert code(cap, BANK_A, document("X-6", 1)) == codes.ROLE_FORBIDDEN
    assert code(cap, REG, document("REG-1", 5)) == codes.DOCUMENT_EXISTS
    assert doc_of(cap, "REG-1").amount == 1_000
    for missing in ("X-1", "X-2", "X-3", "X-4", "X-5", "X-6"):
        assert cap.state.kv.get(keys.capital_document(missing)) is None


def test_an_expiry_lies_ahead_within_the_bound(cap: Chain) -> None:
    now = cap.time_ms + 1000  # the next block's time
    assert code(cap, REG, document("E-1", 1, expires_at_ms=now)) == codes.BAD_EXPIRY
    assert code(cap, REG, document(
        "E-2", 1, expires_at_ms=cap.time_ms + 1000 + limits.DOCUMENT_VALIDITY_MS_MAX + 1)) == \
        codes.BAD_EXPIRY
    cap.ok(REG, document("E-3", 1, expires_at_ms=cap.time_ms + 1000 + DAY_MS))


def test_revoking_a_document(cap: Chain) -> None:
    cap.ok(REG, document("FDI-1", 100_000))
    cap.ok(BANK_A, pay(cap, BANK_A, "CP-1", "FDI-1", 10_000))
    assert code(cap, REG, txtypes.RevokeDocument("NOPE", "x")) == codes.UNKNOWN_DOCUMENT
    assert code(cap, TAX, txtypes.RevokeDocument("FDI-1", "x")) == codes.WRONG_ISSUER
    assert code(cap, REG, txtypes.RevokeDocument("FDI-1", "  ")) == codes.REASON_REQUIRED
    cap.ok(REG, txtypes.RevokeDocument("FDI-1", "registration annulled"))
    doc = doc_of(cap, "FDI-1")
    assert (doc.status, doc.revoke_reason, doc.used) == (
        records.REVOKED, "registration annulled", 10_000)
    assert code(cap, REG, txtypes.RevokeDocument("FDI-1", "again")) == codes.DOCUMENT_REVOKED
    assert code(cap, BANK_A, pay(cap, BANK_A, "CP-2", "FDI-1", 1)) == codes.DOCUMENT_REVOKED
    assert queries_capital.document_view(cap.state, "FDI-1").remaining == 0
    # payments already made stand; their reversal still gives the amount back
    cap.ok(BANK_A, txtypes.ReverseCapitalPayment("CP-1", "refund"))
    assert doc_of(cap, "FDI-1").used == 0
    # the enterprise revokes its own contract
    cap.ok(EXPORTER, document("CON-1", 5, kind="contract"))
    assert code(cap, REG, txtypes.RevokeDocument("CON-1", "x")) == codes.WRONG_ISSUER
    cap.ok(EXPORTER, txtypes.RevokeDocument("CON-1", "contract terminated"))


# ------------------------------------------------------------------------------ payments


def test_each_reason_a_capital_payment_is_refused(cap: Chain) -> None:
    cap.ok(REG, document("FDI-1", 100_000))
    cap.ok(REG, document("FDI-EUR", 100_000, currency="EUR"))
    cap.ok(REG, document("FDI-P", 100_000, uscc=PAYER))
    cap.ok(REG, document("FDI-T", 100_000, expires_at_ms=cap.time_ms + 1000 + 5_000))
    cap.ok(BANK_A, pay(cap, BANK_A, "CP-1", "FDI-1", 1_000))
    refusals = [
        (BANK_A, pay(cap, BANK_A, "CP-1", "FDI-1", 1), codes.PAYMENT_EXISTS),
        (BANK_A, pay(cap, BANK_A, "CP-2", "FDI-1", 1, uscc=EXPORTER2),
         codes.UNKNOWN_ENTERPRISE),
        (BANK_C, pay(cap, BANK_C, "CP-2", "FDI-1", 1), codes.NOT_SERVING_BANK),
        (BANK_A, pay(cap, BANK_A, "CP-2", "NOPE", 1), codes.UNKNOWN_DOCUMENT),
        (BANK_A, pay(cap, BANK_A, "CP-2", "FDI-P", 1), codes.PAYER_MISMATCH),
        (BANK_A, pay(cap, BANK_A, "CP-2", "FDI-1", 1, shown=b"a forged registration"),
         codes.DOCUMENT_HASH_MISMATCH),
        (BANK_A, pay(cap, BANK_A, "CP-2", "FDI-1", 1, currency="EUR"),
         codes.CURRENCY_MISMATCH),
        (BANK_A, pay(cap, BANK_A, "CP-2", "FDI-1", 99_001), codes.DOCUMENT_EXCEEDED),
        (BANK_A, txtypes.RecordCapitalPayment("CP-2", EXPORTER, "other", "FDI-1",
                                              sha(content("FDI-1")), 1, "USD",
                                              pay(cap, BANK_C, "CP-2", "FDI-1", 1).details),
         codes.SEALED_PARTIES),
    ]
    for bank, payload, expected in refusals:
        receipt = cap.one(bank, payload)
        assert receipt.code == expected, (expected, receipt.message)
    cap.apply(dt_ms=5_000)  # FDI-T expires
    assert code(cap, BANK_A, pay(cap, BANK_A, "CP-2", "FDI-T", 1)) == codes.DOCUMENT_EXPIRED
    assert not queries_capital.document_view(cap.state, "FDI-T").live
    assert doc_of(cap, "FDI-1").used == 1_000
    assert cap.state.kv.get(keys.capital_payment("CP-2")) is None
    cap.ok(BANK_A, pay(cap, BANK_A, "CP-2", "FDI-1", 99_000))


def test_a_frozen_or_class_c_enterprise_gets_no_capital_payment(cap: Chain) -> None:
    cap.ok(REG, document("FDI-1", 100_000))
    cap.ok(REG, txtypes.FreezeEnterprise(EXPORTER, "investigation"))
    assert code(cap, BANK_A, pay(cap, BANK_A, "CP-1", "FDI-1", 1)) == codes.ENTERPRISE_FROZEN
    cap.ok(REG, txtypes.UnfreezeEnterprise(EXPORTER))
    cap.ok(REG, txtypes.SetFxClass(EXPORTER, "C"))
    assert code(cap, BANK_B, pay(cap, BANK_B, "CP-1", "FDI-1", 1)) == codes.FX_CLASS_C
    cap.ok(REG, txtypes.SetFxClass(EXPORTER, "B"))
    cap.ok(BANK_B, pay(cap, BANK_B, "CP-1", "FDI-1", 1))
    # reversal and review go on for a frozen enterprise
    cap.ok(REG, txtypes.FreezeEnterprise(EXPORTER, "investigation"))
    cap.ok(REG, txtypes.ReviewCapitalPayment("CP-1", "flagged", "paid before the freeze"))
    cap.ok(BANK_B, txtypes.ReverseCapitalPayment("CP-1", "recalled"))


def test_reversing_a_capital_payment(cap: Chain) -> None:
    cap.ok(REG, document("FDI-1", 100_000))
    cap.ok(BANK_A, pay(cap, BANK_A, "CP-1", "FDI-1", 30_000))
    rev = txtypes.ReverseCapitalPayment
    assert code(cap, BANK_A, rev("NOPE", "x")) == codes.UNKNOWN_PAYMENT
    assert code(cap, BANK_B, rev("CP-1", "x")) == codes.NOT_RECORDING_BANK
    assert code(cap, BANK_A, rev("CP-1", "")) == codes.REASON_REQUIRED
    assert code(cap, REG, rev("CP-1", "x")) == codes.ROLE_FORBIDDEN
    cap.ok(BANK_A, rev("CP-1", "payee refused the funds"))
    assert code(cap, BANK_A, rev("CP-1", "again")) == codes.PAYMENT_REVERSED
    assert doc_of(cap, "FDI-1").used == 0
    assert payment_of(cap, "CP-1").reverse_reason == "payee refused the funds"


def test_the_regulator_reviews_each_payment_once(cap: Chain) -> None:
    cap.ok(REG, document("FDI-1", 100_000))
    cap.ok(BANK_A, pay(cap, BANK_A, "CP-1", "FDI-1", 30_000))
    cap.ok(BANK_B, pay(cap, BANK_B, "CP-2", "FDI-1", 30_000))
    review = txtypes.ReviewCapitalPayment
    assert code(cap, REG, review("NOPE", "accepted", "")) == codes.UNKNOWN_PAYMENT
    assert code(cap, BANK_A, review("CP-1", "accepted", "")) == codes.ROLE_FORBIDDEN
    assert code(cap, REG, review("CP-1", "flagged", " ")) == codes.REASON_REQUIRED
    cap.ok(REG, review("CP-1", "accepted", ""))
    assert code(cap, REG, review("CP-1", "flagged", "second thoughts")) == codes.REVIEW_EXISTS
    cap.ok(REG, review("CP-2", "flagged", "payee is a related party"))
    p1, p2 = payment_of(cap, "CP-1"), payment_of(cap, "CP-2")
    assert (p1.review, p2.review, p2.review_note) == (
        "accepted", "flagged", "payee is a related party")
    assert p2.reviewed_height == cap.height
    flagged = queries_capital.capital_payments(cap.state, REG, queries_capital.BY_FLAGGED)
    assert [p.payment_id for p in flagged.items] == ["CP-2"]
    history = queries.record_history(cap.state, keys.enterprise(EXPORTER))
    assert history[-1].tx_type == "capital.review"


def test_a_bad_category_or_outcome_is_not_a_payload() -> None:
    with pytest.raises(ValueError, match="capital category"):
        txtypes.RecordCapitalPayment("CP-1", EXPORTER, "gift", "D", bytes(32), 1, "USD",
                                     None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="review outcome"):
        txtypes.ReviewCapitalPayment("CP-1", "maybe", "")
    with pytest.raises(ValueError, match="document kind"):
        txtypes.RegisterDocument("D", "receipt", EXPORTER, 1, "USD", bytes(32), 0)


# ------------------------------------------------------------------------------ queries


def _ids(page: queries.Page[records.CapitalPayment]) -> list[str]:
    return [p.payment_id for p in page.items]


def test_who_lists_and_reads_capital_payments(cap: Chain) -> None:
    q = queries_capital
    cap.ok(REG, document("FDI-1", 100_000))
    cap.ok(REG, document("FDI-2", 100_000, uscc=PAYER))
    cap.ok(EXPORTER, document("CON-1", 100_000, kind="contract"))
    cap.ok(BANK_A, pay(cap, BANK_A, "CP-1", "FDI-1", 1_000))
    cap.ok(BANK_B, pay(cap, BANK_B, "CP-2", "CON-1", 2_000))
    cap.ok(BANK_A, pay(cap, BANK_A, "CP-3", "FDI-2", 3_000, uscc=PAYER))
    s = cap.state
    assert _ids(q.capital_payments(s, REG, q.BY_ALL)) == ["CP-1", "CP-2", "CP-3"]
    assert _ids(q.capital_payments(s, REG, q.BY_ENTERPRISE, EXPORTER)) == ["CP-1", "CP-2"]
    assert _ids(q.capital_payments(s, REG, q.BY_DOCUMENT, "FDI-2")) == ["CP-3"]
    assert _ids(q.capital_payments(s, REG, q.BY_BANK, BANK_B)) == ["CP-2"]
    assert _ids(q.capital_payments(s, BANK_A, q.BY_BANK, BANK_A)) == ["CP-1", "CP-3"]
    assert _ids(q.capital_payments(s, EXPORTER, q.BY_ENTERPRISE, EXPORTER)) == ["CP-1", "CP-2"]
    page = q.capital_payments(s, REG, q.BY_ALL, limit=2)
    assert (_ids(page), page.next_after) == (["CP-1", "CP-2"], "CP-2")
    assert _ids(q.capital_payments(s, REG, q.BY_ALL, after=page.next_after)) == ["CP-3"]
    refused = [(BANK_A, q.BY_BANK, BANK_B), (BANK_A, q.BY_ALL, ""),
               (BANK_A, q.BY_ENTERPRISE, EXPORTER), (EXPORTER, q.BY_ENTERPRISE, PAYER),
               (TAX, q.BY_ALL, ""), (BANK_B, q.BY_FLAGGED, "")]
    for reader, by, key in refused:
        with pytest.raises(queries.QueryRefused) as exc:
            q.capital_payments(s, reader, by, key)
        assert exc.value.code == q.QUERY_NOT_PERMITTED, (reader, by)
    with pytest.raises(queries.QueryRefused) as exc:
        q.capital_payments(s, "bank.nobody", q.BY_BANK, "bank.nobody")
    assert exc.value.code == codes.QUERY_UNKNOWN_READER
    assert q.capital_payment_view(s, "CP-2", BANK_B).payment.amount == 2_000
    assert q.capital_payment_view(s, "CP-2", REG).payment.bank == BANK_B
    assert q.capital_payment_view(s, "CP-2", EXPORTER).payment.document_id == "CON-1"
    for reader in (BANK_A, PAYER, TAX):
        with pytest.raises(queries.QueryRefused) as exc:
            q.capital_payment_view(s, "CP-2", reader)
        assert exc.value.code == q.QUERY_NOT_PERMITTED
    with pytest.raises(queries.QueryRefused) as exc:
        q.capital_payment_view(s, "NOPE", REG)
    assert exc.value.code == codes.QUERY_NOT_FOUND
    docs = q.documents_by_enterprise(s, EXPORTER)
    assert [d.document_id for d in docs.items] == ["CON-1", "FDI-1"]


# ------------------------------------------------------------------------------ domain.md


def _domain_rows(title: str) -> set[tuple[str, str, str, str]]:
    text = DOMAIN_MD.read_text()
    section = text[text.index(f"{title}\n"):]
    section = section[: section.index("\n\n", section.index("| ---"))]
    rows = set()
    for line in [x for x in section.splitlines() if x.startswith("|")][2:]:
        record, state, event, to = [c.strip() for c in line.strip("|").split("|")]
        rows.add((record, state, event.replace("`", ""), re.sub(r"\s*\(.*\)$", "", to)))
    return rows


def test_the_lifecycle_tables_are_the_ones_in_domain_md() -> None:
    code_rows = {(name, s, e, t)
                 for name, table in (("document", lifecycle.SUPPORTING_DOCUMENT),
                                     ("capital payment", lifecycle.CAPITAL_PAYMENT))
                 for (s, e), t in table.transitions.items()}
    assert code_rows == _domain_rows("#### Supporting document, capital payment")


def test_every_capital_code_is_named_in_domain_md() -> None:
    text = DOMAIN_MD.read_text()
    section = text[text.index("### 4.11 Capital-account income payments"):]
    section = section[: section.index("\n## ")]
    for name in ("DOCUMENT_EXISTS", "UNKNOWN_DOCUMENT", "WRONG_ISSUER", "DOCUMENT_REVOKED",
                 "DOCUMENT_EXPIRED", "DOCUMENT_HASH_MISMATCH", "DOCUMENT_EXCEEDED",
                 "PAYER_MISMATCH", "CURRENCY_MISMATCH", "ENTERPRISE_FROZEN", "FX_CLASS_C",
                 "NOT_SERVING_BANK", "PAYMENT_EXISTS", "UNKNOWN_PAYMENT", "NOT_RECORDING_BANK",
                 "PAYMENT_REVERSED", "REASON_REQUIRED", "REVIEW_EXISTS", "SIGNER_MISMATCH"):
        assert f"`{name}`" in section, name
