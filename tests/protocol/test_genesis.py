"""Loading the consortium configuration: every kind of broken genesis file gets a clear error."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from protocol import codec, limits
from protocol.errors import ConfigError
from protocol.genesis import load_genesis
from tests.protocol.helpers import genesis_json, key


def _load(raw: Any) -> None:
    load_genesis(json.dumps(raw, indent=2).encode())


def test_a_valid_genesis_loads_and_any_layout_gives_the_same_hash() -> None:
    raw = genesis_json()
    pretty = load_genesis(json.dumps(raw, indent=4).encode())
    compact = load_genesis(orjson.dumps(raw))
    assert pretty == compact
    assert pretty.hash == compact.hash
    assert len(pretty.hash) == 32
    assert pretty.signer_role("bank.alpha") == "bank"
    inst = pretty.institution("bank.alpha")
    assert inst is not None
    assert pretty.signer_public_key("bank.alpha", inst.keys[0].key_id) == key(
        "bank.alpha").public_key
    # The canonical encoding of the loaded config is itself a valid genesis file.
    assert load_genesis(codec.encode(pretty)).hash == pretty.hash


def test_any_change_changes_the_genesis_hash() -> None:
    raw = genesis_json()
    other = copy.deepcopy(raw)
    other["params"]["advance_rate_bps"] = 8000
    assert load_genesis(orjson.dumps(raw)).hash != load_genesis(orjson.dumps(other)).hash


def _inst(raw: dict[str, Any], i: int) -> dict[str, Any]:
    institution: dict[str, Any] = raw["institutions"][i]
    return institution


BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "missing chain id": (lambda r: r.pop("chain_id"), "missing field"),
    "unknown top-level key": (lambda r: r.update(chainid="x"), "unknown field"),
    "bad chain id": (lambda r: r.update(chain_id="Main Net"), "chain_id"),
    "float parameter": (lambda r: r["params"].update(advance_rate_bps=0.9),
                        "params.advance_rate_bps: expected an integer, got float"),
    "advance rate over 100%": (lambda r: r["params"].update(advance_rate_bps=10_001),
                               "params.advance_rate_bps: integer 10001 outside"),
    "block limit over the ceiling": (
        lambda r: r["params"].update(block_bytes_max=limits.BLOCK_BYTES_MAX + 1),
        "params.block_bytes_max"),
    "duplicate institution": (lambda r: r["institutions"].append(copy.deepcopy(_inst(r, 0))),
                              r"institutions\[6\].id: 'regulator.safe' is already"),
    "unknown role": (lambda r: _inst(r, 1).update(role="police"),
                     r"institutions\[1\].role: 'police' is not one of"),
    "enterprise as institution": (lambda r: _inst(r, 1).update(role="enterprise"),
                                  r"institutions\[1\].role"),
    "bad institution id": (lambda r: _inst(r, 1).update(id="Customs QD"),
                           r"institutions\[1\].id"),
    "key id does not match key": (
        lambda r: _inst(r, 2)["keys"][0].update(key_id="00" * 8),
        r"institutions\[2\].keys\[0\].key_id: does not match the public key"),
    "short public key": (lambda r: _inst(r, 2)["keys"][0].update(public_key="ab" * 31),
                         r"institutions\[2\].keys\[0\].public_key: 31 bytes"),
    "public key off the curve": (
        lambda r: _inst(r, 2)["keys"][0].update(public_key="01" * 32),
        r"institutions\[2\].keys\[0\].public_key: not a valid Ed25519 public key"),
    "no keys": (lambda r: _inst(r, 2).update(keys=[]), r"institutions\[2\].keys: list has 0"),
    "same key twice": (lambda r: _inst(r, 2)["keys"].append(_inst(r, 2)["keys"][0]),
                       r"institutions\[2\].keys\[1\]: the same key is listed twice"),
    "no regulator": (lambda r: _inst(r, 0).update(role="tax"), "needs a regulator"),
    "unknown orderer": (lambda r: r["orderers"].append("bank.zeta"),
                        r"orderers\[3\]: 'bank.zeta' is not an institution"),
    "duplicate orderer": (lambda r: r["orderers"].append("bank.alpha"),
                          r"orderers\[3\]: 'bank.alpha' is listed twice"),
    "orderer not a bank": (lambda r: r["orderers"].append("customs.qd"),
                           "only banks order blocks"),
    "orderer without node": (lambda r: _inst(r, 3).update(node=None), "runs no node"),
    "no orderers": (lambda r: r.update(orderers=[]), "orderers: list has 0 items"),
    "bad address": (lambda r: _inst(r, 3)["node"].update(addresses=["127.0.0.1:7000"]),
                    r"institutions\[3\].node.addresses\[0\]: '127.0.0.1:7000' is not a"),
    "duplicate peer id": (lambda r: _inst(r, 4)["node"].update(peer_id="peer-bank.alpha"),
                          r"institutions\[4\].node.peer_id: already the peer id"),
    "wrong version": (lambda r: r.update(v=7), "v: unsupported version 7"),
    "institutions not a list": (lambda r: r.update(institutions={}),
                                "institutions: expected a list, got object"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_genesis_is_refused_with_a_message_naming_the_key(name: str) -> None:
    mutate, message = BROKEN[name]
    raw = genesis_json()
    mutate(raw)
    with pytest.raises(ConfigError, match=message) as err:
        _load(raw)
    assert str(err.value).startswith("genesis: ")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not valid JSON"),
        (b"[1, 2]", "one JSON object"),
        (b'{"chain_id": ', "not valid JSON"),
        (b" " * (limits.GENESIS_BYTES_MAX + 1), "exceeds the limit"),
    ],
)
def test_unreadable_genesis_files(data: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_genesis(data)
