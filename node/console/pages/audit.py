"""/audit?uscc=...&reader=...&from_height=...&type=...: the regulator's audit of credit-file
reads (audit.credit_reads, asked with the console's client credential, whose name must be the
regulator's institution id: node/rpc/methods.py `_reader`) and of the regulators' own actions
(tx.list by signer), filterable. A bank opening it gets a 403 page from the console itself;
when the node refuses the reads, the page says so and still shows the actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from node.console.common import ConsoleError, NodeApi, Page, Viewer, bad_query, query_text
from node.console.pages.search import USCC_RE

READS_MAX: Final = 100  # reads per page: the node's LIST_ITEMS_MAX (node/rpc/methods.py)
ACTIONS_MAX: Final = 100  # regulator transactions listed per regulator institution
HEIGHT_MAX: Final = 2**63 - 1


async def audit(query: Mapping[str, str], node: NodeApi, viewer: Viewer) -> Page:
    if not viewer.is_regulator:
        raise ConsoleError(403, "Not authorised", "the audit of credit-file reads and "
                           f"regulator actions is the regulator's; {viewer.institution} is a "
                           f"{viewer.role}")
    uscc = query_text(query, "uscc")
    if uscc and not USCC_RE.match(uscc):
        raise bad_query(f"uscc must be an 18-character unified social credit code, not {uscc!r}")
    reader = query_text(query, "reader")
    tx_type = query_text(query, "type")
    text = query_text(query, "from_height") or "0"
    if not text.isdigit() or int(text) > HEIGHT_MAX:
        raise bad_query(f"from_height must be a block height (digits), not {text!r}")
    from_height = int(text)
    params: dict[str, Any] = {"reader": viewer.institution, "from_height": from_height,
                              "limit": READS_MAX}
    if uscc:
        params["uscc"] = uscc
    reads: list[dict[str, Any]] = []
    refused = ""
    next_height = None
    try:
        found = await node.call("audit.credit_reads", params)
    except ConsoleError as exc:
        if exc.status != 403:
            raise
        refused = (f"{exc.message} (the console reads as {viewer.institution} with its client "
                   "credential, which must be named after the institution)")
    else:
        reads = [r for r in found["reads"] if not reader or r.get("reader") == reader]
        next_height = found.get("next_from_height")
    consortium = await node.call("consortium.get", {})
    regulators = sorted(i["id"] for i in consortium["current"]["institutions"]
                        if i.get("role") == "regulator")
    actions: list[dict[str, Any]] = []
    for regulator in regulators:
        listed = await node.call("tx.list", {"signer": regulator, "limit": ACTIONS_MAX})
        actions.extend({**item, "signer": regulator} for item in listed["items"]
                       if (not tx_type or item["tx_type"] == tx_type)
                       and item["height"] >= from_height)
    actions.sort(key=lambda a: (-a["height"], -a["tx_index"]))
    return Page("audit.html", "Audit", {
        "uscc": uscc, "reader": reader, "type": tx_type, "from_height": from_height,
        "reads": reads, "refused": refused, "next_from_height": next_height,
        "actions": actions, "regulators": regulators})
