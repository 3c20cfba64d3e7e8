"""`crossbill tx ...`, `crossbill query ...` and `crossbill rpc ...`: the client library on the
command line, so an operator can walk the headline workflow by hand.

    crossbill tx declaration.register --key customs.key --signer customs.qd \\
        --rpc http://127.0.0.1:7201 --declaration-no QD-1 --exporter 91370200MA3C8Y5R2K ...
    crossbill query declaration QD-1 --rpc http://127.0.0.1:7201
    crossbill query credit 91370200MA3C8Y5R2K --key bank.key --reader bank.boc-qd --rpc URL

Transaction subcommands are generated from the payload dataclasses of protocol/txtypes.py:
every field is an option (`--field-name`); integers are minor units, bytes are hex, lists and
nested objects are JSON (`--pledges '[{"declaration_no": "QD-1", "amount": 54000000}]'`).
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
from typing import Any, Final, cast

import orjson

from node.client.transport import RpcError
from protocol import txtypes
from protocol.errors import CrossbillError

RPC_DEFAULT: Final = "http://127.0.0.1:8101"
PEM_KEY_BYTES_MAX: Final = 4096  # an RPC client key in PEM
RECORD_QUERIES: Final = {
    "institution": "institution.get", "enterprise": "enterprise.get",
    "declaration": "declaration.get", "financing": "financing.get",
    "taxform": "taxform.get", "payment": "payment.get", "proceeds": "proceeds.get",
    # issue 17: insurance
    "policy": "policy.get", "policy_financing": "policy.financing",
}


def _print(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _read_key(path: pathlib.Path, passphrase_file: pathlib.Path | None) -> Any:
    from node import keys

    return keys.read_key_file(path, keys.passphrase_from_env_or_file(passphrase_file))


def read_client_key(path: pathlib.Path, passphrase_file: pathlib.Path | None) -> Any:
    """An RPC client key: a Crossbill key file (its passphrase from --passphrase-file or
    $CROSSBILL_PASSPHRASE), or an unencrypted PKCS#8 PEM Ed25519 key as the devnet writes
    (DIR/<institution>/rpc-client-key.pem)."""
    from protocol import crypto

    try:
        with open(path, "rb") as f:
            head = f.read(PEM_KEY_BYTES_MAX + 1)
    except OSError as exc:
        raise CrossbillError(f"cannot read client key {path}: {exc.strerror}") from None
    if not head.startswith(b"-----BEGIN"):
        return _read_key(path, passphrase_file)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(head, password=None)
    except (ValueError, TypeError) as exc:
        raise CrossbillError(f"{path}: not an unencrypted PKCS#8 PEM key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CrossbillError(f"{path}: not an Ed25519 key")
    return crypto.PrivateKey(key.private_bytes_raw())


def client_credential(args: argparse.Namespace) -> Any:
    """The client credential the options `add_rpc_options` added name, or None."""
    from node.client import Credential

    if args.client_key is None:
        return None
    if not args.client_name:
        raise CrossbillError("--client-key needs --client-name")
    return Credential(args.client_name, read_client_key(args.client_key, args.passphrase_file))


def ca_file_of(args: argparse.Namespace) -> Any:
    """--ca-file, or the devnet's own CA (named in DIR/devnet.json) with --devnet DIR."""
    ca_file = getattr(args, "ca_file", None)
    if ca_file is None and getattr(args, "devnet", None) is not None:
        from node.cli import devnet

        ca_file = devnet.load(args.devnet).get("ca_file")
    return ca_file


def rpc_client(args: argparse.Namespace) -> Any:
    """A client for the options `add_rpc_options` added (signed with the client credential
    when one is given)."""
    from node.client import Client

    return Client(args.rpc, timeout_s=args.timeout_s, credential=client_credential(args),
                  ca_file=ca_file_of(args),
                  cert_file=getattr(args, "client_cert", None),
                  key_file=getattr(args, "client_cert_key", None))


def _run(args: argparse.Namespace, action: Any) -> int:
    with rpc_client(args) as client:
        try:
            _print(action(client))
        except RpcError as exc:
            _print({"error": {"code": exc.code, "message": exc.message, "data": exc.data}})
            return 1
    return 0


