"""The client's side of sealed fields (node/client/sealing.py, ADR 0024): what it seals opens
for each party and for nobody else, with any AES-GCM implementation; tampering is reported as
SealedError; keyrings keep every version; plain details are sealed transparently and shown as
<encrypted> to non-parties."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import random

import pytest
from Crypto.Cipher import AES

from node.client import sealing
from node.client.sealing import ENCRYPTED, Keyring, SealedError, open_field, seal
from node.files import LooseFileModeError
from protocol import codec, limits, txtypes
from protocol.errors import DecodeError
from protocol.sealed import Recipient, Sealed, WrappedKey, context, plain_hash, unwrap

DECL = "QD-1"


def _details() -> txtypes.DeclarationDetails:
    return txtypes.DeclarationDetails(sealing.salt(), "Hamburg Marine GmbH", "DE", "pumps")


def _parties() -> dict[str, Keyring]:
    return {p: Keyring.generate(p) for p in ("customs.qd", "regulator.qd", "bank.x")}


def _to(rings: dict[str, Keyring], *names: str) -> list[Recipient]:
    return [Recipient(n, rings[n].version, rings[n].public_key) for n in names]


def test_each_party_opens_and_others_do_not() -> None:
    rings = _parties()
    details = _details()
    sealed = seal(details, "declaration.register", DECL, _to(rings, "customs.qd",
                                                              "regulator.qd"))
    for party in ("customs.qd", "regulator.qd"):
        assert open_field(sealed, "declaration.register", DECL, rings[party]) == details
    with pytest.raises(SealedError, match="not a party"):
        open_field(sealed, "declaration.register", DECL, rings["bank.x"])
    # the plain text's hash lets a party prove what it was shown, and nothing else matches it
    assert plain_hash(codec.encode(details)) == sealed.plain_hash
    assert plain_hash(codec.encode(dataclasses.replace(details, goods="valves"))) != \
        sealed.plain_hash
    # the same record's amendment opens the same way (the context is the record kind)
    assert open_field(sealed, "declaration.amend", DECL, rings["customs.qd"]) == details
    assert len(sealed.keys) == 2 and all(len(w.box) == limits.WRAPPED_KEY_BYTES
                                         for w in sealed.keys)


def test_pycryptodome_opens_what_the_client_sealed() -> None:
    """The sealing uses OpenSSL's AES-GCM; any implementation of the standard opens it."""
    rings = _parties()
    details = _details()
    sealed = seal(details, "declaration.register", DECL, _to(rings, "customs.qd"))
    data_key = unwrap(sealed.keys[0], rings["customs.qd"].private(1))
    cipher = AES.new(data_key, AES.MODE_GCM, nonce=sealed.nonce, mac_len=16)
    cipher.update(context("declaration", DECL))
    plain = cipher.decrypt_and_verify(sealed.ciphertext[:-16], sealed.ciphertext[-16:])
    assert plain == codec.encode(details)


def test_tampering_is_detected_and_reported() -> None:
    rings = _parties()
    sealed = seal(_details(), "declaration.register", DECL, _to(rings, "customs.qd"))
    ring = rings["customs.qd"]
    flipped = bytearray(sealed.ciphertext)
    flipped[3] ^= 1
    box = bytearray(sealed.keys[0].box)
    box[-1] ^= 1
    cases = {
        "ciphertext": dataclasses.replace(sealed, ciphertext=bytes(flipped)),
        "nonce": dataclasses.replace(sealed, nonce=bytes(12)),
        "wrapped key": dataclasses.replace(sealed, keys=(dataclasses.replace(
            sealed.keys[0], box=bytes(box)),)),
        "plain hash": dataclasses.replace(sealed, plain_hash=bytes(32)),
    }
    for what, bad in cases.items():
        with pytest.raises(SealedError):
            open_field(bad, "declaration.register", DECL, ring)
        assert what
    # moved to another record: the associated data differs
    with pytest.raises(SealedError, match="GCM tag"):
        open_field(sealed, "declaration.register", "QD-2", ring)


def test_seeded_sealing_is_reproducible() -> None:
    rings = _parties()
    to = _to(rings, "customs.qd", "regulator.qd")
    details = txtypes.DeclarationDetails(bytes(16), "B", "DE", "g")
    one = seal(details, "declaration.register", DECL, to, random.Random(7).randbytes)
    two = seal(details, "declaration.register", DECL, to, random.Random(7).randbytes)
    assert one == two
    assert open_field(one, "declaration.register", DECL, rings["regulator.qd"]) == details


def test_keyring_keeps_every_version_and_refuses_loose_files(tmp_path: pathlib.Path) -> None:
    ring = Keyring.generate("bank.x")
    old = seal(_details(), "declaration.register", DECL,
               [Recipient("bank.x", 1, ring.public_key)])
    ring.rotate()
    assert ring.version == 2
    new = seal(_details(), "declaration.register", DECL,
               [Recipient("bank.x", 2, ring.public_key)])
    path = tmp_path / "bank.x.keyring"
    ring.save(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    loaded = Keyring.load(path)
    assert loaded.keys == ring.keys
    for sealed in (old, new):  # records from before and after the rotation both open
        open_field(sealed, "declaration.register", DECL, loaded)
    os.chmod(path, 0o644)
    with pytest.raises(LooseFileModeError):
        Keyring.load(path)
    bad = tmp_path / "bad.keyring"
    bad.write_bytes(b'{"format": "something else"}')
    os.chmod(bad, 0o600)
    with pytest.raises(ValueError, match="not an encryption keyring"):
        Keyring.load(bad)


def test_plain_details_are_sealed_transparently_and_shown_to_parties_only() -> None:
    rings = _parties()

    def resolver(tx_type: str, signer: str, values: dict[str, object]) -> list[Recipient]:
        assert (tx_type, signer) == ("declaration.register", "customs.qd")
        return _to(rings, "customs.qd", "regulator.qd")

    values = sealing.seal_values("declaration.register", "customs.qd", {
        "declaration_no": DECL, "exporter": "91370200MA3C8Y5R2K", "value": 100,
        "currency": "USD", "export_date": "2026-11-20",
        "details": {"buyer": "Hamburg Marine GmbH", "destination": "DE", "goods": "pumps"}},
        resolver)
    payload = codec.from_json(txtypes.RegisterDeclaration, values)
    assert isinstance(payload.details, Sealed)
    answer = {"declaration": {"declaration_no": DECL, "details": values["details"]}}
    shown = sealing.open_record(answer, rings["regulator.qd"])
    assert shown["declaration"]["details"] == {"buyer": "Hamburg Marine GmbH",
                                               "destination": "DE", "goods": "pumps"}
    assert sealing.open_record(answer, rings["bank.x"])["declaration"]["details"] == ENCRYPTED
    assert sealing.open_record(answer, None)["declaration"]["details"] == ENCRYPTED


def test_decode_refuses_malformed_sealed_fields() -> None:
    rings = _parties()
    good = codec.to_json(seal(_details(), "declaration.register", DECL,
                              _to(rings, "customs.qd")))
    wrapped = codec.to_json(WrappedKey("p", 1, bytes(80)))
    for bad in ({**good, "keys": []}, {**good, "keys": [wrapped] * 9},
                {**good, "nonce": "00" * 11}, {**good, "keys": [{**wrapped, "box": "00"}]}):
        with pytest.raises(DecodeError):
            codec.from_json(Sealed, bad)
