"""validate_basic for transactions and blocks, and the chain link check."""

from __future__ import annotations

import dataclasses

import pytest

from protocol import crypto, limits, txtypes, types, validation
from protocol.errors import DecodeError, ValidationError
from protocol.sealed import file_party
from tests.protocol.helpers import declaration, key, sealed_details, signed_block, signed_tx


def _check_tx(tx: types.Tx, config: types.ConsortiumConfig) -> None:
    validation.validate_basic_tx(tx, chain_id=config.chain_id, registry=config)


def _check_block(block: types.Block, config: types.ConsortiumConfig) -> None:
    validation.validate_basic_block(block, chain_id=config.chain_id, registry=config,
                                    orderers=config.orderers, params=config.params)


def test_a_good_transaction_passes(config: types.ConsortiumConfig) -> None:
    _check_tx(signed_tx(), config)


@pytest.mark.parametrize(
    ("tx_kwargs", "code"),
    [
        ({"chain_id": "other-chain"}, validation.WRONG_CHAIN),
        ({"signer": "customs.nowhere"}, validation.UNKNOWN_SIGNER),
        ({"signer": "bank.alpha"}, validation.ROLE_FORBIDDEN),
        ({"signer": "tax.qd"}, validation.ROLE_FORBIDDEN),
    ],
)
def test_transaction_rejections(config: types.ConsortiumConfig, tx_kwargs: dict[str, str],
                                code: str) -> None:
    with pytest.raises(ValidationError) as err:
        _check_tx(signed_tx(**tx_kwargs), config)  # type: ignore[arg-type]
    assert err.value.code == code


def test_unknown_key_and_forged_signature(config: types.ConsortiumConfig) -> None:
    # Signed by a key the consortium does not list for customs.
    forged = types.Tx.create(key("intruder"), chain_id=config.chain_id, signer="customs.qd",
                             payload=declaration(), nonce=b"\x05" * 16, expires_at_ms=1)
    with pytest.raises(ValidationError) as err:
        _check_tx(forged, config)
    assert err.value.code == validation.UNKNOWN_KEY
    # Right key id, but the signature was made by someone else.
    good = signed_tx()
    stolen = dataclasses.replace(forged, key_id=good.key_id)
    with pytest.raises(ValidationError) as err:
        _check_tx(stolen, config)
    assert err.value.code == validation.BAD_SIGNATURE


def test_oversized_transaction(config: types.ConsortiumConfig) -> None:
    u = "91370200MA3C000001"
    details = txtypes.CreditDetails(b"\x01" * 16, "credit_line", 1, "USD", "x" * 1000)
    big = txtypes.RecordCredit(u, "E-1", sealed_details(
        details, "credit.record", "E-1", ("bank.alpha", "regulator.safe", u, file_party(u))))
    tx = signed_tx(big, signer="bank.alpha")
    assert len(tx.encoded) < limits.TX_BYTES_MAX  # a normal large tx passes
    _check_tx(tx, config)
    huge = dataclasses.replace(tx, nonce=b"\x01" * 32)
    object.__setattr__(huge, "encoded", b"x" * (limits.TX_BYTES_MAX + 1))
    with pytest.raises(ValidationError) as err:
        _check_tx(huge, config)
    assert err.value.code == validation.TX_TOO_LARGE


def test_every_byte_flip_of_a_signed_transaction_fails_verification(
        config: types.ConsortiumConfig) -> None:
    data = signed_tx().encoded
    for pos in range(len(data)):
        for bit in (0, 5):
            flipped = bytearray(data)
            flipped[pos] ^= 1 << bit
            try:
                tx = types.Tx.decode(bytes(flipped))
            except DecodeError:
                continue
            with pytest.raises(ValidationError):
                _check_tx(tx, config)


# ------------------------------------------------------------------------- blocks


def _txs(n: int) -> tuple[types.Tx, ...]:
    return tuple(signed_tx(declaration(f"D-{i}"), nonce=bytes([i + 1]) * 16) for i in range(n))


def test_a_good_block_passes(config: types.ConsortiumConfig) -> None:
    _check_block(signed_block(_txs(3)), config)
    _check_block(signed_block(()), config)


def test_every_byte_flip_of_a_signed_block_fails_verification(
        config: types.ConsortiumConfig) -> None:
    data = signed_block(_txs(2)).encoded
    for pos in range(len(data)):
        flipped = bytearray(data)
        flipped[pos] ^= 0x01
        try:
            block = types.Block.decode(bytes(flipped))
        except DecodeError:
            continue
        with pytest.raises(ValidationError):
            _check_block(block, config)


def _resign(block: types.Block, **header_changes: object) -> types.Block:
    header = dataclasses.replace(block.header, **header_changes)  # type: ignore[arg-type]
    return types.Block.create(key(header.proposer), header, block.txs)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"chain_id": "other"}, validation.WRONG_CHAIN),
        ({"tx_count": 2}, validation.TX_COUNT_MISMATCH),
        ({"tx_root": b"\x00" * 32}, validation.BAD_TX_ROOT),
    ],
)
def test_block_header_rejections(config: types.ConsortiumConfig, change: dict[str, object],
                                 code: str) -> None:
    with pytest.raises(ValidationError) as err:
        _check_block(_resign(signed_block(_txs(3)), **change), config)
    assert err.value.code == code


