"""What ``rewind status`` shows of the judge: suspect cells as such, and the evidence in the JSON."""

from __future__ import annotations

from rich.console import Console

from console.commands.status import render_snapshot
from console.domain.metrics import CellCounts, QueryResult
from console.domain.routing import RouterState, ServerState
from console.domain.status import StatusSnapshot, status_document
from console.domain.verdicts import build_matrix
from console.domain.versions import AliasMap
from tests.unit.test_judge import ERRORS, P95, RATE


def snapshot() -> StatusSnapshot:
    cells = [("2", "eu"), ("3", "eu"), ("3", "us")]
    results = {
        "request_rate": QueryResult("request_rate", "r", 100.0, raw={k: "2" for k in cells},
                                    values=dict.fromkeys(cells, 2.0)),
        # v3 eu: 17 of 29 failing (a breach); v3 us: 3 of 40 (over 5 %, not significant yet).
        "error_rate": QueryResult("error_rate", "e", 100.0, raw={k: "x" for k in cells},
                                  values={("2", "eu"): 0.0, ("3", "eu"): 17 / 29, ("3", "us"): 3 / 40},
                                  counts={("2", "eu"): CellCounts(0, 600), ("3", "eu"): CellCounts(17, 29),
                                          ("3", "us"): CellCounts(3, 40)}),
        "latency_p95": QueryResult("latency_p95", "p", 100.0, raw={k: "x" for k in cells},
                                   values=dict.fromkeys(cells, 0.3),
                                   recent={("2", "eu"): (0.3, 0.3, 0.3, 0.3), ("3", "eu"): (0.02, 0.3, 0.3, 0.3),
                                           ("3", "us"): (0.3, 0.3, 0.3, 0.3)}),
    }
    matrix = build_matrix((RATE, ERRORS, P95), results, ["2", "3"], "2", "request_rate")
    router = RouterState("be", (ServerState("v2", "2", 90, True), ServerState("v3", "3", 10, True)))
    return StatusSnapshot("m", "champion", AliasMap("m", {"champion": "2", "challenger": "3"}), (), router, matrix,
                          100.0)


def test_the_json_counts_suspect_cells_and_carries_their_evidence():
    document = status_document(snapshot())
    assert document["summary"]["counts"]["suspect"] == 2  # v3 us errors, v3 eu p95 (3 of 4 evaluations)
    assert document["summary"]["counts"]["breach"] == 3
    cells = {(c["version"], c["segment"], c["metric"]): c for c in document["cells"]}
    errors = cells[("3", "eu", "error_rate")]
    assert errors["state"] == "breach" and errors["numerator"] == 17 and errors["denominator"] == 29
    assert errors["interval"][0] > 0.05 and "95% interval" in errors["reason"]
    p95 = cells[("3", "eu", "latency_p95")]
    assert p95["state"] == "suspect" and (p95["evaluations_over"], p95["evaluations"]) == (3, 4)
    metrics = {m["name"]: m for m in document["metrics"]}
    assert metrics["error_rate"]["kind"] == "ratio" and metrics["error_rate"]["criteria"]["confidence"] == 0.95
    assert metrics["latency_p95"]["criteria"]["evaluations"] == 4
    assert {v["version"]: v["state"] for v in document["versions"] if v["state"]} == {"2": "breach", "3": "breach"}


def test_the_text_names_suspect_cells_apart_from_breaches():
    console = Console(width=200, record=True, color_system=None)
    console.print(render_snapshot(snapshot()))
    text = console.export_text()
    assert "3 breaching cell(s)" in text and "2 suspect cell(s): over the line, not significant yet" in text
    assert "! v3 us errors: errors 7.5% > 5.0% (95% interval 1.6–20.4%, 40 requests): not significant yet" in text
    assert "! suspect" in text  # the legend
    console = Console(width=80, record=True, color_system=None)
    console.print(render_snapshot(snapshot(), compact=True))
    compact = console.export_text()
    assert "✗ 3 breaching cell(s) (and 2 suspect), first:" in compact
    assert "! 2 suspect" not in compact and "suspect cell(s)" not in compact and "! v3" not in compact


def test_the_text_shows_a_drained_version_as_drained_and_not_breaching():
    from dataclasses import replace

    drained = snapshot()
    drained = replace(drained, matrix=replace(drained.matrix, drained=frozenset({"3"})),
                      router=RouterState("be", (ServerState("v2", "2", 100, True), ServerState("v3", "3", 0, True))))
    console = Console(width=200, record=True, color_system=None)
    console.print(render_snapshot(drained))
    text = console.export_text()
    assert "⊘ DRAINED (last: ✗ BREACH)" in text
    assert "1 breaching cell(s)" in text and "✗ v3" not in text, "its cells are not listed as breaching now"


def test_a_backends_ready_endpoints_are_shown_where_the_router_reports_them():
    from dataclasses import replace

    plain = snapshot()
    assert {v["version"]: v["router"]["endpoints"] for v in status_document(plain)["versions"]} == {
        "2": None, "3": None}
    servers = (ServerState("m-v2", "2", 90, True, endpoints=3), ServerState("m-v3", "3", 10, False, endpoints=0))
    counted = replace(plain, router=RouterState("models/m", servers))
    assert {v["version"]: v["router"]["endpoints"] for v in status_document(counted)["versions"]} == {"2": 3, "3": 0}
    console = Console(width=250, record=True, color_system=None)
    console.print(render_snapshot(counted))
    text = console.export_text()
    assert "up (3 ready)" in text and "DOWN (0 ready)" in text


def test_who_else_wrote_the_weights_is_in_the_text_and_the_json():
    from dataclasses import replace

    plain = snapshot()
    assert status_document(plain)["router"] == {"backend": "be", "also_written_by": []}
    written = replace(plain, router=replace(plain.router, also_written_by=("argocd-controller (Update, T)",)))
    assert status_document(written)["router"]["also_written_by"] == ["argocd-controller (Update, T)"]
    console = Console(width=250, record=True, color_system=None)
    console.print(render_snapshot(written))
    assert "⚠ be: its weights were last written by argocd-controller (Update, T), not Rewind" in console.export_text()
    console = Console(width=250, record=True, color_system=None)
    console.print(render_snapshot(plain))
    assert "last written by" not in console.export_text()
