"""Generating a network: every institution's keys, the genesis file and each node's config.

    DIR/genesis.json
    DIR/passphrase                       the key-file passphrase (mode 0600; devnets only)
    DIR/<institution>/institution.key    encrypted Ed25519 signing key
    DIR/<institution>/node.key           libp2p identity (raw seed, mode 0600)
    DIR/<institution>/node.toml          the node's configuration
    DIR/<institution>/data/              its LevelDB store (created at first start)
"""

from __future__ import annotations

import json
import pathlib
import secrets
import time
from dataclasses import dataclass

from node.demo import DEFAULT_MEMBERS, Member
from node.files import create_private_file
from node.keys import generate_key, write_key_file
from node.p2p.identity import generate_seed, peer_id_from_seed, write_node_key
from protocol import codec, limits, types
from protocol.genesis import check_config


@dataclass(frozen=True)
class NodePorts:
    p2p: int
    rpc: int
    metrics: int


@dataclass(frozen=True)
class GeneratedNode:
    institution: str
    role: str
    orderer: bool
    dir: pathlib.Path
    config: pathlib.Path
    ports: NodePorts
    host: str

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.ports.rpc}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.ports.metrics}/metrics"


def generate_network(
    root: pathlib.Path,
    *,
    chain_id: str = "crossbill-devnet",
    members: tuple[Member, ...] = DEFAULT_MEMBERS,
    host: str = "127.0.0.1",
    base_port: int = 7100,
    params: types.Params = types.DEFAULT_PARAMS,
    tuning: dict[str, int] | None = None,
    scrypt_log_n: int = limits.KEYFILE_SCRYPT_LOG_N_MIN,
    log_level: str = "info",
) -> tuple[types.ConsortiumConfig, list[GeneratedNode]]:
    """Write keys, genesis and configs for `members` under `root` (which must not exist or be
    empty). Ports: p2p base+i, RPC base+100+i, metrics base+200+i for the i-th member (1-based).
    """
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty: refusing to overwrite a network")
    passphrase = secrets.token_urlsafe(24)
    create_private_file(root / "passphrase", (passphrase + "\n").encode())
    institutions = []
    nodes = []
    for i, m in enumerate(members, start=1):
        d = root / m.id
        d.mkdir()
        key = generate_key()
        write_key_file(d / "institution.key", key, passphrase, scrypt_log_n=scrypt_log_n)
        seed = generate_seed()
        write_node_key(d / "node.key", seed)
        ports = NodePorts(base_port + i, base_port + 100 + i, base_port + 200 + i)
        node_info = types.NodeInfo(peer_id_from_seed(seed), (f"/ip4/{host}/tcp/{ports.p2p}",))
        institutions.append(types.Institution(
            m.id, m.name, m.role, (types.InstitutionKey(key.key_id, key.public_key),),
            node_info))
        nodes.append(GeneratedNode(m.id, m.role, m.role == "bank", d, d / "node.toml", ports,
                                   host))
    config = types.ConsortiumConfig(chain_id, int(time.time() * 1000), tuple(institutions),
                                    tuple(m.id for m in members if m.role == "bank"), params)
    check_config(config)
    genesis = codec.to_json(config)
    (root / "genesis.json").write_text(json.dumps(genesis, indent=2) + "\n")
    for n in nodes:
        n.config.write_text(_node_toml(n, tuning or {}, log_level))
    return config, nodes


def _node_toml(n: GeneratedNode, tuning: dict[str, int], log_level: str) -> str:
    lines = [
        "[node]",
        f'institution = "{n.institution}"',
        'data_dir = "data"',
        'genesis = "../genesis.json"',
        'key_file = "institution.key"',
        'passphrase_file = "../passphrase"',
        'node_key_file = "node.key"',
        "",
        "[network]",
        f'listen = "/ip4/{n.host}/tcp/{n.ports.p2p}"',
        "",
        "[rpc]",
        f'listen = "{n.host}:{n.ports.rpc}"',
        "",
        "[metrics]",
        f'listen = "{n.host}:{n.ports.metrics}"',
        "",
        "[log]",
        f'level = "{log_level}"',
        'format = "json"',
    ]
    if tuning:
        lines += ["", "[tuning]"] + [f"{k} = {v}" for k, v in sorted(tuning.items())]
    return "\n".join(lines) + "\n"
