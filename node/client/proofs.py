"""Verify a `record.proof` answer (ADR 0035) without trusting the node that gave it.

    answer = client.call("record.proof", {"kind": "declaration", "id": "QD-2026-EX-0001"})
    keys = orderer_keys(client.call("consortium.get", {}), answer["height"])
    record = verify_record_proof(answer, "crossbill-devnet", keys)

What is checked: the header is of the expected chain and height and hashes to `block_hash`; the
state proof shows `value` (or its absence) at `key` under the header's state_root; the block is
signed by a strict majority of the orderers (the commit certificate, ADR 0019) or, when the
node has no certificate for it yet, by its proposer (one orderer: weaker, and said so in the
result). `orderer_keys` are the orderers in force at that height with their keys: take them
from a source you trust (consortium.get of nodes you trust, or your own records).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from protocol import codec, crypto, types
from protocol.errors import DecodeError
from protocol.ledger import smt
from protocol.replica import certificates

# institution -> {key id -> Ed25519 public key}
OrdererKeys = Mapping[str, Mapping[bytes, bytes]]


class ProofError(ValueError):
    """The answer does not prove what it claims: do not use its record."""


@dataclass(frozen=True)
class VerifiedRecord:
    key: bytes
    value: bytes | None           # the record's canonical encoding; None: proven absent
    record: dict[str, Any] | None  # the value parsed (canonical JSON)
    height: int
    block_hash: bytes
    header: types.BlockHeader
    signers: tuple[str, ...]      # the orderers whose signatures of the block were checked
    certified: bool               # a majority's certificate (False: the proposer's signature)


def orderer_keys(consortium: Mapping[str, Any], height: int) -> dict[str, dict[bytes, bytes]]:
    """The current orderers' keys that may sign at `height`, from a consortium.get answer."""
    out: dict[str, dict[bytes, bytes]] = {}
    orderers = set(consortium["current"]["orderers"])
    for inst in consortium["current"]["institutions"]:
        if inst["id"] in orderers:
            out[inst["id"]] = {bytes.fromhex(k["key_id"]): bytes.fromhex(k["public_key"])
                               for k in inst["keys"] if k["retired_from_height"] in (0, None)
                               or height < k["retired_from_height"]}
    return out


def _hex(answer: Mapping[str, Any], name: str) -> bytes:
    value = answer.get(name)
    if not isinstance(value, str):
        raise ProofError(f"{name} is not a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ProofError(f"{name} is not hex") from None


def _signers(answer: Mapping[str, Any], header: types.BlockHeader, keys: OrdererKeys,
             require_certificate: bool) -> tuple[tuple[str, ...], bool]:
    """Who signed the block: a majority's certificate, or else (unless one is required) the
    proposer. A node stores a certificate as the orderers' attestations arrive, so the tip's
    may hold fewer than a majority for a moment."""
    orderers = tuple(sorted(keys))
    raw_cert = answer.get("certificate")
    reason = "no commit certificate for this block yet"
    if raw_cert is not None:
        try:
            cert = codec.from_json(certificates.CommitCertificate, raw_cert)
        except DecodeError as exc:
            raise ProofError(f"the certificate does not decode: {exc}") from None
        verdict = certificates.check_certificate(
            cert, chain_id=header.chain_id, height=header.height, block_hash=header.hash,
            orderers=orderers, key_of=lambda signer, key_id: keys.get(signer, {}).get(key_id))
        if verdict.ok:
            return verdict.signers, True
        reason = f"the commit certificate does not hold: {verdict.reason}"
    if require_certificate:
        raise ProofError(f"{reason} (ask again later)")
    public = keys.get(header.proposer, {}).get(header.proposer_key_id)
    if public is None:
        raise ProofError(f"the proposer {header.proposer} is not an orderer with that key")
    if not crypto.verify(public, types.Block.signing_message(header),
                         _hex(answer, "block_signature")):
        raise ProofError("the proposer's block signature does not verify")
    return (header.proposer,), False


def verify_record_proof(answer: Mapping[str, Any], expected_chain_id: str,
                        orderer_keys: OrdererKeys, *, expected_key: bytes | None = None,
                        require_certificate: bool = False) -> VerifiedRecord:
    """The record `answer` (a record.proof result) proves, or ProofError."""
    try:
        header = codec.from_json(types.BlockHeader, answer["header"])
        proof = codec.from_json(smt.StateProof, answer["proof"])
    except (DecodeError, KeyError) as exc:
        raise ProofError(f"the answer does not decode: {exc}") from None
    if header.chain_id != expected_chain_id:
        raise ProofError(f"a block of chain {header.chain_id!r}, not {expected_chain_id!r}")
    if header.height != answer.get("height") or header.hash != _hex(answer, "block_hash"):
        raise ProofError("the header is not the block the answer names")
    key = _hex(answer, "key")
    if expected_key is not None and key != expected_key:
        raise ProofError("the proof is of another state key")
    value = None if answer.get("value") is None else _hex(answer, "value")
    if not smt.verify_proof(header.state_root, key, value, proof):
        raise ProofError("the state proof does not lead to the header's state_root")
    signers, certified = _signers(answer, header, orderer_keys, require_certificate)
    record = None if value is None else orjson.loads(value)
    if record is not None:
        record.pop("v", None)
    return VerifiedRecord(key, value, record, header.height, header.hash, header, signers,
                          certified)
