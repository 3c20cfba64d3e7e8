"""Consent carries the key (ADR 0024), through the node's API: a consent extends the credit
file's key to a second bank, which reads (its read on the ledger first); a revocation starts a
new key epoch, so an entry recorded afterwards is closed to the revoked bank while what it
already read stays readable; an expired consent is refused against the current time on a quiet
network; an encryption key rotation seals new records to the new key and keeps old ones
readable."""

from __future__ import annotations

import os
import pathlib
import time
from typing import Any

import pytest

from node.cli.demo import EXPORTER, headline_keyrings
from node.client import AsyncClient, RpcError
from node.client.api import ReadSigner
from node.client.sealing import (
    ENCRYPTED,
    Keyring,
    SealedError,
    extend_file_key_grant,
    file_private_key,
    new_file_key_grant,
    open_credit_file,
    open_field,
    open_record,
    recipients_of,
    salt,
    seal,
    seal_values_async,
)
from node.client.txbuild import TxBuilder, build_payload
from node.keys import generate_key
from node.rpc import errors as E
from protocol import codec, crypto, limits, txtypes, types
from protocol.ledger import records
from protocol.sealed import Recipient, Sealed
from tests.dates import RECENT_EXPORT_DATE
from tests.rpc.harness import RpcCluster, call, rpc_cluster
from tests.rpc.test_methods import walk_headline

BOC, ICBC, REG = "bank.boc-qd", "bank.icbc-qd", "regulator.safe-qd"


async def _commit(rc: RpcCluster, client: AsyncClient, signer: str, payload: Any,
                  key: crypto.PrivateKey | None = None, expect: str = "OK") -> types.Tx:
    tx = types.Tx.create(key or rc.c.keys[signer], chain_id=rc.c.config.chain_id,
                         signer=signer, payload=payload, nonce=os.urandom(16),
                         expires_at_ms=int(time.time() * 1000) + 600_000)
    reply = await client.submit(tx, wait=True)
    assert reply["status"] == "committed", reply
    assert reply["receipt"]["code"] == expect, reply["receipt"]
    return tx


async def _recipients(client: AsyncClient, recorder: str) -> list[Recipient]:
    who = await client.sealing_recipients(recorder, enterprise=EXPORTER,
                                          credit_file=EXPORTER)
    return recipients_of(who)


async def _read(rc: RpcCluster, client: AsyncClient, bank: str) -> dict[str, Any]:
    tx = await _commit(rc, client, bank, txtypes.ReadCredit(EXPORTER, "review"))
    answer: dict[str, Any] = await client.credit_file(EXPORTER, tx.id, signer=ReadSigner(
        rc.c.keys[bank], bank, rc.c.config.chain_id))
    return answer


def _to(rc: RpcCluster, party: str, ring: Keyring) -> Recipient:
    return Recipient(party, ring.version, ring.public_key)


