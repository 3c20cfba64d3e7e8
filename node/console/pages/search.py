"""/search?q=...: a declaration number, an enterprise's USCC, a financing id, a tax form
number, a transaction id (64 hex), a block height (digits) or an application ("USCC/APP-ID").
The query's form says which record kinds may fit; the page asks the node for each and shows
every record found with its history (who signed what, in which block), or a 404 page that
says what was tried."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from node.console.common import ConsoleError, NodeApi, Page, Viewer, query_text
from node.console.pages.view import money, sealed, sealed_list, signed_history

USCC_RE: Final = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$")
TX_ID_RE: Final = re.compile(r"^[0-9a-fA-F]{64}$")
HEIGHT_RE: Final = re.compile(r"^[0-9]{1,18}$")
RECORD_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")
ENTERPRISE_LIST_ITEMS_MAX: Final = 50  # declarations or applications listed per enterprise

# record kind -> (method, its id parameter), tried for an id that is not a USCC, hex or digits
ID_KINDS: Final = (("declaration", "declaration.get", "declaration_no"),
                   ("financing", "financing.get", "financing_id"),
                   ("taxform", "taxform.get", "form_no"),
                   ("payment", "payment.get", "payment_id"),
                   ("proceeds", "proceeds.get", "proceeds_id"))


def attempts(q: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The (kind, method, params) the query's form fits, in the order they are tried."""
    if TX_ID_RE.match(q):
        return [("transaction", "tx.get", {"tx_id": q.lower()}),
                ("block", "block.get", {"hash": q.lower()})]
    if HEIGHT_RE.match(q) and int(q) >= 1:
        return [("block", "block.get", {"height": int(q)}),
                *[(k, m, {p: q}) for k, m, p in ID_KINDS]]
    if USCC_RE.match(q):
        return [("enterprise", "enterprise.get", {"uscc": q}),
                ("declarations", "declaration.list",
                 {"exporter": q, "limit": ENTERPRISE_LIST_ITEMS_MAX}),
                ("applications", "application.list",
                 {"uscc": q, "limit": ENTERPRISE_LIST_ITEMS_MAX})]
    uscc, _, app_id = q.partition("/")
    if USCC_RE.match(uscc) and app_id and RECORD_ID_RE.match(app_id):
        return [("application", "application.get", {"uscc": uscc, "application_id": app_id})]
    if RECORD_ID_RE.match(q):
        return [(k, m, {p: q}) for k, m, p in ID_KINDS]
    return []


async def search(query: Mapping[str, str], node: NodeApi, viewer: Viewer) -> Page:
    q = query_text(query, "q")
    if not q:
        return Page("search.html", "Search", {"q": "", "results": [], "tried": []})
    tried = attempts(q)
    if not tried:
        raise ConsoleError(400, "Bad query", f"{q!r} is not a declaration number, USCC, "
                           "financing id, tax form number, transaction id (64 hex digits), "
                           "block height or USCC/application id")
    results: list[dict[str, Any]] = []
    refused: list[str] = []
    for kind, method, params in tried:
        try:
            found = await node.call(method, params)
        except ConsoleError as exc:
            if exc.status == 503:
                raise
            if exc.status == 403:
                refused.append(f"{method}: {exc.message}")
            continue
        if kind in ("declarations", "applications") and not found.get("items"):
            continue
        results.append(await _result(kind, found, node, viewer))
    described = ", ".join(f"{m} {_params_text(p)}" for _, m, p in tried)
    if not results:
        if refused:
            raise ConsoleError(403, "Not authorised", f"nothing for {q!r} that this console "
                               f"may read; refused: {'; '.join(refused)}")
        raise ConsoleError(404, "Not found", f"nothing matches {q!r}; tried {described}")
    return Page("search.html", f"Search: {q}", {"q": q, "results": results,
                                                "tried": described, "refused": refused})


def _params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items() if k != "limit")


