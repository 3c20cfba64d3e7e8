"""The export credit-insurance scenario of docs/domain.md §4.10 (issue 17, protocol version 2) as
signed transactions, for `crossbill devnet demo --scenario insurance`.

It assumes protocol version 2 is active and the insurer admitted (its id and key are passed in);
it registers its own exporter, so it runs on a fresh consortium or after the headline workflow.
Every party's encryption key is at version 1 (derived from its signing key), as on a fresh
consortium: the policy's details are sealed, and its data key wrapped to each assignee bank, to
those keys.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from node.cli.demo import DAY_MS, Step
from node.client.sealing import Keyring, assignment_key, salt, seal
from protocol import crypto, txtypes, types
from protocol.sealed import Recipient

EXPORTER = "91370200MA3CP7XW4Q"
EXPORTER_NAME = "Qingdao Harbour Valves Co., Ltd."
POLICY = "SINO-2026-ST-0042"
BUYERS = ("Hamburg Marine GmbH", "Antwerp Valve Trading NV")


def insurance_steps(
    config: types.ConsortiumConfig,
    keys: dict[str, crypto.PrivateKey],
    now_ms: int,
    enterprise_key: crypto.PrivateKey,
    insurer: str,
    insurer_key: crypto.PrivateKey,
    nonce: Callable[[], bytes] = lambda: os.urandom(16),
) -> list[Step]:
    """An insurer's policy on the exporter's sales to two buyers (USD 1,000,000 covered, 80%
    may be financed at the default policy_advance_rate_bps), assigned to two banks that finance
    against it up to the cap and no further (POLICY_OVER_FINANCED, the scenario's guarantee),
    a bank without the assignment refused (POLICY_NOT_ASSIGNED), a claim the insurer pays that
    repays a financing, the exporter's repayment of the rest, and a cancelled policy that funds
    nothing new (POLICY_CANCELLED)."""
    regulators = [i.id for i in config.institutions if i.role == "regulator"]
    bank, bank2, bank3 = [i.id for i in config.institutions if i.role == "bank"][:3]
    expires = now_ms + config.params.tx_expiry_window_ms // 2
    signing = {**keys, EXPORTER: enterprise_key, insurer: insurer_key}
    rings = {party: Keyring.from_signing_key(party, key) for party, key in signing.items()}

    def to(*parties: str) -> list[Recipient]:
        return [Recipient(p, 1, rings[p].public_key) for p in (*parties, *regulators)]

    details = seal(txtypes.PolicyDetails(salt(), BUYERS, 85, "short-term whole-turnover cover"),
                   "policy.register", POLICY, to(insurer, EXPORTER))

    def assign(to_bank: str) -> txtypes.AssignPolicy:
        return txtypes.AssignPolicy(POLICY, to_bank, assignment_key(
            details, rings[insurer], Recipient(to_bank, 1, rings[to_bank].public_key)))

    usd = "USD"
    maturity = now_ms + 90 * DAY_MS
    fin1, fin2 = "PF-BOC-0001", "PF-ICBC-0001"
    steps: list[tuple[int, str, str, txtypes.Payload, str]] = [
        (1, "bank registers the exporter (KYC, with the exporter's key)", bank,
         txtypes.RegisterEnterprise(
             EXPORTER, EXPORTER_NAME, "CN", enterprise_key.public_key,
             txtypes.sign_enterprise_key_proof(enterprise_key, config.chain_id, EXPORTER, bank)),
         "OK"),
        (1, "a second bank registers the exporter as its customer (KYC)", bank2,
         txtypes.RegisterEnterprise(EXPORTER, EXPORTER_NAME, "CN", b""), "OK"),
        (2, "insurer registers a USD 1,000,000 policy (buyers sealed)", insurer,
         txtypes.RegisterPolicy(POLICY, EXPORTER, 100_000_000, usd, now_ms - DAY_MS,
                                now_ms + 365 * DAY_MS, details), "OK"),
        (3, "insurer assigns the policy's indemnity to the bank", insurer, assign(bank), "OK"),
        (3, "insurer assigns it to the second bank too", insurer, assign(bank2), "OK"),
        (4, "bank finances USD 500,000 against the policy", bank,
         txtypes.FinancePolicy(fin1, POLICY, EXPORTER, 50_000_000, usd, maturity), "OK"),
        (4, "the second bank asks USD 400,000: over 80% of the cover", bank2,
         txtypes.FinancePolicy(fin2, POLICY, EXPORTER, 40_000_000, usd, maturity),
         "POLICY_OVER_FINANCED"),
        (4, "the second bank finances the USD 300,000 left", bank2,
         txtypes.FinancePolicy(fin2, POLICY, EXPORTER, 30_000_000, usd, maturity), "OK"),
        (4, "a bank without the assignment tries to finance", bank3,
         txtypes.FinancePolicy("PF-CCB-0001", POLICY, EXPORTER, 1_000_000, usd, maturity),
         "POLICY_NOT_ASSIGNED"),
        (5, "a buyer defaults: the insurer pays USD 200,000 to the bank", insurer,
         txtypes.PayPolicyClaim("CLM-0001", POLICY, fin1, 20_000_000), "OK"),
        (5, "the exporter repays the bank's remaining USD 300,000", bank,
         txtypes.RepayPolicyFinancing(fin1, 30_000_000), "OK"),
        (6, "insurer cancels the policy (premium unpaid)", insurer,
         txtypes.CancelPolicy(POLICY, "premium unpaid"), "OK"),
        (6, "the second bank tries to finance more on the cancelled policy", bank2,
         txtypes.FinancePolicy("PF-ICBC-0002", POLICY, EXPORTER, 1_000_000, usd, maturity),
         "POLICY_CANCELLED"),
    ]
    return [Step(n, title, types.Tx.create(signing[signer], chain_id=config.chain_id,
                                           signer=signer, payload=payload, nonce=nonce(),
                                           expires_at_ms=expires), code)
            for n, title, signer, payload, code in steps]