def add_rpc_options(p: argparse.ArgumentParser, *, rpc_required: bool = False,
                    timeout_s: float = 30.0) -> None:
    """--rpc, the client credential (--client-name, --client-key, --passphrase-file) and
    --timeout-s: what `rpc_client` reads."""
    if rpc_required:
        p.add_argument("--rpc", required=True,
                       help="the node's RPC URL, e.g. http://127.0.0.1:8101")
    else:
        p.add_argument("--rpc", default=RPC_DEFAULT, help="node RPC URL (default %(default)s)")
    p.add_argument("--client-name", help="client credential name (as in the node's [rpc] "
                   "clients); needed for writes unless the connection is loopback")
    p.add_argument("--client-key", type=pathlib.Path, help="client credential key file")
    p.add_argument("--passphrase-file", type=pathlib.Path,
                   help="passphrase of the key files (default $CROSSBILL_PASSPHRASE)")
    p.add_argument("--ca-file", type=pathlib.Path,
                   help="CA bundle that signed the node's TLS certificate (https:// URLs; "
                   "default: the system's CAs)")
    p.add_argument("--devnet", type=pathlib.Path, metavar="DIR",
                   help="a node of the devnet in DIR: verify it with the devnet's CA "
                   "(DIR/devnet.json's ca_file) unless --ca-file is given")
    p.add_argument("--client-cert", type=pathlib.Path,
                   help="client TLS certificate (PEM), for a node that requires one")
    p.add_argument("--client-cert-key", type=pathlib.Path,
                   help="the client TLS certificate's private key (PEM; default: in "
                   "--client-cert)")
    p.add_argument("--timeout-s", type=float, default=timeout_s,
                   help="how long to wait for the node (default %(default)s)")


# ---------------------------------------------------------------------- transactions


def _cmd_tx(args: argparse.Namespace) -> int:
    """Confidential details may be given in plain JSON (`--details '{"buyer": ...}'`): they
    are sealed to the parties the node names (ADR 0024) before signing."""
    from node.client.sealing import Keyring, Recipient, node_recipients, seal_values
    from node.client.txbuild import TxBuilder, build_payload, parse_field, payload_fields

    values = {spec.name: parse_field(spec, getattr(args, f"f_{spec.name}"))
              for spec in payload_fields(args.tx_type)
              if getattr(args, f"f_{spec.name}") is not None}
    # A clear error before any network call: check the fields, plain details included (sealed
    # here to a throwaway key only to run the same checks).
    scratch = Keyring.generate("check")
    build_payload(args.tx_type, seal_values(
        args.tx_type, args.signer, values,
        lambda *_: [Recipient("check", 1, scratch.public_key)]))
    key = _read_key(args.key, args.passphrase_file)

    def submit(client: Any) -> Any:
        chain_id = args.chain_id or client.status()["chain_id"]
        payload = build_payload(args.tx_type, seal_values(args.tx_type, args.signer, values,
                                                          node_recipients(client)))
        tx = TxBuilder(key, chain_id=chain_id, signer=args.signer,
                       expires_in_ms=args.expires_in_ms).sign(payload)
        return client.submit(tx, wait=not args.no_wait, timeout_ms=args.wait_ms)

    return _run(args, submit)


