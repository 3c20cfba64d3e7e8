"""JSON schemas of the API's parameters and results (for the OpenRPC document).

Records, payloads and views are derived from their dataclasses (`node.rpc.docschema`) into
`COMPONENTS`, the document's `components.schemas`; the results here put them together the way
the methods (node/rpc/methods.py, node/rpc/views.py) answer.
"""

from __future__ import annotations

from typing import Any, Final

from node.rpc import views
from node.rpc.docschema import Components, nullable
from node.storage import backup
from protocol import limits, txtypes, types
from protocol.ledger import keys, queries, records, smt
from protocol.replica.certificates import CommitCertificate
from protocol.sealed import Recipient, Sealed
from protocol.timing import TIMING_KEYS

COMPONENTS: Final = Components()
of = COMPONENTS.of


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
TX: Final = of(types.Tx)
RECEIPT: Final = of(types.Receipt)
INT: Final = {"type": "integer", "minimum": 0, "maximum": limits.INT_MAX}
STRING: Final = {"type": "string"}
TX_STATUS: Final = {"type": "object", "required": ["tx_id", "status"], "properties": {
    "tx_id": HEX32, "status": {"enum": ["pending", "committed"]},
    "height": INT, "index": INT, "receipt": RECEIPT, "tx": nullable(TX)},
    "additionalProperties": False}
HISTORY_ITEM: Final = {"type": "object", "required": ["height", "tx_index", "tx_id", "tx_type"],
                       "properties": {"height": INT, "tx_index": INT, "tx_id": HEX32,
                                      "tx_type": STRING}, "additionalProperties": False}
HISTORY: Final = {"type": "array", "items": HISTORY_ITEM, "maxItems": views.HISTORY_ITEMS_MAX,
                  "description": "oldest first; at most the newest "
                  f"{views.HISTORY_ITEMS_MAX} transactions (tx.list pages by record)"}
TX_LIST: Final = {"type": "object", "required": ["items"], "properties": {
    "items": {"type": "array", "items": {"type": "object", "required": [
        "height", "tx_index", "tx_id", "tx_type"], "properties": {
        "height": INT, "tx_index": INT, "tx_id": HEX32, "tx_type": STRING,
        "code": {"type": ["string", "null"], "description": "the receipt's code (by signer)"}},
        "additionalProperties": False}},
    "complete": {"type": "boolean", "description": "by record: every item fitted the limit"},
    "next_before_height": {"type": ["integer", "null"], "description": "by signer: where the "
                           "next page starts (null: the scan reached block 1)"},
    "scanned_blocks": INT}, "additionalProperties": False}
BLOCK: Final = {"type": "object", "required": ["hash", "block", "receipts"], "properties": {
    "hash": HEX32, "block": of(types.Block), "receipts": {"type": "array", "items": RECEIPT}},
    "additionalProperties": False}
NAMES: Final = {"type": "array", "items": STRING}
STATUS: Final = {"type": "object", "required": ["height", "state_root", "role", "leader",
                                                "peers", "catching_up"], "properties": {
    "institution": STRING, "role": STRING,
    "orderer": {"type": "boolean", "description": "this node is an orderer (a bank's)"},
    "height": INT, "tip_hash": HEX32, "state_root": HEX32,
    "block_time_ms": {**INT, "description": "the last block's time"},
    "leader": {"type": "string", "description": "the Raft leader it knows (empty: none)"},
    "is_leader": BOOL, "raft_term": INT,
    "raft_members": {"type": "object", "description": "Raft voters and learners (orderers)",
                     "properties": {"voters": NAMES, "learners": NAMES},
                     "additionalProperties": False},
    "orderers": NAMES, "peer_id": STRING, "peers": NAMES,
    "catching_up": BOOL, "best_known_height": INT, "mempool_txs": INT,
    "chain_id": STRING, "genesis_hash": HEX32,
    "protocol_version": {"type": "integer", "minimum": 1},
    "upgrade_required": {"type": ["string", "null"]},
    "storage_error": {"type": ["string", "null"]},
    # The consensus timing in effect (ADR 0030): genesis's (or the defaults) with the keys
    # this node's [tuning] overrides.
    "timing": {"type": "object", "properties": {
        **{key: {"type": "integer"} for key in TIMING_KEYS},
        "from_genesis": BOOL, "overridden": NAMES}, "additionalProperties": False},
    "counters": {"type": "object", "description": "each component's counters (what the "
                 "Prometheus metrics read; docs/adr/0009)",
                 "additionalProperties": {"type": "object"}},
    "applied": {"type": "array", "description": "this node's last applied blocks, oldest "
                "first, with its own wall-clock time of applying each (Unix ms; clocks differ "
                "between nodes by their skew)", "items": {
                    "type": "object", "required": ["height", "applied_at_ms"],
                    "properties": {"height": INT, "applied_at_ms": INT},
                    "additionalProperties": False}}},
    "additionalProperties": False}
