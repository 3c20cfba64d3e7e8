"""Random traffic from enterprises, several banks, customs, the tax bureau and the regulator,
several transactions per block, block time moving forward by random steps and by heartbeat
(empty) blocks, in three currencies, with encryption keys rotating under sealed records
(issue 16); after every block the ledger is checked against docs/domain.md's invariants and a
small independent reference model of the ledger (written with `datetime`, not
protocol/ledger), transaction by transaction, reason code by reason code."""

from __future__ import annotations

import copy
import datetime
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
from protocol.ledger import compute_root, keys, records
from protocol.ledger.kv import iterate_prefix
from protocol.sealed import Sealed, default_encryption_key
from tests.ledger.helpers import (
    BANKS,
    CUSTOMS,
    REG,
    TAX,
    Chain,
    amend,
    declaration,
    key_of,
    make_config,
    register_enterprise,
    tax_form,
    uscc,
)

DAY = 86_400_000
HOUR = 3_600_000
KEYED = [uscc(n) for n in range(1, 4)]  # enterprises holding a key
KEYLESS = uscc(4)  # served by BANKS[0] under a mandate
USCCS = [*KEYED, KEYLESS]
DECLS = [f"D-{i}" for i in range(8)]
FINS = [f"F-{i:02d}" for i in range(20)]
APPS = [f"A-{i}" for i in range(10)]
FORMS = [f"T-{i}" for i in range(3)]
CCYS = ["USD", "EUR", "CNY"]
SCALE = 10**8
LAPSE_MS = 2 * HOUR  # short, so that lapses happen within an example
APP_VALIDITY_MAX = 90 * DAY
REVIEW_VALIDITY_MAX = 30 * DAY
TENOR_MAX = 366 * DAY
HOLDING = {"approved", "disbursed", "overdue", "defaulted"}
OWING = {"disbursed", "overdue", "defaulted"}
ROLES_OF = {BANKS[0]: "bank", BANKS[1]: "bank", BANKS[2]: "bank", CUSTOMS: "customs",
            TAX: "tax", REG: "regulator", **dict.fromkeys(USCCS, "enterprise")}
PARAM_BOUNDS = {"advance_rate_bps": (0, 10_000), "financing_lapse_ms": (60_000, 90 * DAY),
                "receivable_age_max_ms": (DAY, 730 * DAY),
                "heartbeat_interval_ms": (1_000, HOUR), "class_b_tenor_max_ms": (DAY, 366 * DAY)}

banks = st.sampled_from(BANKS)
usccs = st.sampled_from(USCCS)
decls = st.sampled_from(DECLS)
fins = st.sampled_from(FINS)
apps = st.sampled_from(APPS)
forms = st.sampled_from(FORMS)
ccys = st.sampled_from(["USD", "USD", "EUR", "CNY"])
small = st.integers(1, 1200)
LOW_ORDER = {bytes(32), (1).to_bytes(32, "little")}  # X25519 points of small order (some)


def day_of(time_ms: int) -> int:
    return time_ms // DAY


def date_of(day: int) -> str:
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=day)).isoformat()


def day_ms(date: str) -> int:
    return (datetime.date.fromisoformat(date) - datetime.date(1970, 1, 1)).days * DAY


# ------------------------------------------------------------------------------ the model


@dataclass
class MDecl:
    exporter: str
    value: int
    currency: str
    export_date: str
    rate_bps: int
    cancelled: bool = False
    pledged: int = 0
    proceeds: int = 0

    @property
    def outstanding(self) -> int:
        return 0 if self.cancelled else max(self.value - self.proceeds, 0)


@dataclass
class MApp:
    bank: str
    principal: int
    currency: str
    pledges: dict[str, int]
    expires: int
    signed_by: str
    height: int
    status: str = "open"
    financing: str = ""


