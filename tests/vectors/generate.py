"""Builds the test vectors of docs/vectors/ from the project's own code (docs/vectors/README.md
describes every file). `python -m tests.vectors` writes them; tests/vectors/test_vectors.py
checks that they are what this module builds and, independently, what the code does with them.

Every case below states by hand whether the code must accept or refuse its input; building
fails when the code disagrees, so a vector never records a behaviour nobody chose.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Callable
from typing import Any, Final

import orjson

from node.client import sealing
from node.credentials import read_message, sign_read
from node.rpc import auth
from protocol import codec, crypto, limits, sealed, txtypes, types
from protocol.errors import DecodeError
from protocol.ledger import keys, smt
from protocol.ledger.kv import MemoryKV
from tests.vectors import parties
from tests.vectors.parties import CHAIN_ID, EXPIRES_AT_MS, T0_MS, digest_of, key_of, nonce_of

VECTORS_DIR: Final = pathlib.Path(__file__).resolve().parents[2] / "docs" / "vectors"
FORMAT: Final = 1  # the version of the vector files' own layout

# The schemas the codec vectors decode into, and the input limit the node applies to each.
SCHEMAS: Final[dict[str, tuple[type, int]]] = {
    "Tx": (types.Tx, limits.TX_BYTES_MAX),
    "Receipt": (types.Receipt, limits.MESSAGE_BYTES_MAX),
    "BlockHeader": (types.BlockHeader, limits.MESSAGE_BYTES_MAX),
    "ConsortiumConfig": (types.ConsortiumConfig, limits.MESSAGE_BYTES_MAX),
}
# A refusal whose detail comes from the JSON parser (orjson) is stated by this prefix only.
NOT_JSON: Final = "not valid JSON:"
NON_CANONICAL: Final = "non-canonical encoding"


def render(obj: Any) -> bytes:
    """The bytes of one vector file: 2-space indented, ASCII-only JSON (non-ASCII characters
    as \\u escapes, which any JSON reader turns back into the same string), ending in a
    newline."""
    return (json.dumps(obj, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def text_of(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_error(exc: DecodeError) -> dict[str, str]:
    message = str(exc)
    if exc.reason.startswith(NOT_JSON):
        message = NOT_JSON
    return {"class": type(exc).__name__, "path": exc.path, "message_prefix": message}


def _tx(tx_type: str, payload: txtypes.Payload, *, signer: str | None = None,
        chain_id: str = CHAIN_ID) -> types.Tx:
    signer = signer or parties.signer_of(tx_type)
    return types.Tx.create(key_of(signer), chain_id=chain_id, signer=signer, payload=payload,
                           nonce=nonce_of(tx_type), expires_at_ms=EXPIRES_AT_MS)


# ---------------------------------------------------------------------------- codec.json


def _receipt(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": "OK", "message": "", "status": "ok",
                            "tx_id": digest_of("receipt").hex(), "v": 1}
    body.update(changes)
    return body


def _dump(body: dict[str, Any]) -> bytes:
    return codec.dumps_canonical(body)


def _header() -> types.BlockHeader:
    return types.BlockHeader(CHAIN_ID, 1, digest_of("genesis"), 0, crypto.merkle_root([]),
                             crypto.merkle_root([]), digest_of("state"), T0_MS, parties.BANK,
                             key_of(parties.BANK).key_id, 0, 7)


def _config() -> types.ConsortiumConfig:
    def inst(inst_id: str, role: str, node: types.NodeInfo | None) -> types.Institution:
        key = key_of(inst_id)
        return types.Institution(inst_id, inst_id.upper(), role,
                                 (types.InstitutionKey(key.key_id, key.public_key),), node)

    node = types.NodeInfo("12D3KooWGRUVh7eTbb2rvX8NhpgqXHVpTBNNiMGbgQ4wZoZm5b5K",
                          ("/dns4/node.bank-a.example/tcp/7000",))
    return types.ConsortiumConfig(
        CHAIN_ID, T0_MS, (inst(parties.REGULATOR, txtypes.ROLE_REGULATOR, None),
                          inst(parties.CUSTOMS, txtypes.ROLE_CUSTOMS, None),
                          inst(parties.TAX, txtypes.ROLE_TAX, None),
                          inst(parties.BANK, txtypes.ROLE_BANK, node)),
        (parties.BANK,), types.DEFAULT_PARAMS)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    kind: str  # the class of input: "valid", "key-order", "float", ...
    schema: str
    data: bytes
    accept: bool
    note: str


def codec_cases() -> list[Case]:
    tx = _tx("financing.disburse", txtypes.DisburseFinancing("FIN-2026-0001"))
    tx_text = tx.encoded
    receipt = _dump(_receipt())
    header = codec.encode(_header())
    config = codec.encode(_config())
    apply_tx = _tx("financing.apply", parties.sample_payloads()["financing.apply"])
    apply_json = codec.to_json(apply_tx) | {"v": 1}
    rx = receipt.decode()
    tx_id = digest_of("receipt").hex()
    c = Case

    def term(spelling: bytes) -> bytes:
        """The header with its raft_term (0) spelled `spelling`."""
        return header.replace(b'"raft_term":0', b'"raft_term":' + spelling)

    def message(spelling: bytes) -> bytes:
        """A rejected receipt whose message is spelled `spelling` (a JSON string)."""
        return _dump(_receipt(status="rejected", code="BAD", message="x")).replace(b'"x"',
                                                                                 spelling)

    return [
        # ---- accepted: each is the one canonical encoding of its value
        c("receipt", "valid", "Receipt", receipt, True,
          "keys sorted, no whitespace, bytes as lowercase hex, \"v\": 1 at the top level"),
        c("receipt-rejected-unicode", "valid", "Receipt", _dump(_receipt(
            status="rejected", code="OVER_LIMIT",
            message="Montant d\u00e9pass\u00e9 \u2014 \u8d85\u51fa\u989d\u5ea6 \U0001d11e")),
          True, "non-ASCII characters are written as raw UTF-8 (2, 3 and 4 bytes), never "
          "escaped"),
        c("receipt-quote-backslash-slash", "valid", "Receipt", _dump(_receipt(
            status="rejected", code="BAD_INPUT", message='say "no" \\ a/b')),
          True, "only '\"' and '\\' are escaped (as \\\" and \\\\); '/' is not"),
        c("block-header", "valid", "BlockHeader", header, True,
          "integers as plain decimals, 0 included"),
        c("block-header-int64", "valid", "BlockHeader",
          codec.encode(dataclasses.replace(_header(), raft_index=limits.INT_MAX)), True,
          "raft_index is 2^63-1, the largest integer (beyond JavaScript's "
          "Number.MAX_SAFE_INTEGER: parse such values with BigInt)"),
        c("tx", "valid", "Tx", tx_text, True,
          "a whole transaction: the payload is a nested object, its schema chosen by \"type\""),
        c("tx-with-list", "valid", "Tx", apply_tx.encoded, True,
          "lists keep their order; objects inside are canonical too"),
        c("config-null-and-absent", "valid", "ConsortiumConfig", config, True,
          "an optional field is written as null (institutions[].node), except the ones the "
          "schema marks absent-when-null (timing), which are left out"),
        # ---- refused: not canonical (the value parses, the bytes are not its encoding)
        c("key-order", "key-order", "Receipt",
          b'{"v":1,' + receipt[1:].replace(b',"v":1}', b"}"), False,
          "keys must be sorted by code point"),
        c("whitespace-after-colon", "whitespace", "Receipt", receipt.replace(b'":', b'": '),
          False, "no insignificant whitespace"),
        c("pretty-printed", "whitespace", "Receipt",
          json.dumps(json.loads(receipt), indent=2, sort_keys=True).encode(), False,
          "no insignificant whitespace (indentation, newlines)"),
        c("trailing-newline", "whitespace", "Receipt", receipt + b"\n", False,
          "nothing after the closing brace"),
        c("duplicate-key-same-value", "duplicate-key", "Receipt",
          receipt.replace(b'"code":"OK",', b'"code":"OK","code":"OK",'), False,
          "a key appears once"),
        c("duplicate-key-other-value", "duplicate-key", "Receipt",
          receipt.replace(b'"code":"OK",', b'"code":"NO","code":"OK",'), False,
          "a key appears once, even when a parser would keep only the last"),
        c("escaped-ascii", "needless-escape", "Receipt", message(b'"\\u0041"'), False,
          "a character that needs no escape is written as itself"),
        c("escaped-slash", "needless-escape", "Receipt", message(b'"a\\/b"'), False,
          "'/' is not escaped"),
        c("escaped-non-ascii", "needless-escape", "Receipt", message(b'"\\u00e9"'), False,
          "non-ASCII characters are raw UTF-8, not \\u escapes"),
        c("negative-zero", "number-spelling", "BlockHeader", term(b"-0"), False,
          "-0 is written 0"),
        # ---- refused: not JSON at all
        c("empty", "not-json", "Receipt", b"", False, "empty input"),
        c("byte-order-mark", "not-json", "Receipt", b"\xef\xbb\xbf" + receipt, False,
          "no UTF-8 byte order mark"),
        c("invalid-utf8", "not-json", "Receipt", message(b'"\xff"'), False,
          "strings are valid UTF-8"),
        c("lone-surrogate-escape", "not-json", "Receipt", message(b'"\\ud800"'), False,
          "no unpaired UTF-16 surrogate, escaped or not"),
        c("raw-control-character", "not-json", "Receipt", message(b'"a\tb"'), False,
          "JSON forbids raw control characters in strings"),
        c("nan", "not-json", "BlockHeader", term(b"NaN"), False,
          "NaN and Infinity are not JSON"),
        c("leading-zero", "not-json", "BlockHeader", term(b"00"), False, "no leading zeros"),
        c("plus-sign", "not-json", "BlockHeader", term(b"+1"), False, "no '+' sign"),
        c("trailing-garbage", "not-json", "Receipt", receipt + b"x", False,
          "one JSON value and nothing else"),
        c("truncated", "not-json", "Receipt", receipt[:-1], False, "a complete JSON value"),
        # ---- refused: the envelope
        c("top-level-list", "top-level", "Receipt", b"[" + receipt + b"]", False,
          "the top level is an object"),
        c("version-missing", "version", "Receipt", receipt.replace(b',"v":1}', b"}"), False,
          "the top-level object carries \"v\""),
        c("version-2", "version", "Receipt", receipt.replace(b'"v":1', b'"v":2'), False,
          "\"v\" is 1 (limits.CODEC_VERSION)"),
        c("version-string", "version", "Receipt", receipt.replace(b'"v":1', b'"v":"1"'), False,
          "\"v\" is the integer 1"),
        c("oversize", "size", "Tx",
          tx_text[:-1] + b" " * (limits.TX_BYTES_MAX + 1 - len(tx_text)) + b"}", False,
          f"a transaction is at most {limits.TX_BYTES_MAX} bytes (checked before parsing)"),
        # ---- refused: fields
        c("missing-field", "fields", "Receipt", _dump({k: v for k, v in json.loads(rx).items()
                                                       if k != "message"}), False,
          "every field of the schema is present"),
        c("unknown-field", "fields", "Receipt", _dump(_receipt(memo="x")), False,
          "no field outside the schema"),
        c("float", "integer", "BlockHeader", term(b"1.0"), False,
          "integers only: 1.0 is a float"),
        c("exponent", "integer", "BlockHeader", term(b"1e3"), False,
          "integers only: an exponent makes a float"),
        c("integer-above-int64", "integer", "BlockHeader", term(b"9223372036854775808"), False,
          "integers are signed 64-bit (2^63 is one too many)"),
        c("integer-above-uint64", "integer", "BlockHeader", term(b"18446744073709551616"),
          False, "2^64 does not even parse as an integer"),
        c("integer-below-bound", "integer", "BlockHeader",
          header.replace(b'"height":1', b'"height":0'), False,
          "a field's own bounds: heights start at 1"),
        c("boolean-for-integer", "type", "BlockHeader", term(b"false"), False,
          "a boolean is not an integer"),
        c("string-for-integer", "type", "BlockHeader", term(b'"0"'), False,
          "an integer is not quoted"),
        c("null-for-required", "type", "Receipt", _dump(_receipt(tx_id=None)), False,
          "null only where the schema allows it"),
        c("object-for-list", "type", "Tx",
          _dump(apply_json | {"payload": apply_json["payload"] | {"pledges": {}}}), False,
          "a list is a JSON array"),
        c("bytes-uppercase", "bytes", "Receipt", _dump(_receipt(tx_id=tx_id.upper())), False,
          "bytes are lowercase hex"),
        c("bytes-0x-prefix", "bytes", "Receipt", _dump(_receipt(tx_id="0x" + tx_id[2:])),
          False, "bytes are bare hex, no 0x"),
        c("bytes-odd-length", "bytes", "Receipt", _dump(_receipt(tx_id=tx_id[:-1])), False,
          "two hex digits per byte"),
        c("bytes-wrong-length", "bytes", "Receipt", _dump(_receipt(tx_id=tx_id[:-2])), False,
          "a hash is 32 bytes"),
        c("string-too-long", "string", "Receipt",
          _dump(_receipt(status="rejected", code="X" * 65)), False,
          "a field's own length bound (code: 1 to 64 characters)"),
        c("string-empty", "string", "Receipt", _dump(_receipt(code="")), False,
          "a field's own length bound (code: at least one character)"),
        c("escaped-control-character", "string", "Receipt",
          _dump(_receipt(status="rejected", code="BAD", message="a\nb")), False,
          "strings hold no control character (U+0000-U+001F, U+007F), escaped or not"),
        c("raw-delete-character", "string", "Receipt",
          _dump(_receipt(status="rejected", code="BAD", message="a\x7fb")), False,
          "U+007F is a control character too"),
        c("list-too-short", "list", "Tx",
          _dump(apply_json | {"payload": apply_json["payload"] | {"pledges": []}}), False,
          "a list's own bounds: an application pledges at least one declaration"),
        c("null-for-absent-field", "absent-when-null", "ConsortiumConfig",
          _dump(json.loads(config) | {"timing": None}), False,
          "a field the schema marks absent-when-null is left out, never written null"),
        # ---- refused: the schema's own rules
        c("unknown-tx-type", "schema", "Tx",
          _dump(json.loads(tx_text) | {"type": "financing.steal"}), False,
          "\"type\" names a registered transaction type"),
        c("payload-format", "schema", "Tx",
          _dump(apply_json | {"payload": apply_json["payload"] | {"uscc": "91370200ma3c00001x"}}),
          False, "string formats (a USCC is 18 characters of GB 32100-2015's alphabet)"),
        c("receipt-invariant", "schema", "Receipt", _dump(_receipt(code="DONE")), False,
          "a receipt has code OK exactly when its status is ok"),
    ]


def _canonical_form(schema: str, data: bytes) -> str | None:
    """The canonical encoding of the value a non-canonical input spells, if it parses."""
    raw = orjson.loads(data)
    raw.pop("v")
    return codec.encode(codec.from_json(SCHEMAS[schema][0], raw)).decode()


def codec_vectors() -> dict[str, Any]:
    vectors = []
    for case in codec_cases():
        cls, max_bytes = SCHEMAS[case.schema]
        entry: dict[str, Any] = {"name": case.name, "kind": case.kind, "schema": case.schema,
                                 "note": case.note, "input_hex": case.data.hex(),
                                 "input_text": text_of(case.data)}
        try:
            value = codec.decode(cls, case.data, max_bytes=max_bytes)
        except DecodeError as exc:
            if case.accept:
                raise AssertionError(f"codec vector {case.name} was refused: {exc}") from None
            entry.update(valid=False, error=decode_error(exc))
            if exc.reason.startswith(NON_CANONICAL):
                entry["canonical_text"] = _canonical_form(case.schema, case.data)
        else:
            if not case.accept:
                raise AssertionError(f"codec vector {case.name} was accepted")
            assert codec.encode(value) == case.data
            entry.update(valid=True)
        vectors.append(entry)
    return {
        "format": FORMAT,
        "description": "Canonical encoding (docs/adr/0001-canonical-encoding.md): inputs to "
                       "decode into a schema, each accepted (it is the one canonical encoding "
                       "of its value) or refused with the error the node gives.",
        "schemas": {name: {"class": f"{cls.__module__}.{cls.__qualname__}",
                           "max_bytes": max_bytes} for name, (cls, max_bytes) in SCHEMAS.items()},
        "vectors": vectors,
    }


# ---------------------------------------------------------------------------- transactions.json


def _tx_entry(tx: types.Tx) -> dict[str, Any]:
    key = key_of(tx.signer)
    return {
        "type": tx.type,
        "signer": tx.signer,
        "signer_role": sorted(r for r, name in parties.SIGNER_BY_ROLE.items()
                              if name == tx.signer)[0],
        "seed": parties.seed_of(tx.signer).hex(),
        "public_key": key.public_key.hex(),
        "key_id": key.key_id.hex(),
        "tx": codec.to_json(tx),
        "sign_bytes": tx.sign_bytes.decode(),
        "tx_id": tx.id.hex(),
        "signature": tx.signature.hex(),
        "encoded": tx.encoded.decode(),
    }


def signed_txs() -> dict[str, types.Tx]:
    return {tx_type: _tx(tx_type, payload)
            for tx_type, payload in parties.sample_payloads().items()}


def _mistake(name: str, tx: types.Tx, message: bytes, note: str) -> dict[str, Any]:
    """A transaction signed over the wrong bytes: the node refuses it (BAD_SIGNATURE)."""
    bad = dataclasses.replace(tx, signature=key_of(tx.signer).sign(message))
    return {"name": name, "note": note, "signed_message_hex": message.hex(),
            "tx": codec.to_json(bad), "code": "BAD_SIGNATURE"}


def transaction_vectors(txs: dict[str, types.Tx]) -> dict[str, Any]:
    tx = txs["financing.apply"]
    prefix = crypto.hash_domain_prefix(crypto.DOMAIN_TX_SIGN)
    pretty = json.dumps(json.loads(tx.sign_bytes), indent=1, sort_keys=True).encode()
    unversioned = codec.dumps_canonical({k: v for k, v in json.loads(tx.sign_bytes).items()
                                         if k != "v"})
    return {
        "format": FORMAT,
        "description": "One signed transaction of every type (protocol/txtypes.py), from fixed "
                       "keys, nonces and times (docs/adr/0002-hashes-signatures-and-identities"
                       ".md).",
        "chain_id": CHAIN_ID,
        "tx_sign_prefix_hex": prefix.hex(),
        "tx_id_prefix_hex": crypto.hash_domain_prefix(crypto.DOMAIN_TX_ID).hex(),
        "key_id_prefix_hex": crypto.hash_domain_prefix(crypto.DOMAIN_KEY_ID).hex(),
        "key_id_bytes": limits.KEY_ID_BYTES,
        "vectors": [_tx_entry(t) for t in txs.values()],
        "mistakes": [
            _mistake("signed-without-prefix", tx, tx.sign_bytes,
                     "the signature covers the domain prefix too"),
            _mistake("signed-pretty-json", tx, prefix + pretty,
                     "the signed bytes are the canonical encoding, not any JSON of the "
                     "transaction"),
            _mistake("signed-without-version", tx, prefix + unversioned,
                     "the signed bytes carry \"v\": 1"),
            _mistake("signed-with-signature-field", tx, prefix + tx.encoded,
                     "the signed bytes leave the signature field out"),
        ],
    }


# ---------------------------------------------------------------------------- blocks.json

BLOCK_TX_TYPES: Final = (
    ("fx.publish", "enterprise.register", "declaration.register", "financing.apply",
     "financing.open"),
    (),
    ("financing.disburse", "financing.repay"),
)
# The receipt of each transaction of BLOCK_TX_TYPES (status, code, message).
BLOCK_RECEIPTS: Final = (
    (("ok", "OK", ""), ("ok", "OK", ""), ("ok", "OK", ""), ("ok", "OK", ""),
     ("rejected", "OVER_ADVANCE_RATE",
      "principal 900000.00 USD exceeds 90% of the pledged declarations")),
    (),
    (("ok", "OK", ""), ("rejected", "UNKNOWN_FINANCING", "no financing FIN-2026-0001")),
)


def build_blocks(txs: dict[str, types.Tx]) -> tuple[types.ConsortiumConfig,
                                                     list[tuple[types.Block,
                                                                tuple[types.Receipt, ...]]]]:
    config = _config()
    proposer = key_of(parties.BANK)
    prev = config.hash
    out = []
    for i, (tx_types, results) in enumerate(zip(BLOCK_TX_TYPES, BLOCK_RECEIPTS, strict=True)):
        block_txs = tuple(txs[t] for t in tx_types)
        receipts = tuple(types.Receipt(tx.id, *r) for tx, r in zip(block_txs, results,
                                                                   strict=True))
        header = types.BlockHeader(
            CHAIN_ID, i + 1, prev, len(block_txs), types.tx_root(block_txs),
            types.receipts_root(receipts), digest_of(f"state after block {i + 1}"),
            T0_MS + 1000 * (i + 1), parties.BANK, proposer.key_id, 2, 7 + i)
        block = types.Block.create(proposer, header, block_txs)
        out.append((block, receipts))
        prev = block.hash
    return config, out


def block_vectors(txs: dict[str, types.Tx]) -> dict[str, Any]:
    config, blocks = build_blocks(txs)
    proposer = key_of(parties.BANK)
    return {
        "format": FORMAT,
        "description": "The genesis hash and a few blocks: headers, their canonical encoding "
                       "and hash, the transaction and receipt Merkle roots, the proposer's "
                       "signature (protocol/types.py).",
        "genesis_prefix_hex": crypto.hash_domain_prefix(crypto.DOMAIN_GENESIS).hex(),
        "block_prefix_hex": crypto.hash_domain_prefix(crypto.DOMAIN_BLOCK).hex(),
        "block_sign_prefix_hex": crypto.hash_domain_prefix(crypto.DOMAIN_BLOCK_SIGN).hex(),
        "receipt_prefix_hex": crypto.hash_domain_prefix(crypto.DOMAIN_RECEIPT).hex(),
        "genesis": {"config": codec.to_json(config), "encoded": codec.encode(config).decode(),
                    "hash": config.hash.hex()},
        "proposer": {"institution": parties.BANK, "seed": parties.seed_of(parties.BANK).hex(),
                     "public_key": proposer.public_key.hex(),
                     "key_id": proposer.key_id.hex()},
        "blocks": [{
            "height": block.height,
            "header": codec.to_json(block.header),
            "header_encoded": codec.encode(block.header).decode(),
            "hash": block.hash.hex(),
            "signature": block.signature.hex(),
            "tx_ids": [tx.id.hex() for tx in block.txs],
            "tx_types": [tx.type for tx in block.txs],
            "receipts": [codec.to_json(r) for r in receipts],
            "receipt_hashes": [r.hash.hex() for r in receipts],
        } for block, receipts in blocks],
    }


# ---------------------------------------------------------------------------- merkle.json


def _proof(leaf: bytes, index: int, size: int, proof: tuple[bytes, ...] | list[bytes],
           root: bytes, *, name: str, note: str = "") -> dict[str, Any]:
    valid = crypto.merkle_verify(leaf, index, size, proof, root)
    return {"name": name, "note": note, "leaf": leaf.hex(), "index": index, "size": size,
            "proof": [p.hex() for p in proof], "root": root.hex(), "valid": valid}


def _flip(data: bytes) -> bytes:
    return bytes((data[0] ^ 1,)) + data[1:]


def _refused_proofs(leaves: list[bytes], index: int, root: bytes) -> list[dict[str, Any]]:
    size = len(leaves)
    proof = list(crypto.merkle_proof(leaves, index))
    leaf = leaves[index]
    out = [
        _proof(_flip(leaf), index, size, proof, root, name="wrong-leaf",
               note="another leaf at the same place"),
        _proof(leaf, index, size, [proof[0], _flip(proof[1]), *proof[2:]], root,
               name="wrong-sibling", note="one hash of the path changed"),
        _proof(leaf, index, size, proof, _flip(root), name="wrong-root",
               note="checked against another root"),
        _proof(leaf, index + 1, size, proof, root, name="wrong-index",
               note="the path of another position"),
        _proof(leaf, index, 2 * size, proof, root, name="wrong-size",
               note="the tree size fixes the path's shape (sizes that give the same shape "
               "verify alike: 5, 6 and 7 for index 2)"),
        _proof(leaf, index, size, proof[:-1], root, name="path-too-short"),
        _proof(leaf, index, size, [*proof, proof[-1]], root, name="path-too-long"),
        _proof(leaf, size, size, proof, root, name="index-out-of-range"),
    ]
    assert not any(p["valid"] for p in out), [p["name"] for p in out if p["valid"]]
    return out


# Rooted state keys (protocol/ledger/keys.py) and values of the state-tree vectors; the last
# two share their path's first nibble, so the tree grows a level under the root.
STATE_ITEMS: Final = (
    (keys.institution(parties.BANK), b'{"id":"bank.a","v":1}'),
    (keys.enterprise(parties.EXPORTER), b'{"uscc":"91370200MA3C00001X","v":1}'),
    (keys.declaration("DEC-2026-0001"), b'{"no":"DEC-2026-0001","v":1}'),
)


def _sharing_first_nibble() -> tuple[bytes, bytes]:
    """A declaration key whose path shares its first nibble with the first STATE_ITEMS key's."""
    target = smt.key_path(STATE_ITEMS[0][0]) >> 252
    n = next(n for n in range(1000)
             if smt.key_path(keys.declaration(f"DEC-2026-{n:04d}")) >> 252 == target)
    return keys.declaration(f"DEC-2026-{n:04d}"), b'{"no":"DEC-2026-%04d","v":1}' % n