async def _result(kind: str, found: dict[str, Any], node: NodeApi,
                  viewer: Viewer) -> dict[str, Any]:
    """One record as the template shows it: kind, title, fields (label, text, link), sealed
    fields, links and its signed history."""
    me = viewer.institution
    fields: list[tuple[str, str, str]] = []  # label, text, link ("" for none)
    seals: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    title = kind
    if kind == "declaration":
        d = found["declaration"]
        title = f"Declaration {d['declaration_no']}"
        fields = [("Exporter", d["exporter"], _q(d["exporter"])),
                  ("Value", money(d["value"], d["currency"]), ""),
                  ("Export date", d["export_date"], ""),
                  ("Status", d["status"] + (f" ({d['status_reason']})"
                                            if d.get("status_reason") else ""), ""),
                  ("Pledged", money(found["pledged"], d["currency"]), ""),
                  ("Cap for pledges", money(found["cap"], d["currency"]), ""),
                  ("Proceeds", money(d["proceeds"], d["currency"]), ""),
                  ("Customs", d["customs"], ""),
                  ("Registered in block", str(d["registered_height"]),
                   _q(str(d["registered_height"])))]
        seals = [s for s in [sealed(d.get("details"), me)] if s]
    elif kind == "financing":
        f = found["financing"]
        title = f"Financing {f['financing_id']}"
        fields = [("Bank", f["bank"], ""), ("Enterprise", f["uscc"], _q(f["uscc"])),
                  ("Application", f["application_id"], _q(f"{f['uscc']}/{f['application_id']}")),
                  ("Principal", money(f["principal"], f["currency"]), ""),
                  ("Status", f["status"], ""),
                  ("Outstanding", money(found["outstanding"], f["currency"]), ""),
                  ("Repaid", money(f["repaid"], f["currency"]), ""),
                  ("Opened in block", str(f["opened_height"]), _q(str(f["opened_height"])))]
        fields += [(f"Pledge on {p['declaration_no']}",
                    f"{money(p['amount'], p['currency'])} (opened at "
                    f"{money(p['opened_amount'], p['currency'])})", _q(p["declaration_no"]))
                   for p in f["pledges"]]
        fields += [("Flag", f"{fl.get('code', '')} {fl.get('reason', '')}".strip(), "")
                   for fl in f.get("flags", ())]
        seals = sealed_list(f.get("terms"), me)
    elif kind == "taxform":
        f = found["form"]
        title = f"Tax form {f['form_no']}"
        fields = [("Payer", f["payer"], _q(f["payer"])),
                  ("Amount", money(f["amount"], f["currency"]), ""),
                  ("Used", money(found["used"], f["currency"]), ""),
                  ("Remaining", money(found["remaining"], f["currency"]), ""),
                  ("Status", f["status"], ""), ("Tax bureau", f["tax_bureau"], ""),
                  ("Payments", "amount, used and payments", f"/taxforms?form={f['form_no']}")]
        seals = [s for s in [sealed(f.get("details"), me)] if s]
    elif kind in ("payment", "proceeds"):
        p = found[kind]
        title = f"{kind.capitalize()} {p.get('payment_id') or p.get('proceeds_id', '')}"
        for name, value in p.items():
            if isinstance(value, (str, int)) and name not in ("amount",):
                fields.append((name.replace("_", " ").capitalize(), str(value),
                               _q(str(value)) if name in ("form_no", "declaration_no",
                                                          "financing_id", "payer") and value
                               else ""))
        fields.insert(0, ("Amount", money(p["amount"], p["currency"]), ""))
    elif kind == "enterprise":
        e = found["enterprise"]
        title = f"Enterprise {e['uscc']}"
        fields = [("Name", e["name"], ""), ("Country", e["country"], ""),
                  ("Serving banks", ", ".join(e["serving_banks"]), ""),
                  ("FX class", found["regulatory"]["fx_class"], ""),
                  ("Frozen", "yes: " + found["regulatory"]["freeze_reason"]
                   if found["regulatory"]["frozen"] else "no", ""),
                  ("Exposure", "across every bank", f"/exposure?uscc={e['uscc']}")]
    elif kind == "declarations":
        title = "Declarations of this exporter"
        fields = [(d["declaration_no"], f"{money(d['value'], d['currency'])}, {d['status']}, "
                   f"pledged {money(d['pledged'], d['currency'])}", _q(d["declaration_no"]))
                  for d in found["items"]]
    elif kind == "applications":
        title = "Financing applications of this enterprise"
        fields = [(a["application"]["application_id"],
                   f"{a['application']['bank']}: {money(a['application']['principal'], a['application']['currency'])}, "  # noqa: E501
                   f"{a['application']['status']}{' (live)' if a['live'] else ''}",
                   _q(f"{a['application']['uscc']}/{a['application']['application_id']}"))
                  for a in found["items"]]
    elif kind == "application":
        a = found["application"]
        title = f"Application {a['application_id']} of {a['uscc']}"
        fields = [("Enterprise", a["uscc"], _q(a["uscc"])), ("Bank", a["bank"], ""),
                  ("Principal", money(a["principal"], a["currency"]), ""),
                  ("Status", a["status"] + (" (live)" if found["live"] else ""), ""),
                  ("Signed by", a["signed_by"], "")]
        fields += [(f"Pledge on {p['declaration_no']}", str(p["amount"]), _q(p["declaration_no"]))
                   for p in a["pledges"]]
        if a.get("financing_id"):
            fields.append(("Financing", a["financing_id"], _q(a["financing_id"])))
    elif kind == "transaction":
        tx = found.get("tx") or {}
        receipt = found.get("receipt") or {}
        title = f"Transaction {found['tx_id']}"
        fields = [("Status", found["status"], ""), ("Type", tx.get("type", ""), ""),
                  ("Signed by", tx.get("signer", ""), ""), ("Key id", tx.get("key_id", ""), ""),
                  ("Receipt", f"{receipt.get('code', '')} {receipt.get('message', '')}".strip(),
                   "")]
        if "height" in found:
            fields.append(("Block", str(found["height"]), _q(str(found["height"]))))
        payload = tx.get("payload") or {}
        for name in ("declaration_no", "financing_id", "form_no", "uscc", "payment_id",
                     "proceeds_id", "exporter"):
            if isinstance(payload.get(name), str) and payload[name]:
                fields.append((name.replace("_", " ").capitalize(), payload[name],
                               _q(payload[name])))
        seals = [s for v in payload.values()
                 for s in ([sealed(v, me)] if isinstance(v, dict)
                           else [sealed(x, me) for x in v] if isinstance(v, list) else [])
                 if s]
    elif kind == "block":
        header = found["block"]["header"]
        title = f"Block {header['height']}"
        fields = [("Hash", found["hash"], ""), ("Proposer", header["proposer"], ""),
                  ("Timestamp (ms)", str(header["timestamp_ms"]), ""),
                  ("Transactions", str(header["tx_count"]), "")]
        receipts = found.get("receipts") or []
        for index, tx in enumerate(found["block"].get("txs", [])):
            code = receipts[index].get("code", "") if index < len(receipts) else ""
            rows.append({"height": header["height"], "tx_index": index,
                         "tx_id": receipts[index].get("tx_id", "") if index < len(receipts)
                         else "", "tx_type": tx.get("type", ""), "signer": tx.get("signer", ""),
                         "key_id": tx.get("key_id", ""), "code": code})
    if "history" in found:
        rows = await signed_history(node, found["history"])
    if kind == "declaration":  # the financings that pledged it, from its history
        named = sorted({r["financing_id"] for r in rows if r["financing_id"]})
        fields += [("Financing", fin_id, _q(fin_id)) for fin_id in named]
    return {"kind": kind, "title": title, "fields": fields, "sealed": seals, "history": rows}


def _q(text: str) -> str:
    return f"/search?q={quote(text, safe='')}"
