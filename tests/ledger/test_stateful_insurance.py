"""Issue 17, insurance: random traffic of two insurers and three banks on policies (register,
assign, cancel, finance, repay, claim), several transactions per block, the consortium's policy
rate changing, enterprises frozen and classed, block time jumping past policies' starts and
expiries. After every block the ledger is checked against docs/domain.md's insurance invariants
(I-26 to I-29) and a small independent reference model, transaction by transaction, reason code
by reason code; at the end every block is applied again on a fresh ledger to the same roots."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from protocol import txtypes
from protocol.ledger import keys, queries_insurance, records
from tests.ledger.helpers import BANK_A, BANK_B, BANK_C, DAY_MS, EXPORTER, EXPORTER2, REG
from tests.ledger.insurance_helpers import INSURER, INSURER2, assign, insured_chain, policy

BANKS = (BANK_A, BANK_B, BANK_C)
INSURERS = (INSURER, INSURER2)
SERVES = {BANK_A: {EXPORTER}, BANK_B: {EXPORTER, EXPORTER2}, BANK_C: set()}
UNREGISTERED = "91370200MA3C09999X"
POLICIES = [f"P-{i}" for i in range(4)]
FINS = [f"PF-{i}" for i in range(12)]
CLAIMS = [f"C-{i}" for i in range(6)]
VALIDITY_MAX = 3 * 366 * DAY_MS  # limits.POLICY_VALIDITY_MS_MAX, restated
TENOR_MAX = 366 * DAY_MS  # limits.FINANCING_TENOR_MS_MAX, restated
BPS = 10_000


@dataclass
class MPolicy:
    insurer: str
    exporter: str
    covered: int
    currency: str
    starts: int
    expires: int
    cancelled: bool = False
    assignees: list[str] = field(default_factory=list)
    financed: int = 0
    claimed: int = 0


@dataclass
class MFin:
    policy: str
    bank: str
    principal: int
    repaid: int = 0
    claimed: int = 0

    @property
    def outstanding(self) -> int:
        return self.principal - self.repaid - self.claimed


class Model:
    """What the ledger should answer, written from docs/domain.md §4.10, not from the code."""

    def __init__(self) -> None:
        self.policies: dict[str, MPolicy] = {}
        self.fins: dict[str, MFin] = {}
        self.claims: dict[tuple[str, str], int] = {}
        self.rate = 8000  # DEFAULT_PARAMS_V2
        self.next_rate = 8000
        self.frozen: set[str] = set()
        self.class_c: set[str] = set()
        self.now = 0

    def start_block(self, time_ms: int) -> None:
        self.now, self.rate = time_ms, self.next_rate

    def room(self, p: MPolicy) -> int:
        """What may still be financed against `p` at the rate of the next block."""
        return min(p.covered * self.next_rate // BPS, p.covered - p.claimed) - p.financed

    def live_code(self, p: MPolicy) -> str:
        if p.cancelled:
            return "POLICY_CANCELLED"
        if self.now >= p.expires:
            return "POLICY_EXPIRED"
        return "OK"

    def apply(self, signer: str, payload: txtypes.Payload) -> str:
        handler = getattr(self, "_" + payload.TYPE.replace(".", "_"))
        code: str = handler(signer, payload)
        return code

    def _policy_register(self, s: str, p: txtypes.RegisterPolicy) -> str:
        if p.policy_id in self.policies:
            return "POLICY_EXISTS"
        if p.exporter == UNREGISTERED:
            return "UNKNOWN_ENTERPRISE"
        if not p.starts_ms < p.expires_ms or not self.now < p.expires_ms <= \
                self.now + VALIDITY_MAX:
            return "BAD_VALIDITY"
        self.policies[p.policy_id] = MPolicy(s, p.exporter, p.covered_amount, p.currency,
                                             p.starts_ms, p.expires_ms)
        return "OK"

    def _policy_assign(self, s: str, p: txtypes.AssignPolicy) -> str:
        pol = self.policies[p.policy_id]
        if pol.insurer != s:
            return "NOT_POLICY_INSURER"
        if (code := self.live_code(pol)) != "OK":
            return code
        pol.assignees = [b for b in pol.assignees if b != p.bank] + [p.bank]
        return "OK"

    def _policy_cancel(self, s: str, p: txtypes.CancelPolicy) -> str:
        pol = self.policies.get(p.policy_id)
        if pol is None:
            return "UNKNOWN_POLICY"
        if pol.insurer != s:
            return "NOT_POLICY_INSURER"
        if not p.reason.strip():
            return "REASON_REQUIRED"
        if pol.cancelled:
            return "POLICY_CANCELLED"
        pol.cancelled = True
        return "OK"

    def _policy_finance(self, s: str, p: txtypes.FinancePolicy) -> str:
        if p.financing_id in self.fins:
            return "FINANCING_EXISTS"
        pol = self.policies.get(p.policy_id)
        if pol is None:
            return "UNKNOWN_POLICY"
        if p.uscc != pol.exporter:
            return "EXPORTER_MISMATCH"
        if p.currency != pol.currency:
            return "CURRENCY_MISMATCH"
        if s not in pol.assignees:
            return "POLICY_NOT_ASSIGNED"
        if (code := self.live_code(pol)) != "OK":
            return code
        if self.now < pol.starts:
            return "POLICY_NOT_STARTED"
        if p.uscc not in SERVES[s]:
            return "NOT_SERVING_BANK"
        if p.uscc in self.frozen:
            return "ENTERPRISE_FROZEN"
        if p.uscc in self.class_c:
            return "FX_CLASS_C"
        if not self.now < p.maturity_ms <= self.now + TENOR_MAX:
            return "BAD_MATURITY"
        # the rate cap, and the cover claims have left
        if pol.financed + p.principal > min(pol.covered * self.rate // BPS,
                                            pol.covered - pol.claimed):
            return "POLICY_OVER_FINANCED"
        pol.financed += p.principal
        self.fins[p.financing_id] = MFin(p.policy_id, s, p.principal)
        return "OK"

    def _policy_repay(self, s: str, p: txtypes.RepayPolicyFinancing) -> str:
        fin = self.fins.get(p.financing_id)
        if fin is None:
            return "UNKNOWN_FINANCING"
        if fin.bank != s:
            return "NOT_LENDING_BANK"
        if fin.outstanding == 0:
            return "BAD_FINANCING_STATUS"
        if p.amount > fin.outstanding:
            return "REPAYMENT_EXCEEDS_OUTSTANDING"
        fin.repaid += p.amount
        self.policies[fin.policy].financed -= p.amount
        return "OK"

    def _policy_claim(self, s: str, p: txtypes.PayPolicyClaim) -> str:
        if (p.policy_id, p.claim_id) in self.claims:
            return "CLAIM_EXISTS"
        pol = self.policies.get(p.policy_id)
        if pol is None:
            return "UNKNOWN_POLICY"
        if pol.insurer != s:
            return "NOT_POLICY_INSURER"
        if pol.claimed + p.amount > pol.covered:
            return "CLAIM_EXCEEDS_COVER"
        applied = 0
        if p.financing_id:
            fin = self.fins.get(p.financing_id)
            if fin is None or fin.policy != p.policy_id:
                return "UNKNOWN_FINANCING"
            if fin.outstanding == 0:
                return "BAD_FINANCING_STATUS"
            applied = min(p.amount, fin.outstanding)
            fin.claimed += applied
        pol.claimed += p.amount
        pol.financed -= applied
        self.claims[(p.policy_id, p.claim_id)] = p.amount
        return "OK"

    def _params_set(self, s: str, p: txtypes.SetParam) -> str:
        self.next_rate = p.value
        return "OK"

    def _enterprise_freeze(self, s: str, p: txtypes.FreezeEnterprise) -> str:
        if p.uscc in self.frozen:
            return "ALREADY_FROZEN"
        self.frozen.add(p.uscc)
        return "OK"

    def _enterprise_unfreeze(self, s: str, p: txtypes.UnfreezeEnterprise) -> str:
        if p.uscc not in self.frozen:
            return "NOT_FROZEN"
        self.frozen.discard(p.uscc)
        return "OK"

    def _enterprise_set_fx_class(self, s: str, p: txtypes.SetFxClass) -> str:
        (self.class_c.add if p.fx_class == "C" else self.class_c.discard)(p.uscc)
        return "OK"


amounts = st.integers(1, 1500)
small = st.integers(1, 400)
policies = st.sampled_from(POLICIES)
fins = st.sampled_from(FINS)
banks = st.sampled_from(BANKS)
insurers = st.sampled_from(INSURERS)


class InsuranceMachine(RuleBasedStateMachine):
    @initialize(covered=st.lists(st.integers(500, 1500), min_size=2, max_size=2))
    def setup(self, covered: list[int]) -> None:
        """Two live policies of EXPORTER (USD and EUR), assigned to bank.a and bank.b."""
        self.chain = insured_chain()
        self.model = Model()
        self.pending: list[tuple[str, txtypes.Payload]] = []
        self.add(INSURER, policy(self.chain, "P-0", covered[0]))
        self.add(INSURER2, policy(self.chain, "P-1", covered[1], currency="EUR"))
        self.commit()
        for pid, bank in (("P-0", BANK_A), ("P-0", BANK_B), ("P-1", BANK_B)):
            self.assign_(pid, bank, None)
        self.commit()

    def add(self, signer: str, payload: txtypes.Payload) -> None:
        self.pending.append((signer, payload))
        if len(self.pending) >= 6:
            self.commit()

    def pick(self, data: st.DataObject, known: list[str], every: list[str]) -> str:
        """Mostly a record that exists, sometimes any id."""
        return data.draw(st.sampled_from(known) if known and data.draw(st.integers(0, 4))
                         else st.sampled_from(every))

    # --- insurers
    @rule(pid=policies, insurer=insurers, covered=amounts,
          exporter=st.sampled_from([EXPORTER, EXPORTER, EXPORTER2, UNREGISTERED]),
          currency=st.sampled_from(["USD", "USD", "EUR"]),
          start=st.integers(-10, 10), length=st.integers(-2, 60), rare=st.integers(0, 5))
    def register(self, pid: str, insurer: str, covered: int, exporter: str, currency: str,
                 start: int, length: int, rare: int) -> None:
        if pid in self.model.policies and rare:  # POLICY_EXISTS now and then only
            return
        starts = max(0, self.chain.time_ms + start * DAY_MS)
        self.add(insurer, policy(self.chain, pid, covered, exporter=exporter,
                                 currency=currency, starts_ms=starts,
                                 expires_ms=starts + length * DAY_MS))

    def assign_(self, pid: str, bank: str, signer: str | None) -> None:
        pol = self.chain.state.get(keys.policy(pid), records.Policy)
        if pol is None:  # the wrap needs the committed details: nothing to assign yet
            return
        payload = self.chain.seal_payload(pol.insurer, assign(pid, bank))
        self.add(signer or pol.insurer, payload)

    @rule(data=st.data(), bank=banks, signer=st.sampled_from([None, None, None, INSURER2]))
    def assign(self, data: st.DataObject, bank: str, signer: str | None) -> None:
        self.assign_(self.pick(data, list(self.model.policies), POLICIES), bank, signer)

    @rule(data=st.data(), insurer=insurers, reason=st.sampled_from(["fraud", " "]),
          rare=st.integers(0, 3))
    def cancel(self, data: st.DataObject, insurer: str, reason: str, rare: int) -> None:
        if rare:  # a cancelled policy funds nothing: keep them few
            return
        pid = self.pick(data, list(self.model.policies), POLICIES)
        self.add(insurer, txtypes.CancelPolicy(pid, reason))

    @rule(data=st.data(), cid=st.sampled_from(CLAIMS), amount=small,
          own=st.integers(0, 5), none=st.integers(0, 3))
    def claim(self, data: st.DataObject, cid: str, amount: int, own: int, none: int) -> None:
        pid = self.pick(data, list(self.model.policies), POLICIES)
        pol = self.model.policies.get(pid)
        insurer = pol.insurer if pol is not None and own else INSURERS[own % 2]
        mine = [f for f, x in self.model.fins.items() if x.policy == pid]
        fid = "" if not none else self.pick(data, mine, FINS)
        self.add(insurer, txtypes.PayPolicyClaim(cid, pid, fid, amount))

    # --- banks
    @rule(data=st.data(), tries=st.lists(st.tuples(fins, small, st.integers(0, 8),
                                                   st.integers(-1, 400)), min_size=1,
                                         max_size=3))
    def finance(self, data: st.DataObject, tries: list[tuple[str, int, int, int]]) -> None:
        """Up to three financings, often by several banks on one policy in one block."""
        for fid, amount, right, tenor in tries:
            pid = self.pick(data, list(self.model.policies), POLICIES)
            pol = self.model.policies.get(pid)
            if pol is not None and right and pol.assignees:
                bank = data.draw(st.sampled_from(pol.assignees))
                exporter, currency = pol.exporter, pol.currency
                if right < 3:  # exactly what is left, or one more (the boundary)
                    amount = max(1, self.model.room(pol) + (right - 1))
            else:
                bank = data.draw(banks)
                exporter = data.draw(st.sampled_from([EXPORTER, EXPORTER2]))
                currency = data.draw(st.sampled_from(["USD", "EUR"]))
            self.add(bank, txtypes.FinancePolicy(fid, pid, exporter, amount, currency,
                                                 self.chain.time_ms + tenor * DAY_MS))

    @rule(data=st.data(), amount=small, own=st.integers(0, 5))
    def repay(self, data: st.DataObject, amount: int, own: int) -> None:
        fid = self.pick(data, list(self.model.fins), FINS)
        fin = self.model.fins.get(fid)
        bank = fin.bank if fin is not None and own else BANKS[own % 3]
        if fin is not None and own > 2:
            amount = min(amount, max(fin.outstanding, 1))
        self.add(bank, txtypes.RepayPolicyFinancing(fid, amount))

    # --- the regulator
    @rule(rate=st.sampled_from([0, 5000, 8000, 8000, 9000, 10_000]))
    def set_rate(self, rate: int) -> None:
        self.add(REG, txtypes.SetParam("policy_advance_rate_bps", rate))

    @rule(kind=st.sampled_from(["freeze", "unfreeze", "unfreeze", "A", "A", "C"]),
          u=st.sampled_from([EXPORTER, EXPORTER2]))
    def regulate(self, kind: str, u: str) -> None:
        payload: txtypes.Payload = (
            txtypes.FreezeEnterprise(u, "x") if kind == "freeze"
            else txtypes.UnfreezeEnterprise(u) if kind == "unfreeze"
            else txtypes.SetFxClass(u, kind))
        self.add(REG, payload)

    # --- blocks and time
    @rule()
    def commit(self) -> None:
        pending, self.pending = self.pending, []
        txs = [self.chain.tx(signer, payload) for signer, payload in pending]
        self.model.start_block(self.chain.time_ms + 1000)
        expected = [self.model.apply(signer, payload) for signer, payload in pending]
        receipts = self.chain.apply(*txs)
        got = [r.code for r in receipts]
        assert got == expected, [(tx.type, g, e, r.message) for tx, g, e, r in
                                 zip(txs, got, expected, receipts, strict=True) if g != e]

    @rule(days=st.integers(1, 40))
    def advance(self, days: int) -> None:
        """Time passes (an empty block days later): policies start and expire."""
        self.commit()
        self.model.start_block(self.chain.time_ms + days * DAY_MS)
        self.chain.apply(dt_ms=days * DAY_MS)

    # --- invariants
    @invariant()
    def ledger_agrees_with_the_invariants_and_the_model(self) -> None:
        if not hasattr(self, "chain"):
            return
        state, m = self.chain.state, self.model
        pols = {p.policy_id: p for _, p in state.scan(keys.POLICY, records.Policy)}
        fins_ = {f.financing_id: f for _, f in
                 state.scan(keys.POLICY_FINANCING, records.PolicyFinancing)}
        claims = [c for _, c in state.scan(keys.POLICY_CLAIM, records.PolicyClaim)]
        assert set(pols) == set(m.policies) and set(fins_) == set(m.fins)
        for pid, p in pols.items():
            mine = [f for f in fins_.values() if f.policy_id == pid]
            # I-26: the running total is the outstanding of its unpaid financings, never above
            # the cover times the rate it was last admitted at
            assert p.financed == sum(f.outstanding for f in mine)
            assert p.financed <= p.covered_amount * p.rate_bps // BPS
            # I-27: claims within the cover, each counted once
            assert p.claimed == sum(c.amount for c in claims if c.policy_id == pid)
            assert p.claimed <= p.covered_amount
            mp = m.policies[pid]
            assert (p.insurer, p.financed, p.claimed, p.status == records.CANCELLED,
                    [a.bank for a in p.assignments]) == (
                mp.insurer, mp.financed, mp.claimed, mp.cancelled, mp.assignees)
            listed = queries_insurance.financings_of_policy(state, pid).items
            assert sorted(f.financing_id for f in listed) == sorted(f.financing_id
                                                                    for f in mine)
        for fid, f in fins_.items():
            assert f.outstanding >= 0
            assert (f.status == records.REPAID) == (f.outstanding == 0)
            assert f.claimed == sum(c.applied for c in claims if c.financing_id == fid)
            mf = m.fins[fid]
            assert (f.bank, f.repaid, f.claimed) == (mf.bank, mf.repaid, mf.claimed)

    def teardown(self) -> None:
        if not hasattr(self, "chain"):
            return
        self.chain.assert_replays()


TestInsuranceMachine = InsuranceMachine.TestCase
TestInsuranceMachine.settings = settings(
    max_examples=30, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