# The state of the proof vectors: declarations DEC-2026-0000.. (two levels of the tree).
PROOF_STATE_ITEMS: Final = 40


def _state_proof(name: str, root: bytes, key: bytes, value: bytes | None,
                 proof: smt.StateProof, note: str = "") -> dict[str, Any]:
    return {"name": name, "key_hex": key.hex(), "value_hex": None if value is None
            else value.hex(), "root": root.hex(), "proof": codec.to_json(proof),
            "valid": smt.verify_proof(root, key, value, proof), **({"note": note} if note else {})}


def state_proof_vectors() -> dict[str, Any]:
    """Proofs of presence and of absence (both kinds) in one small state, and refused ones."""
    items = {keys.declaration(f"DEC-2026-{n:04d}"): b'{"no":"DEC-2026-%04d","v":1}' % n
             for n in range(PROOF_STATE_ITEMS)}
    kv = MemoryKV()
    root = smt.update(kv, items)
    member, value = next(iter(items.items()))
    absent = (keys.declaration(f"DEC-2027-{n:04d}") for n in range(1000))
    by_end: dict[bool, tuple[bytes, smt.StateProof]] = {}
    for key in absent:
        proof = smt.prove(kv, key)
        by_end.setdefault(proof.other is not None, (key, proof))
        if len(by_end) == 2:
            break
    empty_key, empty_proof = by_end[False]
    other_key, other_proof = by_end[True]
    proof = smt.prove(kv, member)
    s = proof.siblings
    flipped = (s[0][:5] + bytes((s[0][5] ^ 1,)) + s[0][6:], *s[1:])
    made_up = smt.LoneLeaf((smt.key_path(member) ^ 1).to_bytes(32, "big"), smt.value_hash(value))
    assert other_proof.other is not None
    valid = [
        _state_proof("present", root, member, value, proof),
        _state_proof("absent-empty-slot", root, empty_key, None, empty_proof,
                     "the key's path ends at an empty child of a node"),
        _state_proof("absent-other-leaf", root, other_key, None, other_proof,
                     "the key's path ends at another key's lone leaf, opened"),
    ]
    refused = [
        _state_proof("wrong-value", root, member, value + b" ", proof),
        _state_proof("flipped-sibling-byte", root, member, value,
                     dataclasses.replace(proof, siblings=flipped)),
        _state_proof("path-truncated", root, member, value,
                     dataclasses.replace(proof, siblings=s[:-1])),
        _state_proof("path-extended", root, member, value,
                     dataclasses.replace(proof, siblings=(*s, bytes(480)))),
        _state_proof("wrong-root", smt.compute_root([*items.items(), (b"x", b"y")]), member,
                     value, proof),
        _state_proof("present-claimed-absent", root, member, None, proof),
        _state_proof("absent-claimed-present", root, empty_key, b"{}", empty_proof),
        _state_proof("member-leaf-under-made-up-path", root, member, None,
                     smt.StateProof(s, made_up),
                     "the member's own leaf passed off as another key's: refused because "
                     "the verifier recomputes the leaf hash from the opened path"),
        _state_proof("other-leaf-not-on-the-path", root, other_key, None, dataclasses.replace(
            other_proof, other=smt.LoneLeaf(bytes(32), other_proof.other.value_hash)),
            "another leaf must share the key's first nibbles down to where the path ends"),
    ]
    assert all(v["valid"] for v in valid) and not any(v["valid"] for v in refused)
    return {"items": [{"key_hex": k.hex(), "value_hex": v.hex()} for k, v in items.items()],
            "root": root.hex(), "proofs": valid, "refused": refused}


