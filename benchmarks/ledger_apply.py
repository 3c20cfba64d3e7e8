"""Ledger apply throughput and state-root cost as the state grows.

Builds a state of N business records (enterprises with their keys, credit entries,
declarations with the exporter index, financings with the applications they were opened on,
tax forms, each with one history entry) by bulk-loading a MemoryKV and building the state tree
once, then applies blocks of a realistic transaction mix (no signature checks: apply never
verifies them) and reports medians per block: apply throughput, the share spent on the state
root, keys changed, and the commit of the write set.

The mix (issue 15): per 20 transactions, 3 declarations, 3 enterprise-signed financing
applications, 3 financings opened on earlier applications (one in three in CNY against a USD
declaration, at the preloaded rate of the day), another bank's attempt on the same declaration
(refused: before issue 15 DOUBLE_FINANCING, now NO_APPLICATION), 2 disbursements, 2 proceeds
that repay, 1 close, 1 tax form, 3 outbound payments, 1 credit entry. (Before issue 15 the
three application slots were 2 enterprise registrations and a second tax form.) Small states
run out of fresh declarations and refinance them (refused).

Issue 16: declarations, tax forms and credit entries carry sealed details (ADR 0024), sealed by
the client (node.client.sealing, while the blocks are prepared, outside the timing) to the
recorder and the regulator, whose encryption keys the preloaded state holds (the preloaded
enterprises hold none, so they are not recipients); preloaded records share one sealed blob.

    .venv/bin/python benchmarks/ledger_apply.py                  # 10,000 and 1,000,000 records
    .venv/bin/python benchmarks/ledger_apply.py --sizes 10000 --blocks 5 --block-txs 200
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from node.client import sealing
from protocol import codec, crypto, txtypes, types
from protocol.ledger import MemoryKV, State, apply_block, dates, init_genesis, keys, records, smt
from protocol.ledger import apply as ledger_apply
from protocol.ledger.genesis import rebuild_state_tree
from protocol.sealed import Recipient, Sealed, public_key_of

CHAIN_ID = "crossbill-bench"
T0 = 1_700_000_000_000
BANKS = ("bank.a", "bank.b", "bank.c")
ROLES = {"reg.safe": "regulator", "customs.qd": "customs", "tax.qd": "tax",
         **dict.fromkeys(BANKS, "bank")}
VALUE = 1_000_000_00
CAP = VALUE * 9000 // 10_000
USD_CNY = 710_000_000
CAP_CNY = CAP * USD_CNY // 10**8
DAY_MS = 86_400_000
EXPORT_DATE = dates.format_day(dates.day_of(T0) - 10)
MATURITY_MS = T0 + 90 * DAY_MS
APP_EXPIRES_MS = T0 + 30 * DAY_MS
# One key for every enterprise: building a million keys would only slow the bulk load.
ENTERPRISE_KEY = hashlib.sha256(b"bench/enterprise").digest()


def key_of(name: str) -> crypto.PrivateKey:
    return crypto.PrivateKey(hashlib.sha256(b"bench/" + name.encode()).digest())


def recipient(institution: str) -> Recipient:
    """An institution's encryption key (version 1, preloaded)."""
    private = hashlib.sha256(b"bench/encryption/" + institution.encode()).digest()
    return Recipient(institution, 1, public_key_of(private))


def salt() -> bytes:
    return sealing.salt()


def seal(details: object, tx_type: str, record_id: str, recorder: str) -> Sealed:
    """Sealed to the recorder and the regulator, as queries.seal_recipients says for an
    enterprise without an encryption key."""
    return sealing.seal(details, tx_type, record_id, [recipient(recorder),
                                                      recipient("reg.safe")])


DECL_DETAILS = txtypes.DeclarationDetails(bytes(16), "Buyer GmbH", "DE", "machine parts")


def uscc(n: int) -> str:
    return f"91370200MA{n:07d}X"


