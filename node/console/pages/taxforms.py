"""/taxforms?form=...: a tax filing form's amount, what payments used of it and what remains,
and each payment against it (taxform.get, its history, payment.get), with who signed what."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from node.console.common import ConsoleError, NodeApi, Page, Viewer, query_text
from node.console.pages.view import money, sealed, signed_history

PAYMENTS_MAX: Final = 100  # payments shown per form (the newest history items)
PAYMENT_TX_TYPES: Final = ("payment.outbound", "payment.reverse")


async def taxforms(query: Mapping[str, str], node: NodeApi, viewer: Viewer) -> Page:
    form_no = query_text(query, "form")
    if not form_no:
        return Page("taxforms.html", "Tax forms", {"form": None, "form_no": ""})
    found = await node.call("taxform.get", {"form_no": form_no})
    form = found["form"]
    payments: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in found["history"][-PAYMENTS_MAX:]:
        if item["tx_type"] not in PAYMENT_TX_TYPES:
            continue
        tx = await node.call("tx.get", {"tx_id": item["tx_id"]})
        payment_id = ((tx.get("tx") or {}).get("payload") or {}).get("payment_id", "")
        if not payment_id or payment_id in seen:
            continue
        seen.add(payment_id)
        try:
            p = (await node.call("payment.get", {"payment_id": payment_id}))["payment"]
        except ConsoleError as exc:
            if exc.status == 503:
                raise
            payments.append({"payment_id": payment_id, "error": exc.message})
            continue
        payments.append({"payment_id": payment_id, "bank": p["bank"],
                         "amount": money(p["amount"], p["currency"]), "status": p["status"],
                         "height": p["height"], "error": "",
                         "reverse_reason": p.get("reverse_reason", "")})
    currency = form["currency"]
    return Page("taxforms.html", f"Tax form {form_no}", {
        "form_no": form_no, "form": {
            "payer": form["payer"], "status": form["status"], "tax_bureau": form["tax_bureau"],
            "amount": money(form["amount"], currency), "used": money(found["used"], currency),
            "remaining": money(found["remaining"], currency),
            "details": sealed(form.get("details"), viewer.institution)},
        "payments": payments, "history": await signed_history(node, found["history"])})
