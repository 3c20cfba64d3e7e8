"""Operator commands: consistent backups of a running node, offline restore, the ledger check,
compaction, and who a node is (docs/adr/0011-backup-restore-and-ledger-check.md).

    crossbill backup create --rpc URL --name N          the running node writes a backup
    crossbill backup restore --from DIR --config node.toml [--force]     (node stopped)
    crossbill ledger check --config node.toml | --data DIR --genesis FILE  (node stopped)
    crossbill ledger compact --config node.toml                            (node stopped)
    crossbill node id --config node.toml
    crossbill node status --rpc URL

The work itself is library code in node/storage/backup.py, shared with the running node.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import threading
import time
from typing import Any, Final

import orjson

from node.config import NodeConfig
from node.observe.progress import PROGRESS_INTERVAL_S, CopyProgress
from node.storage.backup import (
    OpsError,
    check_ledger,
    dir_bytes,
    format_report,
    load_genesis_file,
    load_node_config_file,
    open_store,
    restore,
)
from node.storage.store import Storage, StorageError, database_in_use
from protocol import types
from protocol.errors import CrossbillError


def _stderr_progress(height: int, total: int, elapsed_s: float) -> None:
    rate = height / elapsed_s if elapsed_s > 0 else 0.0
    print(f"  checked block {height}/{total} ({rate:.0f} blocks/s)", file=sys.stderr,
          flush=True)


def _rpc_call(args: argparse.Namespace, method: str, params: dict[str, Any]) -> Any:
    from node.cli.client_cmds import rpc_client
    from node.client.transport import RpcError

    client = rpc_client(args)
    try:
        return client.call(method, params)
    except RpcError as exc:
        raise OpsError(f"{method}: {exc.message} (code {exc.code})") from None
    except OSError as exc:
        raise OpsError(f"cannot reach {args.rpc}: {exc}") from None
    finally:
        client.close()


# How often `backup create` asks the node how far its backup got (admin.job), and how often
# at most it prints a line.
BACKUP_POLL_S: Final = 1.0
BACKUP_LINE_INTERVAL_S: Final = PROGRESS_INTERVAL_S


def _watch_backup(args: argparse.Namespace, name: str, done: threading.Event) -> None:
    """Until `done`: a progress line on stderr at most every PROGRESS_INTERVAL_S, from the
    node's own counts (admin.job), while the admin.backup call waits."""
    from node.cli.client_cmds import rpc_client
    from node.client.transport import RpcError

    client = rpc_client(args)
    progress = CopyProgress(f"backup {name}", time.monotonic(),
                            interval_s=BACKUP_LINE_INTERVAL_S)
    try:
        while not done.wait(BACKUP_POLL_S):
            try:
                job = client.call("admin.job", {})
            except (RpcError, OSError):
                return  # an older node, or it went away: the backup call will tell
            if job.get("running") == "backup" and (
                    line := progress.observe(time.monotonic(), job["keys"], job["bytes"])):
                print(line, file=sys.stderr, flush=True)
    finally:
        client.close()


def cmd_backup_create(args: argparse.Namespace) -> int:
    # One call does the whole copy; a second connection shows how far it got.
    print(f"the node at {args.rpc} is writing backup {args.name}", file=sys.stderr, flush=True)
    done = threading.Event()
    watcher = threading.Thread(target=_watch_backup, args=(args, args.name, done), daemon=True)
    watcher.start()
    try:
        result = _rpc_call(args, "admin.backup", {"name": args.name})
    finally:
        done.set()
        watcher.join(BACKUP_POLL_S + args.timeout_s)
    m = result["manifest"]
    print(f"backup {result['name']} of {m['institution']} written to {result['dir']}")
    print(f"  height        {m['height']}  tip {m['tip_hash']}")
    print(f"  state root    {m['state_root']}")
    print(f"  keys          {m['key_count']} ({result['bytes'] / 1e6:.1f} MB), "
          f"{result['seconds']:.2f} s")
    return 0


