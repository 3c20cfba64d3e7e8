"""Protocol versions: which ledger rules apply to the block at each height (ADR 0025).

A network starts at version 1 (genesis). The regulator schedules the next version with a
`protocol.activate` transaction naming it and a height at least `ACTIVATION_LEAD_BLOCKS_MIN`
blocks ahead; from that height on, every block is applied by that version's rules (its new
transaction types, roles and parameters, and any rule it changes), and every block below it by
the earlier rules, forever: replaying the chain from genesis with the newest binary reproduces
every state root. Until the height is reached the regulator may cancel the activation
(`protocol.cancel`).

Everything here is a pure function of the activations the ledger holds, so every node decides
alike. A binary implements the versions up to `IMPLEMENTED_VERSION`; a node whose next block
would need a later one stops ordering and following at that height (`required_upgrade`) and
says which version it needs, rather than apply blocks by rules it does not know and diverge.
A binary upgraded early runs the old rules until the height, like every other node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final

from protocol import limits
from protocol.codec import bound

GENESIS_VERSION: Final = 1
# The highest version this code implements (a node may be told to implement fewer, to rehearse
# an upgrade: node/config.py).
IMPLEMENTED_VERSION: Final = 2

_Count = Annotated[int, bound(min_value=0, max_value=2**63 - 1)]
_Version = Annotated[int, bound(min_value=1, max_value=limits.PROTOCOL_VERSION_MAX)]


@dataclass(frozen=True, slots=True)
class VersionInfo:
    number: int
    title: str
    summary: str


VERSIONS: Final[tuple[VersionInfo, ...]] = (
    VersionInfo(1, "export-receivable financing",
                "institutions and enterprises, declarations, tax forms, credit files with "
                "consent, export-receivable financing with pledges, payments, sealed fields"),
    VersionInfo(2, "insurance and capital account",
                "export credit insurers (role insurer), credit-insurance policies financed "
                "under a consortium advance rate, capital-account income payments checked "
                "against documents registered by their issuers"),
)

if [v.number for v in VERSIONS] != list(range(1, IMPLEMENTED_VERSION + 1)):
    raise RuntimeError("VERSIONS must describe versions 1..IMPLEMENTED_VERSION in order")


@dataclass(frozen=True, slots=True)
class Activation:
    """Version `version` applies from the block at `height`; scheduled by the block at
    `scheduled_height`."""

    version: _Version
    height: _Count
    scheduled_height: _Count


def active_version(activations: Sequence[Activation], height: int) -> int:
    """The version whose rules apply to the block at `height`."""
    version = GENESIS_VERSION
    for act in activations:
        if act.height <= height and act.version > version:
            version = act.version
    return version


def latest_version(activations: Sequence[Activation]) -> int:
    """The highest version active or scheduled."""
    return max((a.version for a in activations), default=GENESIS_VERSION)


def pending(activations: Sequence[Activation], height: int) -> tuple[Activation, ...]:
    """The activations that take effect after the block at `height`, in version order."""
    return tuple(sorted((a for a in activations if a.height > height),
                        key=lambda a: a.version))


@dataclass(frozen=True, slots=True)
class UpgradeNeeded:
    """The block at `height` needs protocol version `version`; this binary implements up to
    `implemented`."""

    version: int
    height: int
    implemented: int

    def describe(self) -> str:
        return (f"protocol version {self.version} applies from height {self.height}; this node "
                f"implements versions up to {self.implemented}: upgrade the binary to one "
                f"that implements version {self.version} and restart the node (nothing is "
                "lost; it resumes where it stopped)")


def required_upgrade(activations: Sequence[Activation], next_height: int,
                     implemented: int) -> UpgradeNeeded | None:
    """None if a node implementing versions up to `implemented` may apply the block at
    `next_height`; otherwise what it needs. Every caller that would apply, build or vote for
    that block asks first."""
    version = active_version(activations, next_height)
    if version <= implemented:
        return None
    height = min(a.height for a in activations if a.version == version)
    return UpgradeNeeded(version, height, implemented)


def info(version: int) -> VersionInfo | None:
    return VERSIONS[version - 1] if 1 <= version <= len(VERSIONS) else None