READ_AUTH: Final = {"type": "object", "required": ["reader", "key_id", "ts_ms", "signature"],
                    "properties": {"reader": {"type": "string"}, "key_id": {"type": "string"},
                                   "ts_ms": {"type": "integer"},
                                   "signature": {"type": "string"}}}


def page(item: type) -> dict[str, Any]:
    """A page of a list by id (`after` the previous page's `next_after`)."""
    return {"type": "object", "required": ["items", "next_after"], "properties": {
        "items": {"type": "array", "items": of(item), "maxItems": limits.QUERY_PAGE_ITEMS_MAX},
        "next_after": {"type": "string", "maxLength": views.RECORD_ID_CHARS_MAX,
                       "description": "the `after` of the next page; empty: the last page"}},
        "additionalProperties": False}


def view(**fields: Any) -> dict[str, Any]:
    """A record view: every field required, nothing else."""
    return {"type": "object", "required": list(fields), "properties": fields,
            "additionalProperties": False}


def record_view(field_name: str, cls: type, **extra: Any) -> dict[str, Any]:
    return view(**{field_name: of(cls)}, **extra, history=HISTORY)


HEALTH: Final = view(ok=BOOL, height=INT, catching_up=BOOL, leader=STRING)
AMOUNT: Final = {"type": "integer", "minimum": 0, "maximum": limits.AMOUNT_MINOR_MAX,
                 "description": "minor units (cents)"}
LIVE: Final = {"type": "boolean", "description": "live at the time of the query"}
RECORD_RESULTS: Final[dict[str, dict[str, Any]]] = {
    "institution": record_view("institution", records.InstitutionRecord),
    "enterprise": view(enterprise=of(records.EnterpriseRecord),
                       regulatory=of(records.RegulatoryStatus), history=HISTORY),
    "declaration": record_view("declaration", records.Declaration, cap=AMOUNT, pledged=AMOUNT,
                               remaining=AMOUNT),
    "financing": record_view("financing", records.Financing, outstanding=AMOUNT),
    "taxform": record_view("form", records.TaxForm, used=AMOUNT, remaining=AMOUNT),
    "payment": record_view("payment", records.OutboundPayment),
    "proceeds": record_view("proceeds", records.InboundProceeds),
    "policy": record_view("policy", records.Policy, live=LIVE, cap=AMOUNT, remaining=AMOUNT),
    "policy_financing": record_view("financing", records.PolicyFinancing, outstanding=AMOUNT),
}
APPLICATION: Final = record_view("application", records.Application, live=LIVE)
RECORD_HISTORY: Final = view(kind=RECORD_KIND, id=RECORD_ID, history=HISTORY)
VERSIONS: Final = view(
    height=INT, version={"type": "integer", "minimum": 1,
                         "description": "the protocol version of the next block"},
    implemented={"type": "integer", "minimum": 1,
                 "description": "the newest protocol version this node implements"},
    activations={"type": "array", "items": view(
        version=INT, height=INT, scheduled_height=INT,
        active={"type": "boolean", "description": "active from the next block on"})},
    upgrade_required={"oneOf": [{"type": "null"}, view(
        version=INT, height=INT, message=STRING)]},
    versions={"type": "array", "items": view(number=INT, title=STRING, summary=STRING)})
CONSORTIUM: Final = view(
    chain_id=STRING, genesis_hash=HEX32, genesis=of(types.ConsortiumConfig),
    current=view(orderers={"type": "array", "items": STRING}, params=of(types.Params),
                 params_v2=nullable(of(types.ParamsV2)),
                 institutions={"type": "array", "items": of(records.InstitutionRecord)}))
