"""The node's TOML configuration: one file per node, checked at start.

Every mistake is reported with the section and key that is wrong (``[rpc] listen: ...``);
unknown keys are refused, so a typo never silently falls back to a default. Relative paths are
resolved against the directory of the configuration file. Every section and key, with its
type, default and bounds, is described once, in `SCHEMA`, which the parser below uses for the
keys it knows, those it requires, the bounds and the defaults; docs/configuration.md is
generated from it (`crossbill config reference`).

    [node]
    institution = "bank.boc-qd"          # this node's institution in the genesis file
    data_dir = "data"                    # LevelDB store (created if missing)
    genesis = "genesis.json"
    key_file = "institution.key"         # encrypted institution signing key
    extra_key_files = ["next.key"]       # optional: more keys of the institution (same
                                         # passphrase); the node signs with whichever the
                                         # ledger lets sign the next block (key rotation)
    passphrase_file = "passphrase"       # optional; otherwise $CROSSBILL_PASSPHRASE
    node_key_file = "node.key"           # libp2p identity (created if missing)
    backup_dir = "backups"               # optional: where admin.backup writes (this default)

    [network]
    listen = "/ip4/127.0.0.1/tcp/7101"

    [rpc]
    listen = "127.0.0.1:8101"
    require_client_auth = true           # default: false on a loopback listen address, else true
    clients = { backoffice-1 = "<64 hex chars: the client's Ed25519 public key>" }
    clients_file = "rpc-clients.toml"    # optional: more clients, a TOML table name = "hex"
    cors_origins = []                    # CORS off unless origins are listed
    body_bytes_max = 1048576             # limits, each bounded (see _RPC_BOUNDS)
    batch_requests_max = 100
    ws_message_bytes_max = 1048576
    connections_max = 256                # HTTP; WebSockets: ws_connections_max = 256
    connections_per_address_max = 128    # ws_connections_per_address_max = 64
    keepalive_idle_s = 30                # ws_idle_timeout_s = 60 (the server pings)
    allowed_hosts = []                   # Host names besides localhost and IP literals
    tls_cert_file = "rpc-cert.pem"       # optional: serve HTTPS/WSS (needs tls_key_file)
    tls_key_file = "rpc-key.pem"         # mode 0600, like the other key files
    tls_client_ca_file = "clients-ca.pem"  # optional: require client certificates (mTLS)
    trust_proxy_loopback = false         # true: a loopback request with X-Forwarded-For,
                                         # Forwarded or X-Real-IP still gets admin.* (ADR 0023)
    anonymous_reads = false              # true: callers without a credential read records
                                         # from any address, not only loopback (ADR 0024)

    [metrics]
    listen = "127.0.0.1:9101"

    [tuning]                             # all optional, each bounded
    mempool_txs_max = 50000
    ...
    raft_election_ticks = 40             # consensus timing (raft_*, request_timeout_ms,
                                         # block_sync_*): the consortium sets it in genesis
                                         # ("timing", ADR 0030); a key here overrides genesis
                                         # on this node only, with a warning at start
    protocol_version_max = 1             # rehearse an upgrade: act as a binary implementing
                                         # protocol versions up to this one (default: all)

    [log]
    level = "info"                       # debug, info, warning, error
    format = "json"                      # json or text
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import pathlib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from node import tls
from node.files import LooseFileModeError
from protocol.errors import CrossbillError
from protocol.limits import KEYS_PER_INSTITUTION_MAX
from protocol.timing import TIMING_BOUNDS, TIMING_KEYS
from protocol.types import DEFAULT_TIMING
from protocol.versions import IMPLEMENTED_VERSION

CONFIG_BYTES_MAX: Final = 64 * 1024
_MULTIADDR_TCP: Final = re.compile(r"/ip4/(?P<ip>[0-9.]+)/tcp/(?P<port>\d{1,5})")


class ConfigFileError(CrossbillError):
    """A node configuration file that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Tuning:
    """Knobs with safe defaults; each is checked against (min, max) in `_TUNING_BOUNDS`.

    The consensus timing keys (`protocol.timing.TIMING_KEYS`) are None unless the node's
    [tuning] sets them: the consortium sets them in genesis (ADR 0030), and a key set here
    overrides the consortium's value on this node only (logged as a warning at start)."""

    raft_tick_ms: int | None = None
    raft_election_ticks: int | None = None
    raft_heartbeat_ticks: int | None = None
    mempool_txs_max: int = 50_000
    mempool_bytes_max: int = 64 * 1024 * 1024
    tx_batch_txs_max: int = 500
    tx_batch_interval_ms: int = 20
    block_sync_batch_blocks: int | None = None
    block_sync_poll_ms: int | None = None
    raft_log_keep_entries: int = 1000
    # Applied Raft entries (blocks) held in memory at most, in bytes, whatever their count
    # (ADR 0032): the log is compacted once it holds twice either bound.
    raft_log_keep_bytes: int = 32 * 1024 * 1024
    request_timeout_ms: int | None = None
    raft_send_timeout_ms: int | None = None
    shutdown_deadline_s: int = 10
    # The highest protocol version the node applies (protocol/versions.py): lower than this
    # binary's only to rehearse an upgrade (the node then stops where a binary of that version
    # would, ADR 0025).
    protocol_version_max: int = IMPLEMENTED_VERSION

    def timing_overrides(self) -> dict[str, int]:
        """The consensus timing keys this node's [tuning] sets (overriding genesis)."""
        return {key: value for key in TIMING_KEYS
                if (value := getattr(self, key)) is not None}


