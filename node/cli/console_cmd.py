"""`crossbill console`: the web console (node/console/, ADR 0036) for one node's JSON-RPC,
called with that institution's client credential; `--peer NAME=URL` adds other nodes whose
status the network page shows (unsigned: node.status and node.health are public)."""

from __future__ import annotations

import argparse
import logging
from typing import Any, Final

from protocol.errors import CrossbillError

LISTEN_DEFAULT: Final = "127.0.0.1:8400"
PEERS_MAX: Final = 64  # --peer options the network page follows
PEER_TIMEOUT_S: Final = 3.0  # a peer's status call: "down" after this long
NODE_RETRY_S: Final = 0.5  # --wait-node-s: ask the node again after this long


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _peer(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    if not sep or not name or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected NAME=http(s)://HOST:PORT, got {text!r}")
    return name, url


def _cmd_console(args: argparse.Namespace) -> int:
    import trio

    from node.cli.client_cmds import ca_file_of, client_credential
    from node.console.app import LOOPBACK_HOSTS, build_app, serve
    from node.console.common import ConsoleError
    from node.console.rpc import RpcNodeApi, viewer_of

    if len(args.peer) > PEERS_MAX:
        raise CrossbillError(f"at most {PEERS_MAX} --peer options")
    credential = client_credential(args)
    ca_file = ca_file_of(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    host, port = args.listen

    async def main() -> None:
        node = RpcNodeApi(args.rpc, credential, ca_file=ca_file, cert_file=args.client_cert,
                          key_file=args.client_cert_key, timeout_s=args.timeout_s)
        peers = {name: RpcNodeApi(url, ca_file=ca_file, timeout_s=PEER_TIMEOUT_S)
                 for name, url in args.peer}
        deadline = trio.current_time() + args.wait_node_s
        while True:
            try:
                viewer = await viewer_of(node)
                break
            except ConsoleError as exc:
                if exc.status != 503 or trio.current_time() >= deadline:
                    raise CrossbillError(f"console: {exc.title}: {exc.message}") from None
            await trio.sleep(NODE_RETRY_S)  # the node is starting (the devnet starts both)
        app = build_app(node, viewer, peers=peers,
                        allowed_hosts=(*LOOPBACK_HOSTS, host, *args.allowed_host))
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve, app, host, port)
            print(f"console for {viewer.institution} ({viewer.role}) at {url}/network",
                  flush=True)

    trio.run(main)
    return 0


def register(sub: Any) -> None:
    from node.cli.client_cmds import add_rpc_options

    p = sub.add_parser("console", help="serve the web console for one node (as its "
                       "institution's RPC client)")
    add_rpc_options(p, rpc_required=True, timeout_s=10.0)
    p.add_argument("--listen", type=_listen, default=_listen(LISTEN_DEFAULT),
                   metavar="HOST:PORT", help=f"where the console listens (default "
                   f"{LISTEN_DEFAULT}; keep it on loopback: it shows what the credential "
                   "may read)")
    p.add_argument("--peer", type=_peer, action="append", default=[], metavar="NAME=URL",
                   help="another node whose status the network page shows (repeatable)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a Host name the console also answers by (repeatable; by default only "
                   "loopback names and the listen address: a guard against DNS rebinding)")
    p.add_argument("--wait-node-s", type=float, default=0.0, metavar="N",
                   help="wait up to N seconds for the node to answer at start (default: "
                   "fail at once)")
    p.set_defaults(func=_cmd_console)
