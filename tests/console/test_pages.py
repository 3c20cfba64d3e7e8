"""The record pages (search, exposure, tax forms, audit): each page function against a fake
node (canned answers and errors) and against a live in-process node after the headline
workflow (node/cli/demo.py), rendered with the package's templates."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import pytest

from node.cli.demo import EXPORTER, headline_steps
from node.client import AsyncClient, Credential
from node.console.common import ConsoleError, Viewer, node_down
from node.console.pages import PAGES
from node.console.pages.exposure import CHART_POINTS_MAX, chart_svg
from node.console.pages.search import attempts
from node.console.pages.view import money
from node.console.rpc import RpcNodeApi
from node.keys import generate_key
from tests.console.pages_support import FakeNode, render
from tests.rpc.harness import rpc_cluster
from tests.rpc.test_client_signatures import serving

REGULATOR = Viewer("regulator.safe-qd", "regulator")
BOC = Viewer("bank.boc-qd", "bank")
ICBC = Viewer("bank.icbc-qd", "bank")
TX1 = "a" * 64
TX2 = "b" * 64
CIPHERTEXT = "c0ffee" * 20


def sealed_to(*parties: str) -> dict[str, Any]:
    return {"nonce": "00" * 12, "ciphertext": CIPHERTEXT, "plain_hash": "11" * 32,
            "keys": [{"party": p, "key_version": 1, "box": "22" * 72} for p in parties]}


def declaration(no: str = "QD-2026-EX-0001", pledged: int = 54_000_000,
                proceeds: int = 0) -> dict[str, Any]:
    return {"declaration_no": no, "exporter": EXPORTER, "value": 60_000_000, "currency": "USD",
            "export_date": "2026-11-21", "status": "registered", "pledged": pledged,
            "proceeds": proceeds, "pledge_rate_bps": 9000, "customs": "customs.qd",
            "details": sealed_to("customs.qd", EXPORTER, "regulator.safe-qd"),
            "registered_height": 5, "status_reason": ""}


def financing(fin_id: str = "FIN-BOC-0001", bank: str = "bank.boc-qd", status: str = "disbursed",
              repaid: int = 0, opened: int = 9) -> dict[str, Any]:
    return {"financing_id": fin_id, "bank": bank, "uscc": EXPORTER,
            "application_id": "APP-BOC-0001", "principal": 639_000_000, "currency": "CNY",
            "pledges": [{"declaration_no": "QD-2026-EX-0001", "amount": 54_000_000,
                         "opened_amount": 54_000_000, "currency": "USD", "rate_e8": 710_000_000}],
            "status": status, "repaid": repaid,
            "repayments": [{"height": opened + 5, "amount": repaid, "source": "PRC-0001"}]
            if repaid else [], "opened_height": opened, "flags": [],
            "terms": [sealed_to(bank, EXPORTER, "regulator.safe-qd")]}


def tx_answer(params: dict[str, Any]) -> dict[str, Any]:
    signer = {TX1: "customs.qd", TX2: "bank.boc-qd"}[params["tx_id"]]
    return {"tx_id": params["tx_id"], "status": "committed", "height": 5, "index": 0,
            "receipt": {"code": "OK", "message": ""},
            "tx": {"type": "declaration.register", "signer": signer, "key_id": "d4b8e803e5c556b5",
                   "payload": {"declaration_no": "QD-2026-EX-0001"}}}


HISTORY = [{"height": 5, "tx_index": 0, "tx_id": TX1, "tx_type": "declaration.register"},
           {"height": 9, "tx_index": 0, "tx_id": TX2, "tx_type": "financing.open"}]


def test_money_is_shown_in_major_units_with_its_currency() -> None:
    assert money(54_000_000, "USD") == "USD 540,000.00"
    assert money(639_000_000, "CNY") == "CNY 6,390,000.00"
    assert money(5, "USD") == "USD 0.05"
    assert money(1500, "JPY") == "JPY 1,500"
    assert money(-250, "USD") == "USD -2.50"


def test_the_query_form_chooses_the_record_kinds_tried() -> None:
    assert [m for _, m, _ in attempts(TX1)] == ["tx.get", "block.get"]
    assert next(m for _, m, _ in attempts("12")) == "block.get"
    assert [m for _, m, _ in attempts(EXPORTER)] == ["enterprise.get", "declaration.list",
                                                     "application.list"]
    assert attempts(f"{EXPORTER}/APP-BOC-0001") == [
        ("application", "application.get", {"uscc": EXPORTER, "application_id": "APP-BOC-0001"})]
    assert [m for _, m, _ in attempts("FIN-BOC-0001")] == [
        "declaration.get", "financing.get", "taxform.get", "payment.get", "proceeds.get"]
    assert attempts("no spaces <allowed>") == []


async def test_search_shows_a_record_with_who_signed_each_step() -> None:
    node = FakeNode({"declaration.get": {"declaration": declaration(), "cap": 54_000_000,
                                         "pledged": 54_000_000, "remaining": 0,
                                         "history": HISTORY},
                     "tx.get": tx_answer})
    page = await PAGES["/search"]({"q": "QD-2026-EX-0001"}, node, BOC)
    html = render(page)
    assert "Declaration QD-2026-EX-0001" in html
    assert "USD 600,000.00" in html and "USD 540,000.00" in html
    assert f'href="/search?q={EXPORTER}"' in html  # the exporter
    assert f'href="/search?q={TX2}"' in html and 'href="/search?q=9"' in html  # tx, block
    assert "customs.qd" in html and "d4b8e803e5c556b5" in html  # signer and key of step 1
    assert "encrypted, sealed to customs.qd" in html and "(not to you)" in html
    assert CIPHERTEXT not in html
    assert ("tx.get", {"tx_id": TX1}) in node.calls


async def test_search_that_matches_nothing_is_a_404_saying_what_was_tried() -> None:
    with pytest.raises(ConsoleError) as caught:
        await PAGES["/search"]({"q": "NOPE-1"}, FakeNode({}), REGULATOR)
    assert caught.value.status == 404
    assert "declaration.get declaration_no=NOPE-1" in caught.value.message
    assert "taxform.get form_no=NOPE-1" in caught.value.message


async def test_search_errors_show_as_such() -> None:
    with pytest.raises(ConsoleError) as caught:
        await PAGES["/search"]({"q": "<script>"}, FakeNode({}), REGULATOR)
    assert caught.value.status == 400
    down = node_down("http://127.0.0.1:1/", "connection refused")
    with pytest.raises(ConsoleError) as caught:
        await PAGES["/search"]({"q": "X-1"}, FakeNode({"declaration.get": down}), REGULATOR)
    assert caught.value.status == 503
    refused = ConsoleError(403, "Not authorised", "read refused")
    with pytest.raises(ConsoleError) as caught:
        await PAGES["/search"]({"q": "X-1"}, FakeNode({"payment.get": refused}), BOC)
    assert caught.value.status == 403 and "payment.get" in caught.value.message


async def test_exposure_of_an_enterprise_per_declaration_and_bank() -> None:
    node = FakeNode({
        "enterprise.exposure": {"uscc": EXPORTER, "open_pledges": [["USD", 54_000_000]],
                                "outstanding": [["CNY", 639_000_000]], "overdue": [],
                                "approved": [], "flagged": [], "financings": [financing()]},
        "declaration.list": {"items": [declaration(), declaration("QD-2026-EX-0002", 0),
                                       {**declaration("QD-2026-EX-0003", 0),
                                        "status": "cancelled",
                                        "status_reason": "shipment withdrawn"}],
                             "next_after": ""}})
    page = await PAGES["/exposure"]({"uscc": EXPORTER}, node, ICBC)
    html = render(page)
    rows = {d["declaration_no"]: d for d in page.context["declarations"]}
    assert rows["QD-2026-EX-0001"]["pledged"] == "USD 540,000.00"
    assert rows["QD-2026-EX-0001"]["outstanding"] == "USD 600,000.00"
    assert rows["QD-2026-EX-0001"]["pledged_by"] == [("bank.boc-qd", "USD 540,000.00")]
    assert rows["QD-2026-EX-0001"]["disbursed"] == "USD 540,000.00"
    assert rows["QD-2026-EX-0001"]["overdue"] == "USD 0.00"
    assert rows["QD-2026-EX-0002"]["pledged_by"] == []
    assert not rows["QD-2026-EX-0002"]["flagged"] and rows["QD-2026-EX-0003"]["flagged"]
    assert rows["QD-2026-EX-0003"]["outstanding"] == "USD 0.00"  # cancelled by customs
    assert page.context["banks"][0]["outstanding"] == "CNY 6,390,000.00"
    assert "<svg" in html and "<polyline" in html
    assert "(not to you)" in html and CIPHERTEXT not in html  # ICBC sees BOC's terms sealed


async def test_exposure_overview_is_the_regulators_and_a_bank_sees_its_own_book() -> None:
    consortium = {"current": {"institutions": [
        {"id": "bank.boc-qd", "role": "bank"}, {"id": "bank.icbc-qd", "role": "bank"},
        {"id": "regulator.safe-qd", "role": "regulator"}]}}
    books = {"bank.boc-qd": [financing(), financing("FIN-BOC-0002", repaid=139_000_000)],
             "bank.icbc-qd": [financing("FIN-ICBC-0001", "bank.icbc-qd", "approved")]}
    node = FakeNode({"consortium.get": consortium,
                     "bank.book": lambda p: {"items": books[p["bank"]], "next_after": ""},
                     "financing.watch_list": lambda p: {
                         "items": [financing()] if p["kind"] == "overdue" else [],
                         "next_after": ""}})
    page = await PAGES["/exposure"]({}, node, REGULATOR)
    banks = {b["bank"]: b for b in page.context["banks"]}
    assert banks["bank.boc-qd"]["outstanding"] == "CNY 11,390,000.00"  # 6,390,000 + 5,000,000
    assert banks["bank.boc-qd"]["pledged"] == "USD 1,080,000.00"
    assert banks["bank.icbc-qd"]["outstanding"] == "CNY 0.00"  # approved, not paid out
    assert [f["financing_id"] for f in page.context["watch"]["overdue"]] == ["FIN-BOC-0001"]
    assert "Watch list: flagged" in render(page)
    node.calls.clear()
    page = await PAGES["/exposure"]({}, node, BOC)
    assert {p["bank"] for m, p in node.calls if m == "bank.book"} == {"bank.boc-qd"}
    assert "financing.watch_list" not in {m for m, _ in node.calls}
    assert [b["bank"] for b in page.context["banks"]] == ["bank.boc-qd"]
    for query, viewer, status in (({}, Viewer("customs.qd", "customs"), 403),
                                  ({"uscc": "not-a-uscc"}, REGULATOR, 400)):
        with pytest.raises(ConsoleError) as caught:
            await PAGES["/exposure"](query, node, viewer)
        assert caught.value.status == status


def test_the_exposure_chart_is_bounded() -> None:
    many = [financing(f"F-{i}", opened=i + 1, repaid=i % 7, status="disbursed")
            for i in range(6 * CHART_POINTS_MAX)]
    chart = chart_svg(many)
    assert chart is not None and chart["count"] <= CHART_POINTS_MAX
    assert len(chart["points"].split()) == chart["count"]
    assert chart["to_height"] == 6 * CHART_POINTS_MAX + 5  # the last repayment's height
    assert chart_svg([]) is None


async def test_taxform_page_lists_payments_against_the_form() -> None:
    history = [{"height": 18, "tx_index": 0, "tx_id": TX1, "tx_type": "taxform.register"},
               {"height": 19, "tx_index": 0, "tx_id": TX2, "tx_type": "payment.outbound"}]

    def tx(params: dict[str, Any]) -> dict[str, Any]:
        answer = tx_answer(params)
        answer["tx"]["payload"] = {"payment_id": "PAY-0001"}
        return answer

    node = FakeNode({
        "taxform.get": {"form": {"form_no": "TX-2026-0001", "payer": EXPORTER,
                                 "amount": 5_000_000, "currency": "USD", "status": "registered",
                                 "tax_bureau": "tax.qd", "details": sealed_to("tax.qd")},
                        "used": 3_000_000, "remaining": 2_000_000, "history": history},
        "tx.get": tx,
        "payment.get": {"payment": {"payment_id": "PAY-0001", "bank": "bank.boc-qd",
                                    "amount": 3_000_000, "currency": "USD", "height": 19,
                                    "status": "recorded", "reverse_reason": ""}}})
    page = await PAGES["/taxforms"]({"form": "TX-2026-0001"}, node, REGULATOR)
    html = render(page)
    assert "USD 50,000.00" in html and "USD 30,000.00" in html and "USD 20,000.00" in html
    assert page.context["payments"][0]["payment_id"] == "PAY-0001"
    assert 'href="/search?q=PAY-0001"' in html
    with pytest.raises(ConsoleError) as caught:
        await PAGES["/taxforms"]({"form": "TX-NONE"}, FakeNode({}), REGULATOR)
    assert caught.value.status == 404


async def test_audit_is_the_regulators_and_says_when_the_node_refuses() -> None:
    node = FakeNode({})
    with pytest.raises(ConsoleError) as caught:
        await PAGES["/audit"]({}, node, BOC)
    assert caught.value.status == 403 and node.calls == []  # never asked the node
    consortium = {"current": {"institutions": [{"id": "regulator.safe-qd",
                                                "role": "regulator"}]}}
    actions = {"items": [
        {"height": 7, "tx_index": 0, "tx_id": TX1, "tx_type": "fx.publish", "code": "OK"},
        {"height": 2, "tx_index": 0, "tx_id": TX2, "tx_type": "enterprise.set_fx_class",
         "code": "OK"}], "next_before_height": None}
    reads = {"reads": [{"height": 21, "uscc": EXPORTER, "reader": "bank.boc-qd"},
                       {"height": 22, "uscc": EXPORTER, "reader": "bank.icbc-qd"}],
             "next_from_height": None}
    node = FakeNode({"consortium.get": consortium, "tx.list": actions,
                     "audit.credit_reads": reads})
    page = await PAGES["/audit"]({"reader": "bank.icbc-qd", "type": "fx.publish"}, node,
                                 REGULATOR)
    assert [r["reader"] for r in page.context["reads"]] == ["bank.icbc-qd"]
    assert [a["tx_type"] for a in page.context["actions"]] == ["fx.publish"]
    assert ("audit.credit_reads", {"reader": "regulator.safe-qd", "from_height": 0,
                                   "limit": 100}) in node.calls
    node.answers["audit.credit_reads"] = ConsoleError(403, "Not authorised",
                                                      "audit.credit_reads: read refused")
    html = render(await PAGES["/audit"]({}, node, REGULATOR))
    assert "The node refused to list the reads" in html and "enterprise.set_fx_class" in html
    with pytest.raises(ConsoleError) as caught:
        await PAGES["/audit"]({"from_height": "ten"}, node, REGULATOR)
    assert caught.value.status == 400


async def test_pages_on_a_live_node_after_the_headline_workflow(tmp_path: pathlib.Path) -> None:
    async with rpc_cluster(tmp_path) as rc, AsyncClient(rc.url) as client:
        steps = headline_steps(rc.c.config, rc.c.keys, int(time.time() * 1000), generate_key())
        refused = steps[12]
        assert refused.expect_code == "DOUBLE_FINANCING"
        for step in steps[:13]:  # up to the refused double financing
            await client.submit(step.tx, wait=True)
        node = RpcNodeApi(rc.url)
        for viewer in (REGULATOR, ICBC):
            page = await PAGES["/exposure"]({"uscc": EXPORTER}, node, viewer)
            html = render(page)
            rows = {d["declaration_no"]: d for d in page.context["declarations"]}
            assert rows["QD-2026-EX-0001"]["pledged"] == "USD 540,000.00"
            assert rows["QD-2026-EX-0001"]["pledged_by"] == [("bank.boc-qd", "USD 540,000.00")]
            assert rows["QD-2026-EX-0001"]["outstanding"] == "USD 600,000.00"
            assert page.context["banks"][0]["outstanding"] == "CNY 6,390,000.00"
            terms = page.context["financings"][0]["terms"][0]
            assert terms["to_viewer"] == (viewer is REGULATOR)
        # the second bank sees the first bank's terms only as sealed, never their ciphertext
        fin = await client.call("financing.get", {"financing_id": "FIN-BOC-0001"})
        assert fin["financing"]["terms"][0]["ciphertext"] not in html
        assert "(not to you)" in html
        for step in steps[13:]:
            await client.submit(step.tx, wait=True)
        found = {}
        for q in ("QD-2026-EX-0001", "FIN-BOC-0001", "TX-2026-0001", "PAY-0001", "PRC-0001",
                  EXPORTER, f"{EXPORTER}/APP-ICBC-0001", refused.tx.id.hex(), "3"):
            page = await PAGES["/search"]({"q": q}, node, REGULATOR)
            found[q] = [r["kind"] for r in page.context["results"]]
            render(page)
        assert found == {"QD-2026-EX-0001": ["declaration"], "FIN-BOC-0001": ["financing"],
                         "TX-2026-0001": ["taxform"], "PAY-0001": ["payment"],
                         "PRC-0001": ["proceeds"],
                         EXPORTER: ["enterprise", "declarations", "applications"],
                         f"{EXPORTER}/APP-ICBC-0001": ["application"],
                         refused.tx.id.hex(): ["transaction"], "3": ["block"]}
        page = await PAGES["/search"]({"q": refused.tx.id.hex()}, node, REGULATOR)
        assert ("Signed by", "bank.icbc-qd", "") in page.context["results"][0]["fields"]
        page = await PAGES["/search"]({"q": "FIN-BOC-0001"}, node, REGULATOR)
        signers = [h["signer"] for h in page.context["results"][0]["history"]]
        declared = await PAGES["/search"]({"q": "QD-2026-EX-0001"}, node, REGULATOR)
        assert ("Financing", "FIN-BOC-0001", "/search?q=FIN-BOC-0001") in declared.context[
            "results"][0]["fields"]
        assert signers[:2] == ["bank.boc-qd", "bank.boc-qd"]  # opened, disbursed
        page = await PAGES["/taxforms"]({"form": "TX-2026-0001"}, node, REGULATOR)
        assert page.context["form"]["remaining"] == "USD 20,000.00"
        assert [p["payment_id"] for p in page.context["payments"]] == ["PAY-0001"]
        # no client credential here: the node refuses the reads, and the page says so
        page = await PAGES["/audit"]({}, node, REGULATOR)
        assert page.context["refused"] and "fx.publish" in {
            a["tx_type"] for a in page.context["actions"]}
        # with the regulator's client credential (named after it), the node lists every read
        key, url, _ = await serving(rc, REGULATOR.institution)
        signed = RpcNodeApi(url, Credential(REGULATOR.institution, key))
        page = await PAGES["/audit"]({"uscc": EXPORTER}, signed, REGULATOR)
        assert not page.context["refused"]
        assert [r["reader"] for r in page.context["reads"]] == ["bank.boc-qd"]
        assert "bank.boc-qd" in render(page)
        with pytest.raises(ConsoleError) as caught:
            await PAGES["/search"]({"q": "QD-NONE"}, node, REGULATOR)
        assert caught.value.status == 404


async def test_a_book_of_many_financings_shows_bounded_rows_and_counts_them_all() -> None:
    from node.console.pages.exposure import FINANCING_ROWS_MAX

    book = [financing(f"FIN-{i:05d}") for i in range(FINANCING_ROWS_MAX + 1)]
    node = FakeNode({"bank.book": lambda p: {"items": book, "next_after": ""}})
    page = await PAGES["/exposure"]({}, node, BOC)
    assert len(page.context["financings"]) == FINANCING_ROWS_MAX
    assert page.context["banks"][0]["financings"] == FINANCING_ROWS_MAX + 1
    assert f"The first {FINANCING_ROWS_MAX} of {FINANCING_ROWS_MAX + 1} financings" in render(
        page, BOC)
