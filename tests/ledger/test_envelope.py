"""State-dependent envelope checks: signer, key, role, expiry and replay (invariants 4, 6)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from protocol import limits, txtypes, types
from protocol.ledger import BlockOrderError, apply_txs, codes, keys
from protocol.ledger.kv import iterate_prefix
from tests.ledger.helpers import (
    BANK_A,
    BANK_B,
    CUSTOMS,
    EXPORTER,
    REG,
    T0,
    Chain,
    credit_entry,
    declaration,
    key_of,
    open_financing,
    register_enterprise,
)


def rooted_records(chain: Chain) -> dict[bytes, bytes]:
    """The rooted state except the head (which every block changes)."""
    return {k: v for k, v in chain.state.kv.iterate(b"", None)
            if keys.is_rooted(k) and k != keys.HEAD}


def test_unknown_signer(chain: Chain) -> None:
    r = chain.one("bank.zz", register_enterprise(), key=key_of("bank.zz"))
    assert r.code == codes.UNKNOWN_SIGNER


def test_unknown_key(chain: Chain) -> None:
    r = chain.one(BANK_A, register_enterprise(), key=key_of("someone-else"))
    assert r.code == codes.UNKNOWN_KEY


def test_role_forbidden(chain: Chain) -> None:
    assert chain.one(CUSTOMS, register_enterprise()).code == codes.ROLE_FORBIDDEN
    assert chain.one(BANK_A, declaration("D-1", 100)).code == codes.ROLE_FORBIDDEN
    assert chain.one(BANK_A, txtypes.SetFxClass(EXPORTER, "A")).code == codes.ROLE_FORBIDDEN


def test_wrong_chain(chain: Chain) -> None:
    tx = types.Tx.create(key_of(BANK_A), chain_id="other-chain", signer=BANK_A,
                         payload=register_enterprise(), nonce=b"n" * 8,
                         expires_at_ms=T0 + 10_000)
    assert chain.apply(tx)[0].code == codes.WRONG_CHAIN


def test_unknown_type(chain: Chain) -> None:
    @dataclass(frozen=True)
    class Bogus(txtypes.Payload):
        TYPE = "bogus.thing"
        note: str

    tx = chain.tx(BANK_A, register_enterprise())
    bogus = types.Tx(tx.chain_id, "bogus.thing", tx.signer, tx.key_id, tx.nonce,
                     tx.expires_at_ms, Bogus("x"), tx.signature)
    assert chain.apply(bogus)[0].code == codes.UNKNOWN_TYPE


def test_suspended_signer_refused_and_reinstated(chain: Chain) -> None:
    chain.ok(REG, txtypes.SuspendInstitution(BANK_B, "audit"))
    assert chain.state.signer_suspended(BANK_B)
    assert chain.one(BANK_B, register_enterprise()).code == codes.SIGNER_SUSPENDED
    chain.ok(REG, txtypes.ReinstateInstitution(BANK_B))
    chain.ok(BANK_B, register_enterprise())


def test_suspension_applies_within_the_block(chain: Chain) -> None:
    r = chain.apply(chain.tx(BANK_A, register_enterprise()),
                    chain.tx(REG, txtypes.SuspendInstitution(BANK_A, "")),
                    chain.tx(BANK_A, credit_entry("e", kind="overdue", amount=1)))
    assert [x.code for x in r] == ["OK", "OK", codes.SIGNER_SUSPENDED]


def test_rekey_retires_old_key_from_next_block(chain: Chain) -> None:
    old, new = key_of(BANK_A), key_of("bank.a-2")
    r = chain.apply(
        chain.tx(REG, txtypes.RekeyInstitution(BANK_A, new.public_key, (old.key_id,))),
        chain.tx(BANK_A, register_enterprise(), key=old))  # same block: old key still valid
    assert [x.code for x in r] == ["OK", "OK"]
    assert chain.state.signer_public_key(BANK_A, old.key_id) is None
    assert chain.state.signer_public_key(BANK_A, new.key_id) == new.public_key
    refused = chain.one(BANK_A, credit_entry("e1", kind="overdue", amount=1),
                        key=old)
    assert refused.code == codes.KEY_RETIRED
    chain.ok(BANK_A, credit_entry("e1", kind="overdue", amount=1), key=new)


def test_enterprise_signs_with_the_key_its_bank_registered(chain: Chain) -> None:
    ek = key_of("exporter")
    grant = chain.encryption_key(EXPORTER)
    assert chain.one(EXPORTER, grant, key=ek).code == codes.UNKNOWN_SIGNER
    chain.ok(BANK_A, register_enterprise())  # no key yet
    assert chain.one(EXPORTER, grant, key=ek).code == codes.UNKNOWN_KEY
    chain.ok(BANK_A, register_enterprise(public_key=ek.public_key))
    assert chain.state.signer_role(EXPORTER) == "enterprise"
    assert chain.state.signer_public_key(EXPORTER, ek.key_id) == ek.public_key
    assert chain.one(EXPORTER, grant, key=key_of("other")).code == codes.UNKNOWN_KEY
    chain.ok(EXPORTER, grant, key=ek)
    # An enterprise may not act as a bank.
    assert chain.one(EXPORTER, register_enterprise(), key=ek).code == codes.ROLE_FORBIDDEN


def test_expiry_bounds(chain: Chain) -> None:
    window = chain.config.params.tx_expiry_window_ms
    block_time = chain.time_ms + 1000  # the next block's time
    assert chain.one(BANK_A, register_enterprise(),
                     expires_at_ms=block_time - 1).code == codes.TX_EXPIRED
    block_time += 1000
    assert chain.one(BANK_A, register_enterprise(),
                     expires_at_ms=block_time + window + 1).code == codes.EXPIRY_TOO_FAR
    block_time += 1000
    chain.ok(BANK_A, register_enterprise(), expires_at_ms=block_time)  # boundary: accepted
    block_time += 1000
    chain.ok(BANK_A, credit_entry("e", kind="overdue", amount=1),
             expires_at_ms=block_time + window)


def test_replay_of_same_transaction_refused(chain: Chain) -> None:
    tx = chain.tx(BANK_A, register_enterprise())
    assert chain.apply(tx)[0].ok
    again = chain.apply(tx)[0]
    assert again.code == codes.NONCE_REPLAY and "already applied" in again.message


def test_nonce_reuse_by_other_tx_refused_but_free_for_other_signers(chain: Chain) -> None:
    nonce = b"shared-n"
    chain.ok(BANK_A, register_enterprise(), nonce=nonce)
    r = chain.one(BANK_A, credit_entry("e", kind="overdue", amount=1),
                  nonce=nonce)
    assert r.code == codes.NONCE_REPLAY
    chain.ok(BANK_B, register_enterprise(), nonce=nonce)


def test_same_nonce_twice_in_one_block_first_wins(chain: Chain) -> None:
    a = chain.tx(BANK_A, register_enterprise(), nonce=b"samenonc")
    b = chain.tx(BANK_A, register_enterprise("91370200MA3C00009X"), nonce=b"samenonc")
    assert [r.code for r in chain.apply(a, b)] == ["OK", codes.NONCE_REPLAY]


def test_concurrent_submitters_need_no_sequence(chain: Chain) -> None:
    """Several servers sharing one key submit in any order: random nonces, no ordering."""
    txs = [chain.tx(BANK_A, credit_entry(f"e{i}", kind="overdue", amount=1),
                    nonce=bytes([i]) * 8) for i in range(5, 0, -1)]
    chain.ok(BANK_A, register_enterprise())
    assert all(r.ok for r in chain.apply(*txs))


def test_rejected_tx_does_not_consume_its_nonce_or_change_state(chain: Chain) -> None:
    chain.apply()  # prunes the nonces of the encryption keys' block
    before = rooted_records(chain)
    tx = chain.tx(BANK_A, open_financing("F", 1, ("D-404", 1)))
    assert chain.apply(tx)[0].code == codes.UNKNOWN_ENTERPRISE
    assert rooted_records(chain) == before


def test_expired_nonces_are_pruned_and_reusable(chain: Chain) -> None:
    chain.apply()  # prunes the nonces of the encryption keys' block
    tx = chain.tx(BANK_A, register_enterprise(), nonce=b"prunable",
                  expires_at_ms=chain.time_ms + 5000)
    assert chain.apply(tx)[0].ok
    assert chain.state.kv.get(keys.nonce(BANK_A, b"prunable")) is not None
    chain.apply(dt_ms=10_000)  # an empty block past the expiry prunes it
    assert chain.state.kv.get(keys.nonce(BANK_A, b"prunable")) is None
    assert list(iterate_prefix(chain.state.kv, keys.EXPIRY)) == []
    chain.ok(BANK_A, credit_entry("e", kind="overdue", amount=1),
             nonce=b"prunable")


def test_block_must_follow_head(chain: Chain) -> None:
    with pytest.raises(BlockOrderError):
        apply_txs(chain.state, chain.height + 5, chain.time_ms + 1, [])
    with pytest.raises(BlockOrderError):
        apply_txs(chain.state, chain.height + 1, chain.time_ms - 1, [])


def test_pruning_is_bounded_per_block_and_stale_entries_are_ignored(
        chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:

    chain.apply()  # prunes the nonces of the encryption keys' block
    t0 = chain.time_ms
    monkeypatch.setattr(limits, "NONCE_PRUNE_PER_BLOCK_MAX", 1)
    nonces = [bytes([i]) * 8 for i in range(1, 4)]
    chain.apply(chain.tx(BANK_A, register_enterprise(), nonce=nonces[0],
                         expires_at_ms=t0 + 2500))
    chain.apply(*[chain.tx(BANK_A, credit_entry(f"e{i}", kind="overdue", amount=1), nonce=n,
                           expires_at_ms=t0 + 2500)
                  for i, n in enumerate(nonces[1:])])
    chain.apply(dt_ms=10_000)  # all three expired; only the oldest is pruned
    remembered = [n for n in nonces if chain.state.kv.get(keys.nonce(BANK_A, n))]
    assert remembered == nonces[1:]
    # An expired entry that pruning has not reached yet does not block its nonce.
    chain.ok(BANK_A, credit_entry("e9", kind="overdue", amount=1),
             nonce=nonces[2])
    chain.apply()
    assert [n for n in nonces if chain.state.kv.get(keys.nonce(BANK_A, n))] == [nonces[2]]
    exp = [keys.parse_expiry(k) for k, _ in iterate_prefix(chain.state.kv, keys.EXPIRY)]
    assert [(signer, n) for _, signer, n in exp] == [(BANK_A, nonces[2])]


def test_a_signer_registered_in_a_block_signs_from_the_next_block(chain: Chain) -> None:
    """Signers and keys are resolved in the state before the block, as validate_basic_block
    resolves them to verify signatures: nothing accepted ever skipped its signature check."""
    ent_key = key_of("enterprise")
    register = chain.tx(BANK_A, register_enterprise(public_key=ent_key.public_key))
    own_key = chain.tx(EXPORTER, chain.encryption_key(EXPORTER), key=ent_key)
    r_register, r_own_key = chain.apply(register, own_key)
    assert r_register.ok
    assert r_own_key.code == codes.UNKNOWN_SIGNER
    again = chain.tx(EXPORTER, chain.encryption_key(EXPORTER), key=ent_key)
    assert chain.apply(again)[0].ok


def test_a_key_added_by_rekey_signs_from_the_next_block(chain: Chain) -> None:
    new_key = key_of("customs-2026")
    rekey = chain.tx(REG, txtypes.RekeyInstitution(CUSTOMS, new_key.public_key, ()))
    early = chain.tx(CUSTOMS, declaration("D-EARLY", 100), key=new_key)
    r_rekey, r_early = chain.apply(rekey, early)
    assert r_rekey.ok and r_early.code == codes.UNKNOWN_KEY
    assert chain.one(CUSTOMS, declaration("D-LATER", 100), key=new_key).ok