def merkle_vectors(txs: dict[str, types.Tx]) -> dict[str, Any]:
    _, blocks = build_blocks(txs)
    block, receipts = blocks[0]
    tx_ids = [tx.id for tx in block.txs]
    receipt_hashes = [r.hash for r in receipts]
    roots = []
    for n in range(0, 8):
        leaves = [digest_of(f"leaf {i}") for i in range(n)]
        roots.append({"leaves": [x.hex() for x in leaves],
                      "leaf_hashes": [crypto.merkle_leaf(x).hex() for x in leaves],
                      "root": crypto.merkle_root(leaves).hex()})
    tx_proofs = [_proof(leaf, i, len(tx_ids), crypto.merkle_proof(tx_ids, i),
                        block.header.tx_root, name=f"block-1-tx-{i}")
                 for i, leaf in enumerate(tx_ids)]
    receipt_proofs = [_proof(leaf, i, len(receipt_hashes),
                             crypto.merkle_proof(receipt_hashes, i), block.header.receipts_root,
                             name=f"block-1-receipt-{i}")
                      for i, leaf in enumerate(receipt_hashes)]
    assert all(p["valid"] for p in tx_proofs + receipt_proofs)
    items = [*STATE_ITEMS, _sharing_first_nibble()]
    state_sets = [[], [0], [0, 1], [0, 3], [0, 1, 2], [0, 1, 2, 3]]
    return {
        "format": FORMAT,
        "description": "Merkle trees: RFC 6962 trees over a block's transaction ids and "
                       "receipt hashes, inclusion proofs (valid and refused), and the state "
                       "tree (protocol/ledger/smt.py) roots of a few key-value sets, and "
                       "its state proofs (ADR 0035): present, absent, refused.",
        "tree_roots": roots,
        "tx_proofs": tx_proofs,
        "receipt_proofs": receipt_proofs,
        "refused_proofs": _refused_proofs(tx_ids, 2, block.header.tx_root),
        "state_tree": {
            "items": [{"key_hex": k.hex(), "value_hex": v.hex(),
                       "path": smt.key_path(k).to_bytes(32, "big").hex(),
                       "leaf_hash": smt.leaf_hash(smt.key_path(k), v).hex()}
                      for k, v in items],
            "roots": [{"items": s, "root": smt.compute_root([items[i] for i in s]).hex()}
                      for s in state_sets],
        },
        "state_proofs": state_proof_vectors(),
    }


