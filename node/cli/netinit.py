"""`crossbill network init`: a whole consortium from one short description file.

    crossbill network show network.toml                       check it, print every node
    crossbill network init network.toml --out OUT [--layout relative|system] [--no-tls]

`init` generates every institution's encrypted signing key and passphrase, every node's libp2p
key, the genesis file and every node's node.toml, and writes

    OUT/genesis.json
    OUT/<institution>/genesis.json       a copy: each directory is complete on its own
    OUT/<institution>/institution.key    encrypted Ed25519 signing key (mode 0600)
    OUT/<institution>/passphrase         its passphrase, one per institution (mode 0600)
    OUT/<institution>/node.key           libp2p identity (mode 0600)
    OUT/<institution>/node.toml          paths relative to itself (--layout relative), or
                                         /etc/crossbill/... and /var/lib/crossbill/{data,backups}
                                         (--layout system: copy the directory to /etc/crossbill
                                         on that institution's host; deploy/README.md)

and, unless TLS is off (`--no-tls` or `[tls] enabled = false`), a test consortium CA and a
certificate per node for its RPC (https:// and wss://; ADR 0023, "Test networks"):

    OUT/ca.pem                           the CA certificate: clients pass it (--ca-file)
    OUT/ca-key.pem                       the CA's key (mode 0600): keep it offline, or delete it
    OUT/<institution>/ca.pem             a copy, for that institution's clients
    OUT/<institution>/rpc-cert.pem       the node's certificate (ECDSA P-256), for its `host`
                                         and its rpc_listen_host (127.0.0.1 and localhost when
                                         the RPC listens on loopback or 0.0.0.0)
    OUT/<institution>/rpc-key.pem        its key (mode 0600); node.toml [rpc] names both

That CA is for test networks: in production each node's operator brings a certificate from the
consortium's own CA and sets [rpc] tls_cert_file / tls_key_file (deploy/README.md).

OUT must not exist or be empty. Nothing is written unless the whole description is valid.

The description (TOML; every key is checked, unknown keys are refused with their path):

    chain_id = "crossbill-qd"         # required: lowercase letters, digits, '.', '_', '-'

    [params]                          # optional: protocol.types.Params fields to override
    block_interval_ms = 200

    [timing]                          # optional: the consortium's consensus timing in
    rtt_ms = 150                      # genesis (ADR 0030): timing_for_rtt(rtt_ms), or the
    raft_election_ticks = 40          # defaults; keys given replace values. Absent: no
                                      # "timing" in genesis, every node uses the defaults

    [tuning]                          # optional: node.toml [tuning] of every node
    shutdown_deadline_s = 10

    [log]                             # optional: node.toml [log] of every node
    level = "info"

    [tls]                             # optional: the test CA and node certificates
    enabled = true                    # default true (false, or --no-tls: plain HTTP)
    ca_validity_days = 3650           # default node.certs.CA_VALIDITY_DAYS
    server_cert_validity_days = 825   # default node.certs.SERVER_CERT_VALIDITY_DAYS

    [[institution]]                   # one per institution; each runs one node
    id = "bank.boc-qd"                # required: lowercase letters, digits, '.', '-'
    name = "Bank of China Qingdao"    # default: the id
    role = "bank"                     # required: bank, regulator, customs or tax
    orderer = true                    # default false; only banks order blocks (Raft)
    host = "10.0.0.11"                # required: the IPv4 address the other nodes dial
    p2p_port = 7101                   # default 7100
    rpc_port = 8101                   # default 8100
    metrics_port = 9101               # default 9100
    p2p_listen_host = "0.0.0.0"       # default: host (set 0.0.0.0 behind NAT)
    rpc_listen_host = "127.0.0.1"     # default 127.0.0.1: the API stays on the host unless
                                      # opened (then add [rpc] clients to node.toml)
    metrics_listen_host = "10.0.0.11" # default: host, for Prometheus and /readyz

Rules beyond the field types: ids are unique; no two listen ports of nodes on one host (same
`host`) are equal; ports lie in NODE_PORT_MIN..NODE_PORT_MAX; at least one and at most
ORDERERS_MAX orderers, all banks; at least one regulator; and then every rule of
protocol.genesis.check_config, which the generated genesis file must pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import ipaddress
import pathlib
import re
import tomllib
from collections.abc import Callable
from typing import Any, Final

from node import certs
from node.cli.netgen import (
    CA_CERT_NAME,
    LAYOUTS,
    GeneratedNode,
    NetworkSpec,
    NodePorts,
    NodeSpec,
    TlsSpec,
    write_network,
)
from node.config import ConfigFileError, config_from_dict
from protocol import codec, limits, types
from protocol.errors import ConfigError, CrossbillError, DecodeError
from protocol.timing import TIMING_KEYS, timing_for_rtt, timing_problem
from protocol.txtypes import INSTITUTION_ROLES, ROLE_BANK, ROLE_REGULATOR, check_format


class NetworkInitError(CrossbillError):
    """A description file that cannot be used, or an output directory that cannot be written;
    the message names the file and the key."""


DEFAULT_PORTS: Final = NodePorts(p2p=7100, rpc=8100, metrics=9100)
DEFAULT_RPC_LISTEN_HOST: Final = "127.0.0.1"
INIT_LAYOUTS: Final = ("relative", "system")

_CHAIN_ID: Final = re.compile(r"[a-z0-9][a-z0-9._-]*")  # as protocol/genesis.py
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f]")
_TOP_KEYS: Final = ("chain_id", "params", "timing", "tuning", "log", "tls", "institution")
_TLS_KEYS: Final = ("enabled", "ca_validity_days", "server_cert_validity_days")
_PORT_KEYS: Final = ("p2p_port", "rpc_port", "metrics_port")
_INSTITUTION_KEYS: Final = ("id", "name", "role", "orderer", "host", *_PORT_KEYS,
                            "p2p_listen_host", "rpc_listen_host", "metrics_listen_host")
_REQUIRED_INSTITUTION_KEYS: Final = ("id", "role", "host")


def load_description(path: pathlib.Path) -> NetworkSpec:
    """Read and check a network description file; raise NetworkInitError naming the key."""
    try:
        with open(path, "rb") as f:
            data = f.read(limits.NETWORK_DESCRIPTION_BYTES_MAX + 1)
    except OSError as exc:
        raise NetworkInitError(f"cannot read network description {path}: "
                               f"{exc.strerror}") from None
    if len(data) > limits.NETWORK_DESCRIPTION_BYTES_MAX:
        raise NetworkInitError(f"{path}: larger than {limits.NETWORK_DESCRIPTION_BYTES_MAX} "
                               "bytes")
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NetworkInitError(f"{path}: not valid TOML: {exc}") from None
    return description_from_dict(raw, path)


def _unknown(key: str, known: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({hint}known: {', '.join(sorted(known))})"


def description_from_dict(raw: dict[str, Any], path: pathlib.Path) -> NetworkSpec:
    def fail(where: str, reason: str) -> NetworkInitError:
        return NetworkInitError(f"{path}: {where}: {reason}")

    for key in raw:
        if key not in _TOP_KEYS:
            raise fail(key, _unknown(key, _TOP_KEYS))
    if "chain_id" not in raw:
        raise fail("chain_id", "required")
    chain_id = raw["chain_id"]
    if not isinstance(chain_id, str) or not _CHAIN_ID.fullmatch(chain_id):
        raise fail("chain_id", f"{chain_id!r} must be lowercase letters, digits, '.', '_' or "
                   "'-', starting with a letter or digit")
    if len(chain_id) > limits.CHAIN_ID_CHARS_MAX:
        raise fail("chain_id", f"longer than {limits.CHAIN_ID_CHARS_MAX} characters")
    params = _params(raw.get("params", {}), fail)
    timing = _timing(raw["timing"], fail) if "timing" in raw else None
    node_sections = {key: raw.get(key, {}) for key in ("tuning", "log")}
    for key, value in node_sections.items():
        if not isinstance(value, dict):
            raise fail(key, "must be a table")
    _check_node_sections(node_sections, path)
    tls = _tls(raw.get("tls", {}), fail)

    if "institution" not in raw:
        raise fail("institution", "no [[institution]]: describe at least one")
    table = raw["institution"]
    if not isinstance(table, list) or not all(isinstance(t, dict) for t in table):
        raise fail("institution", "must be an array of tables: [[institution]]")
    if len(table) > limits.NETWORK_INSTITUTIONS_MAX:
        raise fail("institution", f"{len(table)} institutions, at most "
                   f"{limits.NETWORK_INSTITUTIONS_MAX}")
    nodes = tuple(_node(i, t, fail) for i, t in enumerate(table))
    _check_network(nodes, fail)
    return NetworkSpec(chain_id, nodes, params, node_sections["tuning"], node_sections["log"],
                       tls, timing)


def _tls(value: Any, fail: Callable[[str, str], NetworkInitError]) -> TlsSpec | None:
    if not isinstance(value, dict):
        raise fail("tls", "must be a table")
    for key in value:
        if key not in _TLS_KEYS:
            raise fail(f"tls.{key}", _unknown(key, _TLS_KEYS))
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("tls.enabled", f"expected true or false, got {enabled!r}")
    days = {}
    for key, default, most in (
            ("ca_validity_days", certs.CA_VALIDITY_DAYS, certs.CA_VALIDITY_DAYS_MAX),
            ("server_cert_validity_days", certs.SERVER_CERT_VALIDITY_DAYS,
             certs.SERVER_CERT_VALIDITY_DAYS_MAX)):
        days[key] = value.get(key, default)
        if type(days[key]) is not int or not certs.VALIDITY_DAYS_MIN <= days[key] <= most:
            raise fail(f"tls.{key}", f"expected days in {certs.VALIDITY_DAYS_MIN}..{most}, "
                       f"got {days[key]!r}")
    if days["server_cert_validity_days"] > days["ca_validity_days"]:
        raise fail("tls.server_cert_validity_days", "longer than the CA's "
                   f"ca_validity_days ({days['ca_validity_days']}): a node certificate cannot "
                   "outlive the CA that signed it")
    return TlsSpec(days["ca_validity_days"], days["server_cert_validity_days"]) if enabled \
        else None


def _params(value: Any, fail: Callable[[str, str], NetworkInitError]) -> types.Params:
    if not isinstance(value, dict):
        raise fail("params", "must be a table")
    known = [f.name for f in dataclasses.fields(types.Params)]
    for key in value:
        if key not in known:
            raise fail(f"params.{key}", _unknown(key, known))
    merged = {**codec.to_json(types.DEFAULT_PARAMS), **value}
    try:
        return codec.from_json(types.Params, merged, "params")
    except DecodeError as exc:
        where, _, reason = str(exc).partition(": ")
        raise fail(where, reason) from None


def _timing(value: Any, fail: Callable[[str, str], NetworkInitError]) -> types.ConsensusTiming:
    """[timing]: the consortium's consensus timing for genesis (ADR 0030). `rtt_ms` starts from
    `protocol.timing.timing_for_rtt`, otherwise from the defaults; keys given replace values."""
    if not isinstance(value, dict):
        raise fail("timing", "must be a table")
    known = ["rtt_ms", *TIMING_KEYS]
    for key in value:
        if key not in known:
            raise fail(f"timing.{key}", _unknown(key, known))
    base = types.DEFAULT_TIMING
    if "rtt_ms" in value:
        rtt = value["rtt_ms"]
        if type(rtt) is not int or not 0 <= rtt <= limits.TIMING_RTT_MS_MAX:
            raise fail("timing.rtt_ms", f"expected milliseconds in "
                       f"0..{limits.TIMING_RTT_MS_MAX}, got {rtt!r}")
        base = timing_for_rtt(rtt)
    merged = {**codec.to_json(base), **{k: v for k, v in value.items() if k != "rtt_ms"}}
    try:
        timing = codec.from_json(types.ConsensusTiming, merged, "timing")
    except DecodeError as exc:
        where, _, reason = str(exc).partition(": ")
        raise fail(where, reason) from None
    problem = timing_problem(timing)
    if problem is not None:
        raise fail(f"timing.{problem[0]}", problem[1])
    return timing


def _check_node_sections(sections: dict[str, Any], path: pathlib.Path) -> None:
    """[tuning] and [log] go verbatim into every node.toml: check them as node/config.py will,
    with a placeholder for the rest (its messages read "[tuning] raft_tick_ms: ...")."""
    placeholder = {
        "node": {"institution": "x", "data_dir": "d", "genesis": "g", "key_file": "k",
                 "node_key_file": "n"},
        "network": {"listen": "/ip4/127.0.0.1/tcp/7100"},
        "rpc": {"listen": "127.0.0.1:8100"}, "metrics": {"listen": "127.0.0.1:9100"},
    }
    try:
        config_from_dict({**placeholder, **sections}, path)
    except ConfigFileError as exc:
        raise NetworkInitError(str(exc)) from None


def _node(i: int, t: dict[str, Any], fail: Callable[[str, str], NetworkInitError]) -> NodeSpec:
    at = f"institution[{i}]"
    for key in t:
        if key not in _INSTITUTION_KEYS:
            raise fail(f"{at}.{key}", _unknown(key, _INSTITUTION_KEYS))
    for key in _REQUIRED_INSTITUTION_KEYS:
        if key not in t:
            raise fail(f"{at}.{key}", "required")

    def text(key: str) -> str:
        value = t[key]
        if not isinstance(value, str) or not value:
            raise fail(f"{at}.{key}", f"expected a non-empty string, got {value!r}")
        return value

    inst_id = text("id")
    if not check_format("institution", inst_id):
        raise fail(f"{at}.id", f"{inst_id!r} must be lowercase letters, digits, '.' or '-', "
                   "starting with a letter or digit")
    if len(inst_id) > limits.INSTITUTION_ID_CHARS_MAX:
        raise fail(f"{at}.id", f"longer than {limits.INSTITUTION_ID_CHARS_MAX} characters")
    at = f"institution[{i}] ({inst_id})"
    name = text("name") if "name" in t else inst_id
    if len(name) > limits.NAME_CHARS_MAX or _CONTROL_CHARS.search(name):
        raise fail(f"{at}.name", f"at most {limits.NAME_CHARS_MAX} characters, no control "
                   "characters")
    role = text("role")
    if role not in INSTITUTION_ROLES:
        raise fail(f"{at}.role", f"{role!r} is not one of {', '.join(sorted(INSTITUTION_ROLES))}")
    orderer = t.get("orderer", False)
    if not isinstance(orderer, bool):
        raise fail(f"{at}.orderer", f"expected true or false, got {orderer!r}")
    if orderer and role != ROLE_BANK:
        raise fail(f"{at}.orderer", f"{inst_id} is a {role}; only banks order blocks")

    def ipv4(key: str, *, dialable: bool) -> str:
        value = text(key)
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError:
            raise fail(f"{at}.{key}", f"{value!r} is not an IPv4 address") from None
        if dialable and (address.is_unspecified or address.is_multicast):
            raise fail(f"{at}.{key}", f"{value} is not an address other nodes can dial (to "
                       "listen on every interface, set p2p_listen_host = \"0.0.0.0\")")
        return value

    host = ipv4("host", dialable=True)
    listen = {key: ipv4(key, dialable=False) if key in t else default for key, default in (
        ("p2p_listen_host", host), ("rpc_listen_host", DEFAULT_RPC_LISTEN_HOST),
        ("metrics_listen_host", host))}
    ports: dict[str, int] = {}
    for key in _PORT_KEYS:
        value = t.get(key, getattr(DEFAULT_PORTS, key.removesuffix("_port")))
        if type(value) is not int or not limits.NODE_PORT_MIN <= value <= limits.NODE_PORT_MAX:
            raise fail(f"{at}.{key}", f"expected a port in {limits.NODE_PORT_MIN}.."
                       f"{limits.NODE_PORT_MAX}, got {value!r}")
        ports[key] = value
    return NodeSpec(inst_id, name, role, orderer, host,
                    NodePorts(ports["p2p_port"], ports["rpc_port"], ports["metrics_port"]),
                    listen["p2p_listen_host"], listen["rpc_listen_host"],
                    listen["metrics_listen_host"])


def _check_network(nodes: tuple[NodeSpec, ...],
                   fail: Callable[[str, str], NetworkInitError]) -> None:
    if not nodes:
        raise fail("institution", "no [[institution]]: describe at least one")
    ids: dict[str, int] = {}
    # One machine per `host`: every port a node there listens on must be its own.
    ports: dict[tuple[str, int], str] = {}
    for i, n in enumerate(nodes):
        if n.institution in ids:
            raise fail(f"institution[{i}].id", f"{n.institution!r} is already "
                       f"institution[{ids[n.institution]}]")
        ids[n.institution] = i
        for key in _PORT_KEYS:
            port = getattr(n.ports, key.removesuffix("_port"))
            where = f"institution[{i}] ({n.institution}).{key}"
            if (n.host, port) in ports:
                raise fail(where, f"port {port} on host {n.host} is already "
                           f"{ports[(n.host, port)]}")
            ports[(n.host, port)] = f"the {key} of {n.institution}"
    orderers = [n.institution for n in nodes if n.orderer]
    if not orderers:
        raise fail("institution", "no institution has orderer = true: at least one bank must "
                   "order blocks")
    if len(orderers) > limits.ORDERERS_MAX:
        raise fail("institution", f"{len(orderers)} orderers ({', '.join(orderers)}), at most "
                   f"{limits.ORDERERS_MAX}")
    if not any(n.role == ROLE_REGULATOR for n in nodes):
        raise fail("institution", 'the consortium needs a regulator (role = "regulator")')


def init_network(description: pathlib.Path, out: pathlib.Path, *, layout: str = "relative",
                 scrypt_log_n: int = limits.KEYFILE_SCRYPT_LOG_N_DEFAULT, tls: bool = True,
                 ) -> tuple[types.ConsortiumConfig, list[GeneratedNode]]:
    """`crossbill network init`: check `description`, then write the network into `out`
    (`tls=False` overrides the description: no CA, no certificates, plain HTTP)."""
    if layout not in INIT_LAYOUTS:
        raise NetworkInitError(f"layout {layout!r} is not one of {', '.join(INIT_LAYOUTS)}")
    if not limits.KEYFILE_SCRYPT_LOG_N_MIN <= scrypt_log_n <= limits.KEYFILE_SCRYPT_LOG_N_MAX:
        raise NetworkInitError(f"scrypt log N {scrypt_log_n} is outside "
                               f"{limits.KEYFILE_SCRYPT_LOG_N_MIN}.."
                               f"{limits.KEYFILE_SCRYPT_LOG_N_MAX}")
    spec = load_description(description)
    if not tls:
        spec = dataclasses.replace(spec, tls=None)
    if out.exists() and not out.is_dir():
        raise NetworkInitError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise NetworkInitError(f"{out} is not empty: refusing to overwrite keys (pick a new "
                               "directory)")
    from node.p2p.identity import NodeKeyError  # libp2p: not for `crossbill --help`

    try:
        return write_network(out, spec, LAYOUTS[layout], scrypt_log_n=scrypt_log_n)
    except (ConfigError, ConfigFileError, certs.CertificateError) as exc:
        # what the description checks do not cover
        raise NetworkInitError(f"{description}: the network breaks a rule: {exc}") from None
    except FileExistsError:
        raise NetworkInitError(f"{out} is not empty: refusing to overwrite keys") from None
    except (OSError, NodeKeyError) as exc:
        raise NetworkInitError(f"cannot write the network into {out}: {exc} (remove what "
                               "was written before trying again)") from None


# ------------------------------------------------------------------------------ command line


def _cmd_init(args: argparse.Namespace) -> int:
    config, nodes = init_network(args.description, args.out, layout=args.layout,
                                 scrypt_log_n=args.scrypt_log_n, tls=not args.no_tls)
    out = args.out
    print(f"generated {len(nodes)} nodes of {config.chain_id} in {out} (layout {args.layout})")
    print(f"genesis hash {config.hash.hex()}")
    for n in nodes:
        print(f"  {n.institution:<24} {n.role:<9} {'orderer' if n.orderer else 'follower':<8} "
              f"peer {n.peer_id}  {n.dir}/  rpc {n.rpc_url}")
    if nodes and nodes[0].ca_file is not None:
        print(f"TLS: every RPC serves https:// with a certificate signed by the test CA "
              f"{out}/{CA_CERT_NAME} (a copy in each {out}/<institution>/); clients pass it: "
              f"crossbill node status --rpc https://HOST:PORT --ca-file {CA_CERT_NAME}. The "
              f"CA's key {out}/ca-key.pem signs certificates for members that join later: keep "
              "it offline or delete it. A test network's CA: in production bring your own "
              "certificates (deploy/README.md)")
    else:
        print("TLS: off (--no-tls or [tls] enabled = false): every RPC serves plain http://")
    if args.layout == "system":
        print(f"next: copy each {out}/<institution>/ to /etc/crossbill on that institution's "
              "host and install the service (deploy/README.md)")
    else:
        print(f"next: on each host, crossbill node start --config {out}/<institution>/node.toml")
    print(f"each {out}/<institution>/ holds that institution's secrets (passphrase, keys): "
          f"give it to that institution alone, over a secure channel, then delete {out}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    spec = load_description(args.description)
    changed = {k: v for k, v in codec.to_json(spec.params).items()
               if v != codec.to_json(types.DEFAULT_PARAMS)[k]}
    print(f"chain_id  {spec.chain_id}")
    print("params    " + (", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
                          or "defaults"))
    orderers = [n.institution for n in spec.nodes if n.orderer]
    print(f"orderers  {', '.join(orderers)}")
    print("timing    " + ("defaults (no timing in genesis)" if spec.timing is None else
                          ", ".join(f"{k}={v}" for k, v in codec.to_json(spec.timing).items())))
    print("tls       " + ("off: plain http://" if spec.tls is None else
                          f"https://, a test CA valid {spec.tls.ca_validity_days} days, node "
                          f"certificates {spec.tls.server_cert_validity_days} days"))
    print(f"  {'institution':<24} {'role':<9} {'orderer':<7}  {'p2p (dialled)':<28} "
          f"{'rpc listen':<21} metrics listen")
    for n in spec.nodes:
        print(f"  {n.institution:<24} {n.role:<9} {'yes' if n.orderer else 'no':<7}  "
              f"{n.p2p_address:<28} {n.rpc_listen:<21} {n.metrics_listen}")
    for n in spec.nodes:
        if n.p2p_listen != n.p2p_address:
            print(f"  {n.institution} listens for p2p on {n.p2p_listen}")
    return 0


def register(sub: Any) -> None:
    """Add `crossbill network` (init, show) to `crossbill`'s subparsers."""
    p = sub.add_parser("network", help="a consortium's keys, genesis and node configurations "
                       "from one description file")
    net_sub = p.add_subparsers(dest="network_command", required=True,
                               metavar="NETWORK_COMMAND")
    init = net_sub.add_parser(
        "init", help="generate every institution's keys and passphrase, the genesis file and "
        "every node.toml from a description file")
    init.add_argument("description", type=pathlib.Path, help="network description (TOML)")
    init.add_argument("--out", type=pathlib.Path, required=True,
                      help="output directory (must not exist or be empty)")
    init.add_argument("--layout", choices=INIT_LAYOUTS, default="relative",
                      help="relative: node.toml paths relative to itself; system: "
                      "/etc/crossbill and /var/lib/crossbill/data (default %(default)s)")
    init.add_argument("--scrypt-log-n", type=int, default=limits.KEYFILE_SCRYPT_LOG_N_DEFAULT,
                      help="key-file scrypt work factor as log2(N) (default %(default)s)")
    init.add_argument("--no-tls", action="store_true",
                      help="no test CA and node certificates: every RPC serves plain http:// "
                      "(default: https:// with a CA made for this test network)")
    init.set_defaults(func=_cmd_init)
    show = net_sub.add_parser("show", help="check a description file and print its nodes")
    show.add_argument("description", type=pathlib.Path)
    show.set_defaults(func=_cmd_show)
