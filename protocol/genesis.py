"""Loading and checking the consortium configuration (the genesis file).

The genesis file is JSON written by people or by `crossbill network init`: any formatting is
accepted, but every field is checked, unknown and missing fields are refused, and each broken
rule is reported as a `ConfigError` naming the key (``institutions[2].keys[0].key_id``). The
genesis hash is the hash of the canonical encoding of what was loaded, so two files that differ
only in layout give the same network. The optional "timing" object (consensus timing, ADR 0030)
is hashed in when present; a file without it keeps the hash it had before timing existed.
"""

from __future__ import annotations

import re
from typing import Any, Final

from protocol import codec, crypto, limits
from protocol.errors import ConfigError, CryptoError, DecodeError
from protocol.timing import timing_problem
from protocol.txtypes import INSTITUTION_ROLES, ROLE_BANK, ROLE_REGULATOR, check_format
from protocol.types import ConsortiumConfig

_CHAIN_ID: Final = re.compile(r"[a-z0-9][a-z0-9._-]*")


def load_genesis(data: bytes) -> ConsortiumConfig:
    """Parse and check genesis-file bytes; raise `ConfigError` saying what is wrong."""
    try:
        raw = codec.parse_json(data, max_bytes=limits.GENESIS_BYTES_MAX)
    except DecodeError as exc:
        raise ConfigError(f"genesis: {exc}") from None
    return config_from_json(raw)


def config_from_json(raw: Any) -> ConsortiumConfig:
    if type(raw) is not dict:
        raise ConfigError("genesis: the file must hold one JSON object")
    raw = dict(raw)
    version = raw.pop("v", limits.CODEC_VERSION)
    if version != limits.CODEC_VERSION:
        raise ConfigError(f"genesis: v: unsupported version {version!r}")
    try:
        config = codec.from_json(ConsortiumConfig, raw)
    except DecodeError as exc:
        raise ConfigError(f"genesis: {exc}") from None
    check_config(config)
    return config


def _fail(path: str, reason: str) -> ConfigError:
    return ConfigError(f"genesis: {path}: {reason}")


def check_config(config: ConsortiumConfig) -> None:
    """Every rule a consortium configuration must satisfy beyond its field types."""
    if not _CHAIN_ID.fullmatch(config.chain_id):
        raise _fail("chain_id", f"{config.chain_id!r} must be lowercase letters, digits, "
                    "'.', '_' or '-'")
    seen_ids: dict[str, int] = {}
    seen_peers: dict[str, str] = {}
    for i, inst in enumerate(config.institutions):
        path = f"institutions[{i}]"
        if not check_format("institution", inst.id):
            raise _fail(f"{path}.id", f"{inst.id!r} must be lowercase letters, digits, '.' "
                        "or '-', starting with a letter or digit")
        if inst.id in seen_ids:
            raise _fail(f"{path}.id", f"{inst.id!r} is already institutions[{seen_ids[inst.id]}]")
        seen_ids[inst.id] = i
        if inst.role not in INSTITUTION_ROLES:
            raise _fail(f"{path}.role", f"{inst.role!r} is not one of "
                        f"{', '.join(sorted(INSTITUTION_ROLES))}")
        key_ids: set[bytes] = set()
        for k, key in enumerate(inst.keys):
            kpath = f"{path}.keys[{k}]"
            try:
                crypto.check_public_key(key.public_key)
            except CryptoError as exc:
                raise _fail(f"{kpath}.public_key", str(exc)) from None
            expected = crypto.key_id_of(key.public_key)
            if key.key_id != expected:
                raise _fail(f"{kpath}.key_id", f"does not match the public key (expected "
                            f"{expected.hex()})")
            if key.key_id in key_ids:
                raise _fail(f"{kpath}", "the same key is listed twice")
            key_ids.add(key.key_id)
        if inst.node is not None:
            if inst.node.peer_id in seen_peers:
                raise _fail(f"{path}.node.peer_id",
                            f"already the peer id of {seen_peers[inst.node.peer_id]!r}")
            seen_peers[inst.node.peer_id] = inst.id
            for a, addr in enumerate(inst.node.addresses):
                if not check_format("multiaddr", addr):
                    raise _fail(f"{path}.node.addresses[{a}]",
                                f"{addr!r} is not a multiaddress like /ip4/127.0.0.1/tcp/7001")
    if not any(inst.role == ROLE_REGULATOR for inst in config.institutions):
        raise _fail("institutions", "the consortium needs a regulator")
    seen_orderers: set[str] = set()
    for i, oid in enumerate(config.orderers):
        path = f"orderers[{i}]"
        orderer = config.institution(oid)
        if orderer is None:
            raise _fail(path, f"{oid!r} is not an institution of this consortium")
        if oid in seen_orderers:
            raise _fail(path, f"{oid!r} is listed twice")
        seen_orderers.add(oid)
        if orderer.role != ROLE_BANK:
            raise _fail(path, f"{oid!r} is a {orderer.role}; only banks order blocks")
        if orderer.node is None:
            raise _fail(path, f"{oid!r} runs no node (institutions[].node is null)")
    params = config.params
    if params.heartbeat_interval_ms < params.block_interval_ms:
        raise _fail("params.heartbeat_interval_ms", f"{params.heartbeat_interval_ms} is shorter "
                    f"than the block interval {params.block_interval_ms}")
    if config.timing is not None:
        problem = timing_problem(config.timing)
        if problem is not None:
            raise _fail(f"timing.{problem[0]}", problem[1])