# ---------------------------------------------------------------------------- signed-reads.json

READ_TS_MS: Final = T0_MS + 5_000


def _read_case(name: str, note: str, *, signed_params: dict[str, Any],
               sent_params: dict[str, Any], chain_id: str = CHAIN_ID,
               now_ms: int = READ_TS_MS, auth_param: Any = None,
               replayed: bool = False, key_name: str = parties.BANK) -> dict[str, Any]:
    reader_key = key_of(parties.BANK)
    key = key_of(key_name)
    method = "credit.read"
    if auth_param is None:
        auth_param = sign_read(key, chain_id, method, signed_params, parties.BANK, READ_TS_MS)
    params = {**sent_params, "auth": auth_param}
    entry: dict[str, Any] = {"name": name, "note": note, "method": method,
                             "signed_chain_id": chain_id, "signed_params": signed_params,
                             "params": params, "now_ms": now_ms, "replayed": replayed}
    if "signature" in auth_param:
        entry["signing_public_key"] = key.public_key.hex()
        entry["signed_message_hex"] = read_message(
            chain_id, method, signed_params, parties.BANK, key.key_id, READ_TS_MS).hex()
    try:
        proof = auth.parse_read_proof(params["auth"])
        cache = auth.ReplayCache(2 * auth.READ_WINDOW_MS)
        for _ in range(2 if replayed else 1):
            public_key = reader_key.public_key if proof.key_id == reader_key.key_id else None
            auth.verify_read(proof, public_key=public_key, chain_id=CHAIN_ID, method=method,
                             params=params, now_ms=now_ms, replays=cache)
    except auth.AuthError as exc:
        entry.update(valid=False, error={"rpc_code": -32030, "data_code": "BAD_READ_AUTH",
                                         "reason": exc.reason})
    else:
        entry.update(valid=True)
    return entry