@dataclass
class MFin:
    bank: str
    uscc: str
    app: str
    principal: int
    currency: str
    pledges: dict[str, list[int]]  # declaration: [amount now, rate_e8, opened amount]
    opened: tuple[int, int]
    opened_ms: int
    lapse_at: int
    maturity: int
    status: str = "approved"
    repaid: int = 0
    repayments: int = 0
    flags: int = 0
    changed_by_clock_at: int = 0  # height of its lapse or overdue transition


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

    params: dict[str, int]
    pending_params: dict[str, int]
    suspended: set[str] = field(default_factory=set)
    ents: dict[str, tuple[str, list[str], bool]] = field(default_factory=dict)  # name, banks, key
    frozen: set[str] = field(default_factory=set)
    fx: dict[str, str] = field(default_factory=dict)
    mandates: dict[tuple[str, str], tuple[bool, int]] = field(default_factory=dict)
    decls: dict[str, MDecl] = field(default_factory=dict)
    apps: dict[tuple[str, str], MApp] = field(default_factory=dict)
    fins: dict[str, MFin] = field(default_factory=dict)
    rates: dict[tuple[str, str, int], int] = field(default_factory=dict)
    forms: dict[str, MForm] = field(default_factory=dict)
    payments: dict[str, tuple[str, str, int, bool]] = field(default_factory=dict)
    reviews: dict[tuple[str, str], tuple[str, int, int, bool]] = field(default_factory=dict)
    proceeds: set[str] = field(default_factory=set)
    nonces: dict[tuple[str, bytes], int] = field(default_factory=dict)
    # Encryption keys (issue 16): owner -> (version, public key); every institution has
    # version 1 from genesis and rotated to version 2 in the chain's first block.
    ekeys: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    now: int = 0
    height: int = 0
    index: int = 0

    # --- blocks and the clock
    def start_block(self, height: int, now: int) -> None:
        """The parameters set in the last block take effect; deadlines reached lapse, mature
        and expire, before any transaction (docs/domain.md §4.2)."""
        self.height, self.now = height, now
        self.params = dict(self.pending_params)
        for app in self.apps.values():
            if app.status == "open" and app.expires <= now:
                app.status = "expired"
        for f in self.fins.values():
            if f.status == "approved" and f.lapse_at <= now:
                self._move(f, "lapsed")
                f.changed_by_clock_at = height
            elif f.status == "disbursed" and f.maturity < now:
                f.status = "overdue"
                f.changed_by_clock_at = height

    def apply(self, tx: types.Tx, index: int) -> str:
        saved = copy.deepcopy(self.__dict__)
        self.index = index
        try:
            self._envelope(tx)
            getattr(self, "t_" + tx.type.replace(".", "_"))(tx.signer, tx.payload)
        except Refused as exc:
            self.__dict__.update(saved)
            return exc.code
        self.nonces[(tx.signer, tx.nonce)] = tx.expires_at_ms
        return "OK"

    def _envelope(self, tx: types.Tx) -> None:
        need(tx.signer not in self.suspended, "SIGNER_SUSPENDED")
        need(ROLES_OF[tx.signer] in txtypes.REGISTRY[tx.type].ROLES, "ROLE_FORBIDDEN")
        need(tx.expires_at_ms >= self.now, "TX_EXPIRED")
        seen = self.nonces.get((tx.signer, tx.nonce))
        need(seen is None or seen < self.now, "NONCE_REPLAY")

    def rate(self, base: str, quote: str) -> int:
        if base == quote:
            return SCALE
        today = day_of(self.now)
        for day in range(today, today - 5, -1):
            if (base, quote, day) in self.rates:
                return self.rates[(base, quote, day)]
        raise Refused("FX_RATE_MISSING")

    # --- sealed fields (ADR 0024)
    def sealed(self, recorder: str, enterprise: str, sealed: Sealed) -> None:
        """Wrapped once to the recorder, the regulator (while active) and a keyed enterprise,
        each at its current version."""
        owed = [recorder, *([REG] if REG not in self.suspended else []),
                *([enterprise] if enterprise in self.ekeys else [])]
        wraps = [(w.party, w.key_version) for w in sealed.keys]
        for party in owed:
            need(wraps.count((party, self.ekeys[party][0])) == 1 and
                 [q for q, _ in wraps].count(party) == 1, "SEALED_PARTIES")

    def t_encryption_key_set(self, s: str, p: txtypes.SetEncryptionKey) -> None:
        need(p.public_key not in LOW_ORDER, "BAD_ENCRYPTION_KEY")
        version, current = self.ekeys.get(s, (0, b""))
        need(p.public_key != current, "KEY_EXISTS")
        self.ekeys[s] = (version + 1, p.public_key)

    # --- regulator
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

    def t_params_set(self, s: str, p: txtypes.SetParam) -> None:
        need(p.name in PARAM_BOUNDS, "UNKNOWN_PARAM")
        low, high = PARAM_BOUNDS[p.name]
        need(low <= p.value <= high, "PARAM_OUT_OF_RANGE")
        self.pending_params[p.name] = p.value

    def t_fx_publish(self, s: str, p: txtypes.PublishFxRate) -> None:
        need(p.base != p.quote, "SAME_CURRENCY")
        day = day_ms(p.date) // DAY
        need(day_of(self.now) <= day <= day_of(self.now) + 7, "FX_DATE_OUT_OF_RANGE")
        self.rates[(p.base, p.quote, day)] = p.rate_e8

    def t_financing_release(self, s: str, p: txtypes.ReleaseFinancing) -> None:
        need(p.financing_id in self.fins, "UNKNOWN_FINANCING")
        f = self.fins[p.financing_id]
        need(bool(p.reason.strip()), "REASON_REQUIRED")
        need(f.status in HOLDING, "BAD_FINANCING_STATUS")
        need(any(x[0] for x in f.pledges.values()), "NO_PLEDGES")
        for no, x in f.pledges.items():
            self.decls[no].pledged -= x[0]
            x[0] = 0
        f.flags += 1
        if f.status == "approved":
            f.status = "released"

    def t_payment_review(self, s: str, p: txtypes.ReviewPayment) -> None:
        need((p.payer, p.review_id) not in self.reviews, "REVIEW_EXISTS")
        need(p.form_no in self.forms, "UNKNOWN_FORM")
        need(self.forms[p.form_no].payer == p.payer, "PAYER_MISMATCH")
        need(self.now < p.expires_at_ms <= self.now + REVIEW_VALIDITY_MAX, "BAD_EXPIRY")
        self.reviews[(p.payer, p.review_id)] = (p.form_no, p.amount, p.expires_at_ms, False)

    # --- banks: enterprises and mandates
    def t_enterprise_register(self, s: str, p: txtypes.RegisterEnterprise) -> None:
        if p.uscc not in self.ents:
            self.ents[p.uscc] = (p.name, [s], bool(p.public_key))
        else:
            name, served, _ = self.ents[p.uscc]
            need(name == p.name, "ENTERPRISE_MISMATCH")
            need(s not in served, "ALREADY_REGISTERED")
            served.append(s)
        if p.public_key and p.uscc not in self.ekeys:  # version 1: its signing key's form
            self.ekeys[p.uscc] = (1, default_encryption_key(p.public_key))

    def _served(self, s: str, u: str) -> None:
        need(u in self.ents, "UNKNOWN_ENTERPRISE")
        need(s in self.ents[u][1], "NOT_SERVING_BANK")

    def _may_finance(self, u: str) -> None:
        need(u not in self.frozen, "ENTERPRISE_FROZEN")
        need(self.fx.get(u) != "C", "FX_CLASS_C")

    def _decl(self, no: str, exporter: str | None = None) -> MDecl:
        need(no in self.decls, "UNKNOWN_DECLARATION")
        d = self.decls[no]
        need(not d.cancelled, "DECLARATION_CANCELLED")
        need(exporter is None or d.exporter == exporter, "EXPORTER_MISMATCH")
        return d

    def t_mandate_record(self, s: str, p: txtypes.RecordMandate) -> None:
        self._served(s, p.uscc)
        need(not self.ents[p.uscc][2], "ENTERPRISE_HAS_KEY")
        need(self.now < p.expires_at_ms <= self.now + 366 * DAY, "BAD_EXPIRY")
        self.mandates[(p.uscc, s)] = (True, p.expires_at_ms)

    # --- applications and financings
    def t_financing_apply(self, s: str, p: txtypes.ApplyForFinancing) -> None:
        if ROLES_OF[s] == "enterprise":
            need(s == p.uscc, "SIGNER_MISMATCH")
        else:
            need(p.bank == s, "APPLICATION_OTHER_BANK")
            self._served(s, p.uscc)
            need(not self.ents[p.uscc][2], "ENTERPRISE_HAS_KEY")
            live, expires = self.mandates.get((p.uscc, s), (False, 0))
            need(live, "NO_MANDATE")
            need(self.now < expires, "MANDATE_EXPIRED")
        need((p.uscc, p.application_id) not in self.apps, "APPLICATION_EXISTS")
        need(ROLES_OF.get(p.bank) == "bank", "UNKNOWN_BANK")
        self._may_finance(p.uscc)
        need(self.now < p.expires_at_ms <= self.now + APP_VALIDITY_MAX, "BAD_EXPIRY")
        seen: set[str] = set()
        for x in p.pledges:
            need(x.declaration_no not in seen, "DUPLICATE_PLEDGE")
            seen.add(x.declaration_no)
            self._decl(x.declaration_no, p.uscc)
        self.apps[(p.uscc, p.application_id)] = MApp(
            p.bank, p.principal, p.currency, {x.declaration_no: x.amount for x in p.pledges},
            p.expires_at_ms, s, self.height)

    def _live_app(self, app: MApp) -> None:
        need(not (app.status == "open" and self.now >= app.expires), "APPLICATION_EXPIRED")
        need(app.status != "expired", "APPLICATION_EXPIRED")
        need(app.status == "open", "APPLICATION_NOT_OPEN")

    def t_financing_withdraw(self, s: str, p: txtypes.WithdrawApplication) -> None:
        app = self.apps.get((p.uscc, p.application_id))
        need(app is not None, "NO_APPLICATION")
        assert app is not None
        need(s == app.signed_by, "SIGNER_MISMATCH")
        self._live_app(app)
        app.status = "withdrawn"

    def _holders(self, no: str) -> list[str]:
        """Financings holding an open pledge on `no`, senior first."""
        held = [(f.opened, fid) for fid, f in self.fins.items()
                if f.status in HOLDING and no in f.pledges and f.pledges[no][0] > 0]
        return [fid for _, fid in sorted(held)]

    def t_financing_open(self, s: str, p: txtypes.OpenFinancing) -> None:
        need(p.financing_id not in self.fins, "FINANCING_EXISTS")
        self._served(s, p.uscc)
        self._may_finance(p.uscc)
        app = self.apps.get((p.uscc, p.application_id))
        need(app is not None, "NO_APPLICATION")
        assert app is not None
        need(app.bank == s, "APPLICATION_OTHER_BANK")
        self._live_app(app)
        need(app.currency == p.currency, "APPLICATION_MISMATCH")
        need(p.principal <= app.principal, "EXCEEDS_APPLICATION")
        need(self.now < p.maturity_ms <= self.now + TENOR_MAX, "BAD_MATURITY")
        if self.fx.get(p.uscc) == "B":
            need(p.maturity_ms - self.now <= self.params["class_b_tenor_max_ms"],
                 "FX_CLASS_B_TENOR")
        taken: dict[str, list[int]] = {}
        for x in p.pledges:
            need(x.declaration_no not in taken, "DUPLICATE_PLEDGE")
            need(x.amount <= app.pledges.get(x.declaration_no, 0), "EXCEEDS_APPLICATION")
            d = self._decl(x.declaration_no, p.uscc)
            need(self.now - day_ms(d.export_date) <= self.params["receivable_age_max_ms"],
                 "RECEIVABLE_TOO_OLD")
            need(d.outstanding > 0, "RECEIVABLE_COLLECTED")
            cap = d.outstanding * self.params["advance_rate_bps"] // 10_000
            need(d.pledged + x.amount <= cap,
                 "DOUBLE_FINANCING" if d.pledged else "ADVANCE_RATE_EXCEEDED")
            need(len(self._holders(x.declaration_no)) < 16, "TOO_MANY_PLEDGES")
            taken[x.declaration_no] = [x.amount, self.rate(d.currency, p.currency), x.amount]
        cover = sum(a * r // SCALE for a, r, _ in taken.values())
        need(p.principal <= cover, "PRINCIPAL_EXCEEDS_PLEDGES")
        for no, (amount, _, _) in taken.items():
            self.decls[no].pledged += amount
            self.decls[no].rate_bps = self.params["advance_rate_bps"]
        self.fins[p.financing_id] = MFin(
            s, p.uscc, p.application_id, p.principal, p.currency, taken,
            (self.height, self.index), self.now, self.now + self.params["financing_lapse_ms"],
            p.maturity_ms)
        app.status, app.financing = "used", p.financing_id

    def _own(self, s: str, fid: str) -> MFin:
        need(fid in self.fins, "UNKNOWN_FINANCING")
        f = self.fins[fid]
        need(f.bank == s, "NOT_LENDING_BANK")
        return f

    def _move(self, f: MFin, status: str) -> None:
        if f.status in HOLDING and status not in HOLDING:
            for no, x in f.pledges.items():
                self.decls[no].pledged -= x[0]
                x[0] = 0
        f.status = status

    def _repay(self, f: MFin, amount: int) -> None:
        need(f.status in OWING, "BAD_FINANCING_STATUS")
        need(amount <= f.principal - f.repaid, "REPAYMENT_EXCEEDS_OUTSTANDING")
        need(f.repayments < 256, "TOO_MANY_REPAYMENTS")
        f.repaid += amount
        f.repayments += 1
        if f.repaid == f.principal:
            self._move(f, "repaid")

    def t_financing_disburse(self, s: str, p: txtypes.DisburseFinancing) -> None:
        f = self._own(s, p.financing_id)
        need(not (f.status == "approved" and self.now >= f.lapse_at), "FINANCING_LAPSED")
        need(f.status != "lapsed", "FINANCING_LAPSED")
        need(f.status == "approved", "BAD_FINANCING_STATUS")
        self._may_finance(f.uscc)
        need(self.now < f.maturity, "BAD_MATURITY")
        need(sum(a * r // SCALE for a, r, _ in f.pledges.values()) >= f.principal,
             "COLLATERAL_SHORTFALL")
        f.status = "disbursed"

    def t_financing_repay(self, s: str, p: txtypes.RepayFinancing) -> None:
        self._repay(self._own(s, p.financing_id), p.amount)

    def t_financing_close(self, s: str, p: txtypes.CloseFinancing) -> None:
        f = self._own(s, p.financing_id)
        need(f.status not in ("disbursed", "overdue"), "OUTSTANDING_BALANCE")
        need(f.status in ("approved", "repaid", "defaulted"), "BAD_FINANCING_STATUS")
        self._move(f, "closed")

    def t_financing_default(self, s: str, p: txtypes.DefaultFinancing) -> None:
        f = self._own(s, p.financing_id)
        need(f.status in ("disbursed", "overdue"), "BAD_FINANCING_STATUS")
        f.status = "defaulted"

    def _cut(self, no: str, beneficiary: str = "") -> None:
        """Cut open pledges above the cap: the financing repaid from it first, then the most
        recent pledge first; every cut but the beneficiary's is a flag."""
        d = self.decls[no]
        excess = d.pledged - d.outstanding * d.rate_bps // 10_000
        order = list(reversed(self._holders(no)))
        if beneficiary in order:
            order.remove(beneficiary)
            order.insert(0, beneficiary)
        for fid in order:
            if excess <= 0:
                break
            f = self.fins[fid]
            cut = min(excess, f.pledges[no][0])
            f.pledges[no][0] -= cut
            d.pledged -= cut
            excess -= cut
            if fid != beneficiary:
                f.flags += 1

    # --- banks: payments
    def t_payment_inbound(self, s: str, p: txtypes.RecordInboundProceeds) -> None:
        need(p.proceeds_id not in self.proceeds, "PROCEEDS_EXISTS")
        self._served(s, p.exporter)
        d = self._decl(p.declaration_no, p.exporter)
        need(d.currency == p.currency, "CURRENCY_MISMATCH")
        need(d.proceeds + p.amount <= d.value, "PROCEEDS_EXCEED_VALUE")
        d.proceeds += p.amount
        if p.financing_id:
            f = self._own(s, p.financing_id)
            need(f.status in OWING, "BAD_FINANCING_STATUS")
            need(f.uscc == p.exporter, "EXPORTER_MISMATCH")
            need(p.declaration_no in f.pledges, "DECLARATION_NOT_PLEDGED")
            applied = min(p.amount * self.rate(d.currency, f.currency) // SCALE,
                          f.principal - f.repaid)
            if applied:
                self._repay(f, applied)
        self._cut(p.declaration_no, p.financing_id)
        self.proceeds.add(p.proceeds_id)

    def t_payment_outbound(self, s: str, p: txtypes.RecordOutboundPayment) -> None:
        need(p.payment_id not in self.payments, "PAYMENT_EXISTS")
        self._served(s, p.payer)
        need(p.payer not in self.frozen, "ENTERPRISE_FROZEN")
        need(p.form_no in self.forms, "UNKNOWN_FORM")
        f = self.forms[p.form_no]
        need(not f.revoked, "FORM_REVOKED")
        need(f.payer == p.payer, "PAYER_MISMATCH")
        need(f.currency == p.currency, "CURRENCY_MISMATCH")
        need(f.used + p.amount <= f.amount, "FORM_EXCEEDED")
        if self.fx.get(p.payer) == "C" or p.review_id:
            need(bool(p.review_id), "REVIEW_REQUIRED")
            review = self.reviews.get((p.payer, p.review_id))
            need(review is not None, "UNKNOWN_REVIEW")
            assert review is not None
            form_no, amount, expires, used = review
            need(not used, "REVIEW_USED")
            need(self.now < expires, "REVIEW_EXPIRED")
            need(form_no == p.form_no and p.amount <= amount, "REVIEW_MISMATCH")
            self.reviews[(p.payer, p.review_id)] = (form_no, amount, expires, True)
        f.used += p.amount
        self.payments[p.payment_id] = (s, p.form_no, p.amount, False)

    def t_payment_reverse(self, s: str, p: txtypes.ReverseOutboundPayment) -> None:
        need(p.payment_id in self.payments, "UNKNOWN_PAYMENT")
        bank, form_no, amount, reversed_ = self.payments[p.payment_id]
        need(bank == s, "NOT_RECORDING_BANK")
        need(bool(p.reason.strip()), "REASON_REQUIRED")
        need(not reversed_, "PAYMENT_REVERSED")
        self.forms[form_no].used -= amount
        self.payments[p.payment_id] = (bank, form_no, amount, True)

    # --- customs
    def t_declaration_register(self, s: str, p: txtypes.RegisterDeclaration) -> None:
        need(p.declaration_no not in self.decls, "DECLARATION_EXISTS")
        need(day_ms(p.export_date) <= self.now + DAY, "EXPORT_DATE_IN_FUTURE")
        self.sealed(s, p.exporter, p.details)
        self.decls[p.declaration_no] = MDecl(p.exporter, p.value, p.currency, p.export_date,
                                             self.params["advance_rate_bps"])

    def t_declaration_amend(self, s: str, p: txtypes.AmendDeclaration) -> None:
        d = self._decl(p.declaration_no)
        self.sealed(s, d.exporter, p.details)
        d.value = p.value
        self._cut(p.declaration_no)

    def t_declaration_cancel(self, s: str, p: txtypes.CancelDeclaration) -> None:
        d = self._decl(p.declaration_no)
        d.cancelled = True
        self._cut(p.declaration_no)

    # --- tax bureau
    def t_taxform_register(self, s: str, p: txtypes.RegisterTaxForm) -> None:
        need(p.form_no not in self.forms, "FORM_EXISTS")
        self.sealed(s, p.payer, p.details)
        self.forms[p.form_no] = MForm(p.payer, p.amount, p.currency)

    def t_taxform_revoke(self, s: str, p: txtypes.RevokeTaxForm) -> None:
        need(p.form_no in self.forms, "UNKNOWN_FORM")
        need(not self.forms[p.form_no].revoked, "FORM_REVOKED")
        self.forms[p.form_no].revoked = True


# ------------------------------------------------------------------------------ the machine


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain(make_config(window_ms=24 * HOUR, financing_lapse_ms=LAPSE_MS))
        for u in KEYED:
            self.chain.keys[u] = key_of(u)
        params = {name: getattr(self.chain.config.params, name) for name in PARAM_BOUNDS}
        self.model = Model(params, dict(params))
        # genesis gave every institution version 1; the chain's first block rotated to 2
        self.model.ekeys = {i: (2, self.chain.keyring(i).public_key) for i in ROLES_OF
                            if ROLES_OF[i] != "enterprise"}
        self.pending: list[types.Tx] = []
        self.applied: list[types.Tx] = []
        self.counter = 0

    # --- helpers
    def next_time(self) -> int:
        return self.chain.time_ms + 1000

    def add(self, signer: str, payload: txtypes.Payload, **kw: object) -> None:
        kw.setdefault("expires_at_ms", self.next_time() + 12 * HOUR)
        self.pending.append(self.chain.tx(signer, payload, **kw))  # type: ignore[arg-type]
        if len(self.pending) >= 8:
            self.commit()

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def today(self) -> int:
        return day_of(self.next_time())

    def applicant(self, u: str) -> str:
        """Who signs an application of `u`: itself, or its bank under the mandate."""
        return BANKS[0] if u == KEYLESS else u

    # --- a populated start: enterprises, a mandate, declarations, rates and forms
    @initialize(values=st.lists(st.integers(100, 1500), min_size=len(DECLS),
                                max_size=len(DECLS)),
                ages=st.lists(st.integers(0, 200), min_size=len(DECLS), max_size=len(DECLS)))
    def populate(self, values: list[int], ages: list[int]) -> None:
        for i, u in enumerate(USCCS):
            bank = BANKS[0] if u == KEYLESS else BANKS[i % 3]
            self.add(bank, register_enterprise(
                u, name=f"Company {u[-6:]}", public_key=b"" if u == KEYLESS
                else key_of(u).public_key, bank=bank))
        self.add(BANKS[1], txtypes.RegisterEnterprise(USCCS[0], f"Company {USCCS[0][-6:]}",
                                                      "CN", b""))
        self.commit()
        self.add(BANKS[0], txtypes.RecordMandate(KEYLESS, "M-1", bytes(32),
                                                 self.next_time() + 300 * DAY))
        for i, (no, value) in enumerate(zip(DECLS, values, strict=True)):
            self.add(CUSTOMS, declaration(
                no, value, exporter=USCCS[i % len(USCCS)], currency="EUR" if i % 4 == 3
                else "USD", export_date=date_of(self.today() - ages[i] // 2)))
        for base in ("USD", "EUR"):
            self.add(REG, txtypes.PublishFxRate(base, "CNY", date_of(self.today()),
                                                710_000_000 if base == "USD" else 777_777_777))
        for i, form in enumerate(FORMS):
            self.add(TAX, tax_form(form, values[i], payer=USCCS[2 + i % 2]))
        self.commit()

    # --- regulator
    @rule(kind=st.sampled_from(["suspend", "reinstate", "reinstate", "fx", "fx", "freeze",
                                "unfreeze", "unfreeze"]),
          bank=banks, u=usccs, fx=st.sampled_from(["A", "A", "B", "C"]))
    def regulator(self, kind: str, bank: str, u: str, fx: str) -> None:
        payload: txtypes.Payload = {
            "suspend": txtypes.SuspendInstitution(bank, "random"),
            "reinstate": txtypes.ReinstateInstitution(bank),
            "fx": txtypes.SetFxClass(u, fx),
            "freeze": txtypes.FreezeEnterprise(u, ""),
            "unfreeze": txtypes.UnfreezeEnterprise(u),
        }[kind]
        self.add(REG, payload)

    @rule(name=st.sampled_from([*PARAM_BOUNDS, "block_txs_max"]),
          value=st.sampled_from([0, 5000, 9000, 10_001, 120_000, 2 * HOUR, 20 * DAY,
                                 60 * DAY, 200 * DAY]))
    def set_param(self, name: str, value: int) -> None:
        self.add(REG, txtypes.SetParam(name, value))

    @rule(pair=st.sampled_from([("USD", "CNY"), ("EUR", "CNY"), ("USD", "EUR"),
                                ("CNY", "CNY")]),
          offset=st.integers(-1, 8), rate=st.integers(1, 2_000_000_000))
    def publish_rate(self, pair: tuple[str, str], offset: int, rate: int) -> None:
        self.add(REG, txtypes.PublishFxRate(pair[0], pair[1], date_of(self.today() + offset),
                                            rate))

    @precondition(lambda self: bool(self.model.fins))
    @rule(data=st.data(), reason=st.sampled_from(["court order", "", " "]))
    def release(self, data: st.DataObject, reason: str) -> None:
        self.add(REG, txtypes.ReleaseFinancing(data.draw(st.sampled_from(
            sorted(self.model.fins))), reason))

    @rule(u=usccs, form=forms, amount=st.integers(1, 900), hours=st.integers(-1, 30))
    def review(self, u: str, form: str, amount: int, hours: int) -> None:
        f = self.model.forms.get(form)
        payer = f.payer if f is not None and hours % 3 else u
        self.add(REG, txtypes.ReviewPayment(self.fresh("R"), payer, form, amount,
                                            self.next_time() + hours * HOUR))

    # --- enterprises apply
    def room(self, no: str) -> int:
        """What a new pledge on `no` may still take, by the model."""
        d = self.model.decls[no]
        cap = d.outstanding * self.model.pending_params["advance_rate_bps"] // 10_000
        return max(cap - d.pledged, 0)

    def worth(self, amount: int, base: str, quote: str) -> int:
        try:
            return amount * self.model.rate(base, quote) // SCALE
        except Refused:
            return amount

    @rule(u=usccs, bank=banks, ccy=ccys, principal=small, hours=st.integers(-1, 48),
          pledges=st.lists(st.tuples(decls, st.integers(1, 700)), min_size=1, max_size=3),
          plausible=st.sampled_from([True] * 4 + [False]))
    def apply_for(self, u: str, bank: str, ccy: str, principal: int, hours: int,
                  pledges: list[tuple[str, int]], plausible: bool) -> None:
        """Mostly an enterprise asking a serving bank against its own declarations for about
        what they can secure (committed at once, so that banks can open on it); sometimes
        anything."""
        app_id = next((a for a in APPS if (u, a) not in self.model.apps), APPS[0])
        signer = self.applicant(u)
        own = [no for no, d in self.model.decls.items() if d.exporter == u and self.room(no)]
        if plausible and own:
            self.commit()
            own = [no for no in own if no in self.model.decls and self.room(no)] or own
            pledges = [(no, max(1, self.room(no) * (1 + principal % 3) // 3))
                       for no in own[: 1 + principal % 2]]
            served = self.model.ents.get(u, ("", [bank], False))[1]
            bank = BANKS[0] if u == KEYLESS else served[principal % len(served)]
            principal = sum(self.worth(a, self.model.decls[no].currency, ccy)
                            for no, a in pledges)
            hours = abs(hours) + 1
        self.add(signer, txtypes.ApplyForFinancing(
            app_id, u, bank, max(principal, 1), ccy,
            tuple(txtypes.Pledge(no, a) for no, a in pledges),
            self.next_time() + hours * HOUR))
        if plausible:
            self.commit()

    @rule(u=usccs, share=st.integers(1, 4), ccy=ccys, maturity_h=st.integers(1, 30),
          disburse=st.booleans(), collect=st.sampled_from(["", "lender", "elsewhere"]))
    def deal(self, u: str, share: int, ccy: str, maturity_h: int, disburse: bool,
             collect: str) -> None:
        """The headline path: an enterprise applies for what its declarations can secure, its
        bank opens on the application in the next block, often disburses, and proceeds
        arrive, at the lender (repaying it) or at another bank. A share of 4 asks a third more
        than the declarations can secure (refused)."""
        self.commit()
        own = [no for no, d in self.model.decls.items() if d.exporter == u and self.room(no)]
        app_id = next((a for a in APPS if (u, a) not in self.model.apps), None)
        fid = next((f for f in FINS if f not in self.model.fins), None)
        if not own or app_id is None or fid is None or u not in self.model.ents:
            return
        pledges = [(no, max(1, self.room(no) * share // 3)) for no in own[:2]]
        served = self.model.ents[u][1]
        bank = BANKS[0] if u == KEYLESS else served[share % len(served)]
        principal = max(1, sum(self.worth(a, self.model.decls[no].currency, ccy)
                               for no, a in pledges))
        asked = tuple(txtypes.Pledge(no, a) for no, a in pledges)
        self.add(self.applicant(u), txtypes.ApplyForFinancing(
            app_id, u, bank, principal, ccy, asked, self.next_time() + 2 * HOUR))
        self.commit()
        self.add(bank, txtypes.OpenFinancing(fid, u, app_id, principal, ccy, asked,
                                             self.next_time() + maturity_h * HOUR))
        if disburse:
            self.commit()
            self.add(bank, txtypes.DisburseFinancing(fid))
        if collect:
            self.commit()
            no, _ = pledges[0]
            d = self.model.decls[no]
            other = [b for b in served if b != bank]
            payee = bank if collect == "lender" or not other else other[0]
            self.add(payee, txtypes.RecordInboundProceeds(
                self.fresh("P"), u, no, max(1, (d.value - d.proceeds) * share // 3),
                d.currency, fid if payee == bank else ""))

    @precondition(lambda self: bool(self.model.apps))
    @rule(data=st.data(), other=st.booleans())
    def withdraw(self, data: st.DataObject, other: bool) -> None:
        u, app_id = data.draw(st.sampled_from(sorted(self.model.apps)))
        self.add(USCCS[0] if other else self.applicant(u), txtypes.WithdrawApplication(u, app_id))

    # --- banks
    @rule(bank=banks, u=usccs, odd_name=st.booleans())
    def register(self, bank: str, u: str, odd_name: bool) -> None:
        name = "Other" if odd_name else f"Company {u[-6:]}"
        self.add(bank, txtypes.RegisterEnterprise(u, name, "CN", b""))

    @rule(bank=banks, fid=fins, u=usccs, principal=small, ccy=ccys, app_id=apps,
          pledges=st.lists(st.tuples(decls, st.integers(1, 700)), min_size=1, max_size=3),
          maturity_h=st.integers(-1, 30),
          plausible=st.sampled_from([True] * 4 + [False]))
    def open_financing(self, bank: str, fid: str, u: str, principal: int, ccy: str,
                       app_id: str, pledges: list[tuple[str, int]], maturity_h: int,
                       plausible: bool) -> None:
        """Mostly a bank opening on an open application addressed to it, for at most what it
        asks; sometimes anything, so that every refusal gets exercised."""
        open_apps = sorted(k for k, a in self.model.apps.items() if a.status == "open")
        if plausible and open_apps:
            u, app_id = open_apps[principal % len(open_apps)]
            app = self.model.apps[(u, app_id)]
            fid = next((f for f in FINS if f not in self.model.fins), fid)
            bank, ccy = app.bank, app.currency
            pledges = [(no, max(1, min(a, self.room(no) if no in self.model.decls else a)))
                       for no, a in app.pledges.items()]
            cover = sum(self.worth(a, self.model.decls[no].currency, ccy)
                        for no, a in pledges if no in self.model.decls)
            principal = max(1, min(app.principal, cover - principal % 3))
            maturity_h = abs(maturity_h) + 1
        self.add(bank, txtypes.OpenFinancing(
            fid, u, app_id, principal, ccy, tuple(txtypes.Pledge(no, a) for no, a in pledges),
            self.next_time() + maturity_h * HOUR))
        if plausible:
            self.commit()

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
        likely = {"approved": ["disburse"] * 4, "disbursed": ["repay", "proceeds"] * 2,
                  "overdue": ["repay", "proceeds", "default"], "repaid": ["close"] * 2,
                  "defaulted": ["close", "repay"]}.get(f.status, [])
        action = data.draw(st.sampled_from([*likely, "disburse", "repay", "close", "default",
                                            "proceeds"]))
        if action == "repay":
            owed = f.principal - f.repaid
            self.add(bank, txtypes.RepayFinancing(fid, max(1, min(amount, owed) if amount % 3
                                                           else owed)))
        elif action == "proceeds":
            no = data.draw(st.sampled_from(sorted(f.pledges)))
            d = self.model.decls[no]
            left = d.value - d.proceeds
            self.add(bank, txtypes.RecordInboundProceeds(
                self.fresh("P"), f.uscc, no, max(1, min(amount, left)), d.currency, fid))
        else:
            self.add(bank, {"disburse": txtypes.DisburseFinancing(fid),
                            "close": txtypes.CloseFinancing(fid),
                            "default": txtypes.DefaultFinancing(fid, "late")}[action])

    @rule(bank=banks, u=usccs, no=decls, amount=small, ccy=ccys,
          fid=st.sampled_from(["", *FINS]))
    def inbound(self, bank: str, u: str, no: str, amount: int, ccy: str, fid: str) -> None:
        d = self.model.decls.get(no)
        if d is not None and amount % 2:  # plausibly: the right exporter, currency and bank
            u, ccy = d.exporter, d.currency
            served = self.model.ents.get(u, ("", [bank], False))[1]
            bank = served[amount % len(served)]
            amount = max(1, min(amount, d.value - d.proceeds))
        self.add(bank, txtypes.RecordInboundProceeds(self.fresh("P"), u, no, amount, ccy, fid))

    @rule(bank=banks, u=usccs, form=forms, amount=st.integers(1, 900), ccy=ccys,
          plausible=st.booleans(), with_review=st.booleans())
    def outbound(self, bank: str, u: str, form: str, amount: int, ccy: str,
                 plausible: bool, with_review: bool) -> None:
        f = self.model.forms.get(form)
        review = ""
        if plausible and f is not None:
            u, ccy = f.payer, f.currency
            served = self.model.ents.get(u, ("", [bank], False))[1]
            bank = served[0] if served else bank
            mine = sorted(r for (p, r) in self.model.reviews if p == u)
            review = mine[-1] if mine and with_review else ""
        self.add(bank, txtypes.RecordOutboundPayment(self.fresh("O"), u, form, amount, ccy,
                                                     review))

    @precondition(lambda self: bool(self.model.payments))
    @rule(data=st.data(), intruder=st.sampled_from([None, None, *BANKS]),
          reason=st.sampled_from(["refund", "refund", ""]))
    def reverse(self, data: st.DataObject, intruder: str | None, reason: str) -> None:
        pid = data.draw(st.sampled_from(sorted(self.model.payments)))
        self.add(intruder or self.model.payments[pid][0],
                 txtypes.ReverseOutboundPayment(pid, reason))

    # --- customs and tax
    @rule(no=decls, u=usccs, value=st.integers(100, 1500), ccy=ccys,
          age=st.integers(-3, 200))
    def declare(self, no: str, u: str, value: int, ccy: str, age: int) -> None:
        self.add(CUSTOMS, declaration(no, value, exporter=u, currency=ccy,
                                      export_date=date_of(self.today() - age)))

    @rule(no=decls, value=st.integers(1, 1500), cancel=st.sampled_from([True] + [False] * 3))
    def amend_or_cancel(self, no: str, value: int, cancel: bool) -> None:
        self.add(CUSTOMS, txtypes.CancelDeclaration(no, "") if cancel
                 else amend(no, value, "goods v2"))

    @rule(form=forms, u=usccs, amount=st.integers(100, 1500), ccy=ccys, revoke=st.booleans())
    def tax(self, form: str, u: str, amount: int, ccy: str, revoke: bool) -> None:
        self.add(TAX, txtypes.RevokeTaxForm(form, "") if revoke else
                 tax_form(form, amount, payer=u, currency=ccy))

    # --- encryption keys: rotations (records sealed before one lands in the same block are
    # then sealed to the old version and refused), the same key again, a low-order key
    @rule(party=st.sampled_from([CUSTOMS, TAX, REG, BANKS[0], *KEYED]),
          kind=st.sampled_from(["rotate", "rotate", "rotate", "same", "low"]),
          race=st.booleans())
    def encryption_key(self, party: str, kind: str, race: bool) -> None:
        """With `race`, the same block then carries a record sealed by a client that has not
        seen the rotation yet (refused when it is owed to the rotating party)."""
        if kind == "rotate" and party not in self.model.ekeys:
            kind = "same"  # an enterprise's first key: its keyring's version 1
        payload = {"rotate": lambda: self.chain.rotate(party),
                   "same": lambda: self.chain.encryption_key(party),
                   "low": lambda: txtypes.SetEncryptionKey(bytes(32))}[kind]()
        self.add(party, payload)
        if race:
            u = party if party in KEYED else KEYED[0]
            if party == TAX:
                self.add(TAX, tax_form(self.fresh("TR"), 100, payer=u))
            else:
                self.add(CUSTOMS, declaration(self.fresh("DR"), 100, exporter=u,
                                              export_date=date_of(self.today() - 1)))

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

    # --- blocks and the clock
    @rule(gap=st.sampled_from([1000] * 4 + [60_000, HOUR, 3 * HOUR, 7 * HOUR]))
    def commit(self, gap: int = 1000) -> None:
        txs, self.pending = self.pending, []
        if len({tx.id for tx in txs}) != len(txs):  # validate_basic refuses such a block
            txs = list({tx.id: tx for tx in txs}.values())
        self.model.start_block(self.chain.height + 1, self.chain.time_ms + gap)
        expected = [self.model.apply(tx, i) for i, tx in enumerate(txs)]
        receipts = self.chain.apply(*txs, dt_ms=gap)
        got = [r.code for r in receipts]
        assert got == expected, [(tx.type, g, e, r.message) for tx, g, e, r in
                                 zip(txs, got, expected, receipts, strict=True) if g != e]
        self.applied.extend(tx for tx, r in zip(txs, receipts, strict=True) if r.ok)
        self.check_ledger()

    @precondition(lambda self: bool(self.deadlines()))
    @rule(data=st.data(), early=st.integers(0, 1))
    def to_deadline(self, data: st.DataObject, early: int) -> None:
        """A block exactly at a pending deadline, or one millisecond before it: nothing lapses,
        matures or expires early or late."""
        self.commit()
        pending = self.deadlines()
        if pending:
            self.commit(data.draw(st.sampled_from(pending)) - early - self.chain.time_ms)

    def deadlines(self) -> list[int]:
        m, after = self.model, self.chain.time_ms + 2
        out = [f.lapse_at for f in m.fins.values() if f.status == "approved"]
        out += [f.maturity + 1 for f in m.fins.values() if f.status == "disbursed"]
        out += [a.expires for a in m.apps.values() if a.status == "open"]
        return sorted({t for t in out if t > after})

    @rule(beats=st.integers(1, 6))
    def quiet(self, beats: int) -> None:
        """Nobody sends anything: the leader cuts an empty block every heartbeat."""
        self.commit()
        for _ in range(beats):
            self.commit(self.chain.state.params.heartbeat_interval_ms)

    # --- invariants
    def check_ledger(self) -> None:
        state, m = self.chain.state, self.model
        now = self.chain.time_ms
        assert {k.owner: (k.version, k.public_key) for _, k in
                state.scan(keys.ENCRYPTION_KEY, records.EncryptionKeyRecord)} == m.ekeys
        decls_ = dict(state.scan(keys.DECLARATION, records.Declaration))
        fins_ = [v for _, v in state.scan(keys.FINANCING, records.Financing)]
        pledged: dict[str, int] = {}
        for f in fins_:
            mf = m.fins[f.financing_id]
            # The model and the ledger agree, to the pledge and the flag.
            assert (f.status, f.repaid, f.bank, f.flag_count, f.lapse_at_ms) == \
                (mf.status, mf.repaid, mf.bank, mf.flags, mf.lapse_at)
            assert {p.declaration_no: [p.amount, p.rate_e8, p.opened_amount]
                    for p in f.pledges} == mf.pledges
            # Nothing lapses or becomes overdue early or late.
            assert f.status != "approved" or now < f.lapse_at_ms
            assert f.status != "disbursed" or now <= f.maturity_ms
            if f.status in ("lapsed", "overdue") and mf.changed_by_clock_at:
                hist = [h for h in self._history(keys.financing(f.financing_id))
                        if h.tx_type.startswith("clock.")]
                assert hist[-1].height == mf.changed_by_clock_at
                block_time = self.chain.blocks[hist[-1].height - 1].header.timestamp_ms
                prev_time = self.chain.blocks[hist[-1].height - 2].header.timestamp_ms
                deadline = f.lapse_at_ms if f.status == "lapsed" else f.maturity_ms + 1
                assert prev_time < deadline <= block_time
            # No financing without a live application of its enterprise naming its bank.
            app = state.get(keys.application(f.uscc, f.application_id), records.Application)
            assert app is not None and app.status == "used"
            assert (app.financing_id, app.bank) == (f.financing_id, f.bank)
            assert app.height < f.opened_height and f.opened_ms < app.expires_at_ms
            assert app.signed_by in (f.uscc, f.bank)
            assert f.principal <= app.principal and app.currency == f.currency
            asked = {x.declaration_no: x.amount for x in app.pledges}
            assert all(p.opened_amount <= asked[p.declaration_no] for p in f.pledges)
            # Enough collateral at opening, at the rates of that day (I-4).
            assert f.principal <= sum(p.opened_amount * p.rate_e8 // SCALE for p in f.pledges)
            assert 0 <= f.repaid <= f.principal
            if f.holds_pledges:
                for p in f.pledges:
                    d = decls_[keys.declaration(p.declaration_no)]
                    assert d.exporter == f.uscc and d.currency == p.currency
                    pledged[p.declaration_no] = pledged.get(p.declaration_no, 0) + p.amount
            else:
                assert all(p.amount == 0 for p in f.pledges)
        for d in decls_.values():  # invariants 1 and 2, across banks, blocks and currencies
            assert d.pledged == pledged.get(d.declaration_no, 0)
            assert d.pledged <= d.outstanding * d.pledge_rate_bps // 10_000
            # (proceeds <= value held when they were recorded; customs may amend below them)
            md = m.decls[d.declaration_no]
            assert (d.value, d.pledged, d.proceeds, d.status == records.CANCELLED,
                    d.pledge_rate_bps) == (md.value, md.pledged, md.proceeds, md.cancelled,
                                           md.rate_bps)
        used: dict[str, int] = {}
        for _, pay in state.scan(keys.PAYMENT, records.OutboundPayment):
            if pay.status == "recorded":
                used[pay.form_no] = used.get(pay.form_no, 0) + pay.amount
        for _, form in state.scan(keys.TAX_FORM, records.TaxForm):  # invariant 3
            assert form.used == used.get(form.form_no, 0) <= form.amount
            assert form.used == m.forms[form.form_no].used
        for (u, app_id), ma in m.apps.items():
            app = state.get(keys.application(u, app_id), records.Application)
            assert app is not None and app.status == ma.status
            assert app.status != "open" or now < app.expires_at_ms
        assert len(fins_) == len(m.fins) and len(decls_) == len(m.decls)
        self.check_indexes(fins_)
        # State root: incremental == from scratch (invariant 7).
        rooted = [(k, v) for k, v in state.kv.iterate(b"", None) if keys.is_rooted(k)]
        assert state.state_root() == compute_root(rooted)

    def _history(self, record_key: bytes) -> list[records.HistoryEntry]:
        return [e for _, e in self.chain.state.scan(keys.history_prefix(record_key),
                                                    records.HistoryEntry)]

    def check_indexes(self, fins_: list[records.Financing]) -> None:
        """Every secondary index holds exactly what the records imply."""
        state = self.chain.state
        expected: set[bytes] = set()
        for f in fins_:
            fid = f.financing_id
            if f.holds_pledges:
                expected |= {keys.enterprise_live(f.uscc, fid), keys.bank_live(f.bank, fid)}
                expected |= {keys.decl_pledge(p.declaration_no, f.opened_height,
                                              f.opened_index, fid)
                             for p in f.pledges if p.amount}
                if f.flag_count:
                    expected.add(keys.watch(keys.WATCH_FLAGGED, fid))
            if f.status == "approved":
                expected.add(keys.due(f.lapse_at_ms, keys.DUE_LAPSE, fid))
            if f.status == "disbursed":
                expected.add(keys.due(f.maturity_ms + 1, keys.DUE_MATURITY, fid))
            if f.status == "overdue":
                expected.add(keys.watch(keys.WATCH_OVERDUE, fid))
        for (u, app_id), ma in self.model.apps.items():
            if ma.status == "open":
                expected.add(keys.due(ma.expires, keys.DUE_APPLICATION,
                                      keys.application_due_id(u, app_id)))
        actual = {k for prefix in (keys.ENTERPRISE_LIVE, keys.BANK_LIVE, keys.DECL_PLEDGES,
                                   keys.WATCH, keys.DUE)
                  for k, _ in iterate_prefix(state.kv, prefix)}
        assert actual == expected

    @invariant()
    def nothing_pending_is_applied(self) -> None:
        assert self.chain.height == len(self.chain.results)

    def teardown(self) -> None:
        # Determinism: a fresh node replaying the same blocks reaches the same state.
        if not self.chain.blocks:
            return
        self.chain.assert_replays()


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(
    max_examples=80, stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