EXPOSURE: Final = of(queries.Exposure)
FX_RATE: Final = of(records.FxRate)
CONSENT: Final = view(consent=of(records.Consent), live=LIVE)
CREDIT: Final = view(
    uscc=USCC, reader=STRING, access={"enum": ["regulator", "self", "consent"]},
    consented_read=BOOL, consent_expires_at_ms=INT,
    entries={"type": "array", "items": of(records.CreditEntry)},
    file_keys={"type": "array", "items": of(records.CreditFileKey)},
    read_tx={"oneOf": [HEX32, {"const": ""}], "description": "the credit.read transaction "
             "that released the file (empty: the enterprise read its own)"})
CREDIT_READS: Final = view(reads={"type": "array", "items": of(records.CreditRead)},
                           next_from_height=INT, next_from_index=INT)
ENCRYPTION_KEY: Final = of(records.EncryptionKeyRecord)
FILE_KEYS: Final = view(uscc=USCC, epoch=INT, epochs={"type": "array",
                                                      "items": of(records.CreditFileKey)})
RECIPIENTS: Final = view(recipients={"type": "array", "items": of(Recipient)})
SEALING: Final = view(
    sealed=of(Sealed),
    details={"oneOf": [of(cls) for cls in sorted(set(txtypes.SEALED_DETAILS.values()),
                                                 key=lambda c: c.__name__)],
             "description": "the plain details as sealed, with their salt"},
    recipients={"type": "array", "items": view(party=STRING, key_version=INT)})


def _unsalted(cls: type) -> dict[str, Any]:
    """`cls`'s schema with its salt optional: what sealing.seal takes (the node salts)."""
    of(cls)  # registers the component
    schema = dict(COMPONENTS.schemas[cls.__name__])
    schema["required"] = [name for name in schema["required"] if name != "salt"]
    return schema


SEAL_DETAILS: Final = {
    "anyOf": [_unsalted(f.details) for f in sorted(
        {f.details: f for f in txtypes.SEALED_FIELDS.values()}.values(),
        key=lambda f: f.details.__name__)],
    "description": "the tx_type's details class (txtypes.SEALED_FIELDS), salt optional"}
BACKUP: Final = view(name=STRING, dir=STRING, bytes=INT, seconds={"type": "number"},
                     manifest=of(backup.Manifest))
COMPACTION: Final = view(bytes_before=INT, bytes_after=INT, seconds={"type": "number"})
DOCUMENT: Final = record_view("document", records.SupportingDocument, used=AMOUNT,
                              remaining=AMOUNT, live=LIVE)
CAPITAL: Final = record_view("payment", records.CapitalPayment)

# What a parameter means where its method does not say more (the OpenRPC document).
PARAM_DOCS: Final[dict[str, str]] = {
    "limit": "at most this many items",
    "uscc": "the enterprise's unified social credit code (18 characters, GB 32100-2015)",
    "id": "the record's id (with kind)",
    "kind": "the record kind",
    "bank": "the bank's institution id",
    "reader": "the reading institution or enterprise",
    "owner": "an institution id or an enterprise's USCC",
    "institution": "the institution id",
    "exporter": "the exporter's USCC",
    "enterprise": "the enterprise's USCC, if the record concerns one",
    "credit_file": "the USCC whose credit file the record joins, if any",
    "recorder": "the institution that writes the record",
    "tx_id": "the transaction's id: 32 bytes as lowercase hex (docs/adr/0002)",
    "height": "a block height (1 is the first block after genesis)",
    "hash": "a block's hash: 32 bytes as lowercase hex",
    "from_height": "start at this block height (the previous page's next_from_height)",
    "from_index": "and this transaction index in it (the previous page's next_from_index)",
    "base": "ISO 4217 code of the base currency",
    "quote": "ISO 4217 code of the quote currency",
    "subscription": "the id sub.* answered",
    "declaration_no": "the customs declaration's number",
    "financing_id": "the financing's id",
    "payment_id": "the payment's id",
    "proceeds_id": "the inbound proceeds' id",
    "form_no": "the tax filing form's number",
    "policy_id": "the insurance policy's id",
    "document_id": "the supporting document's id",
    "tx_type": "the transaction type whose sealed field this is",
    "record_id": "the id of the record the transaction writes (the sealed field's context)",
    "also_to": "more parties to seal to, each with its encryption key on the ledger",
}