@dataclass(frozen=True)
class RpcSettings:
    """The [rpc] section beyond `listen`: client credentials, CORS and limits.

    `require_client_auth` None means "decide from the listen address": off on loopback (the
    devnet), on otherwise. `clients` maps a client name to its Ed25519 public key.
    """

    require_client_auth: bool | None = None
    clients: dict[str, bytes] = field(default_factory=dict)
    cors_origins: tuple[str, ...] = ()
    body_bytes_max: int = 1024 * 1024
    batch_requests_max: int = 100
    ws_message_bytes_max: int = 1024 * 1024
    connections_max: int = 256               # HTTP connections (WebSockets have their own)
    connections_per_address_max: int = 128   # HTTP connections from one client address
    ws_connections_max: int = 256
    ws_connections_per_address_max: int = 64
    keepalive_idle_s: float = 30.0           # an idle HTTP keep-alive connection is closed
    ws_idle_timeout_s: float = 60.0          # no frame and no pong: the WebSocket is closed
    # Host names (optionally NAME:PORT) a request's Host may carry besides localhost and IP
    # literals; Origins other than the node's own and `cors_origins` are refused (ADR 0020).
    allowed_hosts: tuple[str, ...] = ()
    # TLS (ADR 0023): both files or neither; a client CA makes client certificates required.
    tls_cert_file: pathlib.Path | None = None
    tls_key_file: pathlib.Path | None = None
    tls_client_ca_file: pathlib.Path | None = None
    # A loopback request carrying proxy headers is not "loopback" (no admin.* without a
    # credential) unless this is set: a reverse proxy on the same host forwards remote clients.
    trust_proxy_loopback: bool = False
    # Reads of records (everything but node.status/health, consortium.get, rpc.discover) need
    # a client credential or a loopback connection unless this is set (ADR 0024).
    anonymous_reads: bool = False

    def auth_required(self, host: str) -> bool:
        if self.require_client_auth is not None:
            return self.require_client_auth
        return not is_loopback(host)