async def test_consent_extends_revokes_and_expires(tmp_path: pathlib.Path) -> None:
    enterprise_key = generate_key()
    async with rpc_cluster(tmp_path) as rc, AsyncClient(rc.url) as client:
        from node.cli.demo import headline_steps

        for step in headline_steps(rc.c.config, rc.c.keys, int(time.time() * 1000),
                                   enterprise_key):
            assert (await client.submit(step.tx, wait=True))["receipt"]["code"] == \
                step.expect_code, step.title
        rings = headline_keyrings(rc.c.keys, enterprise_key)
        now = int(time.time() * 1000)
        # The exporter extends epoch 1 of its file key to a second bank.
        keys = await client.credit_file_keys(EXPORTER)
        assert keys["epoch"] == 1
        epoch1 = codec.from_json(records.CreditFileKey, keys["epochs"][0])
        private1 = file_private_key(epoch1, rings[EXPORTER])
        grant = extend_file_key_grant(epoch1, private1, _to(rc, ICBC, rings[ICBC]))
        await _commit(rc, client, EXPORTER, txtypes.GrantConsent(ICBC, now + 86_400_000,
                                                                 (grant,)), enterprise_key)
        icbc_view = open_credit_file(await _read(rc, client, ICBC), rings[ICBC])
        assert icbc_view[0]["details"]["note"] == "revolving export credit line"
        # A grant that wraps the key to someone else is refused.
        stray = extend_file_key_grant(epoch1, private1, _to(rc, "customs.qd",
                                                            rings["customs.qd"]))
        await _commit(rc, client, EXPORTER, txtypes.GrantConsent(ICBC, now + 86_400_000,
                                                                 (stray,)), enterprise_key,
                      expect="BAD_FILE_KEY")

        # Revoking the first bank starts epoch 2 for the exporter, the regulator and ICBC.
        epoch2, _ = new_file_key_grant(EXPORTER, 2, [
            _to(rc, EXPORTER, rings[EXPORTER]), _to(rc, REG, rings[REG]),
            _to(rc, ICBC, rings[ICBC])])
        await _commit(rc, client, EXPORTER, txtypes.RevokeConsent(BOC, epoch2), enterprise_key)
        # ICBC records a new entry, sealed to the file's new epoch.
        to = await _recipients(client, ICBC)
        assert {(r.party, r.key_version) for r in to} >= {(f"file/{EXPORTER}", 2)}
        details = txtypes.CreditDetails(salt(), "overdue", 1_234_567, "USD", "30 days late")
        await _commit(rc, client, ICBC, txtypes.RecordCredit(EXPORTER, "OD-1", seal(
            details, "credit.record", "OD-1", to)))
        # The revoked bank can no longer record a read ...
        await _commit(rc, client, BOC, txtypes.ReadCredit(EXPORTER, "after revocation"),
                      expect="NO_CONSENT")
        # ... and even holding the whole file (every node has it) and its old file key, it
        # opens the entry it was shown but not the new one. Disclosed stays disclosed.
        everything = await _read(rc, client, REG)
        boc_view = {e["entry_id"]: e["details"] for e in
                    open_credit_file(everything, rings[BOC])}
        assert boc_view["CL-2026-001"] != ENCRYPTED
        assert boc_view["OD-1"] == ENCRYPTED
        # The exporter reads its own file without recording a read, and opens every entry.
        own = await client.credit_file(EXPORTER, None, signer=ReadSigner(
            enterprise_key, EXPORTER, rc.c.config.chain_id))
        assert own["access"] == "self"
        assert all(e["details"] != ENCRYPTED for e in open_credit_file(own, rings[EXPORTER]))
        for reader in (ICBC, REG, EXPORTER):
            view = {e["entry_id"]: e["details"] for e in
                    open_credit_file(everything, rings[reader])}
            assert view["OD-1"]["amount"] == 1_234_567, reader

        # Expiry is checked against the current time, not the last block's: a read recorded
        # while the consent was live is refused once the clock passes the expiry, even if no
        # block has been made since. (The first bank is consented again, for a minute.)
        expires = int(time.time() * 1000) + 60_000
        grant = extend_file_key_grant(
            codec.from_json(records.CreditFileKey,
                            (await client.credit_file_keys(EXPORTER))["epochs"][-1]),
            file_private_key(codec.from_json(records.CreditFileKey, (
                await client.credit_file_keys(EXPORTER))["epochs"][-1]), rings[EXPORTER]),
            _to(rc, BOC, rings[BOC]))
        await _commit(rc, client, EXPORTER, txtypes.GrantConsent(BOC, expires, (grant,)),
                      enterprise_key)
        read_tx = await _commit(rc, client, BOC, txtypes.ReadCredit(EXPORTER, "quick look"))
        head_ms = rc.node.chain.state.head.timestamp_ms
        assert head_ms < expires
        rc.node.rpc.api.clock_ms = lambda: expires + 1
        with pytest.raises(RpcError) as err:
            await client.credit_file(EXPORTER, read_tx.id, signer=ReadSigner(
                rc.c.keys[BOC], BOC, rc.c.config.chain_id))
        assert err.value.data["code"] == "CONSENT_EXPIRED"
        assert rc.node.chain.state.head.timestamp_ms < expires  # the ledger did not move


