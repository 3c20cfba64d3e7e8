"""What one `policy.finance` costs to apply as the financings against one policy grow (issue 17,
ADR 0026): the ledger keeps the policy's running total (`Policy.financed`) on the policy record,
so the cap check reads one record however many financings the policy has; the alternative,
summing the outstanding of every financing in the policy's index (`ppfin`), reads them all.

Both are timed on the same state: a policy covering enough for every financing, assigned to
three banks, already holding N financings (built with real blocks), then blocks of B
`policy.finance` transactions spread over the three banks. "running total" is the ledger's
apply; "index sum" is the same apply plus, per transaction, the read and decode of every
financing listed under the policy, which is what the alternative would add. Medians per
transaction, in microseconds.

    .venv/bin/python benchmarks/policy_finance.py                       # N = 0, 100, 1000, 5000
    .venv/bin/python benchmarks/policy_finance.py --sizes 0 1000 --blocks 3 --block-txs 100
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from protocol import txtypes
from protocol.ledger import apply_block, keys, records
from tests.ledger.helpers import BANK_A, BANK_B, DAY_MS, EXPORTER, Chain
from tests.ledger.insurance_helpers import INSURER, assign, insured_chain, policy

BANKS = (BANK_A, BANK_B)


def build(existing: int) -> Chain:
    chain = insured_chain()
    chain.ok(INSURER, policy(chain, "P-1", 10**15))
    chain.apply(*[chain.tx(INSURER, assign("P-1", b)) for b in BANKS])
    for start in range(0, existing, 500):
        chain.apply(*[chain.tx(BANKS[i % 2], txtypes.FinancePolicy(
            f"PF-{i:07d}", "P-1", EXPORTER, 1, "USD",
            chain.time_ms + 90 * DAY_MS)) for i in range(start, min(existing, start + 500))])
    policy_now = chain.state.get(keys.policy("P-1"), records.Policy)
    assert policy_now is not None and policy_now.financed == existing
    return chain


def index_sum(chain: Chain) -> int:
    """The alternative: sum the outstanding of every financing listed under the policy."""
    total = 0
    for key in chain.state.keys_in(keys.policy_financings_prefix("P-1")):
        fid = key[len(keys.policy_financings_prefix("P-1")):].decode()
        fin = chain.state.get(keys.policy_financing(fid), records.PolicyFinancing)
        assert fin is not None
        total += fin.outstanding
    return total


def measure(existing: int, blocks: int, block_txs: int) -> tuple[float, float]:
    chain = build(existing)
    ours: list[float] = []
    alt: list[float] = []
    for b in range(blocks):
        txs = [chain.tx(BANKS[i % 2], txtypes.FinancePolicy(
            f"PX-{b:03d}-{i:05d}", "P-1", EXPORTER, 1, "USD", chain.time_ms + 90 * DAY_MS))
            for i in range(block_txs)]
        block = chain.make_block(txs)
        t = time.perf_counter()
        result = apply_block(chain.state, block)
        ours.append((time.perf_counter() - t) / block_txs)
        assert all(r.ok for r in result.receipts)
        t = time.perf_counter()
        for _ in range(block_txs):
            index_sum(chain)
        alt.append((time.perf_counter() - t) / block_txs + ours[-1])
        result.commit(chain.state)
        chain.height += 1
        chain.time_ms = block.header.timestamp_ms
    return statistics.median(ours) * 1e6, statistics.median(alt) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 100, 1000, 5000])
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--block-txs", type=int, default=50)
    args = parser.parse_args()
    print(f"{'financings on the policy':>25} {'running total us/tx':>20} {'index sum us/tx':>16}")
    for n in args.sizes:
        ours, alt = measure(n, args.blocks, args.block_txs)
        print(f"{n:>25} {ours:>20.0f} {alt:>16.0f}")


if __name__ == "__main__":
    main()
