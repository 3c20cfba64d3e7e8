"""Generating a network: every institution's keys, the genesis file and each node's config.

One code path, `write_network`, serves the local devnet (`generate_network`, below) and
`crossbill network init` (node/cli/netinit.py). Only the `Layout` differs: where the files go and
which paths each node.toml names.

The devnet layout (`generate_network`):

    DIR/genesis.json
    DIR/passphrase                       the key-file passphrase, shared (mode 0600; devnets only)
    DIR/<institution>/institution.key    encrypted Ed25519 signing key
    DIR/<institution>/node.key           libp2p identity (raw seed, mode 0600)
    DIR/<institution>/node.toml          the node's configuration
    DIR/<institution>/rpc-cert.pem       its RPC's TLS certificate, signed by DIR/ca.pem
    DIR/<institution>/rpc-key.pem        its private key (mode 0600)
    DIR/<institution>/data/              its LevelDB store (created at first start)
    DIR/<institution>/rpc-client-key.pem the Ed25519 key (PKCS#8 PEM, mode 0600) of the RPC
                                         client DEVNET_CLIENT that its node.toml lists in
                                         [rpc] clients: what signs requests (docs/adr/0008)
    DIR/ca.pem, DIR/ca-key.pem           the network's test CA (key mode 0600): clients verify
                                         every node's RPC against ca.pem

The network-init layouts ("relative" and "system") give each institution its own passphrase and
a self-contained directory, holding a copy of genesis.json, that can be copied to that
institution's host (see deploy/README.md):

    OUT/genesis.json
    OUT/ca.pem, OUT/ca-key.pem           the test CA (see below)
    OUT/<institution>/{genesis.json,institution.key,node.key,node.toml,passphrase}
    OUT/<institution>/{ca.pem,rpc-cert.pem,rpc-key.pem}

With TLS (the default; `NetworkSpec.tls = None` turns it off) every node's node.toml names its
[rpc] tls_cert_file and tls_key_file: a certificate for the node's RPC addresses (node/certs.py
`server_hosts`) signed by a consortium CA made here. That CA is for test networks: production
operators bring certificates from their own CA (ADR 0023, deploy/README.md).
"""

from __future__ import annotations

import json
import pathlib
import secrets
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node import certs
from node.cli.demo import DEFAULT_MEMBERS, Member
from node.config import config_from_dict
from node.files import create_private_file
from node.keys import generate_key, write_key_file
from protocol import codec, crypto, limits, types
from protocol.genesis import check_config, load_genesis


@dataclass(frozen=True)
class NodePorts:
    p2p: int
    rpc: int
    metrics: int


@dataclass(frozen=True)
class NodeSpec:
    """One institution and the node it runs, before any key exists."""

    institution: str
    name: str
    role: str
    orderer: bool
    host: str  # the IPv4 address the other nodes dial (written into the genesis file)
    ports: NodePorts
    p2p_listen_host: str = ""  # default: host
    rpc_listen_host: str = ""  # default: host
    metrics_listen_host: str = ""  # default: host

    @property
    def p2p_address(self) -> str:
        return f"/ip4/{self.host}/tcp/{self.ports.p2p}"

    @property
    def p2p_listen(self) -> str:
        return f"/ip4/{self.p2p_listen_host or self.host}/tcp/{self.ports.p2p}"

    @property
    def rpc_listen(self) -> str:
        return f"{self.rpc_listen_host or self.host}:{self.ports.rpc}"

    @property
    def metrics_listen(self) -> str:
        return f"{self.metrics_listen_host or self.host}:{self.ports.metrics}"


@dataclass(frozen=True)
class TlsSpec:
    """TLS on every node's RPC: a test CA and one server certificate per node."""

    ca_validity_days: int = certs.CA_VALIDITY_DAYS
    server_cert_validity_days: int = certs.SERVER_CERT_VALIDITY_DAYS


@dataclass(frozen=True)
class NetworkSpec:
    """A whole network: what `crossbill network init` reads from a description file."""

    chain_id: str
    nodes: tuple[NodeSpec, ...]
    params: types.Params = types.DEFAULT_PARAMS
    # Copied verbatim into every node.toml ([tuning] and [log]); node/config.py checks them.
    tuning: Mapping[str, int] = field(default_factory=dict)
    log: Mapping[str, str] = field(default_factory=dict)
    tls: TlsSpec | None = TlsSpec()  # None: plain HTTP
    # The consortium's consensus timing, written into genesis (ADR 0030); None: no "timing"
    # key, every node runs with protocol.types.DEFAULT_TIMING.
    timing: types.ConsensusTiming | None = None


CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca-key.pem"
TLS_CERT_NAME = "rpc-cert.pem"
TLS_KEY_NAME = "rpc-key.pem"
CLIENT_KEY_NAME = "rpc-client-key.pem"
DEVNET_CLIENT = "backoffice"  # the RPC client each devnet node lists, with its own key


@dataclass(frozen=True)
class Layout:
    """Where the files of each node go, and the paths its node.toml names (relative paths are
    resolved against the node.toml's directory by node/config.py)."""

    name: str
    shared_passphrase: bool  # True: one ROOT/passphrase for all (devnet); else one per node
    genesis_copy: bool  # True: each node directory holds its own genesis.json
    data_dir: str
    genesis: str
    key_file: str
    node_key_file: str
    passphrase_file: str
    backup_dir: str = ""  # "": node/config.py's default, "backups" beside node.toml
    tls_cert_file: str = TLS_CERT_NAME
    tls_key_file: str = TLS_KEY_NAME


DEVNET_LAYOUT = Layout("devnet", shared_passphrase=True, genesis_copy=False, data_dir="data",
                       genesis="../genesis.json", key_file="institution.key",
                       node_key_file="node.key", passphrase_file="../passphrase")
# Every path relative to node.toml: the directory works wherever it is copied.
RELATIVE_LAYOUT = Layout("relative", shared_passphrase=False, genesis_copy=True,
                         data_dir="data", genesis="genesis.json", key_file="institution.key",
                         node_key_file="node.key", passphrase_file="passphrase")
# The directory is copied to /etc/crossbill on the institution's host (deploy/README.md).
SYSTEM_CONFIG_DIR = "/etc/crossbill"
SYSTEM_LAYOUT = Layout("system", shared_passphrase=False, genesis_copy=True,
                       data_dir="/var/lib/crossbill/data",
                       genesis=f"{SYSTEM_CONFIG_DIR}/genesis.json",
                       key_file=f"{SYSTEM_CONFIG_DIR}/institution.key",
                       node_key_file=f"{SYSTEM_CONFIG_DIR}/node.key",
                       passphrase_file=f"{SYSTEM_CONFIG_DIR}/passphrase",
                       tls_cert_file=f"{SYSTEM_CONFIG_DIR}/{TLS_CERT_NAME}",
                       tls_key_file=f"{SYSTEM_CONFIG_DIR}/{TLS_KEY_NAME}",
                       # /etc is read-only to the service: backups go beside the data.
                       backup_dir="/var/lib/crossbill/backups")
LAYOUTS = {layout.name: layout for layout in (DEVNET_LAYOUT, RELATIVE_LAYOUT, SYSTEM_LAYOUT)}


@dataclass(frozen=True)
class GeneratedNode:
    institution: str
    role: str
    orderer: bool
    dir: pathlib.Path
    config: pathlib.Path
    ports: NodePorts
    host: str
    peer_id: str = ""
    rpc_host: str = ""  # where the RPC listens, if not `host`
    metrics_host: str = ""
    ca_file: pathlib.Path | None = None  # the CA that signed its RPC certificate; None: HTTP
    client_key_file: pathlib.Path | None = None  # devnet: DEVNET_CLIENT's key (PKCS#8 PEM)

    @property
    def rpc_url(self) -> str:
        scheme = "http" if self.ca_file is None else "https"
        return f"{scheme}://{_reachable(self.rpc_host or self.host)}:{self.ports.rpc}"

    @property
    def metrics_url(self) -> str:
        return f"http://{_reachable(self.metrics_host or self.host)}:{self.ports.metrics}/metrics"


def _reachable(host: str) -> str:
    """A listen address as a client on the same host dials it."""
    return "127.0.0.1" if host == "0.0.0.0" else host