async def test_encryption_key_rotation(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path) as rc, AsyncClient(rc.url) as client:
        await walk_headline(rc, client)
        ring = Keyring.from_signing_key("customs.qd", rc.c.keys["customs.qd"])
        regulator = Keyring.from_signing_key(REG, rc.c.keys[REG])
        before = await client.declaration("QD-2026-EX-0001")
        public = ring.rotate()
        await _commit(rc, client, "customs.qd", txtypes.SetEncryptionKey(public))
        assert (await client.encryption_key("customs.qd"))["version"] == 2
        # A declaration sealed to customs' old key is refused now ...
        old_to = [Recipient("customs.qd", 1, Keyring.from_signing_key(
            "customs.qd", rc.c.keys["customs.qd"]).public_key),
            Recipient(REG, 1, regulator.public_key)]
        details = txtypes.DeclarationDetails(salt(), "Buyer", "DE", "valves")
        await _commit(rc, client, "customs.qd", txtypes.RegisterDeclaration(
            "ROT-OLD", "91370200MA3C8Y5R2L", 100, "USD", "2026-11-20",
            seal(details, "declaration.register", "ROT-OLD", old_to)),
            expect="SEALED_PARTIES")
        # ... the node names the new one, and the new record opens with version 2 ...
        to = recipients_of(await client.sealing_recipients("customs.qd"))
        assert ("customs.qd", 2) in {(r.party, r.key_version) for r in to}
        await _commit(rc, client, "customs.qd", txtypes.RegisterDeclaration(
            "ROT-NEW", "91370200MA3C8Y5R2L", 100, "USD", "2026-11-20",
            seal(details, "declaration.register", "ROT-NEW", to)))
        new = await client.declaration("ROT-NEW")
        assert open_field(codec.from_json(Sealed, new["declaration"]["details"]),
                          "declaration.register", "ROT-NEW", ring).goods == "valves"
        # ... and the record sealed before the rotation still opens with version 1.
        assert open_field(codec.from_json(Sealed, before["declaration"]["details"]),
                          "declaration.register", "QD-2026-EX-0001",
                          ring).buyer == "Hamburg Marine GmbH"
        # The async client seals plain details the same way, to whom the node names.
        builder = TxBuilder(rc.c.keys["customs.qd"], chain_id=rc.c.config.chain_id,
                            signer="customs.qd")
        values = await seal_values_async(client, "declaration.register", "customs.qd", {
            "declaration_no": "ROT-ASYNC", "exporter": "91370200MA3C8Y5R2L", "value": 100,
            "currency": "USD", "export_date": "2026-11-20",
            "details": {"buyer": "C", "destination": "FR", "goods": "seals"}})
        reply = await client.submit(builder.sign(build_payload("declaration.register", values)),
                                    wait=True)
        assert reply["receipt"]["code"] == "OK", reply
        shown = open_record(await client.declaration("ROT-ASYNC"), ring)
        assert shown["declaration"]["details"]["goods"] == "seals"
        # A low-order point is not an encryption key.
        await _commit(rc, client, "customs.qd", txtypes.SetEncryptionKey(bytes(32)),
                      expect="BAD_ENCRYPTION_KEY")


async def test_sealing_seal_lets_a_client_without_libsodium_seal_its_record(
        tmp_path: pathlib.Path) -> None:
    """sealing.seal seals plain details to the parties the ledger requires (and one added);
    the declaration carrying it commits, each party opens it and a bank does not."""
    async with rpc_cluster(tmp_path) as rc:
        plain = {"buyer": "Hamburg Marine GmbH", "destination": "DE", "goods": "marine pumps"}
        params = {"tx_type": "declaration.register", "record_id": "SEAL-RPC-1",
                  "recorder": "customs.qd", "details": plain, "also_to": ["tax.qd"]}
        reply = (await call(rc.url, "sealing.seal", params))["result"]
        parties = {r["party"] for r in reply["recipients"]}
        assert parties == {"customs.qd", REG, "tax.qd"}
        assert reply["details"] == {**plain, "salt": reply["details"]["salt"]}
        assert len(bytes.fromhex(reply["details"]["salt"])) == limits.SEALED_SALT_BYTES
        sealed = codec.from_json(Sealed, reply["sealed"])
        tx = TxBuilder(rc.c.keys["customs.qd"], chain_id=rc.c.config.chain_id,
                       signer="customs.qd").build(
            "declaration.register", declaration_no="SEAL-RPC-1", exporter=EXPORTER,
            details=reply["sealed"], value=100, currency="USD", export_date=RECENT_EXPORT_DATE)
        async with AsyncClient(rc.url) as client:
            done = await client.submit(tx, wait=True)
        assert done["receipt"]["status"] == "ok", done
        for party in ("customs.qd", REG, "tax.qd"):
            ring = Keyring.from_signing_key(party, rc.c.keys[party])
            opened = open_field(sealed, "declaration.register", "SEAL-RPC-1", ring)
            assert codec.to_json(opened) == reply["details"]
        with pytest.raises(SealedError):
            open_field(sealed, "declaration.register", "SEAL-RPC-1",
                       Keyring.from_signing_key("bank.boc-qd", rc.c.keys["bank.boc-qd"]))
        # bad input: an unknown type, details of the wrong shape, a party without a key
        for bad, code in (({**params, "tx_type": "tx.unknown"}, -32602),
                          ({**params, "details": {"buyer": "x"}}, -32602),
                          ({**params, "also_to": ["nobody.x"]}, E.NOT_FOUND),
                          ({**params, "recorder": "nobody.x", "also_to": []}, E.NOT_FOUND)):
            assert (await call(rc.url, "sealing.seal", bad))["error"]["code"] == code
