"""Build and sign any transaction type, generically from the payload dataclasses of
protocol/txtypes.py (the CLI's `crossbill tx TYPE --field value` uses the same code)."""

from __future__ import annotations

import dataclasses
import os
import time
import typing
from dataclasses import dataclass
from typing import Any, Final

import orjson

from node.client.sealing import seal_values
from protocol import codec, crypto, txtypes, types
from protocol.errors import CrossbillError, DecodeError

EXPIRY_DEFAULT_MS: Final = 10 * 60 * 1000
NONCE_BYTES: Final = 16


class PayloadError(CrossbillError):
    """Fields that do not make a payload of the type; the message names the field."""


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str          # "str", "int", "bytes", "json" (lists, nested objects)
    doc: str


def _kind(tp: Any) -> str:
    base = typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp
    if base is int:
        return "int"
    if base is str:
        return "str"
    if base is bytes:
        return "bytes"
    return "json"


def payload_fields(tx_type: str) -> list[FieldSpec]:
    cls = txtypes.payload_class(tx_type)
    if cls is None:
        raise PayloadError(f"unknown transaction type {tx_type!r} (known: "
                           f"{', '.join(sorted(txtypes.REGISTRY))})")
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for f in dataclasses.fields(cls):
        kind = _kind(hints[f.name])
        doc = {"int": "integer (amounts in minor units)", "str": "text",
               "bytes": "hex", "json": "JSON"}[kind]
        out.append(FieldSpec(f.name, kind, doc))
    return out


def parse_field(spec: FieldSpec, text: str) -> Any:
    """A command-line string as the JSON value of the field."""
    if spec.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise PayloadError(f"{spec.name}: expected an integer, got {text!r}") from None
    if spec.kind == "json":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            raise PayloadError(f"{spec.name}: expected JSON, got {text!r}") from None
    return text


def build_payload(tx_type: str, values: dict[str, Any]) -> txtypes.Payload:
    """A checked payload from JSON-shaped values (bytes as hex, tuples as lists)."""
    specs = payload_fields(tx_type)
    names = {s.name for s in specs}
    unknown = set(values) - names
    cls = txtypes.payload_class(tx_type)
    optional = {f.name: f.default for f in dataclasses.fields(cls)
                if f.default is not dataclasses.MISSING} if cls is not None else {}
    values = {**{k: list(v) if isinstance(v, tuple) else v for k, v in optional.items()
                 if k not in values}, **values}
    missing = names - set(values)
    if unknown or missing:
        raise PayloadError(f"{tx_type}: unknown field(s) {sorted(unknown)}, missing field(s) "
                           f"{sorted(missing)}")
    cls = txtypes.payload_class(tx_type)
    assert cls is not None
    try:
        payload: txtypes.Payload = codec.from_json(cls, values, tx_type)
    except (DecodeError, ValueError, TypeError) as exc:
        raise PayloadError(f"{tx_type}: {exc}") from None
    return payload


class TxBuilder:
    """Signs transactions for one signer with one key: a fresh random nonce each time (so
    several servers may share the key), expiring `expires_in_ms` after now."""

    def __init__(self, key: crypto.PrivateKey, *, chain_id: str, signer: str,
                 expires_in_ms: int = EXPIRY_DEFAULT_MS, recipients: Any = None) -> None:
        """`recipients`: a `node.client.sealing.Resolver` (e.g. `node_recipients(client)`);
        with it, `build` seals confidential details given in plain (ADR 0024)."""
        self.key = key
        self.chain_id = chain_id
        self.signer = signer
        self.expires_in_ms = expires_in_ms
        self.recipients = recipients

    def sign(self, payload: txtypes.Payload) -> types.Tx:
        return types.Tx.create(self.key, chain_id=self.chain_id, signer=self.signer,
                               payload=payload, nonce=os.urandom(NONCE_BYTES),
                               expires_at_ms=int(time.time() * 1000) + self.expires_in_ms)

    def build(self, tx_type: str, **fields: Any) -> types.Tx:
        """E.g. build("financing.open", financing_id="F1", uscc=..., principal=90_000_000,
        currency="USD", pledges=[{"declaration_no": "D1", "amount": 54_000_000}])."""
        values = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in fields.items()}
        if self.recipients is not None:
            values = seal_values(tx_type, self.signer, values, self.recipients)
        return self.sign(build_payload(tx_type, values))