def generate_network(
    root: pathlib.Path,
    *,
    chain_id: str = "crossbill-devnet",
    members: tuple[Member, ...] = DEFAULT_MEMBERS,
    host: str = "127.0.0.1",
    base_port: int = 7100,
    params: types.Params = types.DEFAULT_PARAMS,
    tuning: dict[str, int] | None = None,
    timing: types.ConsensusTiming | None = None,
    scrypt_log_n: int = limits.KEYFILE_SCRYPT_LOG_N_MIN,
    log_level: str = "info",
    tls: bool = True,
) -> tuple[types.ConsortiumConfig, list[GeneratedNode]]:
    """Write keys, genesis and configs for `members` under `root` (which must not exist or be
    empty). Ports: p2p base+i, RPC base+100+i, metrics base+200+i for the i-th member (1-based).
    Every bank orders blocks; all nodes share one passphrase, ROOT/passphrase. With `tls`, every
    RPC serves https with a certificate signed by ROOT/ca.pem.
    """
    nodes = tuple(
        NodeSpec(m.id, m.name, m.role, m.role == "bank", host,
                 NodePorts(base_port + i, base_port + 100 + i, base_port + 200 + i))
        for i, m in enumerate(members, start=1))
    spec = NetworkSpec(chain_id, nodes, params, tuning or {},
                       {"level": log_level, "format": "json"}, TlsSpec() if tls else None,
                       timing)
    return write_network(root, spec, DEVNET_LAYOUT, scrypt_log_n=scrypt_log_n)


@dataclass
class _Pending:
    """One node's generated secrets and files, held in memory until everything checks."""

    spec: NodeSpec
    key: crypto.PrivateKey
    seed: bytes
    peer_id: str
    passphrase: str
    toml: str = ""
    tls: certs.Issued | None = None
    client_key: crypto.PrivateKey | None = None  # devnet: DEVNET_CLIENT's key


def write_network(
    root: pathlib.Path,
    spec: NetworkSpec,
    layout: Layout,
    *,
    scrypt_log_n: int = limits.KEYFILE_SCRYPT_LOG_N_DEFAULT,
    genesis_time_ms: int | None = None,
) -> tuple[types.ConsortiumConfig, list[GeneratedNode]]:
    """Generate keys, the genesis file and node configurations for `spec` under `root`.

    `root` must not exist or be empty (FileExistsError otherwise). Nothing is written until the
    genesis file has passed `load_genesis` and every node.toml `node.config`: a consortium rule
    or a configuration bound that `spec` breaks raises ConfigError / ConfigFileError and leaves
    `root` untouched.
    """
    # Imported here: libp2p takes seconds to import, and `crossbill --help` imports this module.
    from node.p2p.identity import generate_seed, peer_id_from_seed, write_node_key

    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} is a file, not a directory")
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty: refusing to overwrite a network")
    shared = secrets.token_urlsafe(32) if layout.shared_passphrase else ""
    pending: list[_Pending] = []
    for n in spec.nodes:
        seed = generate_seed()
        pending.append(_Pending(n, generate_key(), seed, peer_id_from_seed(seed),
                                shared or secrets.token_urlsafe(32),
                                client_key=generate_key() if layout is DEVNET_LAYOUT else None))
    institutions = tuple(
        types.Institution(p.spec.institution, p.spec.name, p.spec.role,
                          (types.InstitutionKey(p.key.key_id, p.key.public_key),),
                          types.NodeInfo(p.peer_id, (p.spec.p2p_address,)))
        for p in pending)
    config = types.ConsortiumConfig(
        spec.chain_id, int(time.time() * 1000) if genesis_time_ms is None else genesis_time_ms,
        institutions, tuple(n.institution for n in spec.nodes if n.orderer), spec.params,
        spec.timing)
    check_config(config)
    genesis = (json.dumps(codec.to_json(config), indent=2) + "\n").encode()
    load_genesis(genesis)  # the field bounds too, exactly as every node will check them
    ca = None
    if spec.tls is not None:
        ca = certs.CertificateAuthority.create(f"{spec.chain_id[:48]} test CA",
                                               validity_days=spec.tls.ca_validity_days)
        for p in pending:
            p.tls = ca.issue(p.spec.institution,
                             certs.server_hosts(p.spec.host, p.spec.rpc_listen_host or
                                                p.spec.host),
                             validity_days=spec.tls.server_cert_validity_days)
    for p in pending:
        p.toml = _node_toml(p.spec, layout, spec.tuning, spec.log, tls=ca is not None,
                            client_key=p.client_key)
        if layout is not DEVNET_LAYOUT:
            p.toml = (f"# The node of {p.spec.institution} in {config.chain_id}, written by "
                      f"`crossbill network init` (layout: {layout.name}).\n"
                      f"# genesis hash {config.hash.hex()}\n\n{p.toml}")
        # Checked as node/config.py will check it, against the path it will have; the TLS
        # files, which it loads, do not exist yet (and /etc/crossbill is not this host's).
        raw = tomllib.loads(p.toml)
        for key in ("tls_cert_file", "tls_key_file"):
            raw["rpc"].pop(key, None)
        config_from_dict(raw, root / p.spec.institution / "node.toml")

    root.mkdir(parents=True, exist_ok=True)
    if shared:
        create_private_file(root / "passphrase", (shared + "\n").encode())
    (root / "genesis.json").write_bytes(genesis)
    ca_file = None
    if ca is not None:
        ca_file = root / CA_CERT_NAME
        ca_file.write_bytes(ca.cert_pem)
        # Kept to issue certificates for members that join later; a test network's only.
        create_private_file(root / CA_KEY_NAME, ca.key_pem)
    nodes = []
    for p in pending:
        d = root / p.spec.institution
        if layout.shared_passphrase:
            d.mkdir()
        else:
            d.mkdir(mode=0o700)  # holds this institution's secrets and nothing else
            create_private_file(d / "passphrase", (p.passphrase + "\n").encode())
        if layout.genesis_copy:
            (d / "genesis.json").write_bytes(genesis)
        write_key_file(d / "institution.key", p.key, p.passphrase, scrypt_log_n=scrypt_log_n)
        write_node_key(d / "node.key", p.seed)
        if p.tls is not None and ca is not None:
            if layout.genesis_copy:  # the institution's clients verify its node with it
                (d / CA_CERT_NAME).write_bytes(ca.cert_pem)
            (d / TLS_CERT_NAME).write_bytes(p.tls.cert_pem)
            create_private_file(d / TLS_KEY_NAME, p.tls.key_pem)
        client_key_file = None
        if p.client_key is not None:
            client_key_file = d / CLIENT_KEY_NAME
            create_private_file(client_key_file, pkcs8_pem(p.client_key))
        (d / "node.toml").write_text(p.toml)
        s = p.spec
        nodes.append(GeneratedNode(s.institution, s.role, s.orderer, d, d / "node.toml",
                                   s.ports, s.host, p.peer_id,
                                   s.rpc_listen_host, s.metrics_listen_host, ca_file,
                                   client_key_file))
    return config, nodes