_HOST_NAME: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:\d{1,5})?")
RPC_CLIENTS_MAX: Final = 1000
_CLIENT_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class NodeConfig:
    path: pathlib.Path
    institution: str
    data_dir: pathlib.Path
    genesis: pathlib.Path
    key_file: pathlib.Path
    node_key_file: pathlib.Path
    passphrase_file: pathlib.Path | None
    p2p_listen: str
    rpc_host: str
    rpc_port: int
    metrics_host: str
    metrics_port: int
    tuning: Tuning = field(default_factory=Tuning)
    log_level: str = "info"
    log_format: str = "json"
    rpc: RpcSettings = field(default_factory=RpcSettings)
    extra_key_files: tuple[pathlib.Path, ...] = ()
    # Where `admin.backup` writes `<backup_dir>/<name>/` (None: "backups" beside data_dir).
    backup_dir: pathlib.Path | None = None


@dataclass(frozen=True)
class Key:
    """One key of node.toml as the parser accepts it and docs/configuration.md describes it.

    `default` is the value the node uses when the key is absent (None: no value; `default_text`
    says what happens instead); `bounds` the inclusive (min, max) of an integer;
    `choices` the only values a string may take."""

    name: str
    kind: str
    description: str
    required: bool = False
    default: Any = None
    default_text: str = ""
    bounds: tuple[int, int] | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    name: str
    description: str
    keys: tuple[Key, ...]

    def key(self, name: str) -> Key:
        return next(k for k in self.keys if k.name == name)


_PATH: Final = "path"
_STRING: Final = "string"
_INTEGER: Final = "integer"
_BOOLEAN: Final = "boolean"
_STRINGS: Final = "array of strings"


def _defaults_of(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING}


_TUNING_DEFAULT: Final = _defaults_of(Tuning)
_RPC_DEFAULT: Final = _defaults_of(RpcSettings)


def _timing(name: str, description: str) -> Key:
    """A consensus timing key: genesis's value unless this node overrides it (ADR 0030)."""
    return Key(name, _INTEGER, description + " Consensus timing.", default=None,
               default_text=f"genesis's, else {getattr(DEFAULT_TIMING, name)}",
               bounds=TIMING_BOUNDS[name])


def _tuning(name: str, description: str, bounds: tuple[int, int]) -> Key:
    return Key(name, _INTEGER, description, default=_TUNING_DEFAULT[name], bounds=bounds)


def _rpc_limit(name: str, description: str, bounds: tuple[int, int]) -> Key:
    return Key(name, _INTEGER, description, default=_RPC_DEFAULT[name], bounds=bounds)


