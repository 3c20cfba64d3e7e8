"""The canonical codec: round trips, and every non-canonical or malformed variant refused."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Annotated

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import codec, limits, txtypes, types
from protocol.codec import bound
from protocol.errors import DecodeError
from protocol.sealed import Sealed, WrappedKey, file_party
from tests.protocol.helpers import declaration, signed_block, signed_tx

# ------------------------------------------------------------------------- round trips

_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FFF,
                                       blacklist_categories=("Cs",), blacklist_characters="\x7f"),
                max_size=40)
_amount = st.integers(min_value=1, max_value=limits.AMOUNT_MINOR_MAX)
_id = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,20}", fullmatch=True)
_uscc = st.from_regex(r"[0-9A-HJ-NPQRTUWXY]{18}", fullmatch=True)
_ccy = st.from_regex(r"[A-Z]{3}", fullmatch=True)


def _bytes(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n, max_size=n)


_party = st.one_of(st.sampled_from(["customs.qd", "regulator.safe", "bank.alpha"]), _uscc,
                   _uscc.map(file_party))
_wrapped = st.builds(WrappedKey, _party, st.integers(1, limits.INT_MAX),
                     _bytes(limits.WRAPPED_KEY_BYTES))
# The shape of a sealed field (the codec does not decrypt: any bytes of the right sizes).
_sealed = st.builds(
    Sealed, _bytes(limits.SEALED_NONCE_BYTES),
    st.binary(min_size=limits.SEALED_TAG_BYTES, max_size=limits.SEALED_CIPHERTEXT_BYTES_MAX),
    _bytes(limits.HASH_BYTES),
    st.lists(_wrapped, min_size=1, max_size=limits.SEALED_RECIPIENTS_MAX).map(tuple))
_grant = st.builds(txtypes.FileKeyGrant, st.integers(1, limits.INT_MAX),
                   _bytes(limits.ENCRYPTION_KEY_BYTES),
                   st.lists(_wrapped, min_size=1, max_size=3).map(tuple))


@st.composite
def payloads(draw: st.DrawFn) -> txtypes.Payload:
    kind = draw(st.sampled_from(["decl", "amend", "fin", "apply", "form", "credit", "consent",
                                 "revoke", "ekey", "read"]))
    if kind == "decl":
        return txtypes.RegisterDeclaration(
            draw(_id), draw(_uscc), draw(_amount), draw(_ccy), "2026-01-31", draw(_sealed))
    if kind == "amend":
        return txtypes.AmendDeclaration(draw(_id), draw(_amount), draw(_sealed))
    if kind == "fin":
        pledges = draw(st.lists(st.builds(txtypes.Pledge, _id, _amount), min_size=1,
                                max_size=limits.PLEDGES_PER_FINANCING_MAX))
        terms = draw(st.lists(_sealed, max_size=1))
        return txtypes.OpenFinancing(draw(_id), draw(_uscc), draw(_id), draw(_amount),
                                     draw(_ccy), tuple(pledges),
                                     draw(st.integers(0, limits.INT_MAX)), tuple(terms))
    if kind == "apply":
        pledges = draw(st.lists(st.builds(txtypes.Pledge, _id, _amount), min_size=1,
                                max_size=limits.PLEDGES_PER_FINANCING_MAX))
        return txtypes.ApplyForFinancing(draw(_id), draw(_uscc), "bank.alpha", draw(_amount),
                                         draw(_ccy), tuple(pledges),
                                         draw(st.integers(0, limits.INT_MAX)))
    if kind == "form":
        return txtypes.RegisterTaxForm(draw(_id), draw(_uscc), draw(_amount), draw(_ccy),
                                       draw(_sealed))
    if kind == "consent":
        grants = draw(st.lists(_grant, min_size=1,
                               max_size=limits.CREDIT_FILE_EPOCHS_PER_GRANT_MAX))
        return txtypes.GrantConsent("bank.alpha", draw(st.integers(0, limits.INT_MAX)),
                                    tuple(grants))
    if kind == "revoke":
        return txtypes.RevokeConsent("bank.alpha", draw(_grant))
    if kind == "ekey":
        return txtypes.SetEncryptionKey(draw(_bytes(limits.ENCRYPTION_KEY_BYTES)))
    if kind == "read":
        return txtypes.ReadCredit(draw(_uscc), draw(_text.filter(str.strip)))
    return txtypes.RecordCredit(draw(_uscc), draw(_id), draw(_sealed))


@settings(max_examples=200, deadline=None)
@given(payload=payloads(), nonce=st.binary(min_size=8, max_size=32))
def test_tx_round_trip(payload: txtypes.Payload, nonce: bytes) -> None:
    signer = {"declaration.register": "customs.qd", "declaration.amend": "customs.qd",
              "taxform.register": "tax.qd", "consent.grant": "91370200MA3C000001",
              "consent.revoke": "91370200MA3C000001"}.get(payload.TYPE, "bank.alpha")
    tx = signed_tx(payload, signer=signer, nonce=nonce)
    data = codec.encode(tx)
    back = types.Tx.decode(data)
    assert back == tx
    assert back.id == tx.id
    assert codec.encode(back) == data


def test_block_round_trip() -> None:
    txs = tuple(signed_tx(nonce=bytes([i]) * 16, payload=declaration(f"D-{i}"))
                for i in range(1, 6))
    block = signed_block(txs)
    back = types.Block.decode(block.encoded)
    assert back == block
    assert back.hash == block.hash
    assert [t.id for t in back.txs] == [t.id for t in txs]


def test_tx_id_excludes_signature_and_changes_with_content() -> None:
    a = signed_tx(nonce=b"\x01" * 16)
    b = signed_tx(nonce=b"\x02" * 16)
    assert a.id != b.id
    assert dataclasses.replace(a, signature=b"\x00" * 64).id == a.id


def test_encoding_is_sorted_compact_and_versioned() -> None:
    data = signed_tx().encoded
    raw = orjson.loads(data)
    assert raw["v"] == limits.CODEC_VERSION
    assert list(raw) == sorted(raw)
    assert b" " not in data


# ------------------------------------------------------------------------- non-canonical input

GOOD = signed_tx().encoded


def _reencode(mutate: object) -> bytes:
    raw = orjson.loads(GOOD)
    mutate(raw)  # type: ignore[operator]
    return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)


NON_CANONICAL = {
    "whitespace after colon": GOOD.replace(b'":', b'": ', 1),
    "trailing newline": GOOD + b"\n",
    "leading space": b" " + GOOD,
    "keys out of order": orjson.dumps(dict(reversed(list(orjson.loads(GOOD).items())))),
    "duplicate key": GOOD[:-1] + b',"v":1}',
    "escaped ascii": GOOD.replace(b'"USD"', b'"\\u0055SD"'),
    "escaped slash": GOOD.replace(b'"D-0001"', b'"D\\/0001"'),
    "uppercase hex": GOOD.replace(signed_tx().signature.hex().encode(),
                                  signed_tx().signature.hex().upper().encode()),
    "version as string": GOOD.replace(b'"v":1', b'"v":"1"'),
}


@pytest.mark.parametrize("name", sorted(NON_CANONICAL))
def test_non_canonical_variants_are_refused(name: str) -> None:
    data = NON_CANONICAL[name]
    assert data != GOOD
    with pytest.raises(DecodeError):
        types.Tx.decode(data)


def test_negative_zero_and_exponent_forms_are_refused() -> None:
    raw = orjson.loads(GOOD)
    raw["expires_at_ms"] = 0
    zero = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
    types.Tx.decode(zero)  # the canonical form decodes (signature is not checked here)
    with pytest.raises(DecodeError, match="non-canonical"):
        types.Tx.decode(zero.replace(b'"expires_at_ms":0', b'"expires_at_ms":-0'))
    with pytest.raises(DecodeError, match="expected an integer, got float"):
        types.Tx.decode(zero.replace(b'"expires_at_ms":0', b'"expires_at_ms":0e0'))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("nonce"), "missing field"),
        (lambda r: r.update(extra=1), "unknown field"),
        (lambda r: r["payload"].update(extra=1), "payload: unknown field"),
        (lambda r: r["payload"].pop("value"), "payload: missing field"),
        (lambda r: r["payload"].update(value=1.5), "payload.value: expected an integer, got float"),
        (lambda r: r["payload"].update(value=10**16), "payload.value: integer"),
        (lambda r: r["payload"].update(value=0), "payload.value: integer 0 outside"),
        (lambda r: r["payload"].update(value="100"), "expected an integer, got string"),
        (lambda r: r["payload"].update(value=True), "expected an integer, got boolean"),
        (lambda r: r.update(nonce="0A" * 16), "nonce: bytes must be lowercase"),
        (lambda r: r.update(nonce="abc"), "nonce: bytes must be lowercase hexadecimal"),
        (lambda r: r.update(nonce="00" * 4), "nonce: 4 bytes, allowed 8 to 32"),
        (lambda r: r.update(type="no.such"), "type: unknown type"),
        (lambda r: r.update(type="taxform.revoke"), "payload: missing field"),
        (lambda r: r.update(signer="a\nb"), "signer: control characters"),
        (lambda r: r.update(v=2), "unsupported encoding version 2"),
        (lambda r: r.pop("v"), "missing the version key"),
        (lambda r: r.update(payload=[]), "payload: expected an object, got list"),
        (lambda r: r["payload"].update(currency="usd"), "currency"),
    ],
)
def test_malformed_fields_give_a_typed_error_naming_the_field(mutate: object,
                                                              message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        types.Tx.decode(_reencode(mutate))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not valid JSON"),
        (b"[]", "expected an object at the top level, got list"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"a":NaN}', "not valid JSON"),
        (b'{"a":1e999}', "not valid JSON"),
        (b"x" * (limits.TX_BYTES_MAX + 1), "exceeds the limit"),
    ],
)
def test_garbage_is_refused_with_a_decode_error(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        types.Tx.decode(data)


def test_big_integers_are_refused() -> None:
    bad = GOOD.replace(b'"v":1', b'"v":18446744073709551616')
    with pytest.raises(DecodeError):
        types.Tx.decode(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise_anything_but_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        types.Tx.decode(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(GOOD) - 1), st.integers(1, 255))
def test_any_single_byte_change_is_refused_or_changes_the_id(pos: int, delta: int) -> None:
    data = bytearray(GOOD)
    data[pos] = (data[pos] + delta) % 256
    try:
        tx = types.Tx.decode(bytes(data))
    except DecodeError:
        return
    assert tx.encoded == bytes(data)  # decoded only because it is itself canonical ...
    assert tx != signed_tx()          # ... and then it is a different transaction


# ------------------------------------------------------------------------- schema support


@dataclasses.dataclass(frozen=True)
class _Inner:
    n: Annotated[int, bound(min_value=0, max_value=9)]


@dataclasses.dataclass(frozen=True)
class _Outer:
    items: Annotated[tuple[_Inner, ...], bound(max_len=2)]
    maybe: bytes | None
    flag: bool


def test_nested_lists_optional_fields_and_bounds() -> None:
    obj = _Outer((_Inner(1), _Inner(2)), None, True)
    assert codec.decode(_Outer, codec.encode(obj)) == obj
    obj2 = _Outer((), b"\x01", False)
    assert codec.decode(_Outer, codec.encode(obj2)) == obj2
    too_many = codec.dumps_canonical(
        {"items": [{"n": 1}] * 3, "maybe": None, "flag": True, "v": 1})
    with pytest.raises(DecodeError, match=r"items: list has 3 items, allowed 0 to 2"):
        codec.decode(_Outer, too_many)
    bad_item = codec.dumps_canonical({"items": [{"n": 10}], "maybe": None, "flag": 1, "v": 1})
    with pytest.raises(DecodeError, match=r"items\[0\].n: integer 10 outside 0..9"):
        codec.decode(_Outer, bad_item)


def test_unsupported_field_types_fail_at_definition_use() -> None:
    @dataclasses.dataclass(frozen=True)
    class Floaty:
        x: float

    with pytest.raises(TypeError, match="does not support"):
        codec.encode(Floaty(1.0))


def test_decoded_objects_remember_their_encoding_and_share_computed_ids() -> None:
    tx = signed_tx()
    assert len(tx.id) == 32  # computed (and cached) on the original
    back = types.Tx.decode(tx.encoded)
    assert back.encoded == tx.encoded == codec.encode(back)
    twin = types.Tx.decode(tx.encoded)
    assert "id" not in twin.__dict__
    twin.share_caches(tx)
    assert twin.__dict__["id"] == tx.id
    other = signed_tx(nonce=b"\x07" * 16)
    fresh = types.Tx.decode(tx.encoded)
    fresh.share_caches(other)  # not equal: nothing is taken
    assert "id" not in fresh.__dict__ and fresh.id == tx.id
    block = signed_block((tx,))
    assert types.Block.decode(block.encoded).encoded == block.encoded
