"""JSON schemas of the API's parameters and results (for the OpenRPC document)."""

from __future__ import annotations

from typing import Any, Final

from node.rpc import views
from protocol.timing import TIMING_KEYS


def text(max_chars: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_chars}


def int_range(lo: int, hi: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "integer", "minimum": lo}
    if hi is not None:
        out["maximum"] = hi
    return out


OBJECT: Final = {"type": "object"}
BOOL: Final = {"type": "boolean"}
HEX32: Final = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
USCC: Final = {"type": "string", "pattern": "^[0-9A-HJ-NPQRTUWXY]{18}$"}
CURRENCY: Final = {"type": "string", "pattern": "^[A-Z]{3}$"}
RECORD_ID: Final = text(views.RECORD_ID_CHARS_MAX)
RECORD_KIND: Final = {"type": "string", "enum": list(views.RECORD_KINDS)}
SUB_ID: Final = {"type": "integer", "minimum": 1}
TX: Final = {
    "type": "object",
    "required": ["chain_id", "type", "signer", "key_id", "nonce", "expires_at_ms", "payload",
                 "signature"],
    "properties": {"chain_id": {"type": "string"}, "type": {"type": "string"},
                   "signer": {"type": "string"}, "key_id": {"type": "string"},
                   "nonce": {"type": "string"}, "expires_at_ms": {"type": "integer"},
                   "payload": OBJECT, "signature": {"type": "string"}},
}
RECEIPT: Final = {"type": "object", "properties": {
    "tx_id": HEX32, "status": {"enum": ["ok", "rejected"]}, "code": {"type": "string"},
    "message": {"type": "string"}}}
TX_STATUS: Final = {"type": "object", "required": ["tx_id", "status"], "properties": {
    "tx_id": HEX32, "status": {"enum": ["pending", "committed"]},
    "height": {"type": "integer"}, "index": {"type": "integer"}, "receipt": RECEIPT,
    "tx": TX}}
TX_LIST: Final = {"type": "object", "required": ["items"], "properties": {
    "items": {"type": "array", "items": {"type": "object", "properties": {
        "height": {"type": "integer"}, "tx_index": {"type": "integer"}, "tx_id": HEX32,
        "tx_type": {"type": "string"}}}},
    "next_before_height": {"type": ["integer", "null"]}, "complete": BOOL}}
BLOCK: Final = {"type": "object", "required": ["hash", "block", "receipts"], "properties": {
    "hash": HEX32, "block": OBJECT, "receipts": {"type": "array", "items": RECEIPT}}}
STATUS: Final = {"type": "object", "required": ["height", "state_root", "role", "leader",
                                                "peers", "catching_up"], "properties": {
    "institution": {"type": "string"}, "role": {"type": "string"},
    "height": {"type": "integer"}, "state_root": HEX32, "tip_hash": HEX32,
    "leader": {"type": "string"}, "peers": {"type": "array", "items": {"type": "string"}},
    "catching_up": BOOL, "best_known_height": {"type": "integer"},
    "protocol_version": {"type": "integer", "minimum": 1},
    "upgrade_required": {"type": ["string", "null"]},
    "storage_error": {"type": ["string", "null"]},
    # The consensus timing in effect (ADR 0030): genesis's (or the defaults) with the keys
    # this node's [tuning] overrides.
    "timing": {"type": "object", "properties": {
        **{key: {"type": "integer"} for key in TIMING_KEYS},
        "from_genesis": BOOL, "overridden": {"type": "array", "items": {"type": "string"}}}}}}
HEALTH: Final = {"type": "object", "required": ["ok"], "properties": {
    "ok": BOOL, "height": {"type": "integer"}, "catching_up": BOOL,
    "leader": {"type": "string"}}}
READ_AUTH: Final = {"type": "object", "required": ["reader", "key_id", "ts_ms", "signature"],
                    "properties": {"reader": {"type": "string"}, "key_id": {"type": "string"},
                                   "ts_ms": {"type": "integer"},
                                   "signature": {"type": "string"}}}
CREDIT: Final = {"type": "object", "properties": {
    "uscc": {"type": "string"}, "reader": {"type": "string"},
    "access": {"enum": ["regulator", "self", "consent"]}, "consented_read": BOOL,
    "entries": {"type": "array", "items": OBJECT}}}
