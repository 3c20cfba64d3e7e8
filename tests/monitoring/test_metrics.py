"""node.observe.metrics in-process: instruments, the exposition of a real consortium on the
in-memory network, readiness checks, the RPC hook and the scrape-config generator."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from node.cli.demo import DEFAULT_MEMBERS, headline_steps
from node.keys import generate_key
from node.observe import instruments, metrics
from node.replica.sync import SyncSnapshot
from node.storage.store import StorageError
from protocol import txtypes, versions
from tests.node.cluster import cluster
from tests.waiting import wait_until

MONITORING = pathlib.Path(__file__).resolve().parents[2] / "monitoring"


def samples(node: Any) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name -> [(labels, value)] of one scrape of `node`."""
    text = generate_latest(metrics.build_registry(node)).decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(s: dict[str, list[tuple[dict[str, str], float]]], name: str,
          **labels: str) -> float:
    found = [v for lb, v in s.get(name, []) if all(lb.get(k) == x for k, x in labels.items())]
    assert len(found) == 1, (name, labels, s.get(name))
    return found[0]


# ---------------------------------------------------------------------- instruments


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    h = instruments.Histogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 1.0, 7.0):
        h.observe(v)
    assert h.cumulative() == [("0.1", 2), ("1.0", 4), ("+Inf", 5)]
    assert h.count == 5 and h.sum == pytest.approx(8.65)
    with pytest.raises(ValueError):
        instruments.Histogram((1.0, 0.5))


def test_rpc_metrics_bound_their_label_values() -> None:
    m = instruments.RpcMetrics()
    for i in range(instruments.RPC_METHODS_MAX + 10):
        m.observe(f"m{i}", "ok", 0.001)
    assert len(m.latency_s) == instruments.RPC_METHODS_MAX + 1      # the extra ones are "other"
    assert m.requests[("other", "ok")] == 10
    m.observe("m0", -32602, 0.5)
    assert m.requests[("m0", "-32602")] == 1
    assert m.latency_s[("m0", "-32602")].count == 1
    for i in range(instruments.RPC_CODES_MAX + 5):
        m.observe("m1", i, 0.001)
    assert len(m.codes) == instruments.RPC_CODES_MAX          # "ok" and "-32602" came first
    assert m.requests[("m1", "other")] == 5 + 2


def test_rpc_metrics_snapshot_is_a_frozen_copy() -> None:
    m = instruments.RpcMetrics()
    m.observe("submit", "ok", 0.02)
    m.observe("submit", -32602, 0.001)
    snap = m.snapshot()
    m.observe("submit", "ok", 0.5)
    assert snap.requests == {("submit", "ok"): 1, ("submit", "-32602"): 1}
    assert snap.latency_s[("submit", "ok")].count == 1
    assert m.snapshot().requests[("submit", "ok")] == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.requests = {}  # type: ignore[misc]


# ---------------------------------------------------------------------- a real consortium


