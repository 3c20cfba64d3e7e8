"""record.proof (ADR 0035) on a consortium in one process: a declaration registered over the
API is proven against its block header's state_root with protocol code alone, the header's
hash, the commit certificate's orderer signatures and the proposer's signature checked; a
doctored value, another key and a missing record are told apart."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import pytest

from node.cli.demo import EXPORTER
from node.client import AsyncClient, TxBuilder
from node.client.proofs import ProofError, orderer_keys, verify_record_proof
from protocol import codec, crypto, types
from protocol.ledger import keys, smt
from protocol.replica import certificates
from tests import sealing as tests_sealing
from tests.dates import RECENT_EXPORT_DATE
from tests.rpc.harness import call, rpc_cluster
from tests.waiting import wait_until

DECL = "QD-2026-EX-0001"


async def _proof(url: str, params: dict[str, Any]) -> dict[str, Any]:
    reply = await call(url, "record.proof", params)
    assert "result" in reply, reply
    result: dict[str, Any] = reply["result"]
    return result


async def test_a_declaration_proves_against_its_certified_header(tmp_path: pathlib.Path
                                                                 ) -> None:
    async with rpc_cluster(tmp_path) as rc, AsyncClient(rc.url) as client:
        config = rc.c.config
        builder = TxBuilder(rc.c.keys["customs.qd"], chain_id=config.chain_id,
                            signer="customs.qd")
        sealed = tests_sealing.declaration(config, DECL, EXPORTER, 100, RECENT_EXPORT_DATE)
        tx = builder.build("declaration.register", declaration_no=DECL, exporter=EXPORTER,
                           details=codec.to_json(sealed.details), value=100, currency="USD",
                           export_date=RECENT_EXPORT_DATE)
        assert (await client.submit(tx, wait=True))["receipt"]["code"] == "OK"
        # Orderers send their attestations to the nodes outside the ordering set (ADR 0019):
        # a follower's node (customs's) holds a majority's certificate of every block it
        # applied; the bank's own node holds only its own signature of its tip.
        height = (await client.call("node.status", {}))["height"]
        follower = rc.c.nodes["customs.qd"]
        port = await rc.c.nursery.start(follower.rpc.serve, "127.0.0.1", 0)
        await wait_until(lambda: follower.chain.height >= height, 10,
                         what="the follower applying the declaration's block")
        answer = await _proof(f"http://127.0.0.1:{port}/", {"kind": "declaration", "id": DECL})
        assert answer["height"] == height and answer["certificate"] is not None

        # With protocol code alone: the header, its hash, the proof, the certificate.
        header = codec.from_json(types.BlockHeader, answer["header"])
        assert header.hash.hex() == answer["block_hash"] and header.height == answer["height"]
        key, value = bytes.fromhex(answer["key"]), bytes.fromhex(answer["value"])
        assert key == keys.declaration(DECL)
        proof = codec.from_json(smt.StateProof, answer["proof"])
        assert smt.verify_proof(header.state_root, key, value, proof)
        assert answer["record"]["declaration_no"] == DECL and answer["record"]["value"] == 100
        cert = codec.from_json(certificates.CommitCertificate, answer["certificate"])
        consortium = (await call(rc.url, "consortium.get", {}))["result"]
        by_orderer = orderer_keys(consortium, header.height)
        verdict = certificates.check_certificate(
            cert, chain_id=config.chain_id, height=header.height, block_hash=header.hash,
            orderers=tuple(sorted(by_orderer)),
            key_of=lambda s, k: by_orderer.get(s, {}).get(k))
        assert verdict.ok, verdict
        assert crypto.verify(by_orderer[header.proposer][header.proposer_key_id],
                             types.Block.signing_message(header),
                             bytes.fromhex(answer["block_signature"]))

        # The client helper: the same checks, and each doctored part refused.
        got = verify_record_proof(answer, config.chain_id, by_orderer, expected_key=key)
        assert got.certified and got.record is not None and got.record["value"] == 100
        doctored = value.replace(b'"value":100', b'"value":900')
        assert doctored != value
        assert not smt.verify_proof(header.state_root, key, doctored, proof)
        other_header = codec.to_json(dataclasses.replace(header, timestamp_ms=1))
        for bad in ({"value": doctored.hex()}, {"key": keys.declaration("X").hex()},
                    {"header": other_header}, {"value": None},
                    {"block_signature": "00" * 64, "certificate": None}):
            with pytest.raises(ProofError):
                verify_record_proof({**answer, **bad}, config.chain_id, by_orderer)
        with pytest.raises(ProofError):
            verify_record_proof(answer, "another-chain", by_orderer)
        uncertified = verify_record_proof({**answer, "certificate": None}, config.chain_id,
                                          by_orderer)
        assert not uncertified.certified and uncertified.signers == (header.proposer,)
        short = {**answer["certificate"], "signatures": answer["certificate"]["signatures"][:1]}
        assert not verify_record_proof({**answer, "certificate": short}, config.chain_id,
                                       by_orderer).certified  # falls back to the proposer
        for cert_json in (None, short):
            with pytest.raises(ProofError):
                verify_record_proof({**answer, "certificate": cert_json}, config.chain_id,
                                    by_orderer, require_certificate=True)

        # Absent records: a proof of absence, not an error; application by (uscc, id).
        for params in ({"kind": "declaration", "id": "QD-NONE"},
                       {"kind": "application", "uscc": EXPORTER, "application_id": "NONE"}):
            absent = await _proof(rc.url, params)
            assert absent["value"] is None and absent["record"] is None
            missing = verify_record_proof(absent, config.chain_id, by_orderer)
            assert missing.value is None
        bad_kind = await call(rc.url, "record.proof", {"kind": "nope", "id": "x"})
        assert bad_kind["error"]["code"] == -32602  # invalid params
