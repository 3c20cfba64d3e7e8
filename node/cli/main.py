"""`crossbill` command line: keys, genesis files, running a node, and the local devnet."""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import time
from collections.abc import Callable, Sequence

from protocol import limits
from protocol.errors import CrossbillError


def _cmd_keys_generate(args: argparse.Namespace) -> int:
    from node import keys

    passphrase = keys.passphrase_from_env_or_file(args.passphrase_file)
    key = keys.generate_key()
    keys.write_key_file(args.out, key, passphrase, scrypt_log_n=args.scrypt_log_n)
    print(f"key_id     {key.key_id.hex()}")
    print(f"public_key {key.public_key.hex()}")
    print(f"written to {args.out} (mode 0600, scrypt + AES-256-GCM)")
    return 0


def _cmd_keys_show(args: argparse.Namespace) -> int:
    from node import keys

    key_id, public_key = keys.read_public_key(args.file)
    print(f"key_id     {key_id.hex()}")
    print(f"public_key {public_key.hex()}")
    if args.check_passphrase:
        keys.read_key_file(args.file, keys.passphrase_from_env_or_file(args.passphrase_file))
        print("passphrase ok")
    return 0


def _cmd_keys_node_key(args: argparse.Namespace) -> int:
    """A new libp2p identity for a node (network key rotation, or a new node)."""
    from node.p2p.identity import generate_seed, peer_id_from_seed, write_node_key

    seed = generate_seed()
    write_node_key(args.out, seed)
    peer_id = peer_id_from_seed(seed)
    print(f"peer_id    {peer_id}")
    print(f"written to {args.out} (mode 0600)")
    print("next: the regulator names it with a node.set transaction, e.g.")
    print(f"  crossbill tx node.set --signer <regulator> --key <regulator key> --rpc URL "
          f"--institution <id> --peer-id {peer_id} --addresses '[\"/ip4/<host>/tcp/<port>\"]'")
    print("then restart the node with node_key_file pointing at the new file")
    return 0


def _cmd_keys_enterprise_proof(args: argparse.Namespace) -> int:
    """The enterprise's proof that it holds its key, for one bank's enterprise.register."""
    from node import keys
    from protocol import txtypes

    key = keys.read_key_file(args.key, keys.passphrase_from_env_or_file(args.passphrase_file))
    proof = txtypes.sign_enterprise_key_proof(key, args.chain_id, args.uscc, args.bank)
    print(f"public_key {key.public_key.hex()}")
    print(f"key_proof  {proof.hex()}")
    print(f"the bank registers it with: crossbill tx enterprise.register --signer {args.bank} "
          f"--uscc {args.uscc} --public-key {key.public_key.hex()} --key-proof {proof.hex()} "
          "...")
    return 0


def _cmd_keys_encryption_rotate(args: argparse.Namespace) -> int:
    """Add the next encryption key version to a keyring (created from the signing key's
    version 1 when it does not exist yet) and say how to register it (ADR 0024)."""
    from node import keys
    from node.client.sealing import Keyring

    if args.keyring.exists():
        ring = Keyring.load(args.keyring)
        if ring.party != args.party:
            print(f"crossbill: error: {args.keyring} is {ring.party}'s keyring, not "
                  f"{args.party}'s", file=sys.stderr)
            return 2
    else:
        if args.key is None:
            print("crossbill: error: a new keyring starts from the signing key's version 1: "
                  "give --key", file=sys.stderr)
            return 2
        ring = Keyring.from_signing_key(args.party, keys.read_key_file(
            args.key, keys.passphrase_from_env_or_file(args.passphrase_file)))
    public = ring.rotate()
    ring.save(args.keyring)
    print(f"keyring    {args.keyring} ({args.party}, versions {sorted(ring.keys)})")
    print(f"version    {ring.version}")
    print(f"public_key {public.hex()}")
    print(f"register it with: crossbill tx encryption_key.set --signer {args.party} "
          f"--public-key {public.hex()} --key SIGNING_KEY ...; keep the keyring (records "
          "sealed to older versions open only with them)")
    return 0


def _cmd_genesis_check(args: argparse.Namespace) -> int:
    from protocol.genesis import load_genesis

    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise CrossbillError(f"cannot read {args.file}: {exc.strerror}") from None
    config = load_genesis(data)
    print(f"chain_id      {config.chain_id}")
    print(f"genesis_hash  {config.hash.hex()}")
    print(f"orderers      {', '.join(config.orderers)}")
    for inst in config.institutions:
        node = inst.node.peer_id if inst.node else "-"
        print(f"  {inst.role:<10} {inst.id:<28} keys={len(inst.keys)} node={node}")
    return 0