def cmd_backup_restore(args: argparse.Namespace) -> int:
    cfg = load_node_config_file(args.config)
    config = load_genesis_file(cfg.genesis)
    print(f"restoring {args.backup} into {cfg.data_dir} (checking the whole ledger first)",
          file=sys.stderr)
    result = restore(args.backup, cfg.data_dir, config, force=args.force,
                     progress=_stderr_progress)
    m = result.manifest
    print(f"restored {cfg.institution}'s data directory {result.data_dir} from the backup "
          f"of {m.institution} taken {m.created_at}")
    print(f"  height        {m.height}  tip {m.tip_hash}")
    print(f"  checked       {result.report.blocks} blocks in {result.report.seconds:.2f} s")
    if result.moved_aside is not None:
        print(f"  previous data directory kept at {result.moved_aside}")
    print("  no Raft state was restored: start the node and it catches up from its peers")
    return 0


def cmd_ledger_check(args: argparse.Namespace) -> int:
    if args.config is not None:
        if args.data is not None or args.genesis is not None:
            raise OpsError("give either --config, or --data and --genesis")
        cfg = load_node_config_file(args.config)
        data_dir, genesis = cfg.data_dir, cfg.genesis
    else:
        if args.data is None or args.genesis is None:
            raise OpsError("give either --config, or --data and --genesis")
        data_dir, genesis = args.data, args.genesis
    config = load_genesis_file(genesis)
    storage = open_store(data_dir, config)
    try:
        tip = storage.tip()
        print(f"checking {data_dir} (chain {config.chain_id}, height "
              f"{tip.height if tip else '-'}) against genesis {genesis}", file=sys.stderr)
        report = check_ledger(storage, config, _stderr_progress)
    finally:
        storage.close()
    print(format_report(report))
    return 0 if report.ok else 1


def cmd_ledger_compact(args: argparse.Namespace) -> int:
    cfg = load_node_config_file(args.config)
    config = load_genesis_file(cfg.genesis)
    storage = open_store(cfg.data_dir, config)
    try:
        before = dir_bytes(cfg.data_dir)
        started = time.monotonic()
        storage.compact()
        seconds = time.monotonic() - started
    finally:
        storage.close()
    after = dir_bytes(cfg.data_dir)
    print(f"compacted {cfg.data_dir}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB in "
          f"{seconds:.2f} s")
    return 0


def node_identity(cfg: NodeConfig) -> dict[str, str]:
    """What `crossbill node id` prints: label -> value."""
    from node.keys import read_public_key
    from node.p2p.identity import NodeKeyError, read_node_key

    out: dict[str, str] = {"institution": cfg.institution}
    config: types.ConsortiumConfig | None = None
    try:
        config = load_genesis_file(cfg.genesis)
    except CrossbillError as exc:
        out["genesis"] = f"unreadable: {exc}"
    inst = config.institution(cfg.institution) if config is not None else None
    if config is not None:
        out["chain"] = f"{config.chain_id} (genesis {config.hash.hex()})"
        if inst is None:
            out["role"] = "NOT IN THE GENESIS FILE"
        else:
            orderer = " (orderer)" if cfg.institution in config.orderers else ""
            out["role"] = inst.role + orderer
    if cfg.node_key_file.exists():
        try:
            peer_id = read_node_key(cfg.node_key_file).peer_id
            listed = inst.node.peer_id if inst is not None and inst.node is not None else None
            note = "" if listed in (None, peer_id) else f" (the genesis lists {listed}!)"
            out["peer_id"] = peer_id + note
        except NodeKeyError as exc:
            out["peer_id"] = f"unreadable: {exc}"
    else:
        out["peer_id"] = f"no node key yet at {cfg.node_key_file} (created on first start)"
    try:
        key_id, _ = read_public_key(cfg.key_file)
        known = inst is None or any(k.key_id == key_id for k in inst.keys)
        out["key_id"] = key_id.hex() + ("" if known else " (NOT a key of this institution "
                                        "in the genesis file)")
    except CrossbillError as exc:
        out["key_id"] = f"unreadable: {exc}"
    out["data_dir"] = f"{cfg.data_dir} ({_data_dir_height(cfg.data_dir, config)})"
    out["backup_dir"] = str(cfg.backup_dir)
    return out


def _data_dir_height(data_dir: pathlib.Path, config: types.ConsortiumConfig | None) -> str:
    if config is None:
        return "height unknown: no genesis"
    if not (data_dir / "CURRENT").exists():
        return "empty"
    if database_in_use(data_dir):
        return "in use by a running node: ask it with `crossbill node status`"
    try:
        storage = Storage.open(data_dir, chain_id=config.chain_id, genesis_hash=config.hash,
                               create=False)
    except StorageError as exc:
        return f"unreadable: {exc}"
    try:
        tip = storage.tip()
    except StorageError as exc:
        return f"unreadable: {exc}"
    finally:
        storage.close()
    return "no blocks yet" if tip is None else f"height {tip.height}"