SCHEMA: Final[tuple[Section, ...]] = (
    Section("node", "Who this node is and where its files are.", (
        Key("institution", _STRING, "This node's institution, as the genesis file names it.",
            required=True),
        Key("data_dir", _PATH, "The LevelDB store (created if missing).", required=True),
        Key("genesis", _PATH, "The network's genesis file.", required=True),
        Key("key_file", _PATH, "The institution's encrypted signing key.", required=True),
        Key("extra_key_files", _STRINGS, "More key files of the institution (same "
            "passphrase); the node signs with whichever the ledger lets sign the next block "
            f"(key rotation). At most {KEYS_PER_INSTITUTION_MAX - 1} files.", default=[]),
        Key("passphrase_file", _PATH, "The key files' passphrase.",
            default_text="$CROSSBILL_PASSPHRASE"),
        Key("node_key_file", _PATH, "The node's libp2p identity (created if missing).",
            required=True),
        Key("backup_dir", _PATH, "Where `admin.backup` (`crossbill backup create`) writes "
            "`<backup_dir>/<name>/`.", default="backups"),
    )),
    Section("network", "Peer-to-peer (libp2p) transport.", (
        Key("listen", "/ip4/ADDRESS/tcp/PORT", "The libp2p listen address.", required=True),
    )),
    Section("rpc", "The JSON-RPC API over HTTP and WebSocket (ADR 0008, its limits ADR 0020, "
            "TLS ADR 0023).", (
        Key("listen", "HOST:PORT", "The API's listen address (an IP address or localhost).",
            required=True),
        Key("require_client_auth", _BOOLEAN, "Whether calls need a client credential.",
            default_text="false on a loopback listen address, else true"),
        Key("clients", 'table: NAME = "HEX"', "Clients by name (1-64 characters of "
            "[A-Za-z0-9._-]) and their Ed25519 public key (64 hex characters). At most "
            f"{RPC_CLIENTS_MAX} clients with clients_file's.", default={}),
        Key("clients_file", _PATH, "A TOML file of more clients, a table NAME = \"HEX\" like "
            f"clients (at most {CONFIG_BYTES_MAX} bytes).", default_text="none"),
        Key("cors_origins", _STRINGS, "Origins allowed by CORS, like "
            '"https://bank.example"; CORS is off unless origins are listed.', default=[]),
        Key("allowed_hosts", _STRINGS, "Host names (optionally NAME:PORT) a request's Host "
            "may carry besides localhost and IP literals.", default=[]),
        Key("tls_cert_file", _PATH, "Serve HTTPS/WSS with this certificate chain (needs "
            "tls_key_file).", default_text="none: plain HTTP"),
        Key("tls_key_file", _PATH, "The certificate's private key (mode 0600).",
            default_text="none"),
        Key("tls_client_ca_file", _PATH, "Require client certificates issued by this CA "
            "(mTLS; needs tls_cert_file).", default_text="none"),
        Key("trust_proxy_loopback", _BOOLEAN, "true: a loopback request carrying "
            "X-Forwarded-For, Forwarded or X-Real-IP still counts as loopback (gets admin.*) "
            "(ADR 0023).", default=_RPC_DEFAULT["trust_proxy_loopback"]),
        Key("anonymous_reads", _BOOLEAN, "true: callers without a credential read records "
            "from any address, not only loopback (ADR 0024).",
            default=_RPC_DEFAULT["anonymous_reads"]),
        _rpc_limit("body_bytes_max", "Largest HTTP request body.",
                   (1024, 16 * 1024 * 1024)),
        _rpc_limit("batch_requests_max", "Most requests in one JSON-RPC batch.", (1, 1000)),
        _rpc_limit("ws_message_bytes_max", "Largest WebSocket message.",
                   (1024, 16 * 1024 * 1024)),
        _rpc_limit("connections_max", "Open HTTP connections.", (1, 10_000)),
        _rpc_limit("connections_per_address_max", "Open HTTP connections from one client "
                   "address.", (1, 10_000)),
        _rpc_limit("ws_connections_max", "Open WebSocket connections.", (1, 10_000)),
        _rpc_limit("ws_connections_per_address_max", "Open WebSocket connections from one "
                   "client address.", (1, 10_000)),
        _rpc_limit("keepalive_idle_s", "An idle HTTP keep-alive connection is closed after "
                   "this many seconds.", (1, 3600)),
        _rpc_limit("ws_idle_timeout_s", "A WebSocket with no frame and no pong for this many "
                   "seconds is closed (the server pings).", (2, 3600)),
    )),
    Section("metrics", "Prometheus metrics, /healthz and /readyz (ADR 0009).", (
        Key("listen", "HOST:PORT", "The metrics listen address.", required=True),
    )),
    Section("tuning", "Knobs with safe defaults, each bounded; all optional. The consortium "
            "sets the consensus timing keys in genesis (\"timing\", ADR 0030); one set here "
            "overrides genesis on this node only, with a warning at start.", (
        _timing("raft_tick_ms", "The Raft clock's tick, in milliseconds."),
        _timing("raft_election_ticks", "Ticks without a leader before an election; above "
                "raft_heartbeat_ticks."),
        _timing("raft_heartbeat_ticks", "Ticks between the leader's heartbeats while the "
                "network is busy (an idle leader heartbeats about once per election timeout, "
                "ADR 0037)."),
        _tuning("mempool_txs_max", "Transactions waiting in the mempool.", (100, 1_000_000)),
        _tuning("mempool_bytes_max", "Bytes of transactions waiting in the mempool.",
                (1024 * 1024, 4 * 1024 * 1024 * 1024)),
        _tuning("tx_batch_txs_max", "Transactions forwarded towards the leader in one batch.",
                (1, 5000)),
        _tuning("tx_batch_interval_ms", "How long a forwarding batch waits to fill.",
                (1, 1000)),
        _timing("block_sync_batch_blocks", "Blocks per block-sync request (catch-up)."),
        _timing("block_sync_poll_ms", "How often a follower polls its peers' tips."),
        _tuning("raft_log_keep_entries", "Applied Raft entries kept in memory; the log is "
                "compacted once it holds twice as many.", (10, 1_000_000)),
        _tuning("raft_log_keep_bytes", "Bytes of applied Raft entries (blocks) kept in memory, "
                "whatever their count (ADR 0032).", (1024 * 1024, 4 * 1024 * 1024 * 1024)),
        _timing("request_timeout_ms", "The deadline of one request to a peer (a block range "
                "gets twice this)."),
        _timing("raft_send_timeout_ms", "The deadline of sending one Raft message."),
        _tuning("shutdown_deadline_s", "Seconds a stopping node waits for its tasks.",
                (1, 300)),
        _tuning("protocol_version_max", "The highest protocol version the node applies "
                "(protocol/versions.py); lower than the binary's only to rehearse an upgrade "
                "(ADR 0025).", (1, IMPLEMENTED_VERSION)),
    )),
    Section("log", "Logging.", (
        Key("level", _STRING, "The lowest level logged.", default="info",
            choices=("debug", "info", "warning", "error")),
        Key("format", _STRING, "One JSON object per line, or text.", default="json",
            choices=("json", "text")),
    )),
)
_SCHEMA: Final = {s.name: s for s in SCHEMA}