# ------------------------------------------------------------------ subscription events
# What each subscription's `sub.event` notifications carry in `params.result` (node/rpc/subs.py);
# OpenRPC has no notation for server-sent notifications, so the document gives each sub.*
# method an `x-notification` (ADR 0034).
BLOCK_EVENT: Final = view(height=INT, hash=HEX32, prev_hash=HEX32, tx_count=INT,
                          state_root=HEX32, timestamp_ms=INT, proposer=STRING,
                          tx_ids={"type": "array", "items": HEX32})
TX_EVENT: Final = view(tx_id=HEX32, status={"const": "committed"}, height=INT, index=INT,
                       receipt=nullable(RECEIPT))
RECORD_EVENT: Final = view(
    kind=RECORD_KIND, id=RECORD_ID, height=INT,
    record={"type": ["object", "null"], "description": "the record as its `<kind>.get` "
            "answers it; null once deleted"})
WATCH_EVENT: Final = view(
    list={"enum": [keys.WATCH_FLAGGED, keys.WATCH_OVERDUE]}, financing_id=RECORD_ID,
    on_list={"type": "boolean", "description": "joined (true) or left (false) the list"},
    height=INT, bank=STRING, record=RECORD_RESULTS["financing"])
NOTICE: Final = view(height=INT, tx_id=nullable(HEX32), tx_index=nullable(INT), event=STRING,
                     kind=STRING, id=STRING, signer=STRING, party=STRING, status=STRING,
                     plain={"type": "object", "description": "the record's plain fields the "
                            "subscriber may see"})
PARTY_EVENT: Final = {
    "type": "object", "required": ["uscc", "height", "events"], "properties": {
        "uscc": USCC, "height": INT, "events": {"type": "array", "items": NOTICE},
        "ended": {"const": True, "description": "the last event: the subscriber lost its "
                  "standing (a consent revoked, a bank suspended)"},
        "reason": STRING},
    "additionalProperties": False}
SUB_EVENTS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "sub.blocks": ("blocks", BLOCK_EVENT), "sub.tx": ("tx", TX_EVENT),
    "sub.record": ("record", RECORD_EVENT), "sub.watch": ("watch", WATCH_EVENT),
    "sub.party": ("party", PARTY_EVENT)}


def notification(method: str) -> dict[str, Any] | None:
    """The `sub.event` notification a subscription method's subscriptions send, if any."""
    if method not in SUB_EVENTS:
        return None
    topic, result = SUB_EVENTS[method]
    return {"method": "sub.event", "params": view(
        subscription=SUB_ID, topic={"const": topic}, result=result)}
# record.proof (ADR 0035)
PROOF_KIND: Final = {"type": "string", "enum": list(views.PROOF_KINDS)}
HEX: Final = {"type": "string", "pattern": "^([0-9a-f]{2})*$"}
RECORD_PROOF: Final = view(
    kind=PROOF_KIND,
    key={**HEX, "description": "the record's state key (protocol/ledger/keys.py)"},
    height={**INT, "description": "the block whose header the proof is against: the tip"},
    value={"type": ["string", "null"], "pattern": "^([0-9a-f]{2})*$",
           "description": "the stored value, the record's canonical encoding, as hex (null: "
           "no such record, and the proof shows its absence)"},
    record={"anyOf": [{"type": "null"}, *(of(cls) for cls in views.RECORD_TYPES.values())],
            "description": "the value decoded (for convenience: the proof is of `value`)"},
    proof=of(smt.StateProof),
    block_hash={**HEX32, "description": "the header's hash: H(\"block-header\", "
                "encode(header)) (docs/vectors/blocks.json)"},
    header=of(types.BlockHeader),
    block_signature={"type": "string", "pattern": "^[0-9a-f]{128}$",
                     "description": "the proposer's Ed25519 signature of the block"},
    certificate={"anyOf": [{"type": "null"}, of(CommitCertificate)],
                 "description": "the block's commit certificate, when this node stores one "
                 "yet (ADR 0019); null: check the proposer's signature, or ask again after "
                 "the certificate is gathered"})
