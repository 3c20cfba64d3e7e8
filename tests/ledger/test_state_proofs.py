"""State proofs (protocol/ledger/smt.py `prove`, `verify_proof`; ADR 0035): every key proves
against the root compute_root gives, an absent key proves its absence, and any change to the
proof, the value, the key or the root is refused."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import codec, limits
from protocol.errors import DecodeError
from protocol.ledger import smt
from protocol.ledger.kv import MemoryKV

KEYS = st.binary(min_size=1, max_size=12)
STATES = st.dictionaries(KEYS, st.binary(max_size=8), max_size=60)


def stored(items: dict[bytes, bytes]) -> tuple[MemoryKV, bytes]:
    kv = MemoryKV()
    root = smt.update(kv, items)
    assert root == smt.compute_root(items.items())
    return kv, root


def flipped(proof: smt.StateProof) -> list[smt.StateProof]:
    """`proof` with one byte changed: in each sibling list's first and last hash, and in the
    other leaf."""
    out = []
    for i, s in enumerate(proof.siblings):
        for at in (0, len(s) - 1):
            bad = s[:at] + bytes((s[at] ^ 1,)) + s[at + 1:]
            out.append(dataclasses.replace(
                proof, siblings=proof.siblings[:i] + (bad,) + proof.siblings[i + 1:]))
    if proof.other is not None:
        o = proof.other
        out.append(dataclasses.replace(proof, other=smt.LoneLeaf(
            o.path, bytes((o.value_hash[0] ^ 1,)) + o.value_hash[1:])))
        out.append(dataclasses.replace(proof, other=smt.LoneLeaf(
            o.path[:-1] + bytes((o.path[-1] ^ 1,)), o.value_hash)))
    return out


def reshaped(proof: smt.StateProof) -> list[smt.StateProof]:
    """`proof` truncated by one node, extended by one, and without its other leaf."""
    out = [dataclasses.replace(proof, siblings=proof.siblings + (bytes(480),))]
    if proof.siblings:
        out.append(dataclasses.replace(proof, siblings=proof.siblings[1:]))
        out.append(dataclasses.replace(proof, siblings=proof.siblings[:-1]))
    if proof.other is not None:
        out.append(dataclasses.replace(proof, other=None))
    return out


@settings(max_examples=40, deadline=None)
@given(STATES, KEYS)
def test_members_and_absentees_prove_and_nothing_else_does(items: dict[bytes, bytes],
                                                           absent: bytes) -> None:
    kv, root = stored(items)
    other_root = smt.compute_root([*items.items(), (absent + b"!", b"x")])
    for key, value in items.items():
        proof = smt.prove(kv, key)
        assert proof.other is None
        assert smt.verify_proof(root, key, value, proof)
        assert codec.decode(smt.StateProof, codec.encode(proof)) == proof
        assert not smt.verify_proof(root, key, value + b"\x00", proof)  # wrong value
        assert not smt.verify_proof(root, key, None, proof)  # a member is not absent
        assert not smt.verify_proof(other_root, key, value, proof)  # wrong root
        assert not any(smt.verify_proof(root, key, value, p) for p in flipped(proof))
        assert not any(smt.verify_proof(root, key, value, p) for p in reshaped(proof))
    if absent in items:
        return
    proof = smt.prove(kv, absent)
    assert smt.verify_proof(root, absent, None, proof)
    assert not smt.verify_proof(root, absent, b"", proof)  # nothing proves a value there
    assert not any(smt.verify_proof(root, absent, None, p) for p in flipped(proof))
    assert not any(smt.verify_proof(root, absent, None, p) for p in reshaped(proof))
    for key, value in items.items():  # nor proves another key
        assert not smt.verify_proof(root, key, value, proof)


def test_both_kinds_of_absence_and_the_empty_state() -> None:
    assert smt.verify_proof(smt.EMPTY_HASH, b"k", None, smt.prove(MemoryKV(), b"k"))
    items = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(200)}
    kv, root = stored(items)
    ends = {True: 0, False: 0}
    for i in range(200):
        proof = smt.prove(kv, f"absent-{i}".encode())
        assert smt.verify_proof(root, f"absent-{i}".encode(), None, proof)
        ends[proof.other is not None] += 1
    assert ends[True] and ends[False]  # both an empty slot and another key's leaf


def test_a_members_leaf_cannot_pass_for_another_keys() -> None:
    """The forgery an unopened leaf hash would allow: the member's own leaf hash under a
    made-up path that shares the position. The other leaf's value hash is opened instead, so
    the verifier recomputes the leaf hash from that path, and it no longer matches."""
    items = {f"key-{i}".encode(): b"v" for i in range(40)}
    kv, root = stored(items)
    key = b"key-7"
    proof = smt.prove(kv, key)
    path = smt.key_path(key)
    forged = smt.StateProof(proof.siblings, smt.LoneLeaf(
        (path ^ 1).to_bytes(32, "big"), smt.value_hash(b"v")))
    assert not smt.verify_proof(root, key, None, forged)
    same_path = smt.StateProof(proof.siblings, smt.LoneLeaf(path.to_bytes(32, "big"),
                                                            smt.value_hash(b"v")))
    assert not smt.verify_proof(root, key, None, same_path)  # its own leaf is not "another"


def test_proofs_decode_strictly() -> None:
    items = {f"key-{i}".encode(): b"v" for i in range(40)}
    kv, _ = stored(items)
    raw = codec.to_json(smt.prove(kv, b"key-1"))
    too_deep = {**raw, "siblings": ["00" * 480] * (limits.STATE_PROOF_DEPTH_NIBBLES_MAX + 1)}
    short = {**raw, "siblings": ["00" * 479]}
    for bad in (too_deep, short, {**raw, "extra": 1}, {"siblings": raw["siblings"]}):
        with pytest.raises(DecodeError):
            codec.from_json(smt.StateProof, bad)


def test_size_grows_with_log16_of_the_keys() -> None:
    for n in (16, 256, 4096):
        items = {i.to_bytes(4, "big"): b"v" for i in range(n)}
        kv, _ = stored(items)
        depths = [len(smt.prove(kv, k).siblings) for k in list(items)[:200]]
        assert max(depths) <= math.log(n, 16) + 3, (n, max(depths))


def test_proof_benchmark_runs_with_tiny_sizes() -> None:
    """benchmarks/state_proofs.py (ADR 0035) prints its table; figures are not checked."""
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "state_proofs.py"),
                          "--keys", "300", "--samples", "20"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "verify us" in out and "300" in out
