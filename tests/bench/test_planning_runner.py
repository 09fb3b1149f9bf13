"""The planning runner and its command line, with the real planner modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from bench.__main__ import main as bench_main
from bench.planning.corpus import load_cases, load_domains
from bench.planning.report import HEADING, render_markdown, splice
from bench.planning.runner import catalog_for, observe, plan_cases, request_for

from orra_events import Plan, PlanTask
from orra_planner.registry import ServiceSpec
from orra_planner.strategy import Planned, PlanRejected

if TYPE_CHECKING:
    from orra_planner.strategy import PlanOutcome, PlanRequest

DOMAINS = load_domains()
DEV = {case.id: case for case in load_cases("dev")}


def test_catalogue_is_one_project_per_domain() -> None:
    catalog = catalog_for(DOMAINS["backoffice"])
    assert catalog.project == "backoffice"
    assert set(catalog) == {s.name for s in DOMAINS["backoffice"].services}
    spec = catalog["PaySupplier"]
    assert spec.required_inputs == {"invoiceId", "supplierId", "amount"}
    assert "transferId" in spec.outputs
    author = DOMAINS["backoffice"].service("PaySupplier")
    assert author is not None
    if hasattr(ServiceSpec, "examples"):  # once the registry carries examples
        assert getattr(spec, "examples", ()) == author.examples


def test_request_carries_the_case() -> None:
    case = DEV["bo-d-04"]
    request = request_for(case, catalog_for(DOMAINS["backoffice"]))
    assert request.action == case.action
    assert [(d.field, d.value) for d in request.data] == list(case.data)
    assert getattr(request, "allow_partial", False) is False


def test_observe_reads_edges_from_references() -> None:
    plan = Plan(
        tasks=[
            PlanTask(id="lookup", service="InvoiceLookup", input={"invoiceId": "INV-1"}),
            PlanTask(
                id="pay",
                service="PaySupplier",
                input={
                    "invoiceId": "INV-1",
                    "supplierId": "$lookup.supplierId",
                    "amount": "$lookup.amount",
                    "currency": "$5.00",
                },
            ),
        ],
        parallel_groups=[["lookup"], ["pay"]],
    )
    seen = observe(Planned(plan=plan, planner="test"))
    assert seen.accepted
    assert seen.nodes == ("InvoiceLookup", "PaySupplier")
    assert sorted(seen.edges) == [
        ("InvoiceLookup", "PaySupplier", "amount"),
        ("InvoiceLookup", "PaySupplier", "supplierId"),
    ]
    assert seen.uncovered == ()
    refused = observe(PlanRejected(status="not_actionable", reasons=("no",), planner="t"))
    assert (refused.status, refused.reasons, refused.nodes) == ("not_actionable", ("no",), ())


class _Scripted:
    """A planner answering from a script, to test the runner without the real planner."""

    name = "scripted"

    def __init__(self, answers: dict[str, PlanOutcome | Exception]) -> None:
        self.answers = answers

    async def plan(self, request: PlanRequest) -> PlanOutcome:
        answer = self.answers[request.orchestration_id.removeprefix("bench-")]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_runner_validates_like_the_handler_and_records_faults() -> None:
    action = DEV["bo-d-01"].action
    valid = Plan(  # a plan accounts for the action: its one part, served by the one task
        tasks=[
            PlanTask(
                id="r",
                service="ReconcileAccount",
                input={"accountId": "OPS-001", "period": "2026-10"},
                serves=action,
            )
        ],
        parallel_groups=[["r"]],
        parts=[action],
    )
    unknown = Plan(
        tasks=[
            PlanTask(
                id="x", service="NoSuchService", input={"accountId": "BNK-22", "period": "2026-09"}
            )
        ],
        parallel_groups=[["x"]],
    )
    planner = _Scripted(
        {
            "bo-d-01": Planned(plan=valid, planner="scripted"),
            "bo-d-05": Planned(plan=unknown, planner="scripted"),
            "bo-d-07": RuntimeError("endpoint down"),
        }
    )
    cases = [DEV["bo-d-01"], DEV["bo-d-05"], DEV["bo-d-07"]]
    seen = await plan_cases(planner, cases, DOMAINS)
    assert seen["bo-d-01"].nodes == ("ReconcileAccount",)
    assert seen["bo-d-05"].status == "invalid"  # finalize ran the shared validation
    assert "NoSuchService" in " ".join(seen["bo-d-05"].reasons)
    assert seen["bo-d-07"].status == "error"
    assert seen["bo-d-07"].reasons == ("RuntimeError: endpoint down",)


def test_command_line_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["planning", "--set", "dev", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "offline planner: 51 cases" in out
    assert "node F1" in out
    assert "by category" in out
    assert "held-out" not in out


def test_command_line_refuses_an_unconfigured_llm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (
        "ORRA_LLM_MODEL",
        "ORRA_LLM_BASE_URL",
        "ORRA_LLM_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    assert bench_main(["planning", "--planner", "llm", "--set", "dev"]) == 2
    assert "ORRA_LLM_MODEL" in capsys.readouterr().err


def _result() -> dict[str, object]:
    summary = {
        "cases": 2,
        "doable": 1,
        "refusals_expected": 1,
        "accepted": 1,
        "nodes": {"tp": 1, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0},
        "edges": {"tp": 0, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0},
        "exact": 1,
        "correct_refusals": 0,
        "doable_refused": 0,
        "silent": 0,
        "errors": 0,
        "doable_refused_rate": 0.0,
    }
    target = {"name": "node F1", "target": "≥ 0.97", "measured": "1.000", "met": True}
    card = {
        "summary": summary,
        "targets": [target],
        "by_category": {"plain": summary},
        "by_domain": {},
        "failures": [
            {
                "case": "x-d-01",
                "category": "impossible",
                "status": "invalid",
                "silent": False,
                "differences": ["refused without quoting 'fax'"],
            },
        ],
    }
    held = {**card, "failures": [{**card["failures"][0], "case": "x-h-09"}]}  # type: ignore[index]
    fresh = {
        **card,
        "failures": [
            {**card["failures"][0], "case": "x-f-03", "category": "typo"},  # type: ignore[index]
            {**card["failures"][0], "case": "x-f-07", "category": "typo"},  # type: ignore[index]
            {**card["failures"][0], "case": "x-f-11", "category": "chain"},  # type: ignore[index]
        ],
    }
    return {
        "status": "ok",
        "notes": [],
        "commit": "abc123",
        "command": "python -m bench planning",
        "corpus": {"domains": ["x"], "cases": {"dev": 2, "held-out": 2, "fresh": 3}},
        "planners": {
            "offline": {
                "status": "ok",
                "seconds": 0.1,
                "cases": 7,
                "sets": {"dev": card, "held-out": held, "fresh": fresh},
            },
            "llm": {"status": "skipped", "reason": "not configured"},
        },
    }


def test_markdown_lists_dev_failures_but_only_counts_unread_ones() -> None:
    text = "\n".join(render_markdown(_result()))
    assert text.startswith(HEADING)
    assert "`abc123`" in text
    assert "x-d-01" in text
    assert "refused without quoting 'fax'" in text
    assert "Failing held-out cases (offline planner): impossible 1." in text
    assert "Failing fresh cases (offline planner): typo 2, chain 1." in text
    for unread in ("x-h-09", "x-f-03", "x-f-07", "x-f-11"):
        assert unread not in text
    assert text.count("refused without quoting 'fax'") == 1  # the dev failure only
    assert "*fresh*" in text  # its per-category table
    assert "llm planner: skipped" in text


def test_splice_replaces_the_section_in_place() -> None:
    report = "# Orra benchmarks\n\n## 7. Profile\n\nhot\n\n## Why targets are missed\n\nx\n"
    once = splice(report, render_markdown(_result()))
    assert once.index("## 7. Profile") < once.index(HEADING) < once.index("## Why targets")
    twice = splice(once, render_markdown(_result()))
    assert twice == once
    assert twice.count(HEADING) == 1
    assert splice("# Orra benchmarks\n", ["## 8. Planning fidelity (issue 15)", "", "y"]).endswith(
        "## 8. Planning fidelity (issue 15)\n\ny\n"
    )
