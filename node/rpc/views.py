"""Ledger records as JSON for the API: each record kind, its state key and its view."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Final

from protocol.ledger import keys, queries, queries_insurance, records
from protocol.ledger.state import State

# kind -> state key of one record of that kind
RECORD_KEYS: Final[dict[str, Callable[[str], bytes]]] = {
    "institution": keys.institution,
    "enterprise": keys.enterprise,
    "declaration": keys.declaration,
    "financing": keys.financing,
    "taxform": keys.tax_form,
    "payment": keys.payment,
    "proceeds": keys.proceeds,
    # issue 17: insurance (views at the end of this module)
    "policy": keys.policy,
    "policy_financing": keys.policy_financing,
}
RECORD_KINDS: Final = tuple(RECORD_KEYS)
RECORD_ID_CHARS_MAX: Final = 128
HISTORY_ITEMS_MAX: Final = 1000  # a view shows at most the newest this many history items


def plain(value: Any) -> Any:
    """JSON data of a (nested) dataclass value: bytes as lowercase hex."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def history_json(items: tuple[queries.HistoryItem, ...]) -> list[dict[str, Any]]:
    """Oldest first; at most the newest HISTORY_ITEMS_MAX items (tx.list pages by record)."""
    return [{"height": i.height, "tx_index": i.tx_index, "tx_id": i.tx_id.hex(),
             "tx_type": i.tx_type} for i in items[-HISTORY_ITEMS_MAX:]]


def _not_found(kind: str, record_id: str) -> queries.QueryRefused:
    return queries.QueryRefused("NOT_FOUND", f"{kind} {record_id} not found")


def enterprise_json(state: State, uscc: str) -> dict[str, Any]:
    """The enterprise without its credit file (that is `credit.read`, under consent)."""
    view = queries.enterprise_view(state, uscc, reader="")
    return {"enterprise": plain(view.enterprise), "regulatory": plain(view.regulatory),
            "history": history_json(view.history)}


def declaration_json(state: State, declaration_no: str) -> dict[str, Any]:
    v = queries.declaration_view(state, declaration_no)
    return {"declaration": plain(v.declaration), "cap": v.cap, "pledged": v.pledged,
            "remaining": v.remaining, "history": history_json(v.history)}


def financing_json(state: State, financing_id: str) -> dict[str, Any]:
    v = queries.financing_view(state, financing_id)
    return {"financing": plain(v.financing), "outstanding": v.outstanding,
            "history": history_json(v.history)}


def taxform_json(state: State, form_no: str) -> dict[str, Any]:
    v = queries.tax_form_view(state, form_no)
    return {"form": plain(v.form), "used": v.used, "remaining": v.remaining,
            "history": history_json(v.history)}


def _simple(kind: str, cls: type, field_name: str) -> Callable[[State, str], dict[str, Any]]:
    def view(state: State, record_id: str) -> dict[str, Any]:
        key = RECORD_KEYS[kind](record_id)
        record = state.get(key, cls)
        if record is None:
            raise _not_found(kind, record_id)
        return {field_name: plain(record),
                "history": history_json(queries.record_history(state, key))}

    return view


RECORD_VIEWS: Final[dict[str, Callable[[State, str], dict[str, Any]]]] = {
    "institution": _simple("institution", records.InstitutionRecord, "institution"),
    "enterprise": enterprise_json,
    "declaration": declaration_json,
    "financing": financing_json,
    "taxform": taxform_json,
    "payment": _simple("payment", records.OutboundPayment, "payment"),
    "proceeds": _simple("proceeds", records.InboundProceeds, "proceeds"),
}


def credit_read_json(read: queries.CreditFileRead) -> dict[str, Any]:
    return {"uscc": read.uscc, "reader": read.reader, "access": read.access,
            "consented_read": read.consented_read,
            "consent_expires_at_ms": read.consent_expires_at_ms,
            "entries": plain(read.entries), "file_keys": plain(read.file_keys)}


def institutions_json(state: State) -> list[dict[str, Any]]:
    return [plain(r) for _, r in state.scan(keys.INSTITUTION, records.InstitutionRecord)]


# ------------------------------------------------------------------------------ issue 17: insurance


def policy_json(state: State, policy_id: str) -> dict[str, Any]:
    """The policy (its details sealed), whether it is live, its cap and what it may still
    fund."""
    v = queries_insurance.policy_view(state, policy_id)
    return {"policy": plain(v.policy), "live": v.live, "cap": v.cap, "remaining": v.remaining,
            "history": history_json(v.history)}


def policy_financing_json(state: State, financing_id: str) -> dict[str, Any]:
    v = queries_insurance.policy_financing_view(state, financing_id)
    return {"financing": plain(v.financing), "outstanding": v.outstanding,
            "history": history_json(v.history)}


RECORD_VIEWS.update({"policy": policy_json, "policy_financing": policy_financing_json})


# ------------------------------------------------------------------------------ record proofs

# kind -> the record class stored at its state key (record.proof decodes the proven value);
# "application" is keyed by (uscc, application_id), not by one id.
RECORD_TYPES: Final[dict[str, type]] = {
    "institution": records.InstitutionRecord,
    "enterprise": records.EnterpriseRecord,
    "declaration": records.Declaration,
    "financing": records.Financing,
    "taxform": records.TaxForm,
    "payment": records.OutboundPayment,
    "proceeds": records.InboundProceeds,
    "policy": records.Policy,
    "policy_financing": records.PolicyFinancing,
    "application": records.Application,
}
PROOF_KINDS: Final = (*RECORD_KINDS, "application")