def cmd_node_id(args: argparse.Namespace) -> int:
    for label, value in node_identity(load_node_config_file(args.config)).items():
        print(f"{label:<12} {value}")
    return 0


def format_status(status: dict[str, Any]) -> str:
    order = ("institution", "role", "orderer", "height", "tip_hash", "state_root",
             "block_time_ms", "leader", "is_leader", "raft_term", "catching_up",
             "best_known_height", "mempool_txs", "peers", "chain_id", "genesis_hash")
    lines = []
    for name in (*order, *sorted(k for k in status if k not in order)):
        if name not in status:
            continue
        value = status[name]
        if name == "peers":
            text = f"{len(value)}: " + ", ".join(value) if value else "none"
        elif isinstance(value, dict | list):
            text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        else:
            text = str(value)
        lines.append(f"{name:<18} {text}")
    return "\n".join(lines)


def cmd_node_status(args: argparse.Namespace) -> int:
    print(format_status(_rpc_call(args, "node.status", {})))
    return 0


def register(sub: Any) -> None:
    """Add the `backup` and `ledger` command groups to the top-level subparsers."""
    from node.cli.client_cmds import add_rpc_options

    backup = sub.add_parser("backup", help="back up a running node; restore a stopped one")
    backup_sub = backup.add_subparsers(dest="backup_command", required=True,
                                       metavar="BACKUP_COMMAND")
    create = backup_sub.add_parser(
        "create", help="ask a running node to write a consistent backup to its [node] "
        "backup_dir (admin.backup: loopback or client credential)")
    create.add_argument("--name", required=True,
                        help="backup name: one directory under backup_dir")
    add_rpc_options(create, rpc_required=True, timeout_s=600.0)
    create.set_defaults(func=cmd_backup_create)
    rest = backup_sub.add_parser(
        "restore", help="restore a backup into a stopped node's data directory (checks the "
        "backup's chain and its whole ledger first; never restores Raft state)")
    rest.add_argument("--from", dest="backup", type=pathlib.Path, required=True,
                      help="the backup directory (<backup_dir>/<name>)")
    rest.add_argument("--config", type=pathlib.Path, required=True, help="node.toml")
    rest.add_argument("--force", action="store_true", help="move a non-empty data directory "
                      "aside (kept as <data_dir>.before-restore-TIME) instead of refusing")
    rest.set_defaults(func=cmd_backup_restore)

    led = sub.add_parser("ledger", help="offline checks and maintenance of a node's store")
    led_sub = led.add_subparsers(dest="ledger_command", required=True,
                                 metavar="LEDGER_COMMAND")
    check = led_sub.add_parser(
        "check", help="re-apply every block from genesis and compare blocks, receipts, "
        "transaction index, state and tip (node stopped)")
    check.add_argument("--config", type=pathlib.Path, help="node.toml (its data_dir and "
                       "genesis)")
    check.add_argument("--data", type=pathlib.Path, help="a data directory or a backup's "
                       "store/ directory")
    check.add_argument("--genesis", type=pathlib.Path, help="the genesis file")
    check.set_defaults(func=cmd_ledger_check)
    compact = led_sub.add_parser("compact", help="compact a stopped node's LevelDB")
    compact.add_argument("--config", type=pathlib.Path, required=True, help="node.toml")
    compact.set_defaults(func=cmd_ledger_compact)


def add_node_subcommands(node_sub: Any) -> None:
    """Add `id` and `status` to the existing `crossbill node` group."""
    from node.cli.client_cmds import add_rpc_options

    ident = node_sub.add_parser("id", help="institution, peer id, key id and data directory "
                                "height of a node configuration")
    ident.add_argument("--config", type=pathlib.Path, required=True, help="node.toml")
    ident.set_defaults(func=cmd_node_id)
    status = node_sub.add_parser("status", help="a running node's status, pretty-printed")
    add_rpc_options(status, rpc_required=True, timeout_s=600.0)
    status.set_defaults(func=cmd_node_status)
