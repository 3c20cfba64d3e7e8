"""The wire shapes of issue 16's payloads (ADR 0024): a sealed field, wrapped keys, credit-file
key grants, encryption_key.set and credit.read. Decoding refuses every out-of-bounds shape with
a DecodeError that names the field; a well-formed one round-trips byte for byte."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from protocol import codec, limits, txtypes, types
from protocol.errors import DecodeError
from protocol.sealed import Sealed, WrappedKey, file_party
from tests.protocol.helpers import declaration, recipient, sealed_details, signed_tx

U = "91370200MA3C000001"
BOX = b"\x05" * limits.WRAPPED_KEY_BYTES


def _wrapped(party: str, version: int = 1) -> WrappedKey:
    return WrappedKey(party, version, BOX)


def _grant(epoch: int = 1, *parties: str) -> txtypes.FileKeyGrant:
    return txtypes.FileKeyGrant(epoch, recipient("file-key").public_key,
                                tuple(_wrapped(p) for p in parties or (U,)))


def _credit() -> txtypes.RecordCredit:
    details = txtypes.CreditDetails(b"\x01" * 16, "overdue", 1, "USD", "")
    return txtypes.RecordCredit(U, "E-1", sealed_details(details, "credit.record", "E-1"))


def _terms() -> Sealed:
    terms = txtypes.FinancingTerms(b"\x02" * 16, 450, 1_000, "working capital", "REF-1")
    return sealed_details(terms, "financing.open", "F-1", ("bank.alpha", "regulator.safe"))


def _financing(terms: tuple[Sealed, ...]) -> txtypes.OpenFinancing:
    return txtypes.OpenFinancing("F-1", U, "A-1", 100, "USD", (txtypes.Pledge("D-0001", 100),),
                                 1_800_000_000_000, terms)


GOOD: dict[str, tuple[str, txtypes.Payload]] = {
    "declaration": ("customs.qd", declaration()),
    "amend": ("customs.qd", txtypes.AmendDeclaration("D-0001", 5, declaration().details)),
    "credit": ("bank.alpha", _credit()),
    "financing": ("bank.alpha", _financing((_terms(),))),
    "consent": (U, txtypes.GrantConsent("bank.alpha", 1_800_000_000_000,
                                        (_grant(1, U, "regulator.safe", "bank.alpha"),))),
    "revoke": (U, txtypes.RevokeConsent("bank.alpha", _grant(2, U, "regulator.safe"))),
    "encryption key": ("bank.alpha", txtypes.SetEncryptionKey(recipient("x").public_key)),
    "credit read": ("bank.alpha", txtypes.ReadCredit(U, "credit review")),
}


def _encoded(name: str) -> bytes:
    signer, payload = GOOD[name]
    return signed_tx(payload, signer=signer).encoded


@pytest.mark.parametrize("name", sorted(GOOD))
def test_well_formed_payloads_round_trip(name: str) -> None:
    data = _encoded(name)
    back = types.Tx.decode(data)
    assert back.payload == GOOD[name][1]
    assert codec.encode(back) == data


def _hex(n: int) -> str:
    return "ab" * n


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        node: Any = raw
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value(node[path[-1]]) if callable(value) else value
    return mutate


DETAILS = ("payload", "details")
WRAP0 = (*DETAILS, "keys", 0)
GRANT0 = ("payload", "file_keys", 0)

# (payload, mutation, the message DecodeError must give)
BAD: dict[str, tuple[str, Callable[[dict[str, Any]], None], str]] = {
    "sealed to nobody": ("declaration", _set((*DETAILS, "keys"), []),
                         r"payload\.details\.keys: list has 0 items, allowed 1 to 8"),
    "sealed to nine parties": ("declaration", _set((*DETAILS, "keys"), lambda ks: (ks * 5)[:9]),
                               r"payload\.details\.keys: list has 9 items, allowed 1 to 8"),
    "a box one byte short": ("declaration", _set((*WRAP0, "box"), lambda b: b[:-2]),
                             r"payload\.details\.keys\[0\]\.box: 79 bytes, allowed 80 to 80"),
    "a box one byte long": ("declaration", _set((*WRAP0, "box"), lambda b: b + "00"),
                            r"payload\.details\.keys\[0\]\.box: 81 bytes"),
    "a nonce of 13 bytes": ("declaration", _set((*DETAILS, "nonce"), _hex(13)),
                            r"payload\.details\.nonce: 13 bytes, allowed 12 to 12"),
    "a nonce of 11 bytes": ("declaration", _set((*DETAILS, "nonce"), _hex(11)),
                            r"payload\.details\.nonce: 11 bytes"),
    "a ciphertext shorter than its tag": ("declaration",
                                          _set((*DETAILS, "ciphertext"), _hex(15)),
                                          r"payload\.details\.ciphertext: 15 bytes"),
    "a ciphertext over the limit": ("declaration", _set(
        (*DETAILS, "ciphertext"), _hex(limits.SEALED_CIPHERTEXT_BYTES_MAX + 1)),
        r"payload\.details\.ciphertext: 3073 bytes"),
    "a short plain hash": ("declaration", _set((*DETAILS, "plain_hash"), _hex(31)),
                           r"payload\.details\.plain_hash: 31 bytes"),
    "a wrap to no party": ("declaration", _set((*WRAP0, "party"), ""),
                           r"payload\.details\.keys\[0\]\.party"),
    "a wrap to a party too long": ("declaration", _set((*WRAP0, "party"), "p" * 65),
                                   r"payload\.details\.keys\[0\]\.party"),
    "key version 0": ("declaration", _set((*WRAP0, "key_version"), 0),
                      r"payload\.details\.keys\[0\]\.key_version"),
    "a box that is not hex": ("declaration", _set((*WRAP0, "box"), "zz" * 80),
                              r"payload\.details\.keys\[0\]\.box"),
    "details missing": ("declaration", lambda raw: raw["payload"].pop("details"),
                        r"details"),
    "the old plain goods field": ("amend", _set(("payload", "goods"), "pumps"), r"goods"),
    "a credit entry with plain fields": ("credit", _set(("payload", "amount"), 1), r"amount"),
    "two financing terms": ("financing", _set(("payload", "terms"), lambda t: t * 2),
                            r"payload\.terms: list has 2 items, allowed 0 to 1"),
    "a consent without file keys": ("consent", _set(("payload", "file_keys"), []),
                                    r"payload\.file_keys: list has 0 items, allowed 1 to 8"),
    "a consent with nine epochs": ("consent", _set(("payload", "file_keys"),
                                                   lambda g: (g * 9)[:9]),
                                   r"payload\.file_keys: list has 9 items, allowed 1 to 8"),
    "file-key epoch 0": ("consent", _set((*GRANT0, "epoch"), 0),
                         r"payload\.file_keys\[0\]\.epoch"),
    "a file key of 31 bytes": ("consent", _set((*GRANT0, "public_key"), _hex(31)),
                               r"payload\.file_keys\[0\]\.public_key: 31 bytes"),
    "a file key wrapped to nobody": ("consent", _set((*GRANT0, "keys"), []),
                                     r"payload\.file_keys\[0\]\.keys: list has 0 items"),
    "a file key wrapped to 25": ("consent", _set((*GRANT0, "keys"), lambda ks: (ks * 9)[:25]),
                                 r"payload\.file_keys\[0\]\.keys: list has 25 items, allowed "
                                 r"1 to 24"),
    "a revocation without a new epoch": ("revoke", lambda raw: raw["payload"].pop("file_key"),
                                         r"file_key"),
    "an encryption key of 33 bytes": ("encryption key",
                                      _set(("payload", "public_key"), _hex(33)),
                                      r"payload\.public_key: 33 bytes, allowed 32 to 32"),
    "a credit read without purpose": ("credit read", _set(("payload", "purpose"), ""),
                                      r"payload\.purpose"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_out_of_bounds_shapes_are_refused_by_decode(case: str) -> None:
    name, mutate, message = BAD[case]
    raw = orjson.loads(_encoded(name))
    mutate(raw)
    data = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
    with pytest.raises(DecodeError, match=message):
        types.Tx.decode(data)


def test_a_sealed_field_on_the_wire_is_hex_and_carries_no_plain_text() -> None:
    data = _encoded("declaration")
    for plain in (b"Hamburg Imports GmbH", b"marine pumps", b'"DE"'):
        assert plain not in data
    raw = orjson.loads(data)["payload"]["details"]
    assert sorted(raw) == ["ciphertext", "keys", "nonce", "plain_hash"]
    assert [w["party"] for w in raw["keys"]] == ["customs.qd", "regulator.safe"]
    assert bytes.fromhex(raw["nonce"]) == declaration().details.nonce


def test_party_names_fit_a_credit_file_of_any_uscc() -> None:
    assert len(file_party("9" * 18)) <= limits.PARTY_CHARS_MAX