async def test_exposition_of_a_consortium_after_the_headline_workflow(
        tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        leader = await c.wait_leader()
        steps = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())
        expected_types: Counter[tuple[str, str]] = Counter()
        expected_rejections: Counter[str] = Counter()
        for step in steps:
            node = c.nodes.get(step.tx.signer) or c.nodes[c.config.orderers[0]]
            assert node.intake.submit(step.tx).accepted
            assert await node.intake.wait_committed(step.tx.id, 10) is not None
            status = "ok" if step.expect_code == "OK" else "rejected"
            expected_types[(step.tx.type, status)] += 1
            if status == "rejected":
                expected_rejections[step.expect_code] += 1
        assert expected_rejections, "the headline workflow includes a rejected transaction"
        # An admission refusal: a transaction signed for another chain.
        bad = dataclasses.replace(steps[0].tx, chain_id="other-chain")
        assert not leader.intake.submit(bad).accepted
        height = await c.wait_same_tip()
        first = leader  # took the transaction for another chain, and the RPC observation
        first.rpc.metrics.observe("submit", "ok", 0.004)

        # Scrape with no block of the leader's in flight (pipeline of depth one): a scrape may
        # otherwise fall between a proposal and its commit, and the proposed and
        # propose-to-commit counts differ by that one block (CI saw 20 against 21).
        # The leader is looked up again: on a loaded machine leadership may have moved.
        def settled() -> Any:
            lead = c.leader()
            return lead if (lead is not None and lead.orderer is not None
                            and lead.orderer._proposal is None) else None

        while settled() is None:  # checked again after each wait: the scrape does not yield
            await wait_until(settled, 10, what="a leader with no proposal in flight")
            height = await c.wait_same_tip(min_height=height)
        leader = settled()

        scraped = {name: samples(n) for name, n in c.nodes.items()}
        assert sum(value(s, "consensus_etcdraft_is_leader") for s in scraped.values()) == 1
        assert value(scraped[leader.institution], "consensus_etcdraft_is_leader") == 1
        for name, s in scraped.items():
            node = c.nodes[name]
            assert value(s, "ledger_blockchain_height") == height
            assert value(s, "consensus_etcdraft_cluster_size") == len(c.config.orderers)
            assert value(s, "crossbill_node_ready") == 1, metrics.readiness_failures(node)
            assert value(s, "crossbill_build_info", institution=name) == 1
            for watch_list in ("flagged", "overdue"):  # the workflow leaves both empty
                assert value(s, "crossbill_ledger_financings_watched", list=watch_list) == 0
            committed = {(lb["type"], lb["status"]): v
                         for lb, v in s["crossbill_transactions_committed_total"]}
            assert {k: v for k, v in committed.items() if v} == expected_types, name
            assert len(committed) == 2 * len(txtypes.REGISTRY)  # every type, ok and rejected
            ledger_rej = {lb["reason"]: v for lb, v in s["crossbill_transactions_rejected_total"]
                          if lb["stage"] == "ledger"}
            assert ledger_rej == expected_rejections, name
            applied_blocks = value(s, "crossbill_blocks_applied_total")
            assert value(s, "crossbill_block_transactions_count") == applied_blocks
            assert value(s, "crossbill_block_transactions_sum") == len(steps)
            assert value(s, "crossbill_block_size_bytes_bucket", le="+Inf") == applied_blocks
            assert value(s, "crossbill_storage_persist_duration_seconds_count",
                         op="block") == applied_blocks
            # a few small blocks: every one's tree records still wait in memory (ADR 0041)
            assert value(s, "crossbill_storage_tree_pending_blocks") == applied_blocks
            assert value(s, "crossbill_storage_tree_pending_bytes") > 0
            assert value(s, "crossbill_storage_tree_flushes_total") == 0
            if node.is_orderer:
                assert value(s, "crossbill_raft_leader_known") == 1
                assert value(s, "crossbill_raft_quiet") in (0, 1)  # idle or not (ADR 0037)
                assert value(s, "crossbill_raft_commit_index") >= value(
                    s, "crossbill_raft_applied_index") > 0
                assert value(s, "crossbill_storage_persist_duration_seconds_count",
                             op="raft") > 0
                assert value(s, "consensus_etcdraft_data_persist_duration_seconds_count") > 0
                assert value(s, "crossbill_block_commit_to_apply_seconds_count") > 0
                assert "crossbill_mempool_size" in s and "crossbill_mempool_size_bytes" in s
            else:
                assert "crossbill_raft_term" not in s and "crossbill_mempool_size" not in s
        ls = scraped[leader.institution]
        assert value(ls, "crossbill_block_propose_to_commit_seconds_count") == value(
            ls, "crossbill_blocks_proposed_total") > 0
        followers = {lb["follower"] for lb, _ in ls["crossbill_raft_follower_lag_entries"]}
        assert followers == set(c.config.orderers) - {leader.institution}
        fs = scraped[first.institution]
        assert value(fs, "crossbill_transactions_rejected_total", stage="admission",
                     reason="WRONG_CHAIN") == 1
        assert value(fs, "crossbill_rpc_requests_total", method="submit", code="ok") == 1
        assert value(fs, "crossbill_rpc_request_duration_seconds_count", method="submit",
                 code="ok") == 1

        # Readiness: the JSON body names every check.
        status, body = metrics.readiness(leader)
        assert status == 200 and body["failed"] == {}
        assert body["checks"] == {"caught_up": "ok", "leader_known": "ok",
                                  "storage_writable": "ok", "protocol_version": "ok"}