_TUNING_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    k.name: k.bounds for k in _SCHEMA["tuning"].keys if k.bounds is not None}
_RPC_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    k.name: k.bounds for k in _SCHEMA["rpc"].keys if k.bounds is not None}
_SECTIONS: Final[dict[str, set[str]]] = {s.name: {k.name for k in s.keys} for s in SCHEMA}
_REQUIRED: Final[dict[str, set[str]]] = {
    s.name: {k.name for k in s.keys if k.required} for s in SCHEMA
    if any(k.required for k in s.keys)}


def _default(section: str, key: str) -> Any:
    """The value the node uses for an absent key (a fresh copy: callers may keep it)."""
    return copy.copy(_SCHEMA[section].key(key).default)


if _SECTIONS["tuning"] != set(_TUNING_BOUNDS) or not _SECTIONS["tuning"] <= set(
        _TUNING_DEFAULT) or not set(_RPC_BOUNDS) <= set(_RPC_DEFAULT):
    raise RuntimeError("node/config.py: SCHEMA's [tuning] and [rpc] limits must match the "
                       "Tuning and RpcSettings fields")


def load_config(path: pathlib.Path) -> NodeConfig:
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigFileError(f"cannot read configuration {path}: {exc.strerror}") from None
    if len(data) > CONFIG_BYTES_MAX:
        raise ConfigFileError(f"{path}: larger than {CONFIG_BYTES_MAX} bytes")
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None
    return config_from_dict(raw, path)


