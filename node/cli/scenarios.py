"""`crossbill devnet demo --scenario NAME`: a scenario of protocol version 2 on a running devnet.

The devnet starts at protocol version 1. The regulator first schedules version 2 at the
earliest height the ledger allows (`protocol.activate`, ADR 0025) unless it is active already;
the demo then commits small regulator transactions (the day's USD/CNY reference rate) until the
activation height is reached, and reports how long the first version-2 block took to be applied
on every node. Then it walks the scenario's steps like the headline demo: each one signed,
committed on every node, with the ledger's expected answer and its latency.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Final

from node.cli.demo import USD_CNY_E8, Step
from node.cli.devnet import STEP_TIMEOUT_S, DemoSession, DevnetError
from node.cli.scenario_capital import capital_steps
from node.cli.scenario_insurance import insurance_steps
from node.keys import generate_key
from protocol import crypto, limits, txtypes, types
from protocol.ledger import dates

SCENARIOS: Final = ("insurance", "capital")
INSURER: Final = "insurer.sinosure"
INSURER_NAME: Final = "China Export & Credit Insurance Corporation"
POLL_S: Final = 0.005


def _regulator(session: DemoSession) -> str:
    return str(next(n["name"] for n in session.description["nodes"]
                    if n["role"] == "regulator"))


def _heights(session: DemoSession) -> dict[str, int]:
    return {name: int(c.status()["height"]) for name, c in session.clients.items()}


def _regulator_tx(session: DemoSession, payload: txtypes.Payload) -> types.Tx:
    reg = _regulator(session)
    return types.Tx.create(session.keys[reg], chain_id=session.genesis.chain_id, signer=reg,
                           payload=payload, nonce=os.urandom(16),
                           expires_at_ms=int(time.time() * 1000) + 600_000)


def _filler(session: DemoSession) -> types.Tx:
    """A harmless regulator transaction that makes a block: today's USD/CNY rate again."""
    today = dates.format_day(dates.day_of(int(time.time() * 1000)))
    return _regulator_tx(session, txtypes.PublishFxRate("USD", "CNY", today, USD_CNY_E8))


def activate(session: DemoSession, version: int, out: Callable[[str], None]) -> None:
    """Make `version` active on the devnet (schedule it if needed, fill blocks up to it) and
    report when its first block was applied everywhere."""
    reg = session.clients[_regulator(session)]
    info: dict[str, Any] = reg.call("protocol.versions")
    if info["version"] >= version:
        out(f"protocol version {info['version']} is active (height {info['height']})")
        return
    pending = [a for a in info["activations"] if a["version"] == version]
    if pending:
        height = int(pending[0]["height"])
    else:
        height = int(info["height"]) + 1 + limits.ACTIVATION_LEAD_BLOCKS_MIN + 2
        receipt = session.commit(_regulator_tx(session, txtypes.ActivateVersion(version,
                                                                                height)))
        if receipt["code"] != "OK":
            raise DevnetError(f"protocol.activate {version} at {height}: {receipt['code']}: "
                              f"{receipt['message']}")
    out(f"protocol version {version} scheduled from height {height}; filling blocks up to it")
    started = time.perf_counter()
    while min(_heights(session).values()) < height - 1:
        session.commit(_filler(session))
    # The activation block: from its submission, when did the first node and every node
    # apply it?
    tx = _filler(session)
    t0 = time.perf_counter()
    session.clients[_regulator(session)].submit(tx, wait=False)
    first = everywhere = 0.0
    deadline = t0 + STEP_TIMEOUT_S
    while time.perf_counter() < deadline:
        heights = _heights(session)
        now = time.perf_counter() - t0
        if not first and max(heights.values()) >= height:
            first = now
        if min(heights.values()) >= height:
            everywhere = now
            break
        time.sleep(POLL_S)
    else:
        raise DevnetError(f"height {height} not reached on every node in {STEP_TIMEOUT_S} s")
    versions_seen = {name: c.call("protocol.versions")["version"]
                     for name, c in session.clients.items()}
    if set(versions_seen.values()) != {version}:
        raise DevnetError(f"not every node is at protocol version {version}: {versions_seen}")
    out(f"protocol version {version} active on all {len(session.clients)} nodes "
        f"{time.perf_counter() - started:.2f} s after it was scheduled; its first block "
        f"(height {height}) applied on the first node {first * 1000:.0f} ms and on every "
        f"node {everywhere * 1000:.0f} ms after the transaction that filled it was sent "
        f"({(everywhere - first) * 1000:.0f} ms from the first node to the last)")


def _insurance(session: DemoSession) -> list[Step]:
    insurer_key: crypto.PrivateKey = generate_key()
    admit = Step(0, "regulator admits an export credit insurer (role insurer, version 2)",
                 _regulator_tx(session, txtypes.AdmitInstitution(
                     INSURER, INSURER_NAME, txtypes.ROLE_INSURER, insurer_key.public_key)),
                 "OK")
    return [admit, *insurance_steps(session.genesis, session.keys, int(time.time() * 1000),
                                    generate_key(), INSURER, insurer_key)]


def _capital(session: DemoSession) -> list[Step]:
    return capital_steps(session.genesis, session.keys, int(time.time() * 1000), generate_key())


_STEPS: Final[dict[str, Callable[[DemoSession], list[Step]]]] = {"insurance": _insurance,
                                                                 "capital": _capital}


def demo(root: Any, name: str, out: Callable[[str], None] = print) -> float:
    """Activate protocol version 2 if needed, then walk scenario `name`; the total seconds."""
    if name not in _STEPS:
        raise DevnetError(f"unknown scenario {name!r}: one of {', '.join(SCENARIOS)}")
    session = DemoSession.open(root)
    try:
        out(f"scenario {name} on {len(session.clients)} nodes of {session.genesis.chain_id}")
        activate(session, 2, out)
        return session.walk(_STEPS[name](session), out)
    finally:
        session.close()