def _cmd_node_start(args: argparse.Namespace) -> int:
    import trio

    from node import allocator
    from node.config import load_config
    from node.observe.logs import setup_logging
    from node.p2p.host import attach_libp2p_logging
    from node.service import run_from_config

    cfg = load_config(args.config)
    setup_logging(cfg.institution, cfg.log_level, cfg.log_format)
    # libp2p is imported by now (it turned off propagation of its logger): route its records
    # back to ours, at warning and above unless we debug.
    attach_libp2p_logging(logging.DEBUG if cfg.log_level == "debug" else logging.WARNING)
    tune_gc()
    if not allocator.tune():
        logging.getLogger("crossbill.allocator").info(
            "not glibc: the C allocator's mmap threshold is left as it is")
    trio.run(run_from_config, cfg)
    return 0


def tune_gc() -> None:
    """A long-running node holds hundreds of thousands of long-lived objects (caches, the
    Raft log, decoded records); with CPython's default thresholds the cyclic collector walks
    them again and again. Freeze what start-up created and collect the young generation less
    often (ADR 0013: measured with `crossbill bench`)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 50)


GC_GEN0_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)


def _cmd_devnet_up(args: argparse.Namespace) -> int:
    from node.cli import devnet

    devnet.up(args.dir, base_port=args.base_port, tls=not args.no_tls, rtt_ms=args.rtt_ms)
    return 0


def _cmd_devnet_down(args: argparse.Namespace) -> int:
    from node.cli import devnet

    devnet.down(args.dir)
    return 0


def _cmd_devnet_demo(args: argparse.Namespace) -> int:
    from node.cli import devnet

    if args.scenario == "headline":
        devnet.demo(args.dir)
    else:
        from node.cli import scenarios

        scenarios.demo(args.dir, args.scenario)
    return 0


def _cmd_devnet_run(args: argparse.Namespace) -> int:
    """up, demo and down in one go (what ./dev demo runs)."""
    import shutil
    import tempfile

    from node.cli import devnet

    root = args.dir or pathlib.Path(tempfile.mkdtemp(prefix="crossbill-devnet-"))
    kept = args.dir is not None or args.keep
    left_up = False
    try:
        description = devnet.up(root, base_port=args.base_port, tls=not args.no_tls)
        try:
            devnet.demo(root)
            left_up = args.keep  # --keep: the network and its console stay up to explore
        finally:
            if not left_up:
                devnet.down(root)
    finally:
        if not kept:
            shutil.rmtree(root, ignore_errors=True)
    if left_up:
        print(f"the network is still up: open the regulator's console at "
              f"{description['console']['url']} to click through the demo's records; stop "
              f"the network and console with: crossbill devnet down --dir {root}")
        return 0
    logs = f"each node's log is in {root}/<institution>/node.log" if kept else (
        "`./dev demo --keep` keeps each node's log")
    print(f"next: {logs}; `crossbill devnet up --dir DIR` keeps a network running to explore "
          "(README.md, 'Running a network by hand'; metrics: monitoring/README.md)")
    return 0


NO_TLS_HELP = ("serve plain http:// (default: https:// with a certificate from the devnet's "
               "own CA, DIR/ca.pem, which DIR/devnet.json names as ca_file)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossbill",
        description="Crossbill: a permissioned ledger network for cross-border trade finance.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keys = sub.add_parser("keys", help="generate and inspect encrypted Ed25519 key files")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="KEYS_COMMAND")
    gen = keys_sub.add_parser("generate", help="create a new key file (passphrase from "
                              "$CROSSBILL_PASSPHRASE or --passphrase-file)")
    gen.add_argument("--out", type=pathlib.Path, required=True, help="key file to create")
    gen.add_argument("--passphrase-file", type=pathlib.Path)
    gen.add_argument("--scrypt-log-n", type=int, default=limits.KEYFILE_SCRYPT_LOG_N_DEFAULT,
                     help="scrypt work factor as log2(N) (default %(default)s)")
    gen.set_defaults(func=_cmd_keys_generate)
    show = keys_sub.add_parser("show", help="print a key file's key id and public key")
    show.add_argument("file", type=pathlib.Path)
    show.add_argument("--check-passphrase", action="store_true",
                      help="also decrypt the key to check the passphrase")
    show.add_argument("--passphrase-file", type=pathlib.Path)
    show.set_defaults(func=_cmd_keys_show)
    nk = keys_sub.add_parser("node-key", help="create a new libp2p node key (network identity) "
                             "and print its peer id")
    nk.add_argument("--out", type=pathlib.Path, required=True, help="node key file to create")
    nk.set_defaults(func=_cmd_keys_node_key)
    ep = keys_sub.add_parser("enterprise-proof", help="as an enterprise, sign the proof that "
                             "lets one bank bind your key (enterprise.register --key-proof)")
    ep.add_argument("--key", type=pathlib.Path, required=True, help="the enterprise's key file")
    ep.add_argument("--uscc", required=True, help="the enterprise's USCC")
    ep.add_argument("--bank", required=True, help="the registering bank's institution id")
    ep.add_argument("--chain-id", required=True, help="the network's chain id")
    ep.add_argument("--passphrase-file", type=pathlib.Path)
    ep.set_defaults(func=_cmd_keys_enterprise_proof)
    er = keys_sub.add_parser("encryption-rotate", help="add a new encryption key version to "
                             "your keyring (then register it with encryption_key.set)")
    er.add_argument("--keyring", type=pathlib.Path, required=True, help="keyring file (0600)")
    er.add_argument("--party", required=True, help="your institution id or USCC")
    er.add_argument("--key", type=pathlib.Path,
                    help="your signing key file (to start a new keyring at version 1)")
    er.add_argument("--passphrase-file", type=pathlib.Path)
    er.set_defaults(func=_cmd_keys_encryption_rotate)

    genesis = sub.add_parser("genesis", help="check a genesis file (consortium configuration)")
    genesis_sub = genesis.add_subparsers(dest="genesis_command", required=True,
                                         metavar="GENESIS_COMMAND")
    check = genesis_sub.add_parser("check", help="validate a genesis file and print its hash")
    check.add_argument("file", type=pathlib.Path)
    check.set_defaults(func=_cmd_genesis_check)

    node = sub.add_parser("node", help="run a node")
    node_sub = node.add_subparsers(dest="node_command", required=True, metavar="NODE_COMMAND")
    start = node_sub.add_parser("start", help="run a node in the foreground until SIGTERM")
    start.add_argument("--config", type=pathlib.Path, required=True, help="node.toml")
    start.set_defaults(func=_cmd_node_start)
    from node.cli import ops

    ops.add_node_subcommands(node_sub)  # node id, node status

    dev = sub.add_parser("devnet", help="a local network on loopback (4 banks ordering, plus "
                         "regulator, customs and tax)")
    dev_sub = dev.add_subparsers(dest="devnet_command", required=True,
                                 metavar="DEVNET_COMMAND")
    for name, func, text in (
            ("up", _cmd_devnet_up, "generate keys, genesis and configs, start every node, "
             "wait for a leader, write DIR/devnet.json"),
            ("down", _cmd_devnet_down, "stop every node of the devnet in DIR"),
            ("demo", _cmd_devnet_demo, "walk the headline workflow through the RPC API")):
        p = dev_sub.add_parser(name, help=text)
        p.add_argument("--dir", type=pathlib.Path, required=True)
        if name == "up":
            p.add_argument("--base-port", type=int, default=7100,
                           help="p2p ports base+1.., RPC base+101.., metrics base+201..")
            p.add_argument("--no-tls", action="store_true", help=NO_TLS_HELP)
            p.add_argument("--rtt-ms", type=int, default=None, metavar="N",
                           help="write consensus timing for an N ms round-trip time into "
                           "genesis (protocol.timing.timing_for_rtt, ADR 0030); default: no "
                           "timing in genesis, the defaults")
        if name == "demo":
            p.add_argument("--scenario", default="headline",
                           choices=("headline", "insurance", "capital"),
                           help="headline: docs/domain.md's headline workflow (default); "
                           "insurance, capital: a scenario of protocol version 2, which the "
                           "demo activates first if the devnet is still at version 1")
        p.set_defaults(func=func)
    run = dev_sub.add_parser("run", help="up, demo and down in one go")
    run.add_argument("--dir", type=pathlib.Path, help="default: a new temporary directory")
    run.add_argument("--keep", action="store_true", help="keep the temporary directory, and "
                     "leave the network and the regulator's console up after the demo (stop "
                     "them with devnet down)")
    run.add_argument("--base-port", type=int, default=7100)
    run.add_argument("--no-tls", action="store_true", help=NO_TLS_HELP)
    run.set_defaults(func=_cmd_devnet_run)

    from node.cli import bench
    from node.cli import client_cmds as cli_client

    cli_client.register(sub)  # tx, query, rpc
    bench.register(sub)  # bench
    from node.cli import console_cmd

    console_cmd.register(sub)  # console (the web console, node/console/)
    ops.register(sub)  # backup create|restore, ledger check|compact
    from node.cli import netinit

    netinit.register(sub)  # network init|show
    from node.cli import conveniences

    conveniences.register(sub, parser)  # --version, completion, config reference
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    started = time.monotonic()
    try:
        return func(args)
    except CrossbillError as exc:
        print(f"crossbill: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"crossbill: interrupted after {time.monotonic() - started:.1f} s", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
