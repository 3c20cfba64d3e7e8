"""`crossbill` command line: keys, genesis files and the local demo."""

from __future__ import annotations

import argparse
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


def _cmd_demo(args: argparse.Namespace) -> int:
    from node.localdemo import run_local_demo

    return run_local_demo(print)


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

    genesis = sub.add_parser("genesis", help="check a genesis file (consortium configuration)")
    genesis_sub = genesis.add_subparsers(dest="genesis_command", required=True,
                                         metavar="GENESIS_COMMAND")
    check = genesis_sub.add_parser("check", help="validate a genesis file and print its hash")
    check.add_argument("file", type=pathlib.Path)
    check.set_defaults(func=_cmd_genesis_check)

    demo = sub.add_parser("demo", help="walk DOMAIN.md's headline workflow in this process")
    demo.set_defaults(func=_cmd_demo)
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