def config_from_dict(raw: dict[str, Any], path: pathlib.Path) -> NodeConfig:
    base = path.parent

    def fail(section: str, key: str, reason: str) -> ConfigFileError:
        return ConfigFileError(f"{path}: [{section}] {key}: {reason}")

    for section in raw:
        if section not in _SECTIONS:
            raise ConfigFileError(f"{path}: unknown section [{section}] (known: "
                                  f"{', '.join(sorted(_SECTIONS))})")
        if not isinstance(raw[section], dict):
            raise ConfigFileError(f"{path}: [{section}] must be a table")
        for key in raw[section]:
            if key not in _SECTIONS[section]:
                raise fail(section, key, "unknown key (known: "
                           f"{', '.join(sorted(_SECTIONS[section]))})")
    for section, keys in _REQUIRED.items():
        for key in sorted(keys):
            if key not in raw.get(section, {}):
                raise fail(section, key, "required")

    def text(section: str, key: str) -> str:
        value = raw[section][key]
        if not isinstance(value, str) or not value:
            raise fail(section, key, f"expected a non-empty string, got {value!r}")
        return value

    def a_path(section: str, key: str) -> pathlib.Path:
        p = pathlib.Path(text(section, key))
        return p if p.is_absolute() else base / p

    def host_port(section: str) -> tuple[str, int]:
        value = text(section, "listen")
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise fail(section, "listen", f"expected HOST:PORT, got {value!r}")
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            if host != "localhost":
                raise fail(section, "listen", f"{host!r} is not an IP address") from None
        return host, int(port)

    listen = text("network", "listen")
    m = _MULTIADDR_TCP.fullmatch(listen)
    if not m or int(m["port"]) > 65535:
        raise fail("network", "listen", f"expected /ip4/ADDRESS/tcp/PORT, got {listen!r}")
    try:
        ipaddress.IPv4Address(m["ip"])
    except ValueError:
        raise fail("network", "listen", f"{m['ip']!r} is not an IPv4 address") from None

    tuning_raw = raw.get("tuning", {})
    for key, value in tuning_raw.items():
        lo, hi = _TUNING_BOUNDS[key]
        if type(value) is not int:
            raise fail("tuning", key, f"expected an integer, got {value!r}")
        if not lo <= value <= hi:
            raise fail("tuning", key, f"{value} is outside {lo}..{hi}")
    tuning = Tuning(**tuning_raw)
    # The rules between timing keys are checked at start against genesis's timing (the node,
    # `protocol.timing.timing_problem`); two keys both set here can be checked already.
    if (tuning.raft_heartbeat_ticks is not None and tuning.raft_election_ticks is not None
            and tuning.raft_heartbeat_ticks >= tuning.raft_election_ticks):
        raise fail("tuning", "raft_heartbeat_ticks", "must be below raft_election_ticks")

    log = raw.get("log", {})
    level, fmt = (_choice(log, "log", _SCHEMA["log"].key(key), fail) for key in ("level", "format"))

    extra = raw["node"].get("extra_key_files", _default("node", "extra_key_files"))
    if (not isinstance(extra, list) or len(extra) >= KEYS_PER_INSTITUTION_MAX
            or not all(isinstance(f, str) and f for f in extra)):
        raise fail("node", "extra_key_files", f"expected a list of at most "
                   f"{KEYS_PER_INSTITUTION_MAX - 1} file names, got {extra!r}")
    extra_key_files = tuple(pathlib.Path(f) if pathlib.Path(f).is_absolute() else base / f
                            for f in extra)

    rpc_host, rpc_port = host_port("rpc")
    rpc_settings = _rpc_settings(raw["rpc"], base, fail)
    metrics_host, metrics_port = host_port("metrics")
    return NodeConfig(
        path=path,
        institution=text("node", "institution"),
        data_dir=a_path("node", "data_dir"),
        genesis=a_path("node", "genesis"),
        key_file=a_path("node", "key_file"),
        node_key_file=a_path("node", "node_key_file"),
        extra_key_files=extra_key_files,
        passphrase_file=(a_path("node", "passphrase_file")
                         if "passphrase_file" in raw["node"] else None),
        p2p_listen=listen,
        rpc_host=rpc_host, rpc_port=rpc_port,
        metrics_host=metrics_host, metrics_port=metrics_port,
        tuning=tuning, log_level=level, log_format=fmt, rpc=rpc_settings,
        backup_dir=(a_path("node", "backup_dir") if "backup_dir" in raw["node"]
                    else base / _default("node", "backup_dir")),
    )