def _toml_str(value: str) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def pkcs8_pem(key: crypto.PrivateKey) -> bytes:
    """`key` as an unencrypted PKCS#8 PEM (RFC 8410): what OpenSSL, Java's KeyFactory and
    Node's crypto.createPrivateKey read as they are."""
    return Ed25519PrivateKey.from_private_bytes(key.seed).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())


def _node_toml(n: NodeSpec, layout: Layout, tuning: Mapping[str, int],
               log: Mapping[str, str], *, tls: bool,
               client_key: crypto.PrivateKey | None = None) -> str:
    log = {"level": "info", "format": "json", **log}
    lines = [
        "[node]",
        f"institution = {_toml_str(n.institution)}",
        f"data_dir = {_toml_str(layout.data_dir)}",
        f"genesis = {_toml_str(layout.genesis)}",
        f"key_file = {_toml_str(layout.key_file)}",
        f"passphrase_file = {_toml_str(layout.passphrase_file)}",
        f"node_key_file = {_toml_str(layout.node_key_file)}",
    ]
    if layout.backup_dir:
        lines.append(f"backup_dir = {_toml_str(layout.backup_dir)}")
    lines += [
        "",
        "[network]",
        f"listen = {_toml_str(n.p2p_listen)}",
        "",
        "[rpc]",
        f"listen = {_toml_str(n.rpc_listen)}",
    ]
    if tls:
        lines += [f"tls_cert_file = {_toml_str(layout.tls_cert_file)}",
                  f"tls_key_file = {_toml_str(layout.tls_key_file)}"]
    if client_key is not None:
        lines.append(f"clients = {{ {_toml_str(DEVNET_CLIENT)} = "
                     f"{_toml_str(client_key.public_key.hex())} }}")
    lines += [
        "",
        "[metrics]",
        f"listen = {_toml_str(n.metrics_listen)}",
        "",
        "[log]",
        f"level = {_toml_str(log['level'])}",
        f"format = {_toml_str(log['format'])}",
    ]
    if tuning:
        lines += ["", "[tuning]"] + [f"{k} = {v}" for k, v in sorted(tuning.items())]
    return "\n".join(lines) + "\n"