def test_readiness_names_each_failed_check() -> None:
    def fail() -> None:
        raise StorageError("disk full")

    sync = SyncSnapshot(catching_up=False, best_known_height=20, blocks_fetched=0,
                        fetch_failures=0, gossip_blocks_rejected=0, status_failures=0)
    node: Any = SimpleNamespace(
        institution="tax.qd", orderer=None,
        sync=SimpleNamespace(snapshot=lambda: sync),
        chain=SimpleNamespace(height=3, orderers=lambda: ("bank.a",),
                              snapshot=lambda: SimpleNamespace(
                                  upgrade_needed=versions.UpgradeNeeded(2, 4, 1))),
        net=SimpleNamespace(connected_peers=lambda: {"peer-customs"}),
        peer_of_institution={"bank.a": "peer-bank-a", "customs": "peer-customs"},
        storage=SimpleNamespace(check_writable=fail))
    status, body = metrics.readiness(node)
    assert status == 503 and body["status"] == "not ready"
    assert body["failed"] == {"caught_up": "height 3, the network is at 20",
                              "orderer_connected": "no ordering node connected",
                              "storage_writable": "disk full",
                              "protocol_version": versions.UpgradeNeeded(2, 4, 1).describe()}
    assert "protocol version 2 applies from height 4" in body["failed"]["protocol_version"]
    assert set(body["checks"]) == {"caught_up", "orderer_connected", "storage_writable",
                                   "protocol_version"}
    sync = dataclasses.replace(sync, catching_up=True)
    assert metrics.readiness_failures(node)["caught_up"].startswith("catching up")


# ---------------------------------------------------------------------- scrape config


def default_devnet_description(base_port: int = 7100) -> dict[str, Any]:
    """What `crossbill devnet up --base-port 7100` writes, as far as scrape-config reads it."""
    return {"nodes": [{"name": m.id, "role": m.role, "orderer": m.role == "bank",
                       "metrics_url": f"http://127.0.0.1:{base_port + 200 + i}/metrics"}
                      for i, m in enumerate(DEFAULT_MEMBERS, start=1)]}


def test_checked_in_scrape_config_matches_the_generator() -> None:
    text = metrics.scrape_config(default_devnet_description(), scrape_interval="5s")
    assert (MONITORING / "prometheus.yml").read_text() == text


def test_scrape_config_cli(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "devnet.json"
    path.write_text(json.dumps(default_devnet_description(9000)))
    assert metrics.main(["scrape-config", str(path), "--rules", "/x/alerts.yml",
                         "--scrape-interval", "1s"]) == 0
    out = capsys.readouterr().out
    assert '"127.0.0.1:9207"' in out and 'rule_files:\n  - "/x/alerts.yml"' in out
    assert "scrape_interval: 1s" in out and out.count("node: ") == len(DEFAULT_MEMBERS)
    path.write_text(json.dumps({"nodes": [{"name": "a", "role": "bank",
                                           "metrics_url": "http://127.0.0.1/metrics"}]}))
    assert metrics.main(["scrape-config", str(path)]) == 1
    assert "has no host:port" in capsys.readouterr().err


async def test_a_follower_exports_the_transactions_it_holds_uncommitted(
        tmp_path: pathlib.Path) -> None:
    async with cluster(tmp_path) as c:
        await c.wait_leader()
        steps = headline_steps(c.config, c.keys, int(time.time() * 1000), generate_key())
        form = next(s for s in steps if s.tx.signer == "tax.qd")
        tax = c.nodes["tax.qd"]
        assert not tax.is_orderer
        assert value(samples(tax), "crossbill_transactions_pending") == 0
        c.net.partition([c.peer("tax.qd")])  # it cannot hand the transaction on yet
        assert tax.intake.submit(form.tx).accepted
        assert value(samples(tax), "crossbill_transactions_pending") == 1
        c.net.heal()
        assert await tax.intake.wait_committed(form.tx.id, 20) is not None
        assert value(samples(tax), "crossbill_transactions_pending") == 0
