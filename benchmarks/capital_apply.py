"""What a capital-account income payment costs the ledger, next to an outbound payment against
a tax form (the version-1 rule it resembles): apply time per transaction and state keys
written, on a small in-memory consortium after protocol version 2's activation.

Per block: `--block-txs` capital.pay transactions against `--documents` registration records
(nine in ten accepted, one in ten shown a forged copy and refused), then as many
payment.outbound against as many tax forms (all accepted). Details are sealed before the
timing (the client's work, not the ledger's); apply never verifies signatures.

    .venv/bin/python benchmarks/capital_apply.py
    .venv/bin/python benchmarks/capital_apply.py --blocks 5 --block-txs 500
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from node.cli.demo import build_consortium
from node.client import sealing
from protocol import limits, txtypes, types
from protocol.ledger import State, apply_txs, initial_state, queries

T0 = 1_780_000_000_000
ENTERPRISE = "91370200MA3D6K8Q4W"


class Bench:
    def __init__(self) -> None:
        self.config, self.keys = build_consortium("crossbill-bench", T0)
        self.state: State = initial_state(self.config)
        self.height, self.time_ms, self.n, self.payments = 0, T0, 0, 0
        roles = {i.id: i.role for i in self.config.institutions}
        self.regulator = next(i for i, r in roles.items() if r == "regulator")
        self.tax = next(i for i, r in roles.items() if r == "tax")
        self.bank = next(i for i, r in roles.items() if r == "bank")

    def tx(self, signer: str, payload: txtypes.Payload) -> types.Tx:
        self.n += 1
        return types.Tx.create(self.keys[signer], chain_id=self.config.chain_id, signer=signer,
                               payload=payload, nonce=self.n.to_bytes(16, "big"),
                               expires_at_ms=self.time_ms + 600_000)

    def block(self, txs: list[types.Tx]) -> tuple[float, int, list[str]]:
        """Seconds to apply, keys written, receipt codes."""
        self.height += 1
        self.time_ms += 1000
        started = time.perf_counter()
        result = apply_txs(self.state, self.height, self.time_ms, txs)
        elapsed = time.perf_counter() - started
        result.commit(self.state)
        return elapsed, len(result.writes), [r.code for r in result.receipts]

    def setup(self, documents: int) -> None:
        at = self.height + 1 + limits.ACTIVATION_LEAD_BLOCKS_MIN
        self.block([self.tx(self.regulator, txtypes.ActivateVersion(2, at))])
        while self.height + 1 < at:
            self.block([])
        self.block([self.tx(self.bank, txtypes.RegisterEnterprise(
            ENTERPRISE, "Bench Investee", "CN", b""))])
        recipients = queries.seal_recipients(self.state, self.tax, enterprise=ENTERPRISE)
        regs, forms = [], []
        for d in range(documents):
            regs.append(self.tx(self.regulator, txtypes.RegisterDocument(
                f"FDI-{d}", "registration", ENTERPRISE, 10**12, "USD",
                hashlib.sha256(f"doc {d}".encode()).digest(), 0)))
            forms.append(self.tx(self.tax, txtypes.RegisterTaxForm(
                f"T-{d}", ENTERPRISE, 10**12, "USD", sealing.seal(
                    txtypes.TaxFormDetails(sealing.salt(), "Payee", "services", 0),
                    "taxform.register", f"T-{d}", recipients))))
        for i in range(0, documents, 500):
            self.block(regs[i:i + 500] + forms[i:i + 500])

    def capital_block(self, count: int, documents: int) -> list[types.Tx]:
        recipients = queries.seal_recipients(self.state, self.bank, enterprise=ENTERPRISE)
        out = []
        for _ in range(count):
            self.payments += 1
            pid, d = f"CP-{self.payments}", self.payments % documents
            shown = b"forged" if self.payments % 10 == 0 else f"doc {d}".encode()
            details = sealing.seal(txtypes.CapitalPaymentDetails(
                sealing.salt(), "Payee", "6222", "equipment"), "capital.pay", pid, recipients)
            out.append(self.tx(self.bank, txtypes.RecordCapitalPayment(
                pid, ENTERPRISE, "fdi_proceeds", f"FDI-{d}", hashlib.sha256(shown).digest(),
                100, "USD", details)))
        return out

    def outbound_block(self, count: int, documents: int) -> list[types.Tx]:
        out = []
        for _ in range(count):
            self.payments += 1
            out.append(self.tx(self.bank, txtypes.RecordOutboundPayment(
                f"P-{self.payments}", ENTERPRISE, f"T-{self.payments % documents}", 100,
                "USD", "")))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--block-txs", type=int, default=1000)
    parser.add_argument("--documents", type=int, default=1000)
    args = parser.parse_args()
    bench = Bench()
    bench.setup(args.documents)
    rows: dict[str, list[tuple[float, int]]] = {"capital.pay": [], "payment.outbound": []}
    refused: dict[str, int] = {}
    for _ in range(args.blocks):
        for name, make in (("capital.pay", bench.capital_block),
                           ("payment.outbound", bench.outbound_block)):
            txs = make(args.block_txs, args.documents)
            elapsed, writes, codes = bench.block(txs)
            rows[name].append((elapsed, writes))
            for c in codes:
                if c != "OK":
                    refused[c] = refused.get(c, 0) + 1
    print(f"{args.blocks} blocks of {args.block_txs} txs each, {args.documents} documents/forms")
    for name, samples in rows.items():
        per_tx_us = statistics.median(e for e, _ in samples) / args.block_txs * 1e6
        keys_per_tx = statistics.median(w for _, w in samples) / args.block_txs
        print(f"{name:18s} median {per_tx_us:7.1f} us/tx applied  "
              f"{1e6 / per_tx_us:8.0f} tx/s  {keys_per_tx:5.2f} keys written/tx (with the tree)")
    print("refused:", ", ".join(f"{c} {n}" for c, n in sorted(refused.items())) or "none")


if __name__ == "__main__":
    main()