def signed_read_vectors() -> dict[str, Any]:
    key = key_of(parties.BANK)
    params = {"uscc": parties.EXPORTER, "read_tx": digest_of("credit.read tx").hex()}
    good = sign_read(key, CHAIN_ID, "credit.read", params, parties.BANK, READ_TS_MS)
    vectors = [
        _read_case("valid", "the node's clock at the signing time", signed_params=params,
                   sent_params=params),
        _read_case("valid-clock-ahead", f"the node's clock {auth.READ_WINDOW_MS} ms ahead: "
                   "still inside the window", signed_params=params, sent_params=params,
                   now_ms=READ_TS_MS + auth.READ_WINDOW_MS),
        _read_case("wrong-params", "signed for another file than the one asked for",
                   signed_params=params, sent_params={**params, "uscc": "91370200MA3C00002X"}),
        _read_case("extra-param", "a parameter added after signing",
                   signed_params=params, sent_params={**params, "reader": parties.BANK}),
        _read_case("wrong-chain", "signed for another chain",
                   signed_params=params, sent_params=params, chain_id="crossbill-other"),
        _read_case("expired", f"more than {auth.READ_WINDOW_MS} ms from the node's clock",
                   signed_params=params, sent_params=params,
                   now_ms=READ_TS_MS + auth.READ_WINDOW_MS + 1),
        _read_case("replayed", "the same signed request a second time",
                   signed_params=params, sent_params=params, replayed=True),
        _read_case("unknown-key", "signed with a key the ledger does not list for the reader",
                   signed_params=params, sent_params=params, key_name="stranger"),
        _read_case("malformed-auth", "auth lacks its signature", signed_params=params,
                   sent_params=params,
                   auth_param={k: v for k, v in good.items() if k != "signature"}),
    ]
    return {
        "format": FORMAT,
        "description": "Signed read requests: the `auth` parameter of credit.read, "
                       "audit.credit_reads, sub.party and capital.* (node/credentials.py, "
                       "docs/adr/0024-sealed-fields-and-audited-credit-reads.md).",
        "chain_id": CHAIN_ID,
        "read_prefix_hex": b"crossbill/rpc-read\x00".hex(),
        "read_window_ms": auth.READ_WINDOW_MS,
        "reader": {"institution": parties.BANK, "seed": parties.seed_of(parties.BANK).hex(),
                   "public_key": key.public_key.hex(), "key_id": key.key_id.hex()},
        "vectors": vectors,
    }


