"""The node's JSON-RPC methods: transactions, blocks, records, confidential reads, the
consortium, health, and (over WebSocket) subscriptions. Error codes: `node.rpc.errors`.

Every handler validates its parameters and answers -32602 for bad ones; every loop over the
chain is bounded (`TX_SCAN_BLOCKS_MAX`, `LIST_ITEMS_MAX`).
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from node.client import sealing as client_sealing
from node.replica.intake import (
    ALREADY_COMMITTED,
    OK,
    STORAGE_UNAVAILABLE,
    UPGRADE_REQUIRED,
    IntakeLogError,
    TooManyWaitersError,
    TxIntake,
)
from node.replica.mempool import MEMPOOL_FULL
from node.rpc import auth, schema, views
from node.rpc import errors as E
from node.rpc.jsonrpc import (
    ACCESS_PROOF,
    ACCESS_PUBLIC,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CallContext,
    Dispatcher,
    Param,
    RpcError,
    invalid_params,
)
from node.rpc.subs import (
    BACKFILL_BLOCKS_MAX,
    PARTY_MESSAGE_EVENTS_MAX,
    Hub,
    SubscriptionError,
    block_summary,
)
from node.storage import backup
from node.storage.store import StorageError, TxRecord
from protocol import codec, limits, txtypes, types, versions
from protocol.errors import DecodeError
from protocol.ledger import keys, notices, queries, queries_capital, queries_insurance, records, smt
from protocol.ledger.state import State, decode_value
from protocol.replica.certificates import decode_certificate
from protocol.sealed import Recipient
from protocol.txtypes import ROLE_REGULATOR

log = logging.getLogger("crossbill.rpc")
audit_log = logging.getLogger("crossbill.audit")

# Re-exported for callers that matched on the old names.
TX_REFUSED: Final = E.TX_REFUSED
MEMPOOL_FULL_CODE: Final = E.MEMPOOL_FULL_CODE
BUSY: Final = E.BUSY
NOT_FOUND: Final = E.NOT_FOUND

WAIT_MS_MAX: Final = 30_000
WAIT_MS_DEFAULT: Final = 10_000
TX_SCAN_BLOCKS_MAX: Final = 1000
SCAN_CHECKPOINT_BLOCKS: Final = 50  # yield to other tasks this often while scanning
LIST_ITEMS_MAX: Final = 100
LIST_ITEMS_DEFAULT: Final = 20
# Parties beyond the required ones a sealing.seal call may add.
SEAL_EXTRA_RECIPIENTS_MAX: Final = 16
# How long after its block a recorded credit.read releases the file (ADR 0024).
CREDIT_READ_FRESH_MS: Final = 10 * 60 * 1000


def _hex(params: dict[str, Any], name: str, size_bytes: int) -> bytes:
    value = params.get(name)
    chars = 2 * size_bytes
    if not isinstance(value, str) or len(value) != chars:
        raise invalid_params(f"{name} must be {chars} lowercase hex characters")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise invalid_params(f"{name} must be {chars} lowercase hex characters") from None
    if raw.hex() != value:
        raise invalid_params(f"{name} must be lowercase hex")
    return raw


def _hex32(params: dict[str, Any], name: str) -> bytes:
    return _hex(params, name, 32)


def _text(params: dict[str, Any], name: str, max_chars: int = views.RECORD_ID_CHARS_MAX) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        raise invalid_params(f"{name} must be a non-empty string of at most {max_chars} chars")
    if any(ord(ch) < 0x20 for ch in value):
        raise invalid_params(f"{name} must not contain control characters")
    return value


def _int(params: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = params.get(name, default)
    if type(value) is not int or not lo <= value <= hi:
        raise invalid_params(f"{name} must be an integer in {lo}..{hi}")
    return value


def _bool(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise invalid_params(f"{name} must be a boolean")
    return value


def _kind(params: dict[str, Any], name: str = "kind") -> str:
    value = params.get(name)
    if not isinstance(value, str) or value not in views.RECORD_KEYS:
        raise invalid_params(f"{name} must be one of {', '.join(views.RECORD_KINDS)}")
    return str(value)


def _record_json(record: TxRecord) -> dict[str, Any]:
    return {"height": record.height, "index": record.index,
            "receipt": codec.to_json(record.receipt)}


def parse_tx(value: Any) -> types.Tx:
    if not isinstance(value, dict):
        raise invalid_params("tx must be a transaction object")
    try:
        tx = codec.from_json(types.Tx, value, "tx")
    except (DecodeError, ValueError, TypeError) as exc:
        raise invalid_params(str(exc)[:300]) from None
    if len(tx.encoded) > limits.TX_BYTES_MAX:
        raise invalid_params("tx exceeds the transaction size limit")
    return tx


def _refused(exc: queries.QueryRefused) -> RpcError:
    if exc.code == "NOT_FOUND":
        return RpcError(E.NOT_FOUND, exc.message, {"code": exc.code})
    return RpcError(E.READ_REFUSED, f"read refused: {exc.message}", {"code": exc.code})


def _bad_read_auth(reason: str) -> RpcError:
    return RpcError(E.READ_REFUSED, f"read refused: {reason}",
                    {"code": "BAD_READ_AUTH", "reason": reason})


@dataclass
class Api:
    """What the methods read and call: the node's parts, a clock, and the audit list."""

    intake: TxIntake
    status: Callable[[], dict[str, Any]]
    hub: Hub
    config: types.ConsortiumConfig
    clock_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    read_replays: auth.ReplayCache = field(
        default_factory=lambda: auth.ReplayCache(2 * auth.READ_WINDOW_MS))
    backup_dir: pathlib.Path | None = None  # [node] backup_dir: where admin.backup writes
    admin_jobs: backup.AdminJobs = field(default_factory=backup.AdminJobs)

    @property
    def state(self) -> State:
        return self.intake.chain.state

    @property
    def storage(self) -> Any:
        return self.intake.chain.storage

    # ------------------------------------------------------------------ transactions

    async def tx_submit(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        tx = parse_tx(params.get("tx"))
        wait = _bool(params, "wait", False)
        as_error = _bool(params, "reject_as_error", False)
        timeout_ms = _int(params, "timeout_ms", WAIT_MS_DEFAULT, 0, WAIT_MS_MAX)
        try:  # "pending" is said only once the transaction is in the intake log (ADR 0021)
            admission = await self.intake.submit_durable(tx)
        except IntakeLogError as exc:
            if self.storage.unavailable is not None:  # the disk failed (docs/adr/0031)
                raise RpcError(E.STORAGE_UNAVAILABLE_CODE, f"{exc}: submit it through another "
                               "node", {"code": STORAGE_UNAVAILABLE, "tx_id": tx.id.hex()}
                               ) from None
            raise RpcError(E.BUSY, f"{exc}: submit it again", {"tx_id": tx.id.hex()}) from None
        if admission.code == MEMPOOL_FULL:
            raise RpcError(E.MEMPOOL_FULL_CODE, admission.message, {"code": MEMPOOL_FULL})
        if admission.code == UPGRADE_REQUIRED:
            raise RpcError(E.UPGRADE_REQUIRED_CODE, admission.message,
                           {"code": UPGRADE_REQUIRED})
        if admission.code == STORAGE_UNAVAILABLE:
            raise RpcError(E.STORAGE_UNAVAILABLE_CODE, admission.message,
                           {"code": STORAGE_UNAVAILABLE})
        if admission.code not in (OK, ALREADY_COMMITTED):
            raise RpcError(E.TX_REFUSED, f"transaction refused: {admission.message}",
                           {"code": admission.code, "tx_id": tx.id.hex()})
        out: dict[str, Any] = {"tx_id": tx.id.hex(), "status": "pending"}
        record = self.intake.committed(tx.id)
        if record is None and wait:
            try:
                record = await self.intake.wait_committed(tx.id, timeout_ms / 1000)
            except TooManyWaitersError as exc:
                raise RpcError(E.BUSY, str(exc)) from None
        if record is not None:
            out.update(status="committed", **_record_json(record))
            if as_error and not record.receipt.ok:
                code, family = E.rejection_family(record.receipt.code)
                raise RpcError(code, f"transaction rejected: {record.receipt.code}: "
                               f"{record.receipt.message}", {**out, "code": record.receipt.code,
                                                             "family": family})
        return out

    async def tx_get(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        tx_id = _hex32(params, "tx_id")
        record = self.storage.tx_record(tx_id)
        if record is None:
            if self.intake.holds(tx_id):  # its mempool, or a client's it answers for
                return {"tx_id": tx_id.hex(), "status": "pending"}
            raise RpcError(E.NOT_FOUND, f"no transaction {tx_id.hex()}")
        block = self.storage.block(record.height)
        tx = block.txs[record.index] if block is not None else None
        return {"tx_id": tx_id.hex(), "status": "committed", **_record_json(record),
                "tx": None if tx is None else codec.to_json(tx)}

    async def tx_list(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        limit = _int(params, "limit", LIST_ITEMS_DEFAULT, 1, LIST_ITEMS_MAX)
        by_signer = "signer" in params
        by_record = "kind" in params or "id" in params
        if by_signer == by_record:
            raise invalid_params("give either signer, or kind and id")
        if by_record:
            return self._list_by_record(_kind(params), _text(params, "id"), limit)
        tip = self.intake.chain.height
        before = _int(params, "before_height", tip + 1, 1, tip + 1)
        return await self._list_by_signer(_text(params, "signer", 64), before, limit)

    def _list_by_record(self, kind: str, record_id: str, limit: int) -> dict[str, Any]:
        history = queries.record_history(self.state, views.RECORD_KEYS[kind](record_id))
        newest = list(reversed(history))[:limit]
        return {"items": views.history_json(tuple(newest)), "complete": len(history) <= limit}

    async def _list_by_signer(self, signer: str, before: int, limit: int) -> dict[str, Any]:
        """A bounded scan backwards from `before - 1` over at most TX_SCAN_BLOCKS_MAX blocks."""
        items: list[dict[str, Any]] = []
        height = before - 1
        lowest = max(1, before - TX_SCAN_BLOCKS_MAX)
        while height >= lowest and len(items) < limit:
            block = self.storage.block(height)
            receipts = self.storage.receipts(height) or ()
            if block is not None:
                for index in range(len(block.txs) - 1, -1, -1):
                    tx = block.txs[index]
                    if tx.signer == signer and len(items) < limit:
                        receipt = receipts[index] if index < len(receipts) else None
                        items.append({"height": height, "tx_index": index, "tx_id": tx.id.hex(),
                                      "tx_type": tx.type,
                                      "code": receipt.code if receipt else None})
            height -= 1
            if (before - height) % SCAN_CHECKPOINT_BLOCKS == 0:
                await trio.lowlevel.checkpoint()
        return {"items": items, "next_before_height": height + 1 if height >= 1 else None,
                "scanned_blocks": before - 1 - height}

    # ------------------------------------------------------------------ blocks and node

    async def block_get(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        if ("height" in params) == ("hash" in params):
            raise invalid_params("give exactly one of height and hash")
        if "hash" in params:
            found = self.storage.height_of(_hex32(params, "hash"))
            if found is None:
                raise RpcError(E.NOT_FOUND, f"no block with hash {params['hash']}")
            height = int(found)
        else:
            height = _int(params, "height", 1, 1, 2**63 - 1)
        block = self.storage.block(height)
        if block is None:
            raise RpcError(E.NOT_FOUND, f"no block at height {height}")
        receipts = self.storage.receipts(height) or ()
        return {"hash": block.hash.hex(), "block": codec.to_json(block),
                "receipts": [codec.to_json(r) for r in receipts]}

    async def node_status(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        return self.status()

    async def node_health(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        s = self.status()
        leader_known = bool(s["leader"]) or not s["orderer"]
        return {"ok": leader_known and not s["catching_up"], "height": s["height"],
                "catching_up": s["catching_up"], "leader": s["leader"]}

    async def protocol_versions(self, params: dict[str, Any],
                                ctx: CallContext) -> dict[str, Any]:
        """The protocol versions (ADR 0025): active for the next block, scheduled, what this
        node implements, and whether it stopped for an upgrade."""
        chain = self.intake.chain
        acts = chain.state.activations
        height = chain.height
        halted = chain.halted
        return {
            "height": height,
            "version": versions.active_version(acts, height + 1),
            "implemented": chain.implemented,
            "activations": [{"version": a.version, "height": a.height,
                             "scheduled_height": a.scheduled_height,
                             "active": a.height <= height + 1} for a in acts],
            "upgrade_required": None if halted is None else {
                "version": halted.version, "height": halted.height,
                "message": halted.describe()},
            "versions": [{"number": v.number, "title": v.title, "summary": v.summary}
                         for v in versions.VERSIONS],
        }

    async def consortium_get(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        state = self.state
        return {"chain_id": self.config.chain_id, "genesis_hash": self.config.hash.hex(),
                "genesis": codec.to_json(self.config),
                "current": {"orderers": list(state.chain.orderers),
                            "params": codec.to_json(state.params),
                            "params_v2": (None if state.params_v2 is None
                                          else codec.to_json(state.params_v2)),
                            "institutions": views.institutions_json(state)}}

    # ------------------------------------------------------------------ records

    def record_getter(self, kind: str, param: str) -> Callable[..., Any]:
        async def get(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
            try:
                return views.RECORD_VIEWS[kind](self.state, _text(params, param))
            except queries.QueryRefused as exc:
                raise _refused(exc) from None

        return get

    async def record_proof(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """A record's value (or its absence) with its state proof against the tip's header
        (ADR 0035)."""
        kind = params.get("kind")
        if kind == "application":
            key = keys.application(_text(params, "uscc", 18), _text(params, "application_id"))
        elif isinstance(kind, str) and kind in views.RECORD_KEYS:
            key = views.RECORD_KEYS[kind](_text(params, "id"))
        else:
            raise invalid_params(f"kind must be one of {', '.join(views.PROOF_KINDS)}")
        # One height: the tip, its block, the value and the proof are read with no await in
        # between, so no block is applied among the reads (the tree is updated in place: only
        # the tip's root can be proven).
        chain = self.intake.chain
        height = chain.height
        block = self.storage.block(height) if height > 0 else None
        value = chain.state.kv.get(key)
        try:
            proof = smt.prove(chain.state.kv, key)
        except RuntimeError as exc:  # a leaf stored before ADR 0035, or a damaged tree
            raise RpcError(INTERNAL_ERROR, f"cannot prove this record here: {exc}") from None
        cert = self.storage.certificate(height) if height > 0 else None
        if block is None or block.header.state_root != chain.tip.state_root:
            raise RpcError(E.NOT_FOUND, "no block to prove against yet", {"code": "NOT_FOUND"})
        return {
            "kind": kind, "key": key.hex(), "height": height,
            "value": None if value is None else value.hex(),
            "record": None if value is None else views.plain(
                decode_value(views.RECORD_TYPES[kind], value)),
            "proof": codec.to_json(proof),
            "block_hash": block.hash.hex(), "header": codec.to_json(block.header),
            "block_signature": block.signature.hex(),
            "certificate": None if cert is None else codec.to_json(decode_certificate(cert))}

    async def record_history(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        kind, record_id = _kind(params), _text(params, "id")
        history = queries.record_history(self.state, views.RECORD_KEYS[kind](record_id))
        return {"kind": kind, "id": record_id, "history": views.history_json(history)}

    async def consent_get(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        uscc, bank = _text(params, "uscc", 18), _text(params, "bank", 64)
        consent = self.state.get(keys.consent(uscc, bank), records.Consent)
        if consent is None:
            raise RpcError(E.NOT_FOUND, f"{uscc} has granted {bank} no consent")
        # live now: expiry is judged against the current time, not the last block's (ADR 0024)
        return {"consent": views.plain(consent),
                "live": consent.expires_at_ms > self.clock_ms()}

    # ------------------------------------------------------------------ the users' lists

    def _page(self, params: dict[str, Any]) -> tuple[str, int]:
        return (_text(params, "after", views.RECORD_ID_CHARS_MAX) if "after" in params else "",
                _int(params, "limit", limits.QUERY_PAGE_ITEMS_MAX, 1,
                     limits.QUERY_PAGE_ITEMS_MAX))

    @staticmethod
    def _page_json(page: queries.Page[Any]) -> dict[str, Any]:
        return {"items": views.plain(page.items), "next_after": page.next_after}

    async def enterprise_exposure(self, params: dict[str, Any],
                                  ctx: CallContext) -> dict[str, Any]:
        return dict(views.plain(queries.exposure(self.state, _text(params, "uscc", 18))))

    async def fx_rate(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        pair = []
        for name in ("base", "quote"):
            code = _text(params, name, 3)
            if not (len(code) == 3 and code.isascii() and code.isupper() and code.isalpha()):
                raise invalid_params(f"{name} must be an ISO 4217 code such as USD")
            pair.append(code)
        rate = queries.fx_rate(self.state, pair[0], pair[1])
        if rate is None:
            raise RpcError(E.NOT_FOUND, f"no {pair[0]}/{pair[1]} reference rate published for "
                           "the day of the last block")
        return dict(views.plain(rate))

    async def bank_book(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        after, limit = self._page(params)
        return self._page_json(queries.bank_book(self.state, _text(params, "bank", 64),
                                                 after, limit))

    async def declaration_list(self, params: dict[str, Any],
                               ctx: CallContext) -> dict[str, Any]:
        after, limit = self._page(params)
        return self._page_json(queries.declarations_by_exporter(
            self.state, _text(params, "exporter", 18), after, limit))

    async def application_get(self, params: dict[str, Any],
                              ctx: CallContext) -> dict[str, Any]:
        uscc, app_id = _text(params, "uscc", 18), _text(params, "application_id")
        found = queries.application(self.state, uscc, app_id)
        if found is None:
            raise RpcError(E.NOT_FOUND, f"{uscc} has no application {app_id}",
                           {"code": "NOT_FOUND"})
        history = queries.record_history(self.state, keys.application(uscc, app_id))
        return {"application": views.plain(found.application), "live": found.live,
                "history": views.history_json(history)}

    async def application_list(self, params: dict[str, Any],
                               ctx: CallContext) -> dict[str, Any]:
        after, limit = self._page(params)
        return self._page_json(queries.applications_by_enterprise(
            self.state, _text(params, "uscc", 18), after, limit))

    async def financing_watch_list(self, params: dict[str, Any],
                                   ctx: CallContext) -> dict[str, Any]:
        after, limit = self._page(params)
        kind = _text(params, "kind", 16)
        if kind not in (keys.WATCH_FLAGGED, keys.WATCH_OVERDUE):
            raise invalid_params(f"kind must be {keys.WATCH_FLAGGED} or {keys.WATCH_OVERDUE}")
        return self._page_json(queries.watch_list(self.state, kind, after, limit))

    # ------------------------------------------------------------------ confidential reads

    def _reader(self, method: str, params: dict[str, Any], ctx: CallContext) -> tuple[str, str]:
        """Who reads, proven by a signed read request (`auth`) or by a client credential
        whose name is the reader's institution id. Returns (reader, how)."""
        if "auth" in params:
            try:
                proof = auth.parse_read_proof(params["auth"])
                public_key = self.state.signer_public_key(proof.reader, proof.key_id)
                auth.verify_read(proof, public_key=public_key, chain_id=self.config.chain_id,
                                 method=method, params=params, now_ms=self.clock_ms(),
                                 replays=self.read_replays)
            except auth.AuthError as exc:
                raise _bad_read_auth(exc.reason) from None
            if "reader" in params and params["reader"] != proof.reader:
                raise _bad_read_auth("reader differs from auth.reader")
            return proof.reader, "signed-request"
        reader = params.get("reader")
        if ctx.client is not None and reader == ctx.client:
            return ctx.client, "client-credential"
        raise _bad_read_auth("prove who reads: sign the request (auth) or use a client "
                             "credential whose name is the reader")

    async def credit_read(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The credit file (sealed entries and the file's key epochs) for a reader whose signed
        `credit.read` transaction `read_tx` for this file is committed and recent, with a
        consent live at the current time (a bank) (ADR 0024)."""
        uscc = _text(params, "uscc", 18)
        reader, how = self._reader("credit.read", params, ctx)
        read_tx = b""
        if reader != uscc:  # the enterprise reads its own file without recording it
            read_tx = _hex32(params, "read_tx")
            self._check_read_tx(read_tx, reader, uscc)
        try:
            read = queries.read_credit_file(self.state, uscc, reader, at_ms=self.clock_ms())
        except queries.QueryRefused as exc:
            audit_log.info("credit file read refused", extra={
                "uscc": uscc, "reader": reader, "code": exc.code, "proof": how})
            raise _refused(exc) from None
        audit_log.info("credit file released", extra={
            "uscc": uscc, "reader": reader, "read_tx": read_tx.hex(), "proof": how})
        return {**views.credit_read_json(read), "read_tx": read_tx.hex()}

    def _check_read_tx(self, tx_id: bytes, reader: str, uscc: str) -> None:
        """`tx_id` is a committed, accepted credit.read of `uscc` signed by `reader`, in a
        block no older than CREDIT_READ_FRESH_MS."""
        def refused(why: str) -> RpcError:
            return RpcError(E.READ_REFUSED, f"read refused: {why}",
                            {"code": "READ_NOT_RECORDED"})
        record = self.storage.tx_record(tx_id)
        if record is None:
            raise refused(f"transaction {tx_id.hex()} is not committed: submit a credit.read "
                          "and wait for it")
        block = self.storage.block(record.height)
        tx = block.txs[record.index] if block is not None else None
        if tx is None or tx.type != "credit.read" or not record.receipt.ok:
            raise refused(f"transaction {tx_id.hex()} is not an accepted credit.read")
        payload = tx.payload
        if tx.signer != reader or getattr(payload, "uscc", None) != uscc:
            raise refused(f"transaction {tx_id.hex()} is {tx.signer}'s read of "
                          f"{getattr(payload, 'uscc', '?')}, not {reader}'s of {uscc}")
        if block is not None and self.clock_ms() - block.header.timestamp_ms > \
                CREDIT_READ_FRESH_MS:
            raise refused(f"the read was recorded more than {CREDIT_READ_FRESH_MS} ms ago: "
                          "record a new one")

    async def audit_credit_reads(self, params: dict[str, Any],
                                 ctx: CallContext) -> dict[str, Any]:
        """Credit-file reads from the ledger: every read for the regulator, a bank's own reads
        for a bank."""
        limit = _int(params, "limit", LIST_ITEMS_DEFAULT, 1, LIST_ITEMS_MAX)
        reader, _ = self._reader("audit.credit_reads", params, ctx)
        inst = self.state.institution(reader)
        if inst is None:
            raise RpcError(E.READ_REFUSED, f"read refused: {reader} is not an institution",
                           {"code": "UNKNOWN_READER"})
        only = "" if inst.role == ROLE_REGULATOR else reader
        found = queries.credit_reads(
            self.state, from_height=_int(params, "from_height", 0, 0, 2**63 - 1),
            from_index=_int(params, "from_index", 0, 0, 2**32 - 1),
            uscc=_text(params, "uscc", 18) if params.get("uscc") else "", reader=only,
            limit=limit)
        return {"reads": [views.plain(r) for r in found.reads],
                "next_from_height": found.next_from_height,
                "next_from_index": found.next_from_index}

    # ------------------------------------------------------------------ sealing

    async def encryption_key_get(self, params: dict[str, Any],
                                 ctx: CallContext) -> dict[str, Any]:
        owner = _text(params, "owner", 64)
        record = queries.encryption_key(self.state, owner)
        if record is None:
            raise RpcError(E.NOT_FOUND, f"{owner} has no encryption key")
        return dict(views.plain(record))

    async def credit_file_keys(self, params: dict[str, Any],
                               ctx: CallContext) -> dict[str, Any]:
        """A credit file's key epochs with their wraps (ciphertext to all but the readers):
        what an enterprise needs to extend a consent to another bank."""
        uscc = _text(params, "uscc", 18)
        epochs = queries.credit_file_keys(self.state, uscc)
        current = queries.credit_file_key(self.state, uscc)
        return {"uscc": uscc, "epoch": 0 if current is None else current.epoch,
                "epochs": [views.plain(e) for e in epochs]}

    async def sealing_recipients(self, params: dict[str, Any],
                                 ctx: CallContext) -> dict[str, Any]:
        recorder = _text(params, "recorder", 64)
        enterprise = _text(params, "enterprise", 18) if params.get("enterprise") else ""
        credit_file = _text(params, "credit_file", 18) if params.get("credit_file") else ""
        found = queries.seal_recipients(self.state, recorder, enterprise=enterprise,
                                        credit_file=credit_file)
        return {"recipients": [views.plain(r) for r in found]}

    async def sealing_seal(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """A sealed field made by this node for its own institution's client, which cannot
        make one itself: the data key is wrapped with libsodium's sealed box (XSalsa20-Poly1305,
        ADR 0024), which the standard libraries of Java and JavaScript lack. The caller sends
        its plain details to its own node (a write: a client credential); nothing of them is
        kept or logged."""
        tx_type = params.get("tx_type")
        if not isinstance(tx_type, str) or tx_type not in txtypes.SEALED_FIELDS:
            raise invalid_params("tx_type must be one of "
                                 + ", ".join(sorted(txtypes.SEALED_FIELDS)))
        spec = txtypes.SEALED_FIELDS[tx_type]
        record_id = _text(params, "record_id")
        recorder = _text(params, "recorder", 64)
        raw = params.get("details")
        if not isinstance(raw, dict):
            raise invalid_params("details must be an object")
        if "salt" not in raw:  # the salt hides guessable details behind plain_hash (ADR 0024)
            raw = {**raw, "salt": client_sealing.salt().hex()}
        try:
            details: Any = codec.from_json(spec.details, raw, "details")
        except (DecodeError, ValueError, TypeError) as exc:
            raise invalid_params(str(exc)[:300]) from None
        enterprise = _text(params, "enterprise", 18) if params.get("enterprise") else ""
        credit_file = _text(params, "credit_file", 18) if params.get("credit_file") else ""
        recipients = list(queries.seal_recipients(self.state, recorder, enterprise=enterprise,
                                                  credit_file=credit_file))
        also = params.get("also_to", [])
        if (not isinstance(also, list) or len(also) > SEAL_EXTRA_RECIPIENTS_MAX
                or not all(isinstance(p, str) for p in also)):
            raise invalid_params(f"also_to must be a list of at most "
                                 f"{SEAL_EXTRA_RECIPIENTS_MAX} party ids")
        for party in also:
            key = queries.encryption_key(self.state, party)
            if key is None:
                raise RpcError(E.NOT_FOUND, f"{party} has no encryption key")
            if all(r.party != party for r in recipients):
                recipients.append(Recipient(party, key.version, key.public_key))
        if all(r.party != recorder for r in recipients):
            raise RpcError(E.NOT_FOUND, f"{recorder} has no encryption key: a sealed field "
                           "must be wrapped to its recorder")
        sealed = client_sealing.seal(details, tx_type, record_id, recipients)
        return {"sealed": codec.to_json(sealed), "details": codec.to_json(details),
                "recipients": [{"party": r.party, "key_version": r.key_version}
                               for r in recipients]}

    # ------------------------------------------------------------------ subscriptions

    def _session(self, ctx: CallContext) -> Any:
        if ctx.session is None:
            raise RpcError(E.WEBSOCKET_ONLY, "subscriptions need the WebSocket endpoint "
                           "(GET /ws)")
        return ctx.session

    async def sub_blocks(self, params: dict[str, Any], ctx: CallContext) -> int:
        """New blocks; with `from_height`, the committed blocks from that height first (at
        most `BACKFILL_BLOCKS_MAX`), then the live ones, without a gap or a repeat: how a
        client resumes after a disconnect."""
        session = self._session(ctx)
        if params.get("from_height") is None:
            return self._subscribe(lambda: self.hub.subscribe_blocks(session))
        start = _int(params, "from_height", 1, 1, 2**63 - 1)
        # Nothing awaits between the chain applying a block and the hub hearing of it
        # (Node._on_block), so this height and the hub's events join exactly.
        tip_height = self.intake.chain.height
        if start > tip_height + 1:
            raise invalid_params(f"from_height {start} is past the next block "
                                 f"({tip_height + 1})")
        if tip_height + 1 - start > BACKFILL_BLOCKS_MAX:
            raise RpcError(INVALID_PARAMS, f"Invalid params: from_height {start} is "
                           f"{tip_height + 1 - start} blocks behind the next block; at most "
                           f"{BACKFILL_BLOCKS_MAX} are replayed: read the earlier ones with "
                           "block.get, then subscribe from a later height",
                           {"tip_height": tip_height, "backfill_blocks_max": BACKFILL_BLOCKS_MAX})
        sub_id = self._subscribe(lambda: self.hub.subscribe_blocks(session, hold=True))
        replay = []  # blocks applied from here on are held by the hub, not lost
        for height in range(start, tip_height + 1):
            block = self.storage.block(height)
            if block is None:  # pruned or not yet stored: tell, rather than leave a gap
                self.hub.unsubscribe(session, sub_id)
                raise RpcError(E.NOT_FOUND, f"block {height} is not in this node's store")
            replay.append(block_summary(block))
            await trio.lowlevel.checkpoint()
        session.after_reply(lambda: self.hub.release(sub_id, replay))
        return sub_id

    async def sub_tx(self, params: dict[str, Any], ctx: CallContext) -> int:
        session = self._session(ctx)
        tx_id = _hex32(params, "tx_id")
        sub_id = self._subscribe(lambda: self.hub.subscribe_tx(session, tx_id))
        record = self.storage.tx_record(tx_id)
        if record is not None:  # already committed: the event follows the reply at once
            sub = self.hub.subs.pop(sub_id)
            session.after_reply(lambda: self.hub.notify(sub, {
                "tx_id": tx_id.hex(), "status": "committed", **_record_json(record)}))
        return sub_id

    async def sub_record(self, params: dict[str, Any], ctx: CallContext) -> int:
        session = self._session(ctx)
        kind, record_id = _kind(params), _text(params, "id")
        key = views.RECORD_KEYS[kind](record_id)
        return self._subscribe(lambda: self.hub.subscribe_record(session, kind, record_id, key))

    async def sub_watch(self, params: dict[str, Any], ctx: CallContext) -> int:
        session = self._session(ctx)
        bank = _text(params, "bank", 64) if params.get("bank") is not None else ""
        return self._subscribe(lambda: self.hub.subscribe_watch(session, bank))

    async def sub_party(self, params: dict[str, Any], ctx: CallContext) -> int:
        """What concerns one enterprise, for a caller who proves who it is (a signed request,
        or a client credential; `reader` defaults to the credential's name) and may be told:
        the enterprise itself, a regulator, or a bank serving it (docs/domain.md §7a)."""
        session = self._session(ctx)
        uscc = _text(params, "uscc", 18)
        if "auth" not in params and "reader" not in params and ctx.client is not None:
            params = {**params, "reader": ctx.client}
        viewer, how = self._reader("sub.party", params, ctx)
        who = notices.standing(self.state, viewer, uscc)
        if not who.standing:
            audit_log.info("party subscription refused", extra={
                "uscc": uscc, "reader": viewer, "reason": who.reason, "proof": how})
            raise RpcError(E.READ_REFUSED, f"read refused: {who.reason}",
                           {"code": "NOT_A_PARTY", "reason": who.reason})
        return self._subscribe(lambda: self.hub.subscribe_party(session, uscc, viewer))

    def _subscribe(self, add: Callable[[], int]) -> int:
        try:
            return add()
        except SubscriptionError as exc:
            raise RpcError(E.BUSY, str(exc)) from None

    async def sub_cancel(self, params: dict[str, Any], ctx: CallContext) -> bool:
        session = self._session(ctx)
        sub_id = _int(params, "subscription", 0, 0, 2**53)
        if not self.hub.unsubscribe(session, sub_id):
            raise RpcError(E.NOT_FOUND, f"no subscription {sub_id} on this connection")
        return True

    # ------------------------------------------------------------------ admin

    def _admin(self, method: str, ctx: CallContext) -> None:
        """Admin methods are write methods (a credential whenever the node requires one for
        writes) that, without a credential, also need a loopback connection."""
        if ctx.client is None and not ctx.loopback:
            reason = (f"{method} is an admin method: call it over a loopback connection or "
                      "with a client credential (an RFC 9421 request signature, ADR 0033)")
            audit_log.warning("admin call refused", extra={"method": method,
                                                           "transport": ctx.transport})
            raise RpcError(E.UNAUTHORIZED, f"Unauthorized: {reason}", {"reason": reason})

    async def admin_backup(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        self._admin("admin.backup", ctx)
        try:
            name = backup.check_backup_name(params.get("name"))
        except backup.OpsError as exc:
            raise invalid_params(f"name: {exc}") from None
        if self.backup_dir is None:
            raise RpcError(INTERNAL_ERROR, "this node has no backup directory configured")
        chain = self.intake.chain
        institution = str(self.status().get("institution", ""))
        try:
            result = await self.admin_jobs.backup(chain.storage, self.backup_dir, name,
                                                  institution)
        except backup.BusyError as exc:
            raise RpcError(E.BUSY, str(exc), {"running": self.admin_jobs.running}) from None
        except (backup.OpsError, OSError, StorageError) as exc:
            raise RpcError(INTERNAL_ERROR, f"backup failed: {exc}") from None
        audit_log.info("backup written", extra={"backup": name, "height":
                                                result["manifest"]["height"],
                                                "client": ctx.client})
        return result

    async def admin_job(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        self._admin("admin.job", ctx)
        return self.admin_jobs.status()

    async def admin_compact(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        self._admin("admin.compact", ctx)
        try:
            return await self.admin_jobs.compact(self.intake.chain.storage)
        except backup.BusyError as exc:
            raise RpcError(E.BUSY, str(exc), {"running": self.admin_jobs.running}) from None

    def record_view(self, kind: str, record_id: str) -> Any:
        try:
            return views.RECORD_VIEWS[kind](self.state, record_id)
        except queries.QueryRefused:
            return None

    # ------------------------------------------------------------------ issue 17: capital
    # Capital-account income payments (protocol version 2; docs/domain.md §4.11).

    async def document_get(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        try:
            v = queries_capital.document_view(self.state, _text(params, "document_id"))
        except queries.QueryRefused as exc:
            raise _refused(exc) from None
        return {"document": views.plain(v.document), "used": v.used, "remaining": v.remaining,
                "live": v.live, "history": views.history_json(v.history)}

    async def document_list(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        after, limit = self._page(params)
        return self._page_json(queries_capital.documents_by_enterprise(
            self.state, _text(params, "uscc", 18), after, limit))

    async def capital_get(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """A capital payment for the regulator, the bank that recorded it or its enterprise."""
        payment_id = _text(params, "payment_id")
        reader, _ = self._reader("capital.get", params, ctx)
        try:
            v = queries_capital.capital_payment_view(self.state, payment_id, reader)
        except queries.QueryRefused as exc:
            raise _refused(exc) from None
        return {"payment": views.plain(v.payment), "history": views.history_json(v.history)}

    async def capital_list(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Every capital payment, or those of an enterprise, a document or a bank, or the
        flagged ones, paged: any list for the regulator, its own for a bank or enterprise."""
        by = _text(params, "by", 16)
        if by not in queries_capital.LISTS:
            raise invalid_params(f"by must be one of {', '.join(queries_capital.LISTS)}")
        of = _text(params, "id", 64) if params.get("id") else ""
        after, limit = self._page(params)
        reader, _ = self._reader("capital.list", params, ctx)
        try:
            page = queries_capital.capital_payments(self.state, reader, by, of, after, limit)
        except queries.QueryRefused as exc:
            raise _refused(exc) from None
        return self._page_json(page)


def register(dispatcher: Dispatcher, api: Api) -> None:
    """Every method, with its parameters and result schema (the OpenRPC document's source)."""
    s = schema
    add = dispatcher.add
    add("tx.submit", api.tx_submit, (
        Param("tx", s.TX, True, "the signed transaction (protocol.types.Tx as JSON)"),
        Param("wait", s.BOOL, description="wait for the receipt (bounded by timeout_ms)"),
        Param("timeout_ms", s.int_range(0, WAIT_MS_MAX), description="how long to wait"),
        Param("reject_as_error", s.BOOL, description="answer a rejected receipt with its "
              "family's error code (-32041..-32047) instead of a result")),
        summary="Submit a signed transaction: its id at once, or its receipt after a bounded "
        "wait.", result=s.TX_STATUS, write=True,
        errors=(E.UNAUTHORIZED, E.TX_REFUSED, E.MEMPOOL_FULL_CODE, E.UPGRADE_REQUIRED_CODE,
                E.STORAGE_UNAVAILABLE_CODE, E.BUSY, *[c for c, _, _ in E.REJECTION_FAMILIES]))
    add("tx.get", api.tx_get, (Param("tx_id", s.HEX32, True),),
        summary="A transaction with its receipt and place in the chain (or pending).",
        result=s.TX_STATUS, errors=(E.NOT_FOUND,))
    add("tx.list", api.tx_list, (
        Param("signer", s.text(64), description="transactions signed by this signer: a "
              f"bounded scan backwards over at most {TX_SCAN_BLOCKS_MAX} blocks"),
        Param("kind", s.RECORD_KIND, description="with id: transactions that touched the "
              "record (the ledger's record history)"),
        Param("id", s.text(views.RECORD_ID_CHARS_MAX)),
        Param("before_height", s.int_range(1, None), description="signer scans start below"),
        Param("limit", s.int_range(1, LIST_ITEMS_MAX))),
        summary="List transactions by signer or by record, newest first.", result=s.TX_LIST)
    add("block.get", api.block_get, (Param("height", s.int_range(1, None)),
                                     Param("hash", s.HEX32)),
        summary="A block by height or by hash, with its receipts.", result=s.BLOCK,
        errors=(E.NOT_FOUND,))
    add("node.status", api.node_status, summary="Height, state root, role, leader, peers "
        "and sync state of this node.", result=s.STATUS, access=ACCESS_PUBLIC)
    add("node.health", api.node_health, summary="Whether the node is caught up and knows a "
        "leader.", result=s.HEALTH, access=ACCESS_PUBLIC)
    add("protocol.versions", api.protocol_versions, summary="The protocol version of the next "
        "block, every activation (scheduled or active), the versions this node implements, "
        "and whether it stopped for an upgrade it needs (ADR 0025).", result=s.VERSIONS,
        access=ACCESS_PUBLIC)
    add("consortium.get", api.consortium_get, summary="The consortium configuration: genesis "
        "and the current orderers, parameters and institutions.", result=s.CONSORTIUM,
        access=ACCESS_PUBLIC)
    for kind, param, fmt in (("institution", "institution", s.text(64)),
                             ("enterprise", "uscc", s.USCC),
                             ("declaration", "declaration_no", s.RECORD_ID),
                             ("financing", "financing_id", s.RECORD_ID),
                             ("taxform", "form_no", s.RECORD_ID),
                             ("payment", "payment_id", s.RECORD_ID),
                             ("proceeds", "proceeds_id", s.RECORD_ID)):
        add(f"{kind}.get", api.record_getter(kind, param), (Param(param, fmt, True),),
            summary=f"The {kind} record with its history.", result=s.RECORD_RESULTS[kind],
            errors=(E.NOT_FOUND,))
    add("record.history", api.record_history, (Param("kind", s.RECORD_KIND, True),
                                               Param("id", s.RECORD_ID, True)),
        summary="Every accepted transaction that touched a record, in chain order.",
        result=s.RECORD_HISTORY)
    add("record.proof", api.record_proof, (
        Param("kind", s.PROOF_KIND, True), Param("id", s.RECORD_ID, description="the record's "
                                                 "id (every kind but application)"),
        Param("uscc", s.USCC, description="application: the enterprise's USCC"),
        Param("application_id", s.RECORD_ID, description="application: the application's id")),
        summary="A record's stored value (or its absence) with a state proof against the "
        "block header of the node's tip, all at one height: check the proof against the "
        "header's state_root, the header's hash, and the commit certificate's majority of "
        "orderer signatures or the proposer's block signature (ADR 0035; docs/integrating.md, "
        "Proving a record).", result=s.RECORD_PROOF, errors=(E.NOT_FOUND,))
    page = (Param("after", s.RECORD_ID, description="the next_after of the previous page"),
            Param("limit", s.int_range(1, limits.QUERY_PAGE_ITEMS_MAX)))
    add("enterprise.exposure", api.enterprise_exposure, (Param("uscc", s.USCC, True),),
        summary="An enterprise's exposure across every bank: open pledges, approved, "
        "outstanding and overdue principal by currency, flagged financings.", result=s.EXPOSURE)
    add("fx.rate", api.fx_rate, (Param("base", s.CURRENCY, True), Param("quote", s.CURRENCY, True)),
        summary="The regulator's reference rate of the day (the last block's date) for a "
        "currency pair: quote minor units per base minor unit, times 10^8 (rate_e8).",
        result=s.FX_RATE, errors=(E.NOT_FOUND,))
    add("bank.book", api.bank_book, (Param("bank", s.text(64), True), *page),
        summary="A bank's live financings (holding pledges or owing money), by id, paged.",
        result=s.page(records.Financing))
    add("declaration.list", api.declaration_list, (Param("exporter", s.USCC, True), *page),
        summary="The declarations customs registered for an exporter, by number, paged.",
        result=s.page(records.Declaration))
    add("application.get", api.application_get, (
        Param("uscc", s.USCC, True), Param("application_id", s.RECORD_ID, True,
                                           description="the application's id, unique per "
                                           "enterprise")),
        summary="An enterprise's financing application with its history, and whether it is "
        "live (open and unexpired).", result=s.APPLICATION, errors=(E.NOT_FOUND,))
    add("application.list", api.application_list, (Param("uscc", s.USCC, True), *page),
        summary="An enterprise's financing applications, with whether each is live, paged.",
        result=s.page(queries.ApplicationView))
    add("financing.watch_list", api.financing_watch_list, (
        Param("kind", s.text(16), True, "flagged (collateral cut by customs or collected) or "
              "overdue (past maturity)"), *page),
        summary="The regulator's list of live flagged or overdue financings, by id, paged.",
        result=s.page(records.Financing))
    add("consent.get", api.consent_get, (Param("uscc", s.USCC, True),
                                         Param("bank", s.text(64), True)),
        summary="The consent an enterprise gave a bank, and whether it is live.",
        result=s.CONSENT, errors=(E.NOT_FOUND,))
    add("credit.read", api.credit_read, (
        Param("uscc", s.USCC, True),
        Param("read_tx", s.HEX32, description="the reader's committed credit.read transaction "
              f"for this file, at most {CREDIT_READ_FRESH_MS} ms old (not needed by the "
              "enterprise reading its own file)"),
        Param("reader", s.text(64), description="the reading institution (with a client "
              "credential of that name)"),
        Param("auth", s.READ_AUTH, description="a signed read request")),
        summary="An enterprise's credit file (sealed entries and the file's key epochs) for a "
        "reader whose credit.read is on the ledger: a bank under a consent live now, or the "
        "regulator.", result=s.CREDIT, errors=(E.READ_REFUSED, E.NOT_FOUND),
        access=ACCESS_PROOF)
    add("audit.credit_reads", api.audit_credit_reads, (
        Param("auth", s.READ_AUTH, description="a read request signed by the reader"),
        Param("reader", s.text(64)), Param("uscc", s.USCC),
        Param("from_height", s.int_range(0, 2**63 - 1)),
        Param("from_index", s.int_range(0, 2**32 - 1)),
        Param("limit", s.int_range(1, LIST_ITEMS_MAX))),
        summary="Credit-file reads recorded on the ledger, in order, paged: all of them for "
        "the regulator, its own for a bank.", result=s.CREDIT_READS, errors=(E.READ_REFUSED,),
        access=ACCESS_PROOF)
    add("encryption_key.get", api.encryption_key_get, (Param("owner", s.text(64), True),),
        summary="An institution's or enterprise's current encryption key and its version.",
        result=s.ENCRYPTION_KEY, errors=(E.NOT_FOUND,))
    add("credit.file_keys", api.credit_file_keys, (Param("uscc", s.USCC, True),),
        summary="A credit file's key epochs, each with its private key wrapped to its readers "
        "(the enterprise extends a consent with them).", result=s.FILE_KEYS)
    add("sealing.recipients", api.sealing_recipients, (
        Param("recorder", s.text(64), True), Param("enterprise", s.USCC),
        Param("credit_file", s.USCC)),
        summary="Whom a record must be sealed to: the recorder, every regulator, the "
        "enterprise if it holds a key, the credit file's current key.", result=s.RECIPIENTS)
    add("sealing.seal", api.sealing_seal, (
        Param("tx_type", {"type": "string", "enum": sorted(txtypes.SEALED_FIELDS)}, True),
        Param("record_id", s.RECORD_ID, True), Param("recorder", s.text(64), True),
        Param("details", s.SEAL_DETAILS, True, description="The plain details of the transaction "
              "type's sealed field (e.g. DeclarationDetails: buyer, destination, goods); the "
              "node adds a random salt unless one is given."),
        Param("enterprise", s.USCC), Param("credit_file", s.USCC),
        Param("also_to", {"type": "array", "items": s.text(64),
                          "maxItems": SEAL_EXTRA_RECIPIENTS_MAX})),
        summary="Seal a record's confidential details for the caller's own transaction, to "
        "the parties sealing.recipients names (and any added): for clients without "
        "libsodium's sealed box. Send plain details only to your own institution's node.",
        result=s.SEALING, write=True, errors=(E.NOT_FOUND,))
    add("sub.blocks", api.sub_blocks, (
        Param("from_height", s.int_range(1, None), description="Replay the committed blocks "
              f"from this height (at most {BACKFILL_BLOCKS_MAX} behind the next block) before "
              "the live ones, without a gap or a repeat: resuming after a disconnect."),),
        summary="Subscribe to new blocks (WebSocket only); events arrive as sub.event "
        "notifications.", result=s.SUB_ID, errors=(E.WEBSOCKET_ONLY, E.BUSY, E.NOT_FOUND))
    add("sub.tx", api.sub_tx, (Param("tx_id", s.HEX32, True),),
        summary="Subscribe to one transaction's commit (one event, WebSocket only).",
        result=s.SUB_ID, errors=(E.WEBSOCKET_ONLY, E.BUSY))
    add("sub.record", api.sub_record, (Param("kind", s.RECORD_KIND, True),
                                       Param("id", s.RECORD_ID, True)),
        summary="Subscribe to changes of a record, e.g. a declaration's pledged amount "
        "(WebSocket only).", result=s.SUB_ID, errors=(E.WEBSOCKET_ONLY, E.BUSY))
    add("sub.watch", api.sub_watch, (
        Param("bank", s.text(64), description="only this bank's financings (omit: every "
              "bank's, the regulator's view)"),),
        summary="Subscribe to financings joining or leaving the regulator's watch list "
        "(flagged: collateral cancelled, cut or released; overdue: past maturity); one event "
        "per change with the financing (WebSocket only).", result=s.SUB_ID,
        errors=(E.WEBSOCKET_ONLY, E.BUSY))
    add("sub.party", api.sub_party, (
        Param("uscc", s.USCC, True, "the enterprise"),
        Param("reader", s.text(64), description="who subscribes (with a client credential of "
              "that name; default: the credential's name)"),
        Param("auth", s.READ_AUTH, description="a signed read request (the enterprise with "
              "its ledger key, or an institution)")),
        summary="Subscribe to what concerns one enterprise (WebSocket only): its accepted "
        "transactions (applications, financings, mandates, consents, credit records and reads "
        "of its file, declarations, tax forms, payments, FX class, freeze, keys) and the "
        "ledger's transitions of its financings and applications (lapsed, overdue, expired, "
        "flagged), one sub.event per block with a list of events (at most "
        f"{PARTY_MESSAGE_EVENTS_MAX} per message): height, tx id, event, record kind and id, "
        "signer, party (the institution whose dealing it is, or empty for a public fact), "
        "status and plain amounts, never sealed content. Who may subscribe: the enterprise, "
        "a regulator (everything), or a bank that registered it or holds its live consent "
        "(its own dealings and the public facts only, never another institution's); the "
        "standing is judged again at each block and a subscriber that lost it gets a last "
        "event with ended and the reason.", result=s.SUB_ID,
        errors=(E.WEBSOCKET_ONLY, E.BUSY, E.READ_REFUSED), access=ACCESS_PROOF)
    add("sub.cancel", api.sub_cancel, (Param("subscription", s.int_range(0, None), True),),
        summary="Cancel a subscription of this connection.", result=s.BOOL,
        errors=(E.WEBSOCKET_ONLY, E.NOT_FOUND))
    admin = "Admin: loopback connection or client credential (a credential whenever writes " \
        "need one; a request with proxy headers is not loopback unless the node trusts its " \
        "proxy). "
    add("admin.backup", api.admin_backup, (
        Param("name", {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
                       "maxLength": limits.BACKUP_NAME_CHARS_MAX}, True,
              "the backup's directory name under the node's [node] backup_dir (never a "
              "path)"),),
        summary=admin + "Write a consistent backup of this node's store (a LevelDB snapshot "
        "between two blocks, without Raft state) to <backup_dir>/<name>/ with a manifest; "
        "one admin job at a time.", result=s.BACKUP, write=True,
        errors=(E.UNAUTHORIZED, E.BUSY))
    add("admin.job", api.admin_job, summary=admin + "The admin job running on this node "
        "(backup or compaction), if any: for how long, and the keys and bytes a backup copied "
        "so far (crossbill backup create shows them as it waits).", result={
            "type": "object", "required": ["running"], "properties": {
                "running": {"type": ["string", "null"], "enum": ["backup", "compaction", None]},
                "seconds": {"type": "number", "minimum": 0},
                "keys": {"type": "integer", "minimum": 0},
                "bytes": {"type": "integer", "minimum": 0}},
            "additionalProperties": False},
        write=True, errors=(E.UNAUTHORIZED,))
    add("admin.compact", api.admin_compact, summary=admin + "Compact this node's LevelDB in "
        "the background; one admin job at a time.", result=s.COMPACTION, write=True,
        errors=(E.UNAUTHORIZED, E.BUSY))
    # issue 17: capital-account income payments (protocol version 2; docs/domain.md §4.11)
    reader = (Param("reader", s.text(64), description="the reading institution or enterprise "
                    "(with a client credential of that name)"),
              Param("auth", s.READ_AUTH, description="a signed read request"))
    add("document.get", api.document_get, (Param("document_id", s.RECORD_ID, True),),
        summary="A supporting document registered by its issuer (capital-account income "
        "payments cite it): amount, used, remaining, whether live, history.", result=s.DOCUMENT,
        errors=(E.NOT_FOUND,))
    add("document.list", api.document_list, (Param("uscc", s.USCC, True), *page),
        summary="The supporting documents registered for an enterprise, by id, paged.",
        result=s.page(records.SupportingDocument))
    add("capital.get", api.capital_get, (Param("payment_id", s.RECORD_ID, True), *reader),
        summary="A capital-account income payment with its history, for the regulator, the "
        "bank that recorded it or its enterprise.", result=s.CAPITAL,
        errors=(E.READ_REFUSED, E.NOT_FOUND), access=ACCESS_PROOF)
    add("capital.list", api.capital_list, (
        Param("by", s.text(16), True, "all, enterprise, document, bank or flagged"),
        Param("id", s.text(64), description="the enterprise's USCC, the document id or the "
              "bank (by enterprise, document, bank)"), *page, *reader),
        summary="Capital-account income payments, by id, paged: every list for the "
        "regulator; a bank its own (by bank), an enterprise its own (by enterprise).",
        result=s.page(records.CapitalPayment), errors=(E.READ_REFUSED,), access=ACCESS_PROOF)

    register_insurance(dispatcher, api)  # issue 17: insurance


# ------------------------------------------------------------------------------ issue 17: insurance


def register_insurance(dispatcher: Dispatcher, api: Api) -> None:
    """Export credit-insurance policies (protocol version 2; docs/domain.md §4.10): member
    reads; a policy's sealed details stay sealed (its parties and assignees open them)."""
    s = schema
    add = dispatcher.add

    async def policy_financings(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        after, limit = api._page(params)
        if ("policy_id" in params) == ("bank" in params):
            raise invalid_params("give one of policy_id (a policy's financings) or bank (a "
                                 "bank's policy financings)")
        if "policy_id" in params:
            page = queries_insurance.financings_of_policy(
                api.state, _text(params, "policy_id"), after, limit)
        else:
            page = queries_insurance.policy_financings_of_bank(
                api.state, _text(params, "bank", 64), after, limit)
        return api._page_json(page)

    async def policy_claims(params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        after, limit = api._page(params)
        return api._page_json(queries_insurance.claims_of_policy(
            api.state, _text(params, "policy_id"), after, limit))

    page = (Param("after", s.RECORD_ID, description="the next_after of the previous page"),
            Param("limit", s.int_range(1, limits.QUERY_PAGE_ITEMS_MAX)))
    add("policy.get", api.record_getter("policy", "policy_id"),
        (Param("policy_id", s.RECORD_ID, True),),
        summary="An export credit-insurance policy (sealed details, assignments, financed and "
        "claimed totals) with whether it is live, its cap and what may still be financed "
        "against it, and its history.", result=s.RECORD_RESULTS["policy"], errors=(E.NOT_FOUND,))
    add("policy.financing", api.record_getter("policy_financing", "financing_id"),
        (Param("financing_id", s.RECORD_ID, True),),
        summary="A financing against a policy with its outstanding and history.",
        result=s.RECORD_RESULTS["policy_financing"], errors=(E.NOT_FOUND,))
    add("policy.financings", policy_financings, (
        Param("policy_id", s.RECORD_ID, description="the financings against this policy"),
        Param("bank", s.text(64), description="or this bank's policy financings"), *page),
        summary="Financings against a policy, or a bank's policy financings, by id, paged.",
        result=s.page(records.PolicyFinancing))
    add("policy.claims", policy_claims, (Param("policy_id", s.RECORD_ID, True), *page),
        summary="The claims an insurer paid under a policy, by claim id, paged.",
        result=s.page(records.PolicyClaim))
