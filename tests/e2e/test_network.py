"""Issue 5 end to end: separate node processes on loopback, real libp2p, real LevelDB."""

from __future__ import annotations

import dataclasses
import os
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing

import pytest
import trio

from node.cli import devnet
from node.cli import main as cli
from node.client.transport import TLS_ERROR_CODE, RpcClient, RpcError
from node.p2p import network as netproto
from node.p2p.host import P2PNode
from node.p2p.identity import generate_seed, key_pair_from_seed, read_node_key
from node.replica.messages import pack_blobs
from protocol import types
from tests.e2e.harness import Devnet, Load, free_port, running_devnet
from tests.e2e.js_client import check_headline_financing_from_javascript
from tests.waiting import wait_until, wait_until_sync

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """One devnet for the tests that leave it as it was (the last one may stop a follower):
    starting seven processes costs about 15 s per test on this machine."""
    with running_devnet(tmp_path_factory.mktemp("shared") / "net", console=True) as dn:
        yield dn


def test_network_commits_and_every_node_agrees(shared: Devnet,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    dn = shared
    orderers = [n for n in dn.names() if n.startswith("bank.")]
    assert len(orderers) == 4 and len(dn.names()) == 7
    with Load(dn, ["customs.qd", orderers[1], "regulator.safe-qd"]) as load:
        load.wait_acknowledged(60)
    height = dn.wait_agree(min_height=2)
    assert height >= 2
    dn.assert_all_have(load.acknowledged)
    statuses = [dn.status(n) for n in dn.names()]
    assert len({s["tip_hash"] for s in statuses}) == 1
    assert sum(s["is_leader"] for s in statuses) == 1
    assert_serves_tls_only(dn, capsys)


def test_javascript_client_finances_on_the_devnet(shared: Devnet) -> None:
    """examples/js/headline.js, run by Node.js, commits the headline's financing on every
    node (tests/e2e/js_client.py)."""
    print(check_headline_financing_from_javascript(shared))  # the figures, under `pytest -s`


def test_the_devnet_runs_the_regulators_console(shared: Devnet) -> None:
    """`devnet up` starts the regulator's console beside the nodes (its own node, its client
    key, every node as a peer): its network page shows the regulator's view of all seven
    (tests/console show a stopped node turn "down", in a real browser)."""
    console = shared.desc["console"]
    assert devnet.pid_alive(console["pid"])
    with urllib.request.urlopen(console["url"], timeout=10) as reply:
        html = reply.read().decode()
    assert 'id="viewer">regulator.safe-qd <span class="role">regulator</span>' in html
    for name in shared.names():
        assert f'<tr class="up" data-node="{name}">' in html


def assert_serves_tls_only(dn: Devnet, capsys: pytest.CaptureFixture[str]) -> None:
    """The devnet's default (ADR 0023, "Test networks"): every node serves https with a
    certificate from the devnet's own CA, named in devnet.json; a client with that CA is
    served, one without it (the system's CAs) is refused, and plain http gets an error."""
    assert dn.desc["ca_file"] == str(dn.root / "ca.pem")
    for name in dn.names():
        url = dn.node(name)["rpc_url"]
        assert url.startswith("https://127.0.0.1:"), url
        with closing(RpcClient(url, timeout_s=5, ca_file=dn.root / "ca.pem")) as trusted:
            assert trusted.status()["institution"] == name
        with closing(RpcClient(url, timeout_s=5)) as stranger, \
                pytest.raises(RpcError) as refused:
            stranger.status()
        assert refused.value.code == TLS_ERROR_CODE
        assert "certificate verify failed" in refused.value.message
    with closing(RpcClient(url.replace("https://", "http://"), timeout_s=5)) as plain, \
            pytest.raises(RpcError) as plain_refused:
        plain.status()
    assert plain_refused.value.code == -400
    # The CLI pointed at the devnet finds its CA in devnet.json.
    capsys.readouterr()
    assert cli.main(["query", "status", "--rpc", dn.node("customs.qd")["rpc_url"],
                     "--devnet", str(dn.root)]) == 0
    assert '"institution": "customs.qd"' in capsys.readouterr().out


async def test_a_peer_outside_the_consortium_is_refused(shared: Devnet) -> None:
    dn = shared
    target = dn.node("bank.boc-qd")
    target_peer = read_node_key(dn.root / "bank.boc-qd" / "node.key").peer_id
    stranger = P2PNode(key_pair_from_seed(generate_seed()),
                       f"/ip4/127.0.0.1/tcp/{free_port()}",
                       {target_peer: [target["p2p"]]})
    before = dn.status("bank.boc-qd")["counters"]["p2p"]["peers"]["refused"]
    async with trio.open_nursery() as nursery:
        await nursery.start(stranger.run)
        with pytest.raises(Exception):  # noqa: B017 - any failure: refused before served
            with trio.fail_after(10):
                await stranger.request(target_peer, netproto.PROTO_STATUS, b"",
                                       timeout_s=3)
        nursery.cancel_scope.cancel()
    wait_until_sync(
        lambda: dn.status("bank.boc-qd")["counters"]["p2p"]["peers"]["refused"] > before,
        10, poll_s=0.1, what="the node to count the refused peer")


async def test_forged_gossip_is_rejected_and_counted(shared: Devnet) -> None:
    """Last on the shared devnet: it stops the tax bureau's node."""
    dn = shared
    dn.kill9("tax.qd")  # we borrow the tax bureau's node identity, as an intruder would
    tax_dir = dn.root / "tax.qd"
    identity = read_node_key(tax_dir / "node.key")
    peer_of = {n: read_node_key(dn.root / n / "node.key").peer_id
               for n in dn.names() if n != "tax.qd"}
    allow = {peer_of[n]: [dn.node(n)["p2p"]] for n in peer_of}
    followers = ("regulator.safe-qd", "customs.qd")
    banks = [n for n in dn.names() if n.startswith("bank.")]
    impostor = P2PNode(identity.key_pair, dn.node("tax.qd")["p2p"], allow,
                       topics=(netproto.TOPIC_TXS, netproto.TOPIC_BLOCKS))
    height_before = dn.wait_agree(min_height=0,
                                  names=[n for n in dn.names() if n != "tax.qd"])
    # A block "proposed" by customs (not an orderer), and one with a forged signature.
    header = types.BlockHeader(
        chain_id=dn.config.chain_id, height=height_before + 1, prev_hash=b"\x00" * 32,
        tx_count=0, tx_root=types.tx_root(()), receipts_root=b"\x00" * 32,
        state_root=b"\x00" * 32, timestamp_ms=int(time.time() * 1000),
        proposer="customs.qd", proposer_key_id=dn.keys["customs.qd"].key_id, raft_term=1,
        raft_index=1)
    by_customs = types.Block.create(dn.keys["customs.qd"], header, ())
    bank_header = dataclasses.replace(header, proposer="bank.boc-qd",
                                      proposer_key_id=dn.keys["bank.boc-qd"].key_id)
    forged = types.Block(bank_header, (), os.urandom(64))
    bad_tx = Load(dn, []).make_tx()
    bad_tx = dataclasses.replace(bad_tx, signature=os.urandom(64))

    def rejections() -> tuple[int, int]:
        blocks = sum(dn.status(n)["counters"]["sync"]["gossip_blocks_rejected"]
                     for n in followers)
        txs = sum(dn.status(n)["counters"]["intake"]["gossip_batches_rejected"]
                  for n in banks)
        return blocks, txs

    async with trio.open_nursery() as nursery:
        await nursery.start(impostor.run)
        # A publication reaches the peers known to subscribe when it leaves: wait for
        # the followers in the block topic and the orderers in the transaction topic.
        await wait_until(lambda: (
            {peer_of[n] for n in followers} <= impostor.topic_peers(netproto.TOPIC_BLOCKS)
            and {peer_of[n] for n in banks} <= impostor.topic_peers(netproto.TOPIC_TXS)),
            20, poll_s=0.1, what="the impostor's gossip peers")
        await impostor.publish(netproto.TOPIC_BLOCKS, by_customs.encoded)
        await impostor.publish(netproto.TOPIC_BLOCKS, forged.encoded)
        await impostor.publish(netproto.TOPIC_TXS, pack_blobs([bad_tx.encoded]))
        # The witness that the nodes processed them: they counted them as rejected.
        await trio.to_thread.run_sync(lambda: wait_until_sync(
            lambda: min(rejections()) >= 1, 20, poll_s=0.1, retry_on=(OSError, RpcError),
            what="gossip rejections counted by the followers and the orderers"))
        nursery.cancel_scope.cancel()
    after = dn.wait_agree(min_height=0, names=[n for n in dn.names() if n != "tax.qd"])
    assert after == height_before
    for n in dn.names():
        if n != "tax.qd":
            with dn.client_ctx(n) as c, pytest.raises(RpcError, match="no transaction"):
                c.tx(bad_tx.id)