# ---------------------------------------------------------------------------- sealed.json

# The sealed fields of the vectors: (transaction type, record id, plain details).
SEALED_CASES: Final = (
    ("declaration.register", "DEC-2026-0001",
     txtypes.DeclarationDetails(digest_of("salt/declaration")[:limits.SEALED_SALT_BYTES],
                                "Hamburg Buyer GmbH", "DE", "machine parts, 40 crates")),
    ("financing.open", "FIN-2026-0001",
     txtypes.FinancingTerms(digest_of("salt/terms")[:limits.SEALED_SALT_BYTES], 450, 1_000_00,
                            "pre-shipment financing", "LC 77/2026")),
)


def _seal_case(tx_type: str, record_id: str, details: Any) -> dict[str, Any]:
    field = txtypes.SEALED_FIELDS[tx_type]
    data_key = digest_of(f"data key/{record_id}")
    nonce = digest_of(f"nonce/{record_id}")[:limits.SEALED_NONCE_BYTES]
    aad = sealed.context(field.record_kind, record_id)
    ciphertext, plain_hash = sealed.encrypt(details, data_key, nonce, aad)
    party_names = (parties.signer_of(tx_type), parties.EXPORTER, parties.REGULATOR)
    wraps, wrapped = [], []
    for party in party_names:
        ephemeral = digest_of(f"ephemeral/{record_id}/{party}")
        wrapped_key = sealing.wrap(data_key, parties.recipient(party),
                                   lambda n, e=ephemeral: e[:n])
        private = sealing.Keyring.from_signing_key(party, key_of(party)).private(1)
        assert sealed.unwrap(wrapped_key, private) == data_key
        wrapped.append(wrapped_key)
        wraps.append({"party": party, "key_version": 1,
                      "recipient_private_key": private.hex(),
                      "recipient_public_key": parties.recipient(party).public_key.hex(),
                      "ephemeral_seed": ephemeral.hex(), "box": wrapped_key.box.hex()})
    value = sealed.Sealed(nonce, ciphertext, plain_hash, tuple(wrapped))
    assert sealed.decrypt(value, data_key, aad, type(details)) == details
    return {"tx_type": tx_type, "field": field.field, "record_kind": field.record_kind,
            "record_id": record_id, "details_class": type(details).__name__,
            "details": codec.to_json(details), "plain": codec.encode(details).decode(),
            "plain_hash": plain_hash.hex(), "aad_hex": aad.hex(), "data_key": data_key.hex(),
            "nonce": nonce.hex(), "ciphertext": ciphertext.hex(), "wraps": wraps,
            "sealed": codec.to_json(value)}


