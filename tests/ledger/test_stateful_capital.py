"""Random capital-account income traffic (protocol version 2, docs/domain.md §4.11): issuers
register and revoke documents, three banks pay, race and reverse, the regulator reviews,
freezes and classes enterprises, several transactions per block and block time jumping past
documents' expiries. Each transaction's reason code is predicted by a small reference model
written from docs/domain.md (not from protocol/ledger), and after every block the ledger is
checked against the model and the invariants: a document's used amount is the sum of the
recorded payments citing it and never exceeds it (I-31); every list the regulator reads holds
exactly the payments it should."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from protocol import limits, txtypes, types
from protocol.ledger import keys, queries_capital, records
from tests.ledger.capital_helpers import capital_chain, content, pay, sha
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    BANK_C,
    EXPORTER,
    EXPORTER2,
    PAYER,
    REG,
    TAX,
    Chain,
    key_of,
    register_enterprise,
    uscc,
)

HOUR = 3_600_000
BANKS = [BANK_A, BANK_B, BANK_C]
STRANGER = uscc(9)  # never registered
USCCS = [EXPORTER, EXPORTER2, PAYER, STRANGER]
SERVING = {EXPORTER: {BANK_A, BANK_B}, PAYER: {BANK_A}, EXPORTER2: {BANK_C}}
KEYED = [EXPORTER, EXPORTER2]
ROLE = {REG: "regulator", TAX: "tax", EXPORTER: "enterprise", EXPORTER2: "enterprise"}
ISSUER_ROLE = {"registration": "regulator", "invoice": "tax", "contract": "enterprise"}
DOCS = [f"DOC-{i}" for i in range(8)]
PAYS = [f"CP-{i:02d}" for i in range(20)]
EXPIRIES = ["none", "none", "none", "now", "soon", "soon", "day", "too_far"]


@dataclass
class MDoc:
    kind: str
    uscc: str
    amount: int
    currency: str
    expires: int
    issuer: str
    revoked: bool = False
    used: int = 0


@dataclass
class MPay:
    bank: str
    uscc: str
    document: str
    amount: int
    reversed: bool = False
    review: str = ""


class Refused(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


def need(cond: bool, code: str) -> None:
    if not cond:
        raise Refused(code)


@dataclass
class Model:
    docs: dict[str, MDoc] = field(default_factory=dict)
    pays: dict[str, MPay] = field(default_factory=dict)
    frozen: set[str] = field(default_factory=set)
    fx_class: dict[str, str] = field(default_factory=dict)

    def register(self, signer: str, doc_id: str, kind: str, u: str, amount: int, ccy: str,
                 expires: int, now: int) -> None:
        need(doc_id not in self.docs, "DOCUMENT_EXISTS")
        need(ROLE[signer] == ISSUER_ROLE[kind], "WRONG_ISSUER")
        need(ROLE[signer] != "enterprise" or signer == u, "SIGNER_MISMATCH")
        need(not expires or now < expires <= now + limits.DOCUMENT_VALIDITY_MS_MAX,
             "BAD_EXPIRY")
        self.docs[doc_id] = MDoc(kind, u, amount, ccy, expires, signer)

    def revoke(self, signer: str, doc_id: str, reason: str) -> None:
        need(doc_id in self.docs, "UNKNOWN_DOCUMENT")
        doc = self.docs[doc_id]
        need(doc.issuer == signer, "WRONG_ISSUER")
        need(bool(reason.strip()), "REASON_REQUIRED")
        need(not doc.revoked, "DOCUMENT_REVOKED")
        doc.revoked = True

    def pay(self, bank: str, pid: str, u: str, doc_id: str, amount: int, ccy: str,
            forged: bool, now: int) -> None:
        need(pid not in self.pays, "PAYMENT_EXISTS")
        need(u in SERVING, "UNKNOWN_ENTERPRISE")
        need(bank in SERVING[u], "NOT_SERVING_BANK")
        need(u not in self.frozen, "ENTERPRISE_FROZEN")
        need(self.fx_class.get(u) != "C", "FX_CLASS_C")
        need(doc_id in self.docs, "UNKNOWN_DOCUMENT")
        doc = self.docs[doc_id]
        need(not doc.revoked, "DOCUMENT_REVOKED")
        need(not doc.expires or now < doc.expires, "DOCUMENT_EXPIRED")
        need(doc.uscc == u, "PAYER_MISMATCH")
        need(not forged, "DOCUMENT_HASH_MISMATCH")
        need(doc.currency == ccy, "CURRENCY_MISMATCH")
        need(doc.used + amount <= doc.amount, "DOCUMENT_EXCEEDED")
        doc.used += amount
        self.pays[pid] = MPay(bank, u, doc_id, amount)

    def reverse(self, bank: str, pid: str, reason: str) -> None:
        need(pid in self.pays, "UNKNOWN_PAYMENT")
        p = self.pays[pid]
        need(p.bank == bank, "NOT_RECORDING_BANK")
        need(bool(reason.strip()), "REASON_REQUIRED")
        need(not p.reversed, "PAYMENT_REVERSED")
        p.reversed = True
        self.docs[p.document].used -= p.amount

    def review(self, pid: str, outcome: str, note: str) -> None:
        need(pid in self.pays, "UNKNOWN_PAYMENT")
        p = self.pays[pid]
        need(not p.review, "REVIEW_EXISTS")
        need(outcome != "flagged" or bool(note.strip()), "REASON_REQUIRED")
        p.review = outcome

    def freeze(self, u: str, on: bool) -> None:
        need(on != (u in self.frozen), "ALREADY_FROZEN" if on else "NOT_FROZEN")
        (self.frozen.add if on else self.frozen.discard)(u)


# The traffic rules and their parameters' strategies: `traffic` picks one, weighted.
ACTIONS: dict[str, dict[str, st.SearchStrategy[object]]] = {}
WEIGHTS = {"register_document": 3, "revoke_document": 1, "pay": 6, "reverse": 3, "review": 2,
           "regulate": 1}


def action(**strategies: st.SearchStrategy[object]) -> Callable[[Callable[..., None]],
                                                                 Callable[..., None]]:
    def deco(method: Callable[..., None]) -> Callable[..., None]:
        ACTIONS[method.__name__] = strategies
        return method
    return deco


# One pending transaction: (signer, payload builder given the block time, model step, the
# capital payment id it records or "").
Pending = tuple[str, Callable[[int], txtypes.Payload], Callable[[Model, int], None], str]


class CapitalMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain: Chain = Chain()
        self.model = Model()
        self.pending: list[Pending] = []
        self.checked = 0

    @initialize()
    def setup(self) -> None:
        self.chain = capital_chain()  # EXPORTER at bank.a and bank.b, PAYER at bank.a
        self.chain.keys[EXPORTER2] = key_of("exporter2")
        self.chain.ok(BANK_C, register_enterprise(
            EXPORTER2, public_key=key_of("exporter2").public_key, bank=BANK_C))
        # documents on file from the start, so payments have something to cite (DOC-2 expires
        # with the next block)
        self.register_document("DOC-0", "registration", REG, EXPORTER, 1000, "USD", "none",
                               True)
        self.register_document("DOC-1", "invoice", TAX, PAYER, 500, "EUR", "day", True)
        self.register_document("DOC-2", "contract", EXPORTER, EXPORTER, 800, "USD", "soon", True)
        self.commit(1000)

    # ---------------------------------------------------------------- traffic

    @action(doc_id=st.sampled_from(DOCS), kind=st.sampled_from(list(ISSUER_ROLE)),
          signer=st.sampled_from([REG, TAX, *KEYED]), u=st.sampled_from(USCCS),
          amount=st.integers(1, 1000), ccy=st.sampled_from(["USD", "USD", "EUR"]),
          expiry=st.sampled_from(EXPIRIES), faithful=st.sampled_from([True, True, True, False]))
    def register_document(self, doc_id: str, kind: str, signer: str, u: str, amount: int,
                          ccy: str, expiry: str, faithful: bool) -> None:
        if faithful:  # mostly the issuer the kind needs (an enterprise for its own contract)
            if kind == "contract":
                u = u if u in KEYED else KEYED[amount % 2]
                signer = u
            else:
                signer = REG if kind == "registration" else TAX

        def expires(now: int) -> int:
            return {"none": 0, "now": now, "soon": now + 1000, "day": now + 24 * HOUR,
                    "too_far": now + limits.DOCUMENT_VALIDITY_MS_MAX + 1}[expiry]

        self.pending.append((
            signer,
            lambda now: txtypes.RegisterDocument(doc_id, kind, u, amount, ccy,
                                                 sha(content(doc_id)), expires(now)),
            lambda m, now: m.register(signer, doc_id, kind, u, amount, ccy, expires(now),
                                      now), ""))

    @action(doc_id=st.sampled_from(DOCS), signer=st.sampled_from([REG, TAX, *KEYED]),
          reason=st.sampled_from(["annulled", "annulled", " "]))
    def revoke_document(self, doc_id: str, signer: str, reason: str) -> None:
        doc = self.model.docs.get(doc_id)
        if doc is not None and reason.strip():
            signer = doc.issuer if len(reason) % 2 == 0 else signer
        self.pending.append((signer, lambda now: txtypes.RevokeDocument(doc_id, reason),
                             lambda m, now: m.revoke(signer, doc_id, reason), ""))

    @action(bank=st.sampled_from(BANKS), pid=st.sampled_from(PAYS), u=st.sampled_from(USCCS),
          doc_id=st.sampled_from(DOCS), amount=st.integers(1, 600),
          ccy=st.sampled_from(["USD", "USD", "EUR"]),
          forged=st.sampled_from([False, False, False, True]),
          follow=st.sampled_from([True, True, True, False]))
    def pay(self, bank: str, pid: str, u: str, doc_id: str, amount: int, ccy: str,
            forged: bool, follow: bool) -> None:
        live = sorted(d for d, doc in self.model.docs.items() if not doc.revoked)
        if follow and live:  # mostly a payment that could be right, on a live document
            doc_id = live[amount % len(live)]
            doc = self.model.docs[doc_id]
            u, ccy = doc.uscc, doc.currency
            serving = sorted(SERVING.get(u, {bank}))
            bank = serving[(amount // 7) % len(serving)]
            planned = {p for _, _, _, p in self.pending}
            free = sorted(set(PAYS) - set(self.model.pays) - planned)
            pid = free[amount % len(free)] if free else pid
        shown = b"a forged copy" if forged else content(doc_id)
        chain = self.chain
        self.pending.append((
            bank,
            lambda now: pay(chain, bank, pid, doc_id, amount, uscc=u, currency=ccy,
                            shown=shown),
            lambda m, now: m.pay(bank, pid, u, doc_id, amount, ccy, forged, now), pid))

    @action(pick=st.integers(0, 99), reason=st.sampled_from(["refund", "refund", ""]),
          intruder=st.sampled_from([None, None, *BANKS]))
    def reverse(self, pick: int, reason: str, intruder: str | None) -> None:
        pids = sorted(self.model.pays) or PAYS
        pid = pids[pick % len(pids)]
        p = self.model.pays.get(pid)
        bank = intruder or (p.bank if p else BANK_A)
        self.pending.append((bank, lambda now: txtypes.ReverseCapitalPayment(pid, reason),
                             lambda m, now: m.reverse(bank, pid, reason), ""))

    @action(pick=st.integers(0, 99), outcome=st.sampled_from(["accepted", "flagged"]),
          note=st.sampled_from(["related party", ""]))
    def review(self, pick: int, outcome: str, note: str) -> None:
        pids = sorted(self.model.pays) or PAYS
        pid = pids[pick % len(pids)]
        self.pending.append((REG, lambda now: txtypes.ReviewCapitalPayment(pid, outcome, note),
                             lambda m, now: m.review(pid, outcome, note), ""))

    @action(u=st.sampled_from(USCCS[:3]),
          what=st.sampled_from(["freeze", "unfreeze", "unfreeze", "A", "A", "C"]))
    def regulate(self, u: str, what: str) -> None:
        payload: txtypes.Payload
        step: Callable[[Model, int], None]
        if what == "freeze":
            payload, step = txtypes.FreezeEnterprise(u, "inquiry"), lambda m, n: m.freeze(u, True)
        elif what == "unfreeze":
            payload, step = txtypes.UnfreezeEnterprise(u), lambda m, n: m.freeze(u, False)
        else:
            payload = txtypes.SetFxClass(u, what)
            step = lambda m, n: m.fx_class.__setitem__(u, what)  # noqa: E731
        self.pending.append((REG, lambda now: payload, step, ""))

    @rule(data=st.data(), actions=st.lists(
        st.sampled_from([a for a, w in WEIGHTS.items() for _ in range(w)]), min_size=1,
        max_size=4))
    def traffic(self, data: st.DataObject, actions: list[str]) -> None:
        for name in actions:
            getattr(self, name)(**{k: data.draw(v) for k, v in ACTIONS[name].items()})

    @rule(gap=st.sampled_from([1000, 1000, 1000, 60_000, 2 * HOUR]))
    def commit(self, gap: int) -> None:
        now = self.chain.time_ms + gap
        txs = [self.chain.tx(signer, build(now), expires_at_ms=now + 60_000)
               for signer, build, _, _ in self.pending]
        receipts = self.chain.apply(*txs, dt_ms=gap)
        for (signer, _, step, _), tx, receipt in zip(self.pending, txs, receipts,
                                                     strict=True):
            try:
                step(self.model, now)
                expected = "OK"
            except Refused as exc:
                expected = exc.code
            assert receipt.code == expected, (tx.type, signer, receipt.message)
        self.pending = []
        self.check_ledger()

    # ---------------------------------------------------------------- checks

    def check_ledger(self) -> None:
        state, m = self.chain.state, self.model
        for doc_id, md in m.docs.items():
            doc = state.get(keys.capital_document(doc_id), records.SupportingDocument)
            assert doc is not None
            recorded = sum(p.amount for p in m.pays.values()
                           if p.document == doc_id and not p.reversed)
            assert doc.used == md.used == recorded <= doc.amount, doc_id
            assert (doc.status == records.REVOKED) == md.revoked
            assert (doc.issuer, doc.uscc, doc.currency) == (md.issuer, md.uscc, md.currency)
        for doc_id in set(DOCS) - set(m.docs):
            assert state.kv.get(keys.capital_document(doc_id)) is None
        for pid, mp in m.pays.items():
            p = state.get(keys.capital_payment(pid), records.CapitalPayment)
            assert p is not None
            assert (p.bank, p.uscc, p.document_id, p.amount) == (
                mp.bank, mp.uscc, mp.document, mp.amount)
            assert (p.status == records.REVERSED, p.review) == (mp.reversed, mp.review)
        for pid in set(PAYS) - set(m.pays):
            assert state.kv.get(keys.capital_payment(pid)) is None
        q = queries_capital

        def listed(by: str, key: str = "") -> list[str]:
            return [p.payment_id for p in q.capital_payments(state, REG, by, key).items]

        assert listed(q.BY_ALL) == sorted(m.pays)
        assert listed(q.BY_FLAGGED) == sorted(k for k, p in m.pays.items()
                                              if p.review == "flagged")
        for u in USCCS:
            assert listed(q.BY_ENTERPRISE, u) == sorted(k for k, p in m.pays.items()
                                                        if p.uscc == u)
            assert [d.document_id for d in q.documents_by_enterprise(state, u).items] == \
                sorted(k for k, d in m.docs.items() if d.uscc == u)
        for doc_id in DOCS:
            assert listed(q.BY_DOCUMENT, doc_id) == sorted(
                k for k, p in m.pays.items() if p.document == doc_id)
        for bank in BANKS:
            mine = sorted(k for k, p in m.pays.items() if p.bank == bank)
            assert listed(q.BY_BANK, bank) == mine
            assert [p.payment_id for p in q.capital_payments(state, bank, q.BY_BANK,
                                                             bank).items] == mine
        self.checked += 1

    @invariant()
    def blocks_stay_small(self) -> None:
        assert len(self.pending) <= types.DEFAULT_PARAMS.block_txs_max

    def teardown(self) -> None:
        if self.pending:
            self.commit(1000)


TestCapitalMachine = CapitalMachine.TestCase
TestCapitalMachine.settings = settings(
    max_examples=25, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