def _add_tx_commands(sub: Any) -> None:
    from node.client.txbuild import payload_fields

    tx = sub.add_parser("tx", help="build, sign and submit a transaction")
    tx_sub = tx.add_subparsers(dest="tx_type", required=True, metavar="TYPE")
    for tx_type in sorted(txtypes.REGISTRY):
        cls = txtypes.REGISTRY[tx_type]
        p = tx_sub.add_parser(tx_type, help=f"roles: {', '.join(sorted(cls.ROLES))}")
        p.add_argument("--key", type=pathlib.Path, required=True, help="signer's key file")
        p.add_argument("--signer", required=True, help="institution id (or USCC)")
        p.add_argument("--chain-id", help="default: ask the node")
        p.add_argument("--no-wait", action="store_true", help="return the tx id at once")
        p.add_argument("--wait-ms", type=int, default=10_000)
        p.add_argument("--expires-in-ms", type=int, default=10 * 60 * 1000)
        add_rpc_options(p)
        optional = {f.name for f in dataclasses.fields(cast(Any, cls))
                    if f.default is not dataclasses.MISSING}
        sealed = txtypes.SEALED_FIELDS.get(tx_type)
        for spec in payload_fields(tx_type):
            doc = spec.doc
            if sealed is not None and spec.name == sealed.field:
                doc = (f"JSON of {sealed.details.__name__} without salt, sealed to its parties "
                       "before signing (or an already sealed value)")
            p.add_argument(f"--{spec.name.replace('_', '-')}", dest=f"f_{spec.name}",
                           required=spec.name not in optional, metavar=spec.kind.upper(),
                           help=doc)
        p.set_defaults(func=_cmd_tx)


# ---------------------------------------------------------------------- queries


def _cmd_query_record(args: argparse.Namespace) -> int:
    """Sealed fields are shown opened to a party (with --keyring, or --key and --party: the
    key's encryption key version 1) and as `<encrypted>` to anyone else."""
    from node.client.sealing import Keyring, open_record

    method = RECORD_QUERIES[args.query]
    param = {"institution": "institution", "enterprise": "uscc",
             "declaration": "declaration_no", "financing": "financing_id",
             "taxform": "form_no", "payment": "payment_id", "proceeds": "proceeds_id",
             "policy": "policy_id", "policy_financing": "financing_id"}  # issue 17
    keyring = None
    if args.keyring:
        keyring = Keyring.load(args.keyring)
    elif args.key and args.party:
        keyring = Keyring.from_signing_key(args.party, _read_key(args.key,
                                                                 args.passphrase_file))
    return _run(args, lambda c: open_record(c.call(method, {param[args.query]: args.id}),
                                            keyring))


def _cmd_query_credit(args: argparse.Namespace) -> int:
    """Record the read on the ledger (a signed credit.read), then fetch the file it releases
    and open the entries this reader is a party to (`<encrypted>` for the others)."""
    import os
    import time

    from node.client.api import ReadSigner
    from node.client.sealing import Keyring, open_credit_file
    from protocol import txtypes, types

    def read(client: Any) -> Any:
        key = _read_key(args.key, args.passphrase_file)
        chain_id = client.status()["chain_id"]
        tx = types.Tx.create(key, chain_id=chain_id, signer=args.reader,
                             payload=txtypes.ReadCredit(args.uscc, args.purpose),
                             nonce=os.urandom(16),
                             expires_at_ms=int(time.time() * 1000) + 600_000)
        client.submit(tx, wait=True, reject_as_error=True)
        answer = dict(client.credit_file(args.uscc, tx.id,
                                         signer=ReadSigner(key, args.reader, chain_id)))
        keyring = (Keyring.load(args.keyring) if args.keyring
                   else Keyring.from_signing_key(args.reader, key))
        answer["entries"] = open_credit_file(answer, keyring)
        answer.pop("file_keys", None)
        return answer

    return _run(args, read)


def _cmd_query_audit(args: argparse.Namespace) -> int:
    from node.client.api import ReadSigner

    def read(client: Any) -> Any:
        signer = ReadSigner(_read_key(args.key, args.passphrase_file), args.reader,
                            client.status()["chain_id"])
        return client.credit_reads_audit(signer, args.limit)

    return _run(args, read)


def _cmd_query_txs(args: argparse.Namespace) -> int:
    if args.signer:
        return _run(args, lambda c: c.txs_by_signer(args.signer, args.limit))
    if not (args.kind and args.id):
        raise SystemExit("crossbill: error: give --signer, or --kind and --id")
    return _run(args, lambda c: c.txs_by_record(args.kind, args.id, args.limit))