def _choice(raw: dict[str, Any], section: str, key: Key,
            fail: Callable[[str, str, str], ConfigFileError]) -> str:
    value = raw.get(key.name, key.default)
    if value not in key.choices:
        *rest, last = key.choices
        raise fail(section, key.name, f"{value!r} is not {', '.join(rest)} or {last}")
    return str(value)


def _rpc_settings(raw: dict[str, Any], base: pathlib.Path,
                  fail: Callable[[str, str, str], ConfigFileError]) -> RpcSettings:
    auth = raw.get("require_client_auth")
    if auth is not None and not isinstance(auth, bool):
        raise fail("rpc", "require_client_auth", f"expected true or false, got {auth!r}")
    limits: dict[str, Any] = {}
    for key, (lo, hi) in _RPC_BOUNDS.items():
        if key in raw:
            value = raw[key]
            if type(value) is not int or not lo <= value <= hi:
                raise fail("rpc", key, f"expected an integer in {lo}..{hi}, got {value!r}")
            limits[key] = value
    origins = raw.get("cors_origins", _default("rpc", "cors_origins"))
    if not isinstance(origins, list) or not all(isinstance(o, str) and o for o in origins):
        raise fail("rpc", "cors_origins", "expected a list of origins like "
                   '"https://bank.example"')
    hosts = raw.get("allowed_hosts", _default("rpc", "allowed_hosts"))
    if not isinstance(hosts, list) or not all(isinstance(h, str) and _HOST_NAME.fullmatch(h)
                                              for h in hosts):
        raise fail("rpc", "allowed_hosts", 'expected a list of host names like '
                   '"rpc.bank.example" or "rpc.bank.example:443"')
    clients = _rpc_clients(raw.get("clients", _default("rpc", "clients")), "clients", fail)
    if "clients_file" in raw:
        clients.update(_rpc_clients_file(raw["clients_file"], base, fail))
    if len(clients) > RPC_CLIENTS_MAX:
        raise fail("rpc", "clients", f"more than {RPC_CLIENTS_MAX} clients")
    trust_proxy = raw.get("trust_proxy_loopback", _default("rpc", "trust_proxy_loopback"))
    if not isinstance(trust_proxy, bool):
        raise fail("rpc", "trust_proxy_loopback", f"expected true or false, got {trust_proxy!r}")
    anonymous_reads = raw.get("anonymous_reads", _default("rpc", "anonymous_reads"))
    if not isinstance(anonymous_reads, bool):
        raise fail("rpc", "anonymous_reads", f"expected true or false, got {anonymous_reads!r}")
    tls_files = _rpc_tls(raw, base, fail)
    return RpcSettings(require_client_auth=auth, clients=clients, cors_origins=tuple(origins),
                       allowed_hosts=tuple(h.lower() for h in hosts),
                       trust_proxy_loopback=trust_proxy, anonymous_reads=anonymous_reads,
                       **tls_files, **limits)


def _rpc_tls(raw: dict[str, Any], base: pathlib.Path,
             fail: Callable[[str, str, str], ConfigFileError]) -> dict[str, Any]:
    """The tls_* files, resolved against the configuration's directory and loaded once here so
    that a wrong file fails at start-up with its key named."""
    paths: dict[str, pathlib.Path] = {}
    for key in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
        if key in raw:
            if not isinstance(raw[key], str) or not raw[key]:
                raise fail("rpc", key, "expected a path")
            paths[key] = base / raw[key]
    if ("tls_cert_file" in paths) != ("tls_key_file" in paths):
        raise fail("rpc", "tls_key_file" if "tls_cert_file" in paths else "tls_cert_file",
                   "tls_cert_file and tls_key_file go together")
    if "tls_client_ca_file" in paths and "tls_cert_file" not in paths:
        raise fail("rpc", "tls_client_ca_file", "needs tls_cert_file and tls_key_file")
    if paths:
        try:
            tls.server_context(paths["tls_cert_file"], paths["tls_key_file"],
                               paths.get("tls_client_ca_file"))
        except (LooseFileModeError, tls.TlsConfigError) as exc:
            raise fail("rpc", "tls_key_file" if isinstance(exc, LooseFileModeError)
                       else "tls_cert_file", str(exc)) from None
    return paths