def _sealed_refusals(case: dict[str, Any]) -> list[dict[str, Any]]:
    """Sealed fields that do not open, each with the error the client library gives: the
    inputs of `sealed.decrypt` (or `sealed.unwrap`) with one of them wrong."""
    value = codec.from_json(sealed.Sealed, case["sealed"])
    details_cls = txtypes.SEALED_FIELDS[case["tx_type"]].details
    data_key = bytes.fromhex(case["data_key"])
    aad = bytes.fromhex(case["aad_hex"])
    other_aad = sealed.context(case["record_kind"], case["record_id"] + "-B")
    out = []
    for name, note, ciphertext, plain_hash, context in (
        ("tampered-ciphertext", "one bit of the ciphertext changed", _flip(value.ciphertext),
         value.plain_hash, aad),
        ("moved-to-another-record", "decrypted under another record's context",
         value.ciphertext, value.plain_hash, other_aad),
        ("wrong-plain-hash", "plain_hash does not match the plain text", value.ciphertext,
         _flip(value.plain_hash), aad),
    ):
        attempt = dataclasses.replace(value, ciphertext=ciphertext, plain_hash=plain_hash)
        try:
            sealed.decrypt(attempt, data_key, context, details_cls)
        except sealed.SealedError as exc:
            out.append({"name": name, "note": note, "data_key": data_key.hex(),
                        "nonce": value.nonce.hex(), "ciphertext": ciphertext.hex(),
                        "plain_hash": plain_hash.hex(), "aad_hex": context.hex(),
                        "error": str(exc)})
        else:
            raise AssertionError(f"sealed refusal {name} opened")
    stranger = sealing.Keyring.from_signing_key("stranger", key_of("stranger")).private(1)
    try:
        sealed.unwrap(value.keys[0], stranger)
    except sealed.SealedError as exc:
        out.append({"name": "wrong-private-key", "note": "a box opened with another key",
                    "party": value.keys[0].party, "key_version": value.keys[0].key_version,
                    "box": value.keys[0].box.hex(), "recipient_private_key": stranger.hex(),
                    "error": str(exc)})
    else:
        raise AssertionError("a box opened with a stranger's key")
    return out


