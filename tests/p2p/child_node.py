"""A P2PNode in its own process, for tests that kill -9 a peer: ``python -m tests.p2p.child_node
SEED_HEX PORT TOPIC PEER=ADDR ...``; prints READY when listening."""

from __future__ import annotations

import logging
import sys

import trio

from node.p2p.host import P2PNode
from node.p2p.identity import key_pair_from_seed


async def main(seed_hex: str, port: int, topic: str, allow_args: list[str]) -> None:
    allow = {p: [a] for p, a in (x.split("=", 1) for x in allow_args)}
    node = P2PNode(key_pair_from_seed(bytes.fromhex(seed_hex)), f"/ip4/127.0.0.1/tcp/{port}",
                   allow, topics=[topic])

    async def ignore(data: bytes, origin: str) -> None:
        pass

    node.subscribe(topic, lambda d, o: True, ignore)
    async with trio.open_nursery() as n:
        await n.start(node.run)
        print("READY", flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    trio.run(main, sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:])