def make_config() -> types.ConsortiumConfig:
    insts = tuple(
        types.Institution(i, i.upper(), role,
                          (types.InstitutionKey(key_of(i).key_id, key_of(i).public_key),),
                          types.NodeInfo(f"peer-{n}", (f"/ip4/127.0.0.1/tcp/{7000 + n}",)))
        for n, (i, role) in enumerate(ROLES.items()))
    return types.ConsortiumConfig(CHAIN_ID, T0, insts, BANKS, types.DEFAULT_PARAMS)


# ------------------------------------------------------------------------------ bulk load


@dataclass
class Population:
    enterprises: int
    declarations: int
    forms: int

    @staticmethod
    def of(n_records: int) -> Population:
        # enterprises 10%, credit entries 10%, declarations 40%, financings 20%, forms 20%
        return Population(n_records // 10, n_records * 4 // 10, n_records * 2 // 10)


def _history(record_key: bytes, tx_type: str, i: int) -> tuple[bytes, bytes]:
    tx_id = hashlib.sha256(record_key).digest()
    return (keys.history(record_key, 1, i % 10_000),
            codec.encode(records.HistoryEntry(1, i % 10_000, tx_id, tx_type)))


def ent_key() -> crypto.PrivateKey:
    return crypto.PrivateKey(ENTERPRISE_KEY)


def preload_items(n_records: int, ready_apps: int) -> Iterator[tuple[bytes, bytes]]:
    """The encoded records (and one history entry each) of a state that grew to N records,
    and `ready_apps` open applications for the first blocks' financings."""
    pop = Population.of(n_records)
    tx_id = bytes(32)
    public_key = ent_key().public_key
    for inst in ROLES:
        yield keys.encryption_key(inst), codec.encode(records.EncryptionKeyRecord(
            inst, 1, recipient(inst).public_key, 0))
    sealed_decl = seal(DECL_DETAILS, "declaration.register", "D", "customs.qd")
    sealed_credit = seal(txtypes.CreditDetails(bytes(16), "credit_line", VALUE, "USD", ""),
                         "credit.record", "line-1", BANKS[0])
    sealed_form = seal(txtypes.TaxFormDetails(bytes(16), "Consulting Ltd", "consulting", 0),
                       "taxform.register", "T", "tax.qd")
    for i in range(pop.enterprises):
        u = uscc(i)
        k = keys.enterprise(u)
        yield k, codec.encode(records.EnterpriseRecord(u, f"Company {i}", "CN",
                                                       (BANKS[i % 3],), public_key,
                                                       BANKS[i % 3], 1))
        yield _history(k, "enterprise.register", i)
        ck = keys.credit(u, "line-1")
        yield ck, codec.encode(records.CreditEntry("line-1", BANKS[i % 3], sealed_credit, 1,
                                                   tx_id))
        yield _history(k, "credit.record", i)
    for i in range(pop.declarations):
        u = uscc(i % pop.enterprises)
        k = keys.declaration(f"D{i}")
        yield k, codec.encode(records.Declaration(
            f"D{i}", u, VALUE, "USD", EXPORT_DATE, records.REGISTERED, 0, 0, 9000,
            "customs.qd", sealed_decl, 1, ""))
        yield keys.exporter_decl(u, f"D{i}"), codec.encode(records.Marker())
        yield _history(k, "declaration.register", i)
    for i in range(pop.declarations // 2):  # historic financings, closed, and their applications
        u, bank = uscc(i % pop.enterprises), BANKS[i % 3]
        k = keys.financing(f"H{i}")
        yield k, codec.encode(records.Financing(
            f"H{i}", bank, u, f"HA{i}", CAP, "USD",
            (records.PledgeRecord(f"D{i}", 0, CAP, "USD", 10**8),), records.CLOSED, CAP,
            (records.Repayment(1, CAP, "repay"),), 1, 0, T0, T0, T0, 1, "", (), 0, "", ()))
        yield _history(k, "financing.open", i)
        yield keys.application(u, f"HA{i}"), codec.encode(records.Application(
            u, f"HA{i}", bank, CAP, "USD", (records.AppliedPledge(f"D{i}", CAP),), T0,
            records.USED, u, "", 1, f"H{i}"))
    for i in range(pop.forms):
        k = keys.tax_form(f"T{i}")
        yield k, codec.encode(records.TaxForm(
            f"T{i}", uscc(i % pop.enterprises), VALUE, "USD", sealed_form, records.REGISTERED,
            0, "tax.qd", 1))
        yield _history(k, "taxform.register", i)
    yield keys.fx_rate("USD", "CNY", dates.format_day(dates.day_of(T0))), codec.encode(
        records.FxRate("USD", "CNY", dates.format_day(dates.day_of(T0)), USD_CNY, 1))
    for i in range(1, ready_apps + 1):
        yield from application_items(pop, i)


def application_items(pop: Population, i: int) -> Iterator[tuple[bytes, bytes]]:
    """The open application of declaration D<i> (preloaded for the first blocks)."""
    bank, u, app_id, ccy, principal, decl = Workload.deal(pop, i)
    yield keys.application(u, app_id), codec.encode(records.Application(
        u, app_id, bank, principal, ccy, (records.AppliedPledge(decl, CAP),), APP_EXPIRES_MS,
        records.OPEN, u, "", 1, ""))
    yield keys.due(APP_EXPIRES_MS, keys.DUE_APPLICATION, keys.application_due_id(u, app_id)), \
        codec.encode(records.Marker())


def build_state(n_records: int, ready_apps: int = 0) -> tuple[State, float, float]:
    """The bulk-loaded state, the seconds it took, and the seconds of building its whole state
    tree once (what rehashing the whole state per block would cost)."""
    started = time.perf_counter()
    kv = MemoryKV()
    state = State(kv)
    init_genesis(state, make_config())
    kv.bulk_load(preload_items(n_records, ready_apps or Workload.ready_apps_for(1000)))
    tree_started = time.perf_counter()
    rebuild_state_tree(kv)
    done = time.perf_counter()
    return state, done - started, done - tree_started


# ------------------------------------------------------------------------------ workload


@dataclass
class Workload:
    """Generates blocks of valid (and some deliberately refused) transactions."""

    pop: Population
    blocks: int
    block_txs: int
    seq: int = 0
    next_decl: int = 0  # preloaded declarations opened so far
    next_app: int = 0  # preloaded declarations applied for so far
    opened: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    disbursed: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    repaid: list[tuple[str, str]] = field(default_factory=list)
    ready_apps: int = 0  # applications preloaded by build_state (default: ready_apps_for(1000))

    def __post_init__(self) -> None:
        self.ready_apps = self.ready_apps or self.ready_apps_for(1000)

    @staticmethod
    def ready_apps_for(block_txs: int) -> int:
        """Preloaded applications: two blocks' worth of financings."""
        return block_txs * 3 // 20 * 2

    @staticmethod
    def deal(pop: Population, n: int) -> tuple[str, str, str, str, int, str]:
        """Bank, exporter, application id, currency, principal and declaration of the n-th
        deal, on a preloaded declaration (from D1 on, wrapping round in small states): one in
        three in CNY against the USD declaration."""
        i = 1 + (n - 1) % (pop.declarations - 1)
        u = uscc(i % pop.enterprises)
        ccy = "CNY" if i % 3 == 0 else "USD"
        return (BANKS[(i % pop.enterprises) % 3], u, f"A{n}", ccy,
                CAP_CNY if ccy == "CNY" else CAP, f"D{i}")

    def tx(self, signer: str, payload: txtypes.Payload, time_ms: int) -> types.Tx:
        self.seq += 1
        key = ent_key() if signer.startswith("9137") else key_of(signer)
        return types.Tx.create(key, chain_id=CHAIN_ID, signer=signer,
                               payload=payload, nonce=self.seq.to_bytes(16, "big"),
                               expires_at_ms=time_ms + 120_000)

    def block_txs_at(self, time_ms: int) -> list[types.Tx]:
        out: list[types.Tx] = []
        new_opened: list[tuple[str, str, str, str, str]] = []
        new_disbursed: list[tuple[str, str, str, str, str]] = []
        new_repaid: list[tuple[str, str]] = []
        for j in range(self.block_txs):
            out.append(self._one(j % 20, time_ms, new_opened, new_disbursed, new_repaid))
        self.opened += new_opened
        self.disbursed += new_disbursed
        self.repaid += new_repaid
        return out

    def _one(self, slot: int, t: int, new_opened: list[tuple[str, str, str, str, str]],
             new_disbursed: list[tuple[str, str, str, str, str]],
             new_repaid: list[tuple[str, str]]) -> types.Tx:
        s = self.seq
        pop = self.pop
        if slot in (0, 1, 2):  # customs registers a declaration
            details = txtypes.DeclarationDetails(salt(), "Buyer GmbH", "DE", "machine parts")
            return self.tx("customs.qd", txtypes.RegisterDeclaration(
                f"N{s}", uscc(s % pop.enterprises), VALUE, "USD", EXPORT_DATE,
                seal(details, "declaration.register", f"N{s}", "customs.qd")), t)
        if slot in (3, 4, 5):  # a bank finances a preloaded declaration on its application
            i = self.next_decl = self.next_decl + 1
            bank, u, app_id, ccy, principal, decl = self.deal(pop, i)
            fid = f"F{s}"
            new_opened.append((bank, fid, u, decl, ccy))
            return self.tx(bank, txtypes.OpenFinancing(
                fid, u, app_id, principal, ccy, (txtypes.Pledge(decl, CAP),), MATURITY_MS), t)
        if slot == 6:  # another bank tries the same declaration without an application
            bank, _, u, decl, _ = (self.opened or new_opened)[-1]
            other = BANKS[(BANKS.index(bank) + 1) % 3]
            return self.tx(other, txtypes.OpenFinancing(
                f"X{s}", u, f"A-none-{s}", 1000, "USD", (txtypes.Pledge(decl, 1000),),
                MATURITY_MS), t)
        if slot in (7, 8) and self.opened:
            bank, fid, u, decl, ccy = self.opened.pop(0)
            new_disbursed.append((bank, fid, u, decl, ccy))
            return self.tx(bank, txtypes.DisburseFinancing(fid), t)
        if slot in (9, 10) and self.disbursed:
            bank, fid, u, decl, _ = self.disbursed.pop(0)
            new_repaid.append((bank, fid))
            return self.tx(bank, txtypes.RecordInboundProceeds(
                f"P{s}", u, decl, VALUE, "USD", fid), t)
        if slot == 11 and self.repaid:
            bank, fid = self.repaid.pop(0)
            return self.tx(bank, txtypes.CloseFinancing(fid), t)
        if slot == 12:
            details = txtypes.TaxFormDetails(salt(), "Consulting Ltd", "consulting", 0)
            return self.tx("tax.qd", txtypes.RegisterTaxForm(
                f"NT{s}", uscc(s % pop.enterprises), VALUE, "USD",
                seal(details, "taxform.register", f"NT{s}", "tax.qd")), t)
        if slot in (14, 15, 16):
            i = s % pop.forms
            u = uscc(i % pop.enterprises)
            return self.tx(BANKS[(i % pop.enterprises) % 3], txtypes.RecordOutboundPayment(
                f"O{s}", u, f"T{i}", 1000, "USD", ""), t)
        if slot == 13:
            i = s % pop.enterprises
            details = txtypes.CreditDetails(salt(), "overdue", 100, "USD", "late payment")
            return self.tx(BANKS[i % 3], txtypes.RecordCredit(
                uscc(i), f"e{s}", seal(details, "credit.record", f"e{s}", BANKS[i % 3])), t)
        # 17, 18, 19 (and 7-11 before there is anything to move on): the exporter applies
        # for the financing of a declaration that a later slot opens.
        i = self.next_app = self.next_app + 1
        bank, u, app_id, ccy, principal, decl = self.deal(pop, self.ready_apps + i)
        return self.tx(u, txtypes.ApplyForFinancing(
            app_id, u, bank, principal, ccy, (txtypes.Pledge(decl, CAP),), APP_EXPIRES_MS), t)


# ------------------------------------------------------------------------------ measuring


@dataclass
class RootTimer:
    seconds: list[float] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._update = smt.update

    def update(self, kv: smt.KV, changes: dict[bytes, bytes | None]) -> bytes:
        started = time.perf_counter()
        root = self._update(kv, changes)
        self.seconds.append(time.perf_counter() - started)
        self.changed.append(len(changes))
        return root


def run(n_records: int, blocks: int, block_txs: int) -> dict[str, float]:
    gc.collect()
    ready = Workload.ready_apps_for(block_txs)
    state, build_s, full_tree_s = build_state(n_records, ready)
    pop = Population.of(n_records)
    work = Workload(pop, blocks, block_txs, ready_apps=ready)
    proposer = key_of("bank.a")
    prepared: list[types.Block] = []
    for h in range(1, blocks + 1):
        t = T0 + h * 1000
        txs = tuple(work.block_txs_at(t))
        header = types.BlockHeader(CHAIN_ID, h, bytes(32), len(txs), types.tx_root(list(txs)),
                                   bytes(32), bytes(32), t, "bank.a", proposer.key_id, 1, h)
        prepared.append(types.Block.create(proposer, header, txs))
    timer = RootTimer()
    ledger_apply.smt.update = timer.update  # type: ignore[assignment]
    apply_s: list[float] = []
    commit_s: list[float] = []
    rejected = writes = 0
    gc.disable()
    try:
        for block in prepared:
            started = time.perf_counter()
            result = apply_block(state, block)
            apply_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            result.commit(state)
            commit_s.append(time.perf_counter() - started)
            rejected += sum(1 for r in result.receipts if not r.ok)
            writes += len(result.writes)
    finally:
        gc.enable()
        ledger_apply.smt.update = timer._update  # type: ignore[assignment]
    med_apply = statistics.median(apply_s)
    med_root = statistics.median(timer.seconds)
    kv = state.kv
    return {
        "records": n_records, "kv_keys": len(kv) if isinstance(kv, MemoryKV) else 0,
        "build_s": build_s, "full_tree_s": full_tree_s, "tx_per_s": block_txs / med_apply,
        "apply_ms": med_apply * 1000, "root_ms": med_root * 1000,
        "root_share": med_root / med_apply, "changed_keys": statistics.median(timer.changed),
        "root_us_per_key": med_root / statistics.median(timer.changed) * 1e6,
        "commit_ms": statistics.median(commit_s) * 1000,
        "rejected_share": rejected / (blocks * block_txs),
        "writes_per_block": writes / blocks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,1000000",
                        help="comma-separated record counts (default 10000,1000000)")
    parser.add_argument("--blocks", type=int, default=15, help="blocks per size (default 15)")
    parser.add_argument("--block-txs", type=int, default=1000, help="txs per block (1000)")
    args = parser.parse_args()
    print(f"{'records':>9} {'kv keys':>9} {'build s':>8} {'full tree s':>11} {'tx/s':>7} "
          f"{'apply ms':>9} "
          f"{'root ms':>8} {'root %':>7} {'keys/blk':>8} {'root us/key':>11} "
          f"{'commit ms':>9} {'rejected':>8}")
    for size in (int(x) for x in args.sizes.split(",")):
        r = run(size, args.blocks, args.block_txs)
        print(f"{r['records']:>9,} {r['kv_keys']:>9,} {r['build_s']:>8.1f} "
              f"{r['full_tree_s']:>11.1f} {r['tx_per_s']:>7,.0f} {r['apply_ms']:>9.1f} "
              f"{r['root_ms']:>8.1f} "
              f"{r['root_share']:>7.0%} {r['changed_keys']:>8,.0f} "
              f"{r['root_us_per_key']:>11.1f} {r['commit_ms']:>9.1f} "
              f"{r['rejected_share']:>8.0%}", flush=True)
    print(f"medians over {args.blocks} blocks of {args.block_txs} txs; apply includes the "
          "state root; no signature checks; 'full tree s': building the whole state tree "
          "once (the per-block cost of rehashing everything)")


if __name__ == "__main__":
    main()