def test_block_from_a_non_orderer_or_with_a_bad_signature(
        config: types.ConsortiumConfig) -> None:
    block = signed_block(_txs(1))
    not_orderer = types.Block.create(
        key("customs.qd"),
        dataclasses.replace(block.header, proposer="customs.qd",
                            proposer_key_id=key("customs.qd").key_id), block.txs)
    with pytest.raises(ValidationError) as err:
        _check_block(not_orderer, config)
    assert err.value.code == validation.NOT_AN_ORDERER
    forged = dataclasses.replace(block, signature=key("bank.beta").sign(
        types.Block.signing_message(block.header)))
    with pytest.raises(ValidationError) as err:
        _check_block(forged, config)
    assert err.value.code == validation.BAD_BLOCK_SIGNATURE


def test_block_with_a_forged_transaction_names_it(config: types.ConsortiumConfig) -> None:
    forged = dataclasses.replace(signed_tx(nonce=b"\x09" * 16), signature=b"\x01" * 64)
    block = signed_block((*_txs(2), forged))
    with pytest.raises(ValidationError, match="transaction 2") as err:
        _check_block(block, config)
    assert err.value.code == validation.BAD_SIGNATURE


def test_state_dependent_refusals_are_left_to_the_ledger(
        config: types.ConsortiumConfig) -> None:
    """A role the signer lacks, or a signer unknown before the block, is not the proposer's
    fault: the block stays valid and the ledger rejects that transaction with a receipt."""
    wrong_role = signed_tx(signer="bank.alpha")
    stranger = types.Tx.create(key("newcomer"), chain_id=config.chain_id, signer="bank.new",
                               payload=declaration(), nonce=b"\x06" * 16, expires_at_ms=1)
    _check_block(signed_block((*_txs(1), wrong_role, stranger)), config)


def test_block_with_a_duplicate_transaction(config: types.ConsortiumConfig) -> None:
    tx = signed_tx()
    with pytest.raises(ValidationError) as err:
        _check_block(signed_block((tx, tx)), config)
    assert err.value.code == validation.DUPLICATE_TX


def test_block_limits_come_from_the_consortium_params(config: types.ConsortiumConfig) -> None:
    small = dataclasses.replace(config, params=dataclasses.replace(config.params,
                                                                   block_txs_max=2))
    with pytest.raises(ValidationError) as err:
        validation.validate_basic_block(signed_block(_txs(3)), chain_id=small.chain_id,
                                        registry=small, orderers=small.orderers,
                                        params=small.params)
    assert err.value.code == validation.TOO_MANY_TXS
    tiny = dataclasses.replace(config.params, block_bytes_max=limits.TX_BYTES_MAX * 2)
    many = _txs(40)
    with pytest.raises(ValidationError) as err:
        validation.validate_basic_block(signed_block(many), chain_id=config.chain_id,
                                        registry=config, orderers=config.orderers, params=tiny)
    assert err.value.code == validation.BLOCK_TOO_LARGE


def test_already_verified_transactions_skip_the_signature_check(
        config: types.ConsortiumConfig) -> None:
    txs = _txs(2)
    broken = dataclasses.replace(txs[1], signature=b"\x00" * 64)
    block = signed_block((txs[0], broken))
    with pytest.raises(ValidationError):
        _check_block(block, config)
    validation.validate_basic_block(block, chain_id=config.chain_id, registry=config,
                                    orderers=config.orderers, params=config.params,
                                    tx_verified=lambda tx: tx == broken)


def test_chain_link() -> None:
    genesis = crypto.hash_domain(crypto.DOMAIN_GENESIS, b"g")
    b1 = signed_block((), prev_hash=genesis)
    validation.validate_chain_link(genesis, 0, 0, b1.header)
    for args, code in [
        ((genesis, 1, 0), validation.BAD_HEIGHT),
        ((b"\x01" * 32, 0, 0), validation.BAD_PREV_HASH),
        ((genesis, 0, b1.header.timestamp_ms + 1), validation.TIME_WENT_BACKWARDS),
    ]:
        with pytest.raises(ValidationError) as err:
            validation.validate_chain_link(*args, b1.header)  # type: ignore[arg-type]
        assert err.value.code == code


def test_admission_refuses_a_transaction_that_expired_before_now() -> None:
    tx = signed_tx()  # expires at 1_790_000_600_000
    validation.check_not_expired(tx, now_ms=tx.expires_at_ms)  # the last moment still counts
    with pytest.raises(ValidationError) as err:
        validation.check_not_expired(tx, now_ms=tx.expires_at_ms + 1)
    assert err.value.code == validation.TX_EXPIRED == "TX_EXPIRED"
