"""The insurance scenario of the devnet demo (node/cli/scenario_insurance.py) on one ledger, one
block per step, after version 2's activation and the insurer's admission: every step gets its
expected code, the accepted path and the refusals that show the guarantee."""

from __future__ import annotations

from collections.abc import Iterator

from node.cli import scenario_insurance as scenario
from node.cli.demo import build_consortium
from node.client.sealing import ENCRYPTED, Keyring, open_record
from node.rpc.views import policy_json
from protocol import crypto, limits, txtypes, types
from protocol.ledger import State, apply_block, codes, initial_state, queries_insurance
from tests.ledger.helpers import key_of

NOW = 1_795_000_000_000  # 2026-11-18T08:53:20Z
MEMBERS = ("regulator.safe-qd", "customs.qd", "tax.qd", "bank.boc-qd", "bank.icbc-qd",
           "bank.ccb-qd", "bank.abc-qd")
INSURER = "insurer.sinosure"


class Ledger:
    def __init__(self, config: types.ConsortiumConfig, keys: dict[str, crypto.PrivateKey]) -> None:
        self.config, self.keys = config, keys
        self.state: State = initial_state(config)
        self.height, self.time = 0, NOW
        self.nonces: Iterator[int] = iter(range(1, 10**6))

    def nonce(self) -> bytes:
        return next(self.nonces).to_bytes(16, "big")

    def block(self, *txs: types.Tx) -> list[types.Receipt]:
        self.height += 1
        self.time += 1_000
        bank = "bank.boc-qd"
        proposer = self.keys[bank]
        header = types.BlockHeader(self.config.chain_id, self.height, bytes(32), len(txs),
                                   types.tx_root(list(txs)), bytes(32), bytes(32), self.time,
                                   bank, proposer.key_id, 1, self.height)
        result = apply_block(self.state, types.Block.create(proposer, header, txs))
        result.commit(self.state)
        return list(result.receipts)

    def tx(self, signer: str, payload: txtypes.Payload) -> types.Tx:
        return types.Tx.create(self.keys[signer], chain_id=self.config.chain_id,
                               signer=signer, payload=payload, nonce=self.nonce(),
                               expires_at_ms=self.time + 600_000)


def test_the_insurance_scenario_walks_with_its_expected_codes() -> None:
    keys = {m: key_of(m) for m in MEMBERS}
    config, keys = build_consortium("crossbill-demo", NOW - 60_000, keys=keys)
    ledger = Ledger(config, dict(keys))
    regulator = "regulator.safe-qd"
    # what the lead's devnet demo does first: schedule version 2, wait, admit the insurer
    at = 1 + limits.ACTIVATION_LEAD_BLOCKS_MIN
    assert ledger.block(ledger.tx(regulator, txtypes.ActivateVersion(2, at)))[0].ok
    while ledger.height + 1 < at:
        ledger.block()
    insurer_key = key_of(INSURER)
    assert ledger.block(ledger.tx(regulator, txtypes.AdmitInstitution(
        INSURER, "China Export & Credit Insurance", txtypes.ROLE_INSURER,
        insurer_key.public_key)))[0].ok
    exporter_key = key_of("valves exporter")
    steps = scenario.insurance_steps(config, keys, ledger.time, exporter_key, INSURER,
                                     insurer_key, nonce=ledger.nonce)
    for step in steps:
        receipt = ledger.block(step.tx)[0]
        assert receipt.code == step.expect_code, (step.title, receipt.code, receipt.message)
    expected = {s.expect_code for s in steps}
    assert {codes.POLICY_OVER_FINANCED, codes.POLICY_NOT_ASSIGNED,
            codes.POLICY_CANCELLED} <= expected
    view = queries_insurance.policy_view(ledger.state, scenario.POLICY)
    assert (view.policy.financed, view.policy.claimed, view.live) == (
        30_000_000, 20_000_000, False)
    fins = queries_insurance.financings_of_policy(ledger.state, scenario.POLICY).items
    assert [(f.financing_id, f.status, f.outstanding) for f in fins] == [
        ("PF-BOC-0001", "repaid", 0), ("PF-ICBC-0001", "disbursed", 30_000_000)]
    # an assignee bank reads the buyers it lends against; a bank without the assignment cannot
    answer = policy_json(ledger.state, scenario.POLICY)
    opened = open_record(answer, Keyring.from_signing_key("bank.icbc-qd", keys["bank.icbc-qd"]))
    assert opened["policy"]["details"]["buyers"] == list(scenario.BUYERS)
    hidden = open_record(answer, Keyring.from_signing_key("bank.ccb-qd", keys["bank.ccb-qd"]))
    assert hidden["policy"]["details"] == ENCRYPTED
