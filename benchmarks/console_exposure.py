"""The console's exposure page (node/console/pages/exposure.py) with 10,000 live financings:
the time from the page function's first call to the node until its HTML is rendered through
the application's Jinja2 environment (node/console/app.py), median of several runs.

The node is a fake NodeApi in this process answering from 10,000 financing records shaped as
the node's JSON-RPC gives them (bank.book pages of 500, the node's QUERY_PAGE_ITEMS_MAX; each
financing with one pledge and its terms sealed to three parties), so the figure is the
console's own cost (paging, totals, chart, template), without the node's reads or the network:

- overview: the regulator's /exposure (bank.book of every bank: 20 pages, the totals per bank,
  both watch lists, the chart over 10,000 financings);
- bank book: a bank's /exposure (its own 5,000 of them: totals and chart over all, the first
  FINANCING_ROWS_MAX as table rows);
- enterprise: /exposure?uscc=... for an enterprise with 10,000 live financings (likewise).

    .venv/bin/python benchmarks/console_exposure.py [--financings 10000] [--runs 7] [--live]

With --live the node is real instead: a ledger built in this process by the protocol's own
apply (tests/ledger/helpers.Chain) with the financings spread over enterprises (the ledger
allows ACTIVE_FINANCINGS_PER_ENTERPRISE_MAX live financings per enterprise) and banks, read
through the node's JSON-RPC handlers (node/rpc/methods.py, in process: no network).
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
from typing import Any

import trio

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

USCC = "91370200MA3C8Y5R2K"
BANKS = ("bank.boc-qd", "bank.icbc-qd")


def financing(i: int) -> dict[str, Any]:
    bank = BANKS[i % len(BANKS)]
    return {"financing_id": f"FIN-{i:06d}", "bank": bank, "uscc": USCC,
            "application_id": f"APP-{i:06d}", "principal": 639_000_000 + i, "currency": "CNY",
            "pledges": [{"declaration_no": f"QD-{i:06d}", "amount": 54_000_000,
                         "opened_amount": 54_000_000, "currency": "USD",
                         "rate_e8": 710_000_000}],
            "status": "disbursed" if i % 3 else "overdue", "repaid": i % 1000,
            "repayments": [{"height": i + 10, "amount": i % 1000, "source": f"PRC-{i}"}],
            "opened_height": i + 1, "flags": [], "flag_count": 0,
            "terms": [{"nonce": "00" * 12, "ciphertext": "ab" * 170, "plain_hash": "cd" * 32,
                       "keys": [{"party": p, "key_version": 1, "box": "ef" * 72}
                                for p in (bank, USCC, "regulator.safe-qd")]}]}


class Node:
    def __init__(self, count: int) -> None:
        self.all = [financing(i) for i in range(count)]
        self.books = {b: [f for f in self.all if f["bank"] == b] for b in BANKS}

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        p = params or {}
        if method == "consortium.get":
            return {"current": {"institutions": [{"id": b, "role": "bank"} for b in BANKS]}}
        if method == "bank.book":
            book = self.books[p["bank"]]
            start = int(p.get("after") or 0)
            items = book[start:start + int(p["limit"])]
            end = start + len(items)
            return {"items": items, "next_after": str(end) if end < len(book) else ""}
        if method == "financing.watch_list":
            return {"items": self.all[:int(p["limit"])] if p["kind"] == "overdue" else [],
                    "next_after": ""}
        if method == "enterprise.exposure":
            return {"uscc": USCC, "open_pledges": [["USD", 54_000_000 * len(self.all)]],
                    "outstanding": [["CNY", 639_000_000 * len(self.all)]], "overdue": [],
                    "approved": [], "flagged": [], "financings": self.all}
        if method == "declaration.list":
            return {"items": [], "next_after": ""}
        raise KeyError(method)


# ------------------------------------------------------------------ --live: the real ledger


def live_node(count: int) -> tuple[Any, str, str]:
    """A ledger in this process (tests/ledger/helpers.Chain: the protocol's own apply, state
    root and records) holding `count` live financings, spread over enterprises of at most
    ACTIVE_FINANCINGS_PER_ENTERPRISE_MAX each and over the three banks, each on its own
    declaration; and a NodeApi answering from the node's own JSON-RPC handlers over it
    (node/rpc/methods.py through its dispatcher: the node's reads and views, no network).
    Returns (node, a bank, an enterprise with financings)."""
    from node.console.common import from_rpc_error
    from protocol import limits
    from tests.ledger.helpers import (
        BANKS,
        CUSTOMS,
        Chain,
        application,
        declaration,
        key_of,
        open_financing,
        register_enterprise,
        uscc,
    )
    from tests.rpc.test_capital_methods import call, dispatcher

    per = limits.ACTIVE_FINANCINGS_PER_ENTERPRISE_MAX // 2
    enterprises = [uscc(100 + i) for i in range((count + per - 1) // per)]
    c = Chain()
    started = time.perf_counter()
    for i, u in enumerate(enterprises):
        c.keys[u] = key_of(f"exporter-{i}")
    for start in range(0, len(enterprises), 100):
        c.apply(*[c.tx(BANKS[i % 3], register_enterprise(
            u, public_key=key_of(f"exporter-{i}").public_key, bank=BANKS[i % 3]))
            for i, u in enumerate(enterprises[start:start + 100], start)])
    deals = [(n, enterprises[n // per], BANKS[(n // per) % 3]) for n in range(count)]
    batch = 500
    for step in ("declaration", "application", "financing"):
        for start in range(0, count, batch):
            txs = []
            for n, u, bank in deals[start:start + batch]:
                if step == "declaration":
                    txs.append(c.tx(CUSTOMS, declaration(f"D-{n:06d}", 100_000, exporter=u)))
                elif step == "application":
                    txs.append(c.tx(u, application(f"A-{n:06d}", 80_000, (f"D-{n:06d}", 90_000),
                                                   u=u, bank=bank,
                                                   expires_at_ms=c.time_ms + 86_400_000)))
                else:
                    txs.append(c.tx(bank, open_financing(f"F-{n:06d}", 80_000,
                                                         (f"D-{n:06d}", 90_000), u=u,
                                                         application_id=f"A-{n:06d}")))
            receipts = c.apply(*txs)
            refused = [(r.code, r.message) for r in receipts if not r.ok]
            assert not refused, (step, refused[:3])
    print(f"ledger: {count} financings of {len(enterprises)} enterprises at height {c.height}, "
          f"built in {time.perf_counter() - started:.1f} s")
    d = dispatcher(c)

    class Node:
        async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
            reply = await call(d, method, params or {}, client=None)
            if "error" in reply:
                raise from_rpc_error(method, reply["error"]["code"], reply["error"]["message"])
            return reply["result"]

    return Node(), BANKS[0], enterprises[0]


async def figures(count: int, runs: int, live: bool) -> None:
    from node.console.app import environment, nav
    from node.console.common import Viewer
    from node.console.pages.exposure import exposure

    env = environment()
    if live:
        node, bank, enterprise = live_node(count)
        cases = (("overview (regulator)", {}, Viewer("reg.safe", "regulator")),
                 ("bank book", {}, Viewer(bank, "bank")),
                 ("enterprise", {"uscc": enterprise}, Viewer("reg.safe", "regulator")))
    else:
        node = Node(count)
        cases = (("overview (regulator)", {}, Viewer("regulator.safe-qd", "regulator")),
                 ("bank book", {}, Viewer("bank.boc-qd", "bank")),
                 ("enterprise", {"uscc": USCC}, Viewer("regulator.safe-qd", "regulator")))
    for label, query, viewer in cases:
        times, size = [], 0
        for _ in range(runs):
            start = time.perf_counter()
            page = await exposure(query, node, viewer)
            html = env.get_template(page.template).render(
                {**page.context, "title": page.title, "viewer": viewer, "nav": nav()})
            times.append(time.perf_counter() - start)
            size = len(html.encode())
        print(f"{label:22} {count} financings: median {statistics.median(times) * 1000:8.1f} ms"
              f" over {runs} runs, {size / 1e6:.2f} MB of HTML")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--financings", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--live", action="store_true", help="answer from the node's own "
                        "JSON-RPC handlers over a real ledger built in this process (the "
                        "node's reads included), not from canned records")
    args = parser.parse_args()
    trio.run(figures, args.financings, args.runs, args.live)


if __name__ == "__main__":
    main()
