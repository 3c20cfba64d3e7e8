"""Random traffic from several banks, customs, the tax bureau and the regulator, several
transactions per block, checked after every block against docs/domain.md's invariants and a small
independent reference model of the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from protocol import txtypes, types
from protocol.ledger import apply_block, compute_root, initial_state, keys, records
from tests.ledger.helpers import BANKS, CUSTOMS, REG, TAX, Chain, uscc

USCCS = [uscc(n) for n in range(1, 5)]
DECLS = [f"D-{i}" for i in range(6)]
FINS = [f"F-{i}" for i in range(12)]
FORMS = [f"T-{i}" for i in range(3)]
CCY = ["USD", "EUR"]
BPS = 9000
HOLDING = {"approved", "disbursed", "defaulted"}
ROLES_OF = {BANKS[0]: "bank", BANKS[1]: "bank", BANKS[2]: "bank", CUSTOMS: "customs",
            TAX: "tax", REG: "regulator"}

banks = st.sampled_from(BANKS)
usccs = st.sampled_from(USCCS)
decls = st.sampled_from(DECLS)
fins = st.sampled_from(FINS)
forms = st.sampled_from(FORMS)
ccys = st.sampled_from(["USD", "USD", "USD", "EUR"])
small = st.integers(1, 1200)


def cap(value: int) -> int:
    return value * BPS // 10_000


# ------------------------------------------------------------------------------ the model


@dataclass
class MDecl:
    exporter: str
    value: int
    currency: str
    cancelled: bool = False
    pledged: int = 0
    proceeds: int = 0


@dataclass
class MFin:
    bank: str
    uscc: str
    principal: int
    pledges: list[tuple[str, int]]
    status: str = "approved"
    repaid: int = 0


@dataclass
class MForm:
    payer: str
    amount: int
    currency: str
    used: int = 0
    revoked: bool = False


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def need(cond: bool, code: str) -> None:
    if not cond:
        raise Refused(code)


@dataclass
class Model:
    """What the ledger should do, written independently of protocol/ledger."""

    suspended: set[str] = field(default_factory=set)
    ents: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # uscc: name, banks
    frozen: set[str] = field(default_factory=set)
    fx: dict[str, str] = field(default_factory=dict)
    decls: dict[str, MDecl] = field(default_factory=dict)
    fins: dict[str, MFin] = field(default_factory=dict)
    forms: dict[str, MForm] = field(default_factory=dict)
    payments: set[str] = field(default_factory=set)
    proceeds: set[str] = field(default_factory=set)
    nonces: dict[tuple[str, bytes], int] = field(default_factory=dict)

    def apply(self, tx: types.Tx, now: int) -> str:
        saved = _snapshot(self)
        try:
            self._envelope(tx, now)
            getattr(self, "t_" + tx.type.replace(".", "_"))(tx.signer, tx.payload)
        except Refused as exc:
            _restore(self, saved)
            return exc.code
        self.nonces[(tx.signer, tx.nonce)] = tx.expires_at_ms
        return "OK"

    def _envelope(self, tx: types.Tx, now: int) -> None:
        need(tx.signer not in self.suspended, "SIGNER_SUSPENDED")
        need(ROLES_OF[tx.signer] in txtypes.REGISTRY[tx.type].ROLES, "ROLE_FORBIDDEN")
        need(tx.expires_at_ms >= now, "TX_EXPIRED")
        seen = self.nonces.get((tx.signer, tx.nonce))
        need(seen is None or seen < now, "NONCE_REPLAY")

    # regulator
    def t_institution_suspend(self, s: str, p: txtypes.SuspendInstitution) -> None:
        need(p.institution not in self.suspended, "ALREADY_SUSPENDED")
        self.suspended.add(p.institution)

    def t_institution_reinstate(self, s: str, p: txtypes.ReinstateInstitution) -> None:
        need(p.institution in self.suspended, "NOT_SUSPENDED")
        self.suspended.discard(p.institution)

    def t_enterprise_set_fx_class(self, s: str, p: txtypes.SetFxClass) -> None:
        self.fx[p.uscc] = p.fx_class

    def t_enterprise_freeze(self, s: str, p: txtypes.FreezeEnterprise) -> None:
        need(p.uscc not in self.frozen, "ALREADY_FROZEN")
        self.frozen.add(p.uscc)

    def t_enterprise_unfreeze(self, s: str, p: txtypes.UnfreezeEnterprise) -> None:
        need(p.uscc in self.frozen, "NOT_FROZEN")
        self.frozen.discard(p.uscc)

    # banks: enterprises
    def t_enterprise_register(self, s: str, p: txtypes.RegisterEnterprise) -> None:
        if p.uscc not in self.ents:
            self.ents[p.uscc] = (p.name, [s])
            return
        name, served = self.ents[p.uscc]
        need(name == p.name, "ENTERPRISE_MISMATCH")
        need(s not in served, "ALREADY_REGISTERED")
        served.append(s)

    def _served(self, s: str, u: str) -> None:
        need(u in self.ents, "UNKNOWN_ENTERPRISE")
        need(s in self.ents[u][1], "NOT_SERVING_BANK")

    def _may_finance(self, u: str) -> None:
        need(u not in self.frozen, "ENTERPRISE_FROZEN")
        need(self.fx.get(u) != "C", "FX_CLASS_C")

    def _decl(self, no: str) -> MDecl:
        need(no in self.decls, "UNKNOWN_DECLARATION")
        d = self.decls[no]
        need(not d.cancelled, "DECLARATION_CANCELLED")
        return d

    # customs
    def t_declaration_register(self, s: str, p: txtypes.RegisterDeclaration) -> None:
        need(p.declaration_no not in self.decls, "DECLARATION_EXISTS")
        self.decls[p.declaration_no] = MDecl(p.exporter, p.value, p.currency)

    def t_declaration_amend(self, s: str, p: txtypes.AmendDeclaration) -> None:
        d = self._decl(p.declaration_no)
        need(cap(p.value) >= d.pledged, "AMEND_BELOW_PLEDGED")
        need(p.value >= d.proceeds, "AMEND_BELOW_PROCEEDS")
        d.value = p.value

    def t_declaration_cancel(self, s: str, p: txtypes.CancelDeclaration) -> None:
        d = self._decl(p.declaration_no)
        need(d.pledged == 0, "DECLARATION_PLEDGED")
        d.cancelled = True

    # banks: financing
    def t_financing_open(self, s: str, p: txtypes.OpenFinancing) -> None:
        need(p.financing_id not in self.fins, "FINANCING_EXISTS")
        self._served(s, p.uscc)
        self._may_finance(p.uscc)
        seen: set[str] = set()
        for pl in p.pledges:
            need(pl.declaration_no not in seen, "DUPLICATE_PLEDGE")
            seen.add(pl.declaration_no)
            d = self._decl(pl.declaration_no)
            need(d.exporter == p.uscc, "EXPORTER_MISMATCH")
            need(d.currency == p.currency, "CURRENCY_MISMATCH")
            need(d.pledged + pl.amount <= cap(d.value),
                 "DOUBLE_FINANCING" if d.pledged else "ADVANCE_RATE_EXCEEDED")
        need(p.principal <= sum(pl.amount for pl in p.pledges), "PRINCIPAL_EXCEEDS_PLEDGES")
        for pl in p.pledges:
            self.decls[pl.declaration_no].pledged += pl.amount
        self.fins[p.financing_id] = MFin(s, p.uscc, p.principal,
                                         [(pl.declaration_no, pl.amount) for pl in p.pledges])

    def _own(self, s: str, fid: str, *status: str) -> MFin:
        need(fid in self.fins, "UNKNOWN_FINANCING")
        f = self.fins[fid]
        need(f.bank == s, "NOT_LENDING_BANK")
        need(f.status in status, "BAD_FINANCING_STATUS")
        return f

    def _move(self, f: MFin, status: str) -> None:
        if f.status in HOLDING and status not in HOLDING:
            for no, amount in f.pledges:
                self.decls[no].pledged -= amount
        f.status = status

    def _repay(self, f: MFin, amount: int) -> None:
        need(amount <= f.principal - f.repaid, "REPAYMENT_EXCEEDS_OUTSTANDING")
        f.repaid += amount
        if f.repaid == f.principal:
            self._move(f, "repaid")

    def t_financing_disburse(self, s: str, p: txtypes.DisburseFinancing) -> None:
        f = self._own(s, p.financing_id, "approved")
        self._may_finance(f.uscc)
        self._move(f, "disbursed")

    def t_financing_repay(self, s: str, p: txtypes.RepayFinancing) -> None:
        self._repay(self._own(s, p.financing_id, "disbursed", "defaulted"), p.amount)

    def t_financing_close(self, s: str, p: txtypes.CloseFinancing) -> None:
        f = self._own(s, p.financing_id, "approved", "disbursed", "repaid", "defaulted")
        need(f.status != "disbursed", "OUTSTANDING_BALANCE")
        self._move(f, "closed")

    def t_financing_default(self, s: str, p: txtypes.DefaultFinancing) -> None:
        self._move(self._own(s, p.financing_id, "disbursed"), "defaulted")

    # banks: payments
    def t_payment_inbound(self, s: str, p: txtypes.RecordInboundProceeds) -> None:
        need(p.proceeds_id not in self.proceeds, "PROCEEDS_EXISTS")
        self._served(s, p.exporter)
        d = self._decl(p.declaration_no)
        need(d.exporter == p.exporter, "EXPORTER_MISMATCH")
        need(d.currency == p.currency, "CURRENCY_MISMATCH")
        need(d.proceeds + p.amount <= d.value, "PROCEEDS_EXCEED_VALUE")
        d.proceeds += p.amount
        if p.financing_id:
            f = self._own(s, p.financing_id, "disbursed", "defaulted")
            need(f.uscc == p.exporter, "EXPORTER_MISMATCH")
            need(any(no == p.declaration_no for no, _ in f.pledges), "DECLARATION_NOT_PLEDGED")
            self._repay(f, min(p.amount, f.principal - f.repaid))
        self.proceeds.add(p.proceeds_id)

    def t_payment_outbound(self, s: str, p: txtypes.RecordOutboundPayment) -> None:
        need(p.payment_id not in self.payments, "PAYMENT_EXISTS")
        self._served(s, p.payer)
        need(p.form_no in self.forms, "UNKNOWN_FORM")
        f = self.forms[p.form_no]
        need(not f.revoked, "FORM_REVOKED")
        need(f.payer == p.payer, "PAYER_MISMATCH")
        need(f.currency == p.currency, "CURRENCY_MISMATCH")
        need(f.used + p.amount <= f.amount, "FORM_EXCEEDED")
        f.used += p.amount
        self.payments.add(p.payment_id)

    # tax bureau
    def t_taxform_register(self, s: str, p: txtypes.RegisterTaxForm) -> None:
        need(p.form_no not in self.forms, "FORM_EXISTS")
        self.forms[p.form_no] = MForm(p.payer, p.amount, p.currency)

    def t_taxform_revoke(self, s: str, p: txtypes.RevokeTaxForm) -> None:
        need(p.form_no in self.forms, "UNKNOWN_FORM")
        need(not self.forms[p.form_no].revoked, "FORM_REVOKED")
        self.forms[p.form_no].revoked = True


def _snapshot(m: Model) -> Model:
    import copy

    return copy.deepcopy(m)


def _restore(m: Model, saved: Model) -> None:
    m.__dict__.update(saved.__dict__)


# ------------------------------------------------------------------------------ the machine


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain()
        self.model = Model()
        self.pending: list[types.Tx] = []
        self.applied: list[types.Tx] = []
        self.counter = 0

    # --- helpers
    def next_time(self) -> int:
        return self.chain.time_ms + 1000

    def add(self, signer: str, payload: txtypes.Payload, **kw: object) -> None:
        kw.setdefault("expires_at_ms", self.next_time() + 600_000)
        self.pending.append(self.chain.tx(signer, payload, **kw))  # type: ignore[arg-type]
        if len(self.pending) >= 8:
            self.commit()

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    # --- a populated start: enterprises, declarations and forms
    @initialize(values=st.lists(st.integers(100, 1500), min_size=len(DECLS),
                                max_size=len(DECLS)))
    def populate(self, values: list[int]) -> None:
        for i, u in enumerate(USCCS):
            self.add(BANKS[i % 3], txtypes.RegisterEnterprise(u, f"Company {u[-6:]}", "CN", b""))
        self.add(BANKS[1], txtypes.RegisterEnterprise(USCCS[0], f"Company {USCCS[0][-6:]}",
                                                      "CN", b""))
        self.commit()
        for i, (no, value) in enumerate(zip(DECLS, values, strict=True)):
            self.add(CUSTOMS, txtypes.RegisterDeclaration(
                no, USCCS[i % 2], "Buyer", "DE", "goods", value, "EUR" if i == 5 else "USD",
                "2026-11-01"))
        for i, form in enumerate(FORMS):
            self.add(TAX, txtypes.RegisterTaxForm(form, USCCS[2 + i % 2], "Payee", "consulting",
                                                  values[i], "USD", 0))
        self.commit()

    # --- regulator
    @rule(kind=st.sampled_from(["suspend", "reinstate", "reinstate", "fx", "fx", "freeze",
                                "unfreeze", "unfreeze"]),
          bank=banks, u=usccs, fx=st.sampled_from(["A", "B", "B", "C"]))
    def regulator(self, kind: str, bank: str, u: str, fx: str) -> None:
        payload: txtypes.Payload = {
            "suspend": txtypes.SuspendInstitution(bank, "random"),
            "reinstate": txtypes.ReinstateInstitution(bank),
            "fx": txtypes.SetFxClass(u, fx),
            "freeze": txtypes.FreezeEnterprise(u, ""),
            "unfreeze": txtypes.UnfreezeEnterprise(u),
        }[kind]
        self.add(REG, payload)

    # --- banks
    @rule(bank=banks, u=usccs, odd_name=st.booleans())
    def register(self, bank: str, u: str, odd_name: bool) -> None:
        name = "Other" if odd_name else f"Company {u[-6:]}"
        self.add(bank, txtypes.RegisterEnterprise(u, name, "CN", b""))

    @rule(bank=banks, fid=fins, u=usccs, principal=small, ccy=ccys,
          pledges=st.lists(st.tuples(decls, st.integers(1, 700)), min_size=1, max_size=3),
          plausible=st.sampled_from([True] * 4 + [False]))
    def open_financing(self, bank: str, fid: str, u: str, principal: int, ccy: str,
                       pledges: list[tuple[str, int]], plausible: bool) -> None:
        """Half the time the exporter, bank and currency fit the first pledged declaration,
        so that the advance-rate and double-financing rules get exercised."""
        first = self.model.decls.get(pledges[0][0])
        if plausible and first is not None:
            fid = next((f for f in FINS if f not in self.model.fins), fid)
            u, ccy = first.exporter, first.currency
            served = self.model.ents.get(u, ("", [bank]))[1]
            bank = served[principal % len(served)] if served else bank
            principal = min(principal, sum(a for _, a in pledges))
        self.add(bank, txtypes.OpenFinancing(
            fid, u, principal, ccy, tuple(txtypes.Pledge(no, a) for no, a in pledges)))

    @precondition(lambda self: bool(self.model.fins))
    @rule(amount=small, data=st.data(), intruder=st.sampled_from([None, None, None, *BANKS]))
    def lender_acts(self, amount: int, data: st.DataObject, intruder: str | None) -> None:
        """The lending bank (or sometimes another bank) moves existing financings on."""
        for _ in range(data.draw(st.integers(1, 3))):
            self.lender_action(amount, data, intruder)

    def lender_action(self, amount: int, data: st.DataObject, intruder: str | None) -> None:
        fid = data.draw(st.sampled_from(sorted(self.model.fins)))
        f = self.model.fins[fid]
        bank = intruder or f.bank
        action = data.draw(st.sampled_from(["disburse", "repay", "repay", "close", "default",
                                            "proceeds"]))
        if action == "repay":
            self.add(bank, txtypes.RepayFinancing(fid, min(amount, max(1, f.principal // 2))))
        elif action == "proceeds":
            no = data.draw(st.sampled_from([no for no, _ in f.pledges]))
            d = self.model.decls[no]
            self.add(bank, txtypes.RecordInboundProceeds(
                self.fresh("P"), f.uscc, no, amount, d.currency, fid))
        else:
            self.add(bank, {"disburse": txtypes.DisburseFinancing(fid),
                              "close": txtypes.CloseFinancing(fid),
                              "default": txtypes.DefaultFinancing(fid, "late")}[action])

    @rule(bank=banks, u=usccs, no=decls, amount=small, ccy=ccys,
          fid=st.sampled_from(["", *FINS]))
    def inbound(self, bank: str, u: str, no: str, amount: int, ccy: str, fid: str) -> None:
        self.add(bank, txtypes.RecordInboundProceeds(self.fresh("P"), u, no, amount, ccy, fid))

    @rule(bank=banks, u=usccs, form=forms, amount=st.integers(1, 900), ccy=ccys,
          plausible=st.booleans())
    def outbound(self, bank: str, u: str, form: str, amount: int, ccy: str,
                 plausible: bool) -> None:
        f = self.model.forms.get(form)
        if plausible and f is not None:
            u, ccy = f.payer, f.currency
            served = self.model.ents.get(u, ("", [bank]))[1]
            bank = served[0] if served else bank
        self.add(bank, txtypes.RecordOutboundPayment(self.fresh("O"), u, form, amount, ccy))

    # --- customs and tax
    @rule(no=decls, u=usccs, value=st.integers(100, 1500), ccy=ccys)
    def declare(self, no: str, u: str, value: int, ccy: str) -> None:
        self.add(CUSTOMS, txtypes.RegisterDeclaration(no, u, "Buyer", "DE", "goods", value,
                                                      ccy, "2026-11-01"))

    @rule(no=decls, value=st.integers(1, 1500), cancel=st.sampled_from([True] + [False] * 3))
    def amend_or_cancel(self, no: str, value: int, cancel: bool) -> None:
        self.add(CUSTOMS, txtypes.CancelDeclaration(no, "") if cancel
                 else txtypes.AmendDeclaration(no, value, "goods v2"))

    @rule(form=forms, u=usccs, amount=st.integers(100, 1500), ccy=ccys, revoke=st.booleans())
    def tax(self, form: str, u: str, amount: int, ccy: str, revoke: bool) -> None:
        self.add(TAX, txtypes.RevokeTaxForm(form, "") if revoke else
                 txtypes.RegisterTaxForm(form, u, "Payee", "consulting", amount, ccy, 0))

    # --- envelope trouble: wrong role, expired, replayed transaction, reused nonce
    @rule(kind=st.sampled_from(["role", "expired", "replay", "nonce"]), fid=fins, u=usccs,
          signer=st.sampled_from([CUSTOMS, TAX, REG]), data=st.data())
    def trouble(self, kind: str, fid: str, u: str, signer: str, data: st.DataObject) -> None:
        if kind == "role":
            self.add(signer, txtypes.DisburseFinancing(fid))
        elif kind == "expired":
            self.add(BANKS[0], txtypes.RegisterEnterprise(u, "x", "CN", b""),
                     expires_at_ms=self.next_time() - 1)
        elif self.applied:
            old = data.draw(st.sampled_from(self.applied))
            if kind == "replay":
                self.pending.append(old)
            elif old.signer in BANKS:
                self.add(old.signer, txtypes.DisburseFinancing(fid), nonce=old.nonce)

    # --- blocks
    @rule(gap=st.sampled_from([1000] * 7 + [700_000]))
    def commit(self, gap: int = 1000) -> None:
        txs, self.pending = self.pending, []
        if len({tx.id for tx in txs}) != len(txs):  # validate_basic refuses such a block
            txs = list({tx.id: tx for tx in txs}.values())
        now = self.chain.time_ms + gap
        expected = [self.model.apply(tx, now) for tx in txs]
        receipts = self.chain.apply(*txs, dt_ms=gap)
        got = [r.code for r in receipts]
        assert got == expected, [(tx.type, g, e, r.message) for tx, g, e, r in
                                 zip(txs, got, expected, receipts, strict=True) if g != e]
        self.applied.extend(tx for tx, r in zip(txs, receipts, strict=True) if r.ok)
        self.check_ledger()

    # --- invariants
    def check_ledger(self) -> None:
        state = self.chain.state
        decls_ = {k: v for k, v in state.scan(keys.DECLARATION, records.Declaration)}
        fins_ = [v for _, v in state.scan(keys.FINANCING, records.Financing)]
        pledged: dict[str, int] = {}
        for f in fins_:
            assert f.principal <= sum(p.amount for p in f.pledges)
            assert 0 <= f.repaid <= f.principal
            if f.holds_pledges:
                for p in f.pledges:
                    d = decls_[keys.declaration(p.declaration_no)]
                    assert d.exporter == f.uscc and d.currency == f.currency
                    assert d.status != records.CANCELLED
                    pledged[p.declaration_no] = pledged.get(p.declaration_no, 0) + p.amount
        for d in decls_.values():  # invariant 1, across banks and blocks
            assert d.pledged == pledged.get(d.declaration_no, 0) <= cap(d.value)
            assert d.proceeds <= d.value
            m = self.model.decls[d.declaration_no]
            assert (d.value, d.pledged, d.proceeds, d.status == records.CANCELLED) == \
                (m.value, m.pledged, m.proceeds, m.cancelled)
        used: dict[str, int] = {}
        for _, pay in state.scan(keys.PAYMENT, records.OutboundPayment):
            used[pay.form_no] = used.get(pay.form_no, 0) + pay.amount
        for _, form in state.scan(keys.TAX_FORM, records.TaxForm):  # invariant 3
            assert form.used == used.get(form.form_no, 0) <= form.amount
            assert form.used == self.model.forms[form.form_no].used
        for f in fins_:
            mf = self.model.fins[f.financing_id]
            assert (f.status, f.repaid, f.bank) == (mf.status, mf.repaid, mf.bank)
        assert len(fins_) == len(self.model.fins) and len(decls_) == len(self.model.decls)
        # State root: incremental == from scratch (invariant 7).
        rooted = [(k, v) for k, v in state.kv.iterate(b"", None) if keys.is_rooted(k)]
        assert state.state_root() == compute_root(rooted)

    @invariant()
    def nothing_pending_is_applied(self) -> None:
        assert self.chain.height == len(self.chain.results)

    def teardown(self) -> None:
        # Determinism: a fresh node replaying the same blocks reaches the same state.
        if not self.chain.blocks:
            return
        other = initial_state(self.chain.config)
        for block, result in zip(self.chain.blocks, self.chain.results, strict=True):
            again = apply_block(other, block)
            assert again.receipts == result.receipts and again.state_root == result.state_root
            again.commit(other)


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(
    max_examples=80, stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