def _rpc_clients(table: Any, key: str,
                 fail: Callable[[str, str, str], ConfigFileError]) -> dict[str, bytes]:
    if not isinstance(table, dict):
        raise fail("rpc", key, 'expected a table: name = "hex Ed25519 public key"')
    out: dict[str, bytes] = {}
    for name, value in table.items():
        if not _CLIENT_NAME.fullmatch(name):
            raise fail("rpc", key, f"client name {name!r} is not [A-Za-z0-9._-], 1-64 chars")
        try:
            public_key = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            public_key = b""
        if len(public_key) != 32:
            raise fail("rpc", key, f"client {name}: expected 64 hex characters (an Ed25519 "
                       "public key)")
        out[name] = public_key
    return out


def _rpc_clients_file(value: Any, base: pathlib.Path,
                      fail: Callable[[str, str, str], ConfigFileError]) -> dict[str, bytes]:
    if not isinstance(value, str) or not value:
        raise fail("rpc", "clients_file", "expected a path")
    path = pathlib.Path(value) if pathlib.Path(value).is_absolute() else base / value
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fail("rpc", "clients_file", f"cannot read {path}: {exc.strerror}") from None
    if len(data) > CONFIG_BYTES_MAX:
        raise fail("rpc", "clients_file", f"{path} is larger than {CONFIG_BYTES_MAX} bytes")
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise fail("rpc", "clients_file", f"{path} is not valid TOML: {exc}") from None
    return _rpc_clients(table, "clients_file", fail)


# ---------------------------------------------------------------------- the reference

REFERENCE_TITLE: Final = "# Node configuration reference (node.toml)"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:_}" if value >= 10_000 else str(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[]" if not value else "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict) and not value:
        return "{}"
    raise TypeError(f"no TOML rendering for {value!r}")


def _default_cell(key: Key) -> str:
    if key.required:
        return "required"
    if key.default is not None:
        return f"`{_toml_value(key.default)}`"
    return key.default_text


def _allowed_cell(key: Key) -> str:
    if key.bounds is not None:
        lo, hi = key.bounds
        return f"{_toml_value(lo)} .. {_toml_value(hi)}"
    if key.choices:
        return ", ".join(f"`{c}`" for c in key.choices)
    return ""


def reference_markdown() -> str:
    """docs/configuration.md: every section and key of `SCHEMA`, in its order."""
    lines = [
        REFERENCE_TITLE, "",
        "Generated from `SCHEMA` in node/config.py by `crossbill config reference --out "
        "docs/configuration.md`; do not edit by hand (tests/node/test_config_reference.py "
        "checks that it is up to date).", "",
        "Each node reads one TOML file (`crossbill node start --config node.toml`), checked "
        "at start: a mistake is reported with its section and key (`[rpc] listen: ...`), and "
        "unknown sections and keys are refused, so a typo never falls back to a default. "
        "Relative paths are resolved against the directory of the configuration file. "
        "Integers must be TOML integers (`30`, not `30.0` or `\"30\"`); bounds are inclusive. "
        f"The file is at most {CONFIG_BYTES_MAX} bytes.", "",
    ]
    for section in SCHEMA:
        lines += [f"## [{section.name}]", "", section.description, "",
                  "| key | type | default | allowed | description |",
                  "|---|---|---|---|---|"]
        for key in section.keys:
            cells = (f"`{key.name}`", key.kind, _default_cell(key), _allowed_cell(key),
                     key.description)
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)
