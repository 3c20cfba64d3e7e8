"""monitoring/ against a real Prometheus: promtool checks the files; then a Prometheus server
(/usr/bin/prometheus, run here on loopback with a temporary TSDB) scrapes a live 7-node devnet
every second, and every alert rule and every dashboard query is evaluated through its HTTP API.
A node killed with SIGKILL must make the node-down alert's expression fire.

CI installs Debian's `prometheus` package (.ci/run); without it these tests fail, never skip.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from node.cli import devnet
from node.client.transport import RpcError
from node.observe.metrics import scrape_config
from protocol import types
from tests import sealing
from tests.dates import RECENT_EXPORT_DATE
from tests.e2e.harness import Devnet, Load, running_devnet
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
ALERTS = MONITORING / "alerts.yml"
DASHBOARD = MONITORING / "grafana" / "crossbill-dashboard.json"
PROMETHEUS_MISSING = ("{tool} not found on PATH: install Debian's prometheus package "
                      "(apt-get install -y prometheus; .ci/run does this) to run the "
                      "monitoring tests")
# Queries that are allowed to return no series on a healthy devnet under light load, and why.
MAY_BE_EMPTY = (
    "crossbill_rpc_",                      # until the RPC server calls observe_rpc
    "> 0",                                 # panels that show only non-zero drop rates
)
CORE_PER_NODE = (
    'ledger_blockchain_height{job="crossbill"}',
    'consensus_etcdraft_is_leader{job="crossbill"}',
    'sum by (node) (crossbill_transactions_committed_total{job="crossbill"})',
    'crossbill_p2p_peers{job="crossbill"}',
    'crossbill_node_ready{job="crossbill"} == 1',
    'crossbill_build_info{job="crossbill"}',
    'consensus_etcdraft_cluster_size{job="crossbill"} == 4',
)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(PROMETHEUS_MISSING.format(tool=name), pytrace=False)
    return path


def run_promtool(*args: str) -> str:
    proc = subprocess.run([tool("promtool"), *args], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, f"promtool {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_promtool_accepts_the_rules() -> None:
    out = run_promtool("check", "rules", str(ALERTS))
    assert "SUCCESS" in out


def test_storage_unwritable_alert_fires_at_once() -> None:
    """promtool's rule unit test: the alert fires on the first scrape that says the store is
    unwritable, names the node, and clears when it is writable again (docs/adr/0031)."""
    out = run_promtool("test", "rules",
                       str(pathlib.Path(__file__).with_name("storage_alert_test.yml")))
    assert "SUCCESS" in out, out


def test_promtool_accepts_the_scrape_config() -> None:
    out = run_promtool("check", "config", str(MONITORING / "prometheus.yml"))
    assert "SUCCESS" in out


def test_dashboard_json_is_up_to_date() -> None:
    proc = subprocess.run([sys.executable, str(MONITORING / "gen_dashboard.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------- live Prometheus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]
    log: pathlib.Path

    def get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read())
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait(self, what: str, check: Any, timeout_s: float) -> Any:
        return wait_until_sync(check, timeout_s, poll_s=0.25, what=lambda: (
            f"{what}\nprometheus log tail:\n{self.log.read_text()[-2000:]}"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Devnet, Prometheus]]:
    binary = tool("prometheus")
    root = tmp_path_factory.mktemp("monitoring")
    try:
        yield from _stack(binary, root)
    finally:
        # running_devnet leaves the processes running when `devnet.up` fails half-way
        # (a node exits before the network is ready): stop them here.
        if (root / "net" / "devnet.json").exists():
            try:
                devnet.down(root / "net", out=lambda _: None)
            except devnet.DevnetError:
                pass


def _stack(binary: str, root: pathlib.Path) -> Iterator[tuple[Devnet, Prometheus]]:
    with running_devnet(root / "net") as dn:
        config = root / "prometheus.yml"
        config.write_text(scrape_config(dn.desc, rule_files=[str(ALERTS)],
                                        scrape_interval="1s"))
        port = free_port()
        log = root / "prometheus.log"
        with open(log, "wb") as log_f:
            proc = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={root / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h",
                 "--log.level=warn"],
                stdout=log_f, stderr=subprocess.STDOUT, cwd=root)
        prom = Prometheus(f"http://127.0.0.1:{port}", proc, log)
        try:
            def ready() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"prometheus exited: {log.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=2) as r:
                        return r.status == 200
                except OSError:
                    return False

            prom.wait("prometheus to start", ready, 30)
            n = len(dn.names())
            prom.wait("every node scraped", lambda: len(
                prom.query('up{job="crossbill"} == 1')) == n, 20)
            # Transactions of one type through three different nodes, while Prometheus scrapes.
            with Load(dn, ["customs.qd", "bank.icbc-qd", "regulator.safe-qd"],
                      threads=3) as load:
                load.wait_acknowledged(30, timeout_s=30)
                # scrapes under load: commits rising on every node, as rate() sees them
                prom.wait("commits rising on every node", lambda: len(prom.query(
                    'sum by (node) (rate(crossbill_transactions_committed_total'
                    '{job="crossbill"}[1m])) > 0')) == n, 30)
            submit_rejected_transactions(dn)
            dn.wait_agree(min_height=2)
            for stage in ("ledger", "admission"):  # rate() needs two samples of a new series
                prom.wait(f"{stage} rejections scraped twice", lambda stage=stage: prom.query(
                    'count_over_time(crossbill_transactions_rejected_total{job="crossbill", '
                    f'stage="{stage}"}}[1m]) >= 2'), 15)
            prom.wait("committed transactions on every node", lambda: len(prom.query(
                'sum by (node) (crossbill_transactions_committed_total{job="crossbill"}) > 0'))
                == n, 15)
            yield dn, prom
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def submit_rejected_transactions(dn: Devnet) -> None:
    """One transaction the ledger rejects (a declaration registered twice) and one that
    admission refuses (signed for another chain), so the rejection metrics have data."""
    signer = "customs.qd"
    payload = sealing.declaration(dn.config, f"MON-{os.getpid()}", sealing.KEYLESS_EXPORTER, 1_000,
                                  RECENT_EXPORT_DATE)

    def tx(chain_id: str) -> types.Tx:
        return types.Tx.create(dn.keys[signer], chain_id=chain_id, signer=signer,
                               payload=payload, nonce=os.urandom(16),
                               expires_at_ms=int(time.time() * 1000) + 600_000)

    with dn.client_ctx(signer) as c:
        for _ in range(2):
            c.submit(tx(dn.config.chain_id), wait=True, timeout_ms=10_000)
        with pytest.raises(RpcError):
            c.submit(tx("another-chain"), wait=False)


def dashboard_queries() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((f"{p['title']} / {t['refId']}", t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            out.append((f"variable {v['name']}", v["definition"]))
    return out


def grafana_to_promql(expr: str) -> str:
    if expr.startswith("label_values("):  # label_values(selector, label) -> the selector
        return expr[len("label_values("):].rsplit(",", 1)[0]
    return expr.replace("$__rate_interval", "1m").replace("$node", ".*")


def test_core_metrics_have_one_series_per_node(stack: tuple[Devnet, Prometheus]) -> None:
    dn, prom = stack
    names = set(dn.names())
    for expr in CORE_PER_NODE:
        result = prom.query(expr)
        nodes = [r["metric"].get("node") for r in result]
        assert sorted(nodes) == sorted(names), (expr, nodes)
    leaders = prom.query('consensus_etcdraft_is_leader{job="crossbill"} == 1')
    assert len(leaders) == 1 and leaders[0]["metric"]["role"] == "bank", leaders
    roles = {r["metric"]["node"]: r["metric"]["role"] for r in prom.query(
        'ledger_blockchain_height{job="crossbill"}')}
    assert sorted(roles.values()).count("bank") == 4


def test_every_dashboard_query_evaluates(stack: tuple[Devnet, Prometheus]) -> None:
    _, prom = stack
    queries = dashboard_queries()
    assert len(queries) >= 30
    empty = []
    for title, expr in queries:
        result = prom.query(grafana_to_promql(expr))   # asserts status == success
        if not result and not any(m in expr for m in MAY_BE_EMPTY):
            empty.append(f"{title}: {expr}")
    assert empty == [], "dashboard queries without data:\n" + "\n".join(empty)
    values = prom.get("/api/v1/label/node/values",
                      **{"match[]": 'crossbill_build_info{job="crossbill"}'})
    assert len(values) == len(stack[0].names())


def alert_rules(prom: Prometheus) -> dict[str, dict[str, Any]]:
    groups = prom.get("/api/v1/rules")["groups"]
    return {r["name"]: r for g in groups for r in g["rules"] if r["type"] == "alerting"}


def test_every_alert_rule_evaluates_and_none_fires_on_a_healthy_network(
        stack: tuple[Devnet, Prometheus]) -> None:
    _, prom = stack
    rules = alert_rules(prom)
    expected = {"CrossbillNodeDown", "CrossbillNoTargets", "CrossbillNodeNotReady",
                "CrossbillNoLeader", "CrossbillMultipleLeaders",
                "CrossbillFrequentLeaderChanges", "CrossbillFollowerLagging",
                "CrossbillHeightStalled", "CrossbillNodeBehind", "CrossbillCatchingUpTooLong",
                "CrossbillRejectionsSpiking", "CrossbillFewPeers", "CrossbillSlowFsync",
                "CrossbillRpcErrors", "CrossbillFinancingsOnWatchList",
                "CrossbillRpcRefusingClients", "CrossbillRaftMessagesRefused",
                "CrossbillUpgradeRequired", "CrossbillUpgradeScheduled",
                "CrossbillStorageUnwritable"}
    assert set(rules) == expected
    for name, rule in rules.items():
        prom.query(rule["query"])                       # evaluates without error
        assert rule["health"] in ("ok", "unknown"), (name, rule.get("lastError"))
        assert rule["state"] != "firing", (name, rule["alerts"])
    prom.wait("every rule evaluated once", lambda: all(
        r["health"] == "ok" for r in alert_rules(prom).values()), 10)


def test_node_down_alert_fires_for_a_killed_node(stack: tuple[Devnet, Prometheus]) -> None:
    dn, prom = stack
    victim = "tax.qd" if "tax.qd" in dn.names() else dn.names()[-1]
    dn.kill9(victim)
    expr = alert_rules(prom)["CrossbillNodeDown"]["query"]
    down = prom.wait(f"{victim} reported down", lambda: prom.query(expr), 15)
    assert [r["metric"]["node"] for r in down] == [victim]
    pending = prom.wait("CrossbillNodeDown pending", lambda: [
        a for a in prom.get("/api/v1/alerts")["alerts"]
        if a["labels"]["alertname"] == "CrossbillNodeDown"], 10)
    assert pending[0]["labels"]["node"] == victim
    assert pending[0]["state"] in ("pending", "firing")
    # The other nodes are still scraped, and the network still has its leader.
    assert len(prom.query('up{job="crossbill"} == 1')) == len(dn.names()) - 1
    assert prom.query(alert_rules(prom)["CrossbillNoLeader"]["query"]) == []