def sealed_vectors() -> dict[str, Any]:
    cases = [_seal_case(*c) for c in SEALED_CASES]
    return {
        "format": FORMAT,
        "description": "Sealed fields (docs/adr/0024-sealed-fields-and-audited-credit-reads"
                       ".md, protocol/sealed.py): details encrypted with AES-256-GCM under a "
                       "data key, the key wrapped to each party in a libsodium sealed box.",
        "plain_prefix_hex": crypto.hash_domain_prefix(crypto.DOMAIN_SEALED_PLAIN).hex(),
        "context_prefix_hex": crypto.hash_domain_prefix(crypto.DOMAIN_SEALED_CONTEXT).hex(),
        "vectors": cases,
        "refused": _sealed_refusals(cases[0]),
    }


# ---------------------------------------------------------------------------- all files


def build() -> dict[str, bytes]:
    """Every vector file: name -> bytes."""
    txs = signed_txs()
    makers: dict[str, Callable[[], dict[str, Any]]] = {
        "codec.json": codec_vectors,
        "transactions.json": lambda: transaction_vectors(txs),
        "blocks.json": lambda: block_vectors(txs),
        "merkle.json": lambda: merkle_vectors(txs),
        "signed-reads.json": signed_read_vectors,
        "sealed.json": sealed_vectors,
    }
    return {name: render(make()) for name, make in makers.items()}
