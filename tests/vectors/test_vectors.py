"""The test vectors of docs/vectors/ (its README.md describes them).

1. The committed files are exactly what tests/vectors/generate.py builds from the code today.
2. Independently of the generator, each vector is checked against the project's code, the way
   an integrator would use it: inputs decoded or refused with the stated error, transaction ids
   and hashes recomputed from the stated bytes and domain prefixes, signatures verified with
   the stated public keys, Merkle roots and proofs recomputed, signed reads checked by the
   node's own checks.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
import subprocess
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.bindings import crypto_box_seed_keypair
from nacl.exceptions import BadSignatureError
from nacl.public import PrivateKey as BoxPrivateKey
from nacl.public import SealedBox
from nacl.signing import VerifyKey

from node.credentials import read_message
from node.rpc import auth, methods
from protocol import codec, crypto, genesis, limits, sealed, txtypes, types, versions
from protocol.errors import DecodeError, ValidationError
from protocol.ledger import smt
from protocol.ledger.kv import MemoryKV
from protocol.validation import validate_basic_block, validate_basic_tx, validate_chain_link
from tests.vectors import generate
from tests.vectors.generate import SCHEMAS, VECTORS_DIR

# Files of docs/vectors/ another part of the project writes and checks (ADR 0033's tests).
OTHER_FILES = {"client-auth.json"}
# Every class of input the codec vectors must keep covering.
CODEC_KINDS = {"valid", "key-order", "whitespace", "duplicate-key", "needless-escape",
               "number-spelling", "not-json", "top-level", "version", "size", "fields",
               "integer", "type", "bytes", "string", "list", "absent-when-null", "schema"}
VECTORS_BYTES_MAX = 1024 * 1024
CHECK_JS = pathlib.Path(__file__).with_name("check_vectors.mjs")
NODE_RUN_S = 60


def load(name: str) -> Any:
    return json.loads((VECTORS_DIR / name).read_bytes())


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ed25519_verifies(public_key: str, message: bytes, signature: str) -> bool:
    try:
        VerifyKey(bytes.fromhex(public_key)).verify(message, bytes.fromhex(signature))
    except BadSignatureError:
        return False
    return True


class Registry:
    """Who may sign, as a vector file states it: signer -> (role, public key hex)."""

    def __init__(self, signers: dict[str, tuple[str, str]]) -> None:
        self.signers = signers

    def signer_role(self, signer: str) -> str | None:
        return self.signers[signer][0] if signer in self.signers else None

    def signer_public_key(self, signer: str, key_id: bytes) -> bytes | None:
        if signer not in self.signers:
            return None
        public_key = bytes.fromhex(self.signers[signer][1])
        return public_key if crypto.key_id_of(public_key) == key_id else None


# ---------------------------------------------------------------------------- the files


def test_committed_vectors_are_what_the_code_builds() -> None:
    built = generate.build()
    for name, data in built.items():
        path = VECTORS_DIR / name
        assert path.exists(), f"{path} is missing: run python -m tests.vectors"
        assert path.read_bytes() == data, f"{path} is stale: run python -m tests.vectors"
    on_disk = {p.name for p in VECTORS_DIR.glob("*.json")}
    assert on_disk - OTHER_FILES == set(built), "a vector file nobody builds"
    readme = (VECTORS_DIR / "README.md").read_text()
    for name in sorted(set(built) | OTHER_FILES):
        assert f"`{name}`" in readme, f"README.md does not describe {name}"


def test_vectors_are_small_ascii_json() -> None:
    total = 0
    for path in VECTORS_DIR.glob("*.json"):
        data = path.read_bytes()
        total += len(data)
        data.decode("ascii")  # non-ASCII only as \u escapes: no reader's charset matters
        json.loads(data)
    assert total < VECTORS_BYTES_MAX


# ---------------------------------------------------------------------------- codec.json


def test_codec_vectors_cover_every_class_of_input() -> None:
    vectors = load("codec.json")["vectors"]
    assert {v["kind"] for v in vectors} == CODEC_KINDS
    assert {v["valid"] for v in vectors if v["kind"] != "valid"} == {False}
    assert {v["valid"] for v in vectors if v["kind"] == "valid"} == {True}


@pytest.mark.parametrize("vector", load("codec.json")["vectors"], ids=lambda v: v["name"])
def test_codec_vector(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["input_hex"])
    if vector["input_text"] is not None:
        assert vector["input_text"].encode() == data
    schema = load("codec.json")["schemas"][vector["schema"]]
    cls, max_bytes = SCHEMAS[vector["schema"]]
    assert schema == {"class": f"{cls.__module__}.{cls.__qualname__}", "max_bytes": max_bytes}
    if vector["valid"]:
        assert codec.encode(codec.decode(cls, data, max_bytes=max_bytes)) == data
        return
    with pytest.raises(DecodeError) as caught:
        codec.decode(cls, data, max_bytes=max_bytes)
    error = vector["error"]
    assert error["class"] == "DecodeError"
    assert caught.value.path == error["path"]
    assert str(caught.value).startswith(error["message_prefix"])
    if "canonical_text" in vector:  # the value parses: its one canonical encoding
        canonical = vector["canonical_text"].encode()
        value = codec.decode(cls, canonical)
        raw = orjson.loads(data)
        raw.pop("v")
        assert codec.from_json(cls, raw) == value
        assert canonical != data


# ---------------------------------------------------------------------------- transactions.json


def test_every_transaction_type_has_a_vector() -> None:
    types_in_file = [v["type"] for v in load("transactions.json")["vectors"]]
    assert sorted(types_in_file) == sorted(txtypes.REGISTRY)


def _tx_registry(vectors: list[dict[str, Any]]) -> Registry:
    return Registry({v["signer"]: (v["signer_role"], v["public_key"]) for v in vectors})


@pytest.mark.parametrize("vector", load("transactions.json")["vectors"], ids=lambda v: v["type"])
def test_transaction_vector(vector: dict[str, Any]) -> None:
    doc = load("transactions.json")
    sign_bytes = vector["sign_bytes"].encode()
    # The signer's key from its seed, and its key id.
    key = crypto.PrivateKey(bytes.fromhex(vector["seed"]))
    assert key.public_key.hex() == vector["public_key"]
    key_id = sha256(bytes.fromhex(doc["key_id_prefix_hex"]) + key.public_key)
    assert key_id[:doc["key_id_bytes"]].hex() == vector["key_id"] == vector["tx"]["key_id"]
    # The canonical encoding decodes, and is the JSON object a client submits.
    tx = types.Tx.decode(vector["encoded"].encode())
    assert codec.to_json(tx) == vector["tx"]
    assert methods.parse_tx(vector["tx"]) == tx  # what tx.submit makes of its parameter
    # The signing bytes: the encoding without the signature field.
    assert tx.sign_bytes == sign_bytes
    without_signature = {k: v for k, v in json.loads(vector["encoded"]).items()
                         if k != "signature"}
    assert codec.dumps_canonical(without_signature) == sign_bytes
    # The id and the signature.
    assert sha256(bytes.fromhex(doc["tx_id_prefix_hex"]) + sign_bytes).hex() == vector["tx_id"]
    assert tx.id.hex() == vector["tx_id"]
    message = bytes.fromhex(doc["tx_sign_prefix_hex"]) + sign_bytes
    assert ed25519_verifies(vector["public_key"], message, vector["signature"])
    assert key.sign(message).hex() == vector["signature"]  # Ed25519 is deterministic
    # The node's admission check accepts it.
    validate_basic_tx(tx, chain_id=doc["chain_id"], registry=_tx_registry(doc["vectors"]),
                      protocol_version=versions.IMPLEMENTED_VERSION)


@pytest.mark.parametrize("mistake", load("transactions.json")["mistakes"],
                         ids=lambda m: m["name"])
def test_transaction_signed_over_the_wrong_bytes_is_refused(mistake: dict[str, Any]) -> None:
    doc = load("transactions.json")
    tx = codec.from_json(types.Tx, mistake["tx"])
    signer = next(v for v in doc["vectors"] if v["signer"] == tx.signer)
    assert ed25519_verifies(signer["public_key"], bytes.fromhex(mistake["signed_message_hex"]),
                            mistake["tx"]["signature"])  # a real signature, of other bytes
    with pytest.raises(ValidationError) as caught:
        validate_basic_tx(tx, chain_id=doc["chain_id"], registry=_tx_registry(doc["vectors"]),
                          protocol_version=versions.IMPLEMENTED_VERSION)
    assert caught.value.code == mistake["code"]


# ---------------------------------------------------------------------------- blocks.json


def test_block_vectors() -> None:
    doc = load("blocks.json")
    txs = {v["tx_id"]: v for v in load("transactions.json")["vectors"]}
    config = genesis.config_from_json(doc["genesis"]["config"])
    assert codec.encode(config) == doc["genesis"]["encoded"].encode()
    assert sha256(bytes.fromhex(doc["genesis_prefix_hex"]) + codec.encode(config)).hex() == \
        doc["genesis"]["hash"] == config.hash.hex()
    proposer = doc["proposer"]
    assert crypto.PrivateKey(bytes.fromhex(proposer["seed"])).public_key.hex() == \
        proposer["public_key"]
    prev_hash, prev_height, prev_time = config.hash, 0, config.genesis_time_ms
    for vector in doc["blocks"]:
        header = codec.from_json(types.BlockHeader, vector["header"])
        encoded = vector["header_encoded"].encode()
        assert codec.decode(types.BlockHeader, encoded) == header
        assert sha256(bytes.fromhex(doc["block_prefix_hex"]) + encoded).hex() == vector["hash"]
        assert header.hash.hex() == vector["hash"]
        assert ed25519_verifies(proposer["public_key"],
                                bytes.fromhex(doc["block_sign_prefix_hex"] + vector["hash"]),
                                vector["signature"])
        # The roots: RFC 6962 trees of the transaction ids and of the receipt hashes.
        tx_ids = [bytes.fromhex(i) for i in vector["tx_ids"]]
        assert header.tx_count == len(tx_ids)
        assert crypto.merkle_root(tx_ids) == header.tx_root
        receipts = [codec.from_json(types.Receipt, r) for r in vector["receipts"]]
        assert [r.tx_id for r in receipts] == tx_ids
        hashes = [sha256(bytes.fromhex(doc["receipt_prefix_hex"]) + codec.encode(r))
                  for r in receipts]
        assert [h.hex() for h in hashes] == vector["receipt_hashes"]
        assert crypto.merkle_root(hashes) == header.receipts_root
        # The whole block, its transactions from transactions.json, passes the node's checks.
        block_txs = tuple(types.Tx.decode(txs[i]["encoded"].encode()) for i in vector["tx_ids"])
        assert [tx.type for tx in block_txs] == vector["tx_types"]
        block = types.Block(header, block_txs, bytes.fromhex(vector["signature"]))
        validate_basic_block(block, chain_id=config.chain_id, registry=config,
                             orderers=config.orderers, params=config.params)
        validate_chain_link(prev_hash, prev_height, prev_time, header)
        prev_hash, prev_height, prev_time = header.hash, header.height, header.timestamp_ms


# ---------------------------------------------------------------------------- merkle.json


def test_merkle_tree_roots() -> None:
    for tree in load("merkle.json")["tree_roots"]:
        leaves = [bytes.fromhex(x) for x in tree["leaves"]]
        assert [sha256(b"\x00" + x).hex() for x in leaves] == tree["leaf_hashes"]
        assert crypto.merkle_root(leaves).hex() == tree["root"]


def test_merkle_proofs() -> None:
    doc = load("merkle.json")
    block = load("blocks.json")["blocks"][0]
    proofs = doc["tx_proofs"] + doc["receipt_proofs"] + doc["refused_proofs"]
    for p in proofs:
        got = crypto.merkle_verify(bytes.fromhex(p["leaf"]), p["index"], p["size"],
                                   [bytes.fromhex(x) for x in p["proof"]],
                                   bytes.fromhex(p["root"]))
        assert got is p["valid"], p["name"]
    assert [p["leaf"] for p in doc["tx_proofs"]] == block["tx_ids"]
    assert {p["root"] for p in doc["tx_proofs"]} == {block["header"]["tx_root"]}
    assert [p["leaf"] for p in doc["receipt_proofs"]] == block["receipt_hashes"]
    assert {p["root"] for p in doc["receipt_proofs"]} == {block["header"]["receipts_root"]}
    assert {p["valid"] for p in doc["tx_proofs"] + doc["receipt_proofs"]} == {True}
    assert {p["valid"] for p in doc["refused_proofs"]} == {False}


def test_state_tree_vectors() -> None:
    tree = load("merkle.json")["state_tree"]
    items = [(bytes.fromhex(i["key_hex"]), bytes.fromhex(i["value_hex"])) for i in tree["items"]]
    for (key, value), vector in zip(items, tree["items"], strict=True):
        path = sha256(b"crossbill/state-key\x00" + key)
        assert path.hex() == vector["path"]
        value_hash = sha256(b"crossbill/state-value\x00" + value)
        assert sha256(b"\x00" + path + value_hash).hex() == vector["leaf_hash"]
        assert smt.leaf_hash(smt.key_path(key), value).hex() == vector["leaf_hash"]
    assert tree["items"][0]["path"][0] == tree["items"][3]["path"][0]  # a level below the root
    for vector in tree["roots"]:
        assert smt.compute_root([items[i] for i in vector["items"]]).hex() == vector["root"]


def test_state_proof_vectors() -> None:
    doc = load("merkle.json")["state_proofs"]
    items = {bytes.fromhex(i["key_hex"]): bytes.fromhex(i["value_hex"]) for i in doc["items"]}
    kv = MemoryKV()
    assert smt.update(kv, items).hex() == doc["root"]
    for vector in doc["proofs"] + doc["refused"]:
        proof = codec.from_json(smt.StateProof, vector["proof"])
        key = bytes.fromhex(vector["key_hex"])
        value = None if vector["value_hex"] is None else bytes.fromhex(vector["value_hex"])
        root = bytes.fromhex(vector["root"])
        assert smt.verify_proof(root, key, value, proof) is vector["valid"], vector["name"]
    for vector in doc["proofs"]:  # what the tree proves today
        assert codec.to_json(smt.prove(kv, bytes.fromhex(vector["key_hex"]))) == vector["proof"]
    assert {v["valid"] for v in doc["proofs"]} == {True}
    assert {v["valid"] for v in doc["refused"]} == {False}
    assert {v["name"] for v in doc["proofs"]} == {"present", "absent-empty-slot",
                                                  "absent-other-leaf"}


# ---------------------------------------------------------------------------- signed-reads.json


@pytest.mark.parametrize("vector", load("signed-reads.json")["vectors"],
                         ids=lambda v: v["name"])
def test_signed_read_vector(vector: dict[str, Any]) -> None:
    doc = load("signed-reads.json")
    reader = doc["reader"]
    assert crypto.PrivateKey(bytes.fromhex(reader["seed"])).public_key.hex() == \
        reader["public_key"]
    params = vector["params"]
    if "signed_message_hex" in vector:  # what the reader signed, rebuilt from what it signed
        message = bytes.fromhex(vector["signed_message_hex"])
        signed = params["auth"]
        body = {"chain_id": vector["signed_chain_id"], "method": vector["method"],
                "params": vector["signed_params"], "reader": signed["reader"],
                "key_id": signed["key_id"], "ts_ms": signed["ts_ms"]}
        assert message == bytes.fromhex(doc["read_prefix_hex"]) + codec.dumps_canonical(body)
        assert message == read_message(vector["signed_chain_id"], vector["method"],
                                       vector["signed_params"], signed["reader"],
                                       bytes.fromhex(signed["key_id"]), signed["ts_ms"])
        assert crypto.key_id_of(bytes.fromhex(vector["signing_public_key"])).hex() == \
            signed["key_id"]
        assert ed25519_verifies(vector["signing_public_key"], message, signed["signature"])
    registry = Registry({reader["institution"]: ("bank", reader["public_key"])})
    replays = auth.ReplayCache(2 * doc["read_window_ms"])
    try:
        for _ in range(2 if vector["replayed"] else 1):
            proof = auth.parse_read_proof(params["auth"])
            auth.verify_read(proof, public_key=registry.signer_public_key(proof.reader,
                                                                           proof.key_id),
                             chain_id=doc["chain_id"], method=vector["method"], params=params,
                             now_ms=vector["now_ms"], replays=replays)
    except auth.AuthError as exc:
        assert not vector["valid"]
        assert exc.reason == vector["error"]["reason"]
    else:
        assert vector["valid"]


# ---------------------------------------------------------------------------- sealed.json


def _x25519_private_of(ed25519_seed: bytes) -> bytes:
    """An Ed25519 key's X25519 private key (libsodium's crypto_sign_ed25519_sk_to_curve25519):
    the first half of SHA-512(seed), clamped."""
    scalar = bytearray(hashlib.sha512(ed25519_seed).digest()[:32])
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    return bytes(scalar)


@pytest.mark.parametrize("vector", load("sealed.json")["vectors"], ids=lambda v: v["tx_type"])
def test_sealed_vector(vector: dict[str, Any]) -> None:
    doc = load("sealed.json")
    field = txtypes.SEALED_FIELDS[vector["tx_type"]]
    assert (field.field, field.record_kind, field.details.__name__) == (
        vector["field"], vector["record_kind"], vector["details_class"])
    plain = vector["plain"].encode()
    details = codec.decode(field.details, plain)
    assert codec.to_json(details) == vector["details"]
    assert sha256(bytes.fromhex(doc["plain_prefix_hex"]) + plain).hex() == vector["plain_hash"]
    aad = bytes.fromhex(doc["context_prefix_hex"]) + codec.dumps_canonical(
        {"record_id": vector["record_id"], "record_kind": vector["record_kind"], "v": 1})
    assert aad.hex() == vector["aad_hex"]
    data_key, nonce = bytes.fromhex(vector["data_key"]), bytes.fromhex(vector["nonce"])
    assert AESGCM(data_key).decrypt(nonce, bytes.fromhex(vector["ciphertext"]), aad) == plain
    value = codec.from_json(sealed.Sealed, vector["sealed"])
    assert (value.nonce.hex(), value.ciphertext.hex(), value.plain_hash.hex()) == (
        vector["nonce"], vector["ciphertext"], vector["plain_hash"])
    assert sealed.decrypt(value, data_key, aad, field.details) == details
    assert [w.party for w in value.keys] == [w["party"] for w in vector["wraps"]]
    signers = {v["signer"]: v for v in load("transactions.json")["vectors"]}
    for wrap, wrapped in zip(vector["wraps"], value.keys, strict=True):
        private = bytes.fromhex(wrap["recipient_private_key"])
        signer = signers[wrap["party"]]
        assert private == _x25519_private_of(bytes.fromhex(signer["seed"]))
        assert sealed.public_key_of(private).hex() == wrap["recipient_public_key"]
        assert sealed.default_encryption_key(bytes.fromhex(signer["public_key"])).hex() == \
            wrap["recipient_public_key"]
        box = bytes.fromhex(wrap["box"])
        assert box == wrapped.box
        assert box[:32] == crypto_box_seed_keypair(bytes.fromhex(wrap["ephemeral_seed"]))[0]
        assert SealedBox(BoxPrivateKey(private)).decrypt(box) == data_key


@pytest.mark.parametrize("refusal", load("sealed.json")["refused"], ids=lambda r: r["name"])
def test_sealed_refusal(refusal: dict[str, Any]) -> None:
    cls = txtypes.SEALED_FIELDS[load("sealed.json")["vectors"][0]["tx_type"]].details
    with pytest.raises(sealed.SealedError) as caught:
        if "box" in refusal:
            sealed.unwrap(sealed.WrappedKey(refusal["party"], refusal["key_version"],
                                            bytes.fromhex(refusal["box"])),
                          bytes.fromhex(refusal["recipient_private_key"]))
        else:
            wrapped = sealed.WrappedKey("x", 1, bytes(limits.WRAPPED_KEY_BYTES))
            value = sealed.Sealed(bytes.fromhex(refusal["nonce"]),
                                  bytes.fromhex(refusal["ciphertext"]),
                                  bytes.fromhex(refusal["plain_hash"]), (wrapped,))
            sealed.decrypt(value, bytes.fromhex(refusal["data_key"]),
                           bytes.fromhex(refusal["aad_hex"]), cls)
    assert str(caught.value) == refusal["error"]


# ---------------------------------------------------------------------------- in JavaScript


def _check_in_node(vectors_dir: pathlib.Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "Node.js is missing: ./dev setup installs Debian's nodejs"
    return subprocess.run([node, str(CHECK_JS), str(vectors_dir)], capture_output=True,
                          text=True, timeout=NODE_RUN_S, check=False)


def test_vectors_check_out_in_javascript() -> None:
    """A JavaScript client with Node.js's standard library alone reproduces the encodings,
    ids, hashes, signatures and proofs from the files."""
    done = _check_in_node(VECTORS_DIR)
    assert done.returncode == 0, done.stderr
    assert f"transactions.json: {len(txtypes.REGISTRY)} transactions" in done.stdout


def test_javascript_check_notices_a_wrong_vector(tmp_path: pathlib.Path) -> None:
    for path in VECTORS_DIR.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    doc = load("transactions.json")
    doc["vectors"][3]["tx_id"] = doc["vectors"][4]["tx_id"]
    (tmp_path / "transactions.json").write_text(json.dumps(doc))
    done = _check_in_node(tmp_path)
    assert done.returncode == 1
    assert f"id of {doc['vectors'][3]['type']}" in done.stderr
