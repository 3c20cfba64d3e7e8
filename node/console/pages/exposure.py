"""/exposure[?uscc=...]: who owes what against which declarations. The regulator sees any
enterprise, and with no uscc the watch lists (flagged, overdue) and every bank's totals; a bank
sees its own book, and an enterprise's exposure as far as the node lets it read. Per enterprise
and per declaration: declared value, receivable outstanding, pledged by each bank, disbursed,
overdue, flagged by customs; totals per bank; a chart of exposure over time (an inline SVG
made on the server from the financings' records: opened, repaid)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from node.console.common import ConsoleError, NodeApi, Page, Viewer, bad_query, query_text
from node.console.pages.search import USCC_RE
from node.console.pages.view import add_amount, amounts, money, sealed_list, totals_text
from protocol.ledger.records import PAID_OUT

BOOK_PAGES_MAX: Final = 40  # pages of bank.book read per bank (each at most PAGE_ITEMS)
PAGE_ITEMS: Final = 500  # protocol/limits.py QUERY_PAGE_ITEMS_MAX, the node's page bound
DECLARATION_PAGES_MAX: Final = 4  # pages of declaration.list read per enterprise
WATCH_ITEMS_MAX: Final = 200  # watch-list rows shown per list
FINANCING_ROWS_MAX: Final = 500  # financing rows shown (totals and the chart count them all)
CHART_POINTS_MAX: Final = 200  # points of the exposure-over-time chart
CHART_WIDTH_PX: Final = 640
CHART_HEIGHT_PX: Final = 200


def outstanding(financing: dict[str, Any]) -> int:
    """Disbursed principal still owed (docs/domain.md §5: a paid-out financing may owe)."""
    if financing["status"] not in PAID_OUT:
        return 0
    return max(0, int(financing["principal"]) - int(financing["repaid"]))


async def _pages(node: NodeApi, method: str, params: dict[str, Any],
                 pages_max: int) -> tuple[list[dict[str, Any]], bool]:
    """Every item of a paged list, at most `pages_max` pages; and whether it was complete."""
    items: list[dict[str, Any]] = []
    after = ""
    for _ in range(pages_max):
        page = await node.call(method, {**params, "limit": PAGE_ITEMS,
                                        **({"after": after} if after else {})})
        items.extend(page["items"])
        after = page.get("next_after") or ""
        if not after:
            return items, True
    return items, False


async def exposure(query: Mapping[str, str], node: NodeApi, viewer: Viewer) -> Page:
    uscc = query_text(query, "uscc")
    if uscc and not USCC_RE.match(uscc):
        raise bad_query(f"uscc must be an 18-character unified social credit code, not {uscc!r}")
    if uscc:
        return await _enterprise(uscc, node, viewer)
    if viewer.is_regulator:
        return await _network(node, viewer)
    if viewer.role != "bank":
        raise ConsoleError(403, "Not authorised", "the exposure overview is the regulator's "
                           "and each bank's own book: give an enterprise's uscc")
    book, complete = await _pages(node, "bank.book", {"bank": viewer.institution},
                                  BOOK_PAGES_MAX)
    return Page("exposure.html", "Exposure: my book", {
        "uscc": "", "mode": "book", "banks": [_bank_totals(viewer.institution, book, complete)],
        **_rows(book, viewer), "chart": chart_svg(book), "complete": complete})


async def _network(node: NodeApi, viewer: Viewer) -> Page:
    consortium = await node.call("consortium.get", {})
    banks = sorted(i["id"] for i in consortium["current"]["institutions"]
                   if i.get("role") == "bank")
    rows, every = [], []
    for bank in banks:
        book, complete = await _pages(node, "bank.book", {"bank": bank}, BOOK_PAGES_MAX)
        rows.append(_bank_totals(bank, book, complete))
        every.extend(book)
    watch = {}
    for kind in ("flagged", "overdue"):
        found = await node.call("financing.watch_list", {"kind": kind,
                                                          "limit": WATCH_ITEMS_MAX})
        watch[kind] = [_financing_row(f, viewer) for f in found["items"]]
    return Page("exposure.html", "Exposure across the banks", {
        "uscc": "", "mode": "network", "banks": rows, "watch": watch,
        **_rows([], viewer), "chart": chart_svg(every)})


async def _enterprise(uscc: str, node: NodeApi, viewer: Viewer) -> Page:
    found = await node.call("enterprise.exposure", {"uscc": uscc})
    declarations, complete = await _pages(node, "declaration.list", {"exporter": uscc},
                                          DECLARATION_PAGES_MAX)
    financings = found["financings"]
    # declaration -> the live financings' pledges on it: (bank, amount, currency, financing)
    by_declaration: dict[str, list[tuple[str, int, str, dict[str, Any]]]] = {}
    for f in financings:
        for p in f["pledges"]:
            if int(p["amount"]):
                by_declaration.setdefault(p["declaration_no"], []).append(
                    (f["bank"], int(p["amount"]), p["currency"], f))
    flagged_ids = sorted(str(x) for x in found.get("flagged", ()))
    rows = []
    for d in declarations:
        pledges = by_declaration.get(d["declaration_no"], [])
        currency = d["currency"]
        rows.append({
            "declaration_no": d["declaration_no"], "status": d["status"],
            "value": money(d["value"], currency),
            "outstanding": money(int(d["value"]) - int(d["proceeds"])
                                 if d["status"] != "cancelled" else 0, currency),
            "pledged": money(d["pledged"], currency),
            "pledged_by": [(bank, money(amount, cur)) for bank, amount, cur, _ in pledges],
            "disbursed": money(sum(a for _, a, _, f in pledges if f["status"] in PAID_OUT),
                               currency),
            "overdue": money(sum(a for _, a, _, f in pledges if f["status"] == "overdue"),
                             currency),
            "flagged": (d["status"] == "cancelled" or bool(d.get("status_reason"))
                        or any(f.get("flags") for *_, f in pledges)),
            "status_reason": d.get("status_reason", "")})
    banks: dict[str, list[dict[str, Any]]] = {}
    for f in financings:
        banks.setdefault(f["bank"], []).append(f)
    return Page("exposure.html", f"Exposure: {uscc}", {
        "uscc": uscc, "mode": "enterprise",
        "summary": [("Open pledges", amounts(found["open_pledges"])),
                    ("Approved, not disbursed", amounts(found["approved"])),
                    ("Outstanding (disbursed, owed)", amounts(found["outstanding"])),
                    ("Overdue", amounts(found["overdue"])),
                    ("Flagged financings", ", ".join(flagged_ids) or "none")],
        "declarations": rows, "declarations_complete": complete,
        "banks": [_bank_totals(b, fs, True) for b, fs in sorted(banks.items())],
        **_rows(financings, viewer), "chart": chart_svg(financings)})


def _rows(financings: list[dict[str, Any]], viewer: Viewer) -> dict[str, Any]:
    return {"financings": [_financing_row(f, viewer) for f in financings[:FINANCING_ROWS_MAX]],
            "financings_total": len(financings)}


def _bank_totals(bank: str, book: list[dict[str, Any]], complete: bool) -> dict[str, Any]:
    pledged: dict[str, int] = {}
    owed: dict[str, int] = {}
    overdue: dict[str, int] = {}
    for f in book:
        for p in f["pledges"]:
            add_amount(pledged, p["currency"], p["amount"])
        add_amount(owed, f["currency"], outstanding(f))
        if f["status"] == "overdue":
            add_amount(overdue, f["currency"], outstanding(f))
    return {"bank": bank, "financings": len(book), "pledged": totals_text(pledged),
            "outstanding": totals_text(owed), "overdue": totals_text(overdue),
            "flagged": sum(1 for f in book if f.get("flags")), "complete": complete}


def _financing_row(f: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    return {"financing_id": f["financing_id"], "bank": f["bank"], "uscc": f["uscc"],
            "status": f["status"], "principal": money(f["principal"], f["currency"]),
            "outstanding": money(outstanding(f), f["currency"]),
            "pledges": [(p["declaration_no"], money(p["amount"], p["currency"]))
                        for p in f["pledges"]],
            "flags": [fl.get("code", "") for fl in f.get("flags", ())],
            "terms": sealed_list(f.get("terms"), viewer.institution)}


def chart_svg(financings: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Principal owed over block heights in the most common currency among `financings`, as
    an SVG polyline of at most CHART_POINTS_MAX points: +principal at the opening height,
    -each repayment at its height (the heights the financing records name). None when
    there is nothing to draw."""
    if not financings:
        return None
    counts: dict[str, int] = {}
    for f in financings:
        counts[f["currency"]] = counts.get(f["currency"], 0) + 1
    currency = max(sorted(counts), key=lambda c: counts[c])
    steps: dict[int, int] = {}
    for f in financings:
        if f["currency"] != currency:
            continue
        steps[int(f["opened_height"])] = steps.get(int(f["opened_height"]), 0) + int(
            f["principal"])
        for r in f.get("repayments", ()):
            steps[int(r["height"])] = steps.get(int(r["height"]), 0) - int(r["amount"])
    level, points = 0, []
    for height in sorted(steps):
        level += steps[height]
        points.append((height, level))
    if len(points) > CHART_POINTS_MAX:  # keep every k-th point and the last
        k = -(-len(points) // CHART_POINTS_MAX)
        points = points[::k][:CHART_POINTS_MAX - 1] + [points[-1]]
    lo_h, hi_h = points[0][0], max(points[-1][0], points[0][0] + 1)
    top = max(1, max(v for _, v in points))
    xy = []
    for height, value in points:
        x = (height - lo_h) * CHART_WIDTH_PX // (hi_h - lo_h)
        y = CHART_HEIGHT_PX - max(0, value) * CHART_HEIGHT_PX // top
        xy.append(f"{x},{y}")
    return {"currency": currency, "points": " ".join(xy), "count": len(points),
            "width": CHART_WIDTH_PX, "height": CHART_HEIGHT_PX, "top": money(top, currency),
            "from_height": lo_h, "to_height": points[-1][0]}