def _cmd_query_simple(args: argparse.Namespace) -> int:
    calls = {
        "status": lambda c: c.status(), "health": lambda c: c.health(),
        "consortium": lambda c: c.consortium(),
        "tx": lambda c: c.tx(args.tx_id),
        "block": lambda c: (c.block(block_hash=args.ref) if len(args.ref) == 64
                            else c.block(int(args.ref))),
        "history": lambda c: c.history(args.kind, args.id),
        "consent": lambda c: c.consent(args.uscc, args.bank),
    }
    return _run(args, calls[args.query])


def _add_query_commands(sub: Any) -> None:
    q = sub.add_parser("query", help="query a node (records, transactions, blocks, status)")
    q_sub = q.add_subparsers(dest="query", required=True, metavar="WHAT")
    for kind in RECORD_QUERIES:
        p = q_sub.add_parser(kind, help=f"one {kind} record with its history")
        p.add_argument("id")
        p.add_argument("--keyring", type=pathlib.Path,
                       help="your encryption keyring: opens the sealed fields you are a party "
                       "to (others show as <encrypted>)")
        p.add_argument("--key", type=pathlib.Path,
                       help="or your signing key file (its encryption key version 1) ...")
        p.add_argument("--party", help="... and the party it belongs to (institution or USCC)")
        add_rpc_options(p)
        p.set_defaults(func=_cmd_query_record)
    specs: list[tuple[str, str, list[str]]] = [
        ("status", "node status", []), ("health", "node health", []),
        ("consortium", "the consortium configuration", []),
        ("tx", "a transaction and its receipt", ["tx_id"]),
        ("block", "a block by height or hash", ["ref"]),
        ("history", "a record's history", ["kind", "id"]),
        ("consent", "an enterprise's consent for a bank", ["uscc", "bank"]),
    ]
    for name, text, positionals in specs:
        p = q_sub.add_parser(name, help=text)
        for pos in positionals:
            p.add_argument(pos)
        add_rpc_options(p)
        p.set_defaults(func=_cmd_query_simple)
    p = q_sub.add_parser("txs", help="transactions by signer or by record")
    p.add_argument("--signer")
    p.add_argument("--kind", choices=sorted(RECORD_QUERIES))
    p.add_argument("--id")
    p.add_argument("--limit", type=int, default=20)
    add_rpc_options(p)
    p.set_defaults(func=_cmd_query_txs)
    p = q_sub.add_parser("credit", help="an enterprise's credit file: the read is recorded "
                         "on the ledger first, then the entries are opened for the reader")
    p.add_argument("uscc")
    p.add_argument("--reader", required=True, help="the reading institution")
    p.add_argument("--key", type=pathlib.Path, required=True,
                   help="the reader's key file (signs the credit.read and the request)")
    p.add_argument("--purpose", required=True, help="why the file is read (on the ledger)")
    p.add_argument("--keyring", type=pathlib.Path,
                   help="the reader's encryption keyring (default: the key's version 1)")
    add_rpc_options(p)
    p.set_defaults(func=_cmd_query_credit)
    p = q_sub.add_parser("audit", help="credit-file reads on the ledger (all for the "
                         "regulator, its own for a bank)")
    p.add_argument("--reader", required=True)
    p.add_argument("--key", type=pathlib.Path, required=True)
    p.add_argument("--limit", type=int, default=20)
    add_rpc_options(p)
    p.set_defaults(func=_cmd_query_audit)


# ---------------------------------------------------------------------- raw calls


def _cmd_rpc(args: argparse.Namespace) -> int:
    try:
        params = orjson.loads(args.params) if args.params else {}
    except orjson.JSONDecodeError as exc:
        raise SystemExit(f"crossbill: error: PARAMS is not JSON: {exc}") from None
    return _run(args, lambda c: c.call(args.method, params))


def register(sub: Any) -> None:
    """Add the client subcommands to `crossbill`'s subparsers."""
    _add_tx_commands(sub)
    _add_query_commands(sub)
    p = sub.add_parser("rpc", help="call any JSON-RPC method (see rpc.discover)")
    p.add_argument("method")
    p.add_argument("params", nargs="?", help="JSON object")
    add_rpc_options(p)
    p.set_defaults(func=_cmd_rpc)
