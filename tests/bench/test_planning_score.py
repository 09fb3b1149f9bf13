"""The planning scorer, on small hand-computed examples."""

from __future__ import annotations

import pytest
from bench.planning.corpus import Case, ExpectedEdge, ExpectedTask, Refusal
from bench.planning.score import (
    Counts,
    Observed,
    normalise,
    quoted,
    score,
    score_case,
    summarise,
    target_checks,
)


def plan_case(
    case_id: str = "c1",
    tasks: tuple[tuple[str, str | None], ...] = (("A", "do a"), ("B", "do b")),
    edges: tuple[tuple[str, str, tuple[str, ...]], ...] = (("A", "B", ("x",)),),
    category: str = "chain",
    uncovered: tuple[str, ...] = (),
) -> Case:
    return Case(
        id=case_id,
        set="dev",
        domain="d",
        category=category,
        action="do a and do b and gift-wrap it",
        data=(),
        rationale="r",
        allow_partial=bool(uncovered),
        tasks=tuple(ExpectedTask(s, p) for s, p in tasks),
        edges=tuple(ExpectedEdge(s, t, f) for s, t, f in edges),
        uncovered=uncovered,
    )


def refusal_case(
    case_id: str = "r1", status: str = "not_actionable", quote: tuple[str, ...] = ("translate",)
) -> Case:
    return Case(
        id=case_id,
        set="dev",
        domain="d",
        category="impossible",
        action="Translate the reply",
        data=(),
        rationale="r",
        refusal=Refusal(status=status, quote=quote),  # type: ignore[arg-type]
    )


def planned(
    *nodes: str,
    edges: tuple[tuple[str, str, str], ...] = (),
    uncovered: tuple[tuple[str, str], ...] = (),
) -> Observed:
    return Observed(status="planned", nodes=nodes, edges=edges, uncovered=uncovered)


def test_counts_precision_recall_f1() -> None:
    counts = Counts(tp=3, fp=1, fn=2)
    assert counts.precision == pytest.approx(0.75)
    assert counts.recall == pytest.approx(0.6)
    assert counts.f1 == pytest.approx(2 * 0.75 * 0.6 / 1.35)  # 0.6667
    assert Counts().f1 == 1.0  # nothing expected, nothing predicted
    assert Counts(fp=2).f1 == 0.0
    assert Counts(1, 2, 3) + Counts(10, 20, 30) == Counts(11, 22, 33)


def test_normalise_and_whole_word_quotes() -> None:
    assert normalise("  Gift-wrap THE  customer's order! ") == "gift wrap the customer s order"
    assert quoted("gift-wrap", ["nothing registered can gift wrap two units"])
    assert quoted("Translate", ["no service: 'translate the reply'"])
    assert not quoted("call", ["the ticket was recalled"])
    assert not quoted("translate", [])


def test_exact_plan() -> None:
    result = score_case(plan_case(), planned("A", "B", edges=(("A", "B", "x"),)))
    assert result.exact
    assert result.passed
    assert not result.silent
    assert result.nodes == Counts(tp=2)
    assert result.edges == Counts(tp=1)
    assert result.differences == ()


def test_added_service_is_silent_and_costs_precision() -> None:
    result = score_case(
        plan_case(), planned("A", "B", "C", edges=(("A", "B", "x"), ("C", "B", "y")))
    )
    assert result.nodes == Counts(tp=2, fp=1)
    assert result.edges == Counts(tp=1, fp=1)
    assert result.silent
    assert not result.exact
    assert "added C" in result.differences
    assert "added edge C → B" in result.differences


def test_dropped_requested_service_is_silent() -> None:
    result = score_case(plan_case(), planned("A"))
    assert result.nodes == Counts(tp=1, fn=1)
    assert result.edges == Counts(fn=1)
    assert result.silent
    assert result.differences[:2] == ("missing B", "missing edge A → B")


def test_dropped_part_declared_uncovered_is_not_silent() -> None:
    result = score_case(plan_case(), planned("A", uncovered=(("do b", "nothing can do b"),)))
    assert not result.silent
    assert not result.exact
    assert any("declared uncovered though every part is doable" in d for d in result.differences)


def test_missing_data_provider_is_inexact_but_not_silent() -> None:
    case = plan_case(tasks=(("A", None), ("B", "do b")))
    result = score_case(case, planned("B"))
    assert result.nodes == Counts(tp=1, fn=1)
    assert not result.silent
    assert not result.exact


def test_edge_without_its_field_is_inexact() -> None:
    result = score_case(plan_case(), planned("A", "B", edges=(("A", "B", "z"),)))
    assert result.edges == Counts(tp=1)
    assert not result.exact
    assert not result.silent
    assert result.differences == ("edge A → B lacks x",)


def test_several_references_between_two_tasks_are_one_edge() -> None:
    case = plan_case(edges=(("A", "B", ("x", "y")),))
    result = score_case(case, planned("A", "B", edges=(("A", "B", "x"), ("A", "B", "y"))))
    assert result.edges == Counts(tp=1)
    assert result.exact


def test_doable_refused() -> None:
    result = score_case(plan_case(), Observed(status="invalid", reasons=("no",)))
    assert result.doable_refused
    assert not result.silent
    assert not result.passed
    assert result.nodes == Counts(fn=2)
    assert result.edges == Counts(fn=1)
    errored = score_case(plan_case(), Observed(status="error", reasons=("boom",)))
    assert errored.doable_refused
    assert errored.differences == ("doable but errored: boom",)


def test_partial_plan_must_declare_what_it_leaves_out() -> None:
    case = plan_case(tasks=(("A", "do a"),), edges=(), category="partial", uncovered=("gift-wrap",))
    honest = score_case(case, planned("A", uncovered=(("gift-wrap it", "nothing wraps"),)))
    assert honest.exact
    assert not honest.silent
    quiet = score_case(case, planned("A"))
    assert quiet.silent
    assert not quiet.exact
    assert quiet.nodes == Counts(tp=1)  # the plan itself is right


def test_expected_refusal() -> None:
    good = score_case(
        refusal_case(), Observed("not_actionable", reasons=("nothing can translate the reply",))
    )
    assert good.correct_refusal
    assert good.passed
    assert good.nodes == Counts()
    unquoted = score_case(refusal_case(), Observed("not_actionable", reasons=("no match",)))
    assert not unquoted.correct_refusal
    other_status = score_case(refusal_case(), Observed("invalid", reasons=("translate: no",)))
    assert other_status.correct_refusal
    assert other_status.differences == ("refused as invalid, expected not_actionable",)
    errored = score_case(refusal_case(), Observed("error", reasons=("translate",)))
    assert not errored.correct_refusal


def test_accepting_an_impossible_action_is_silent_unless_declared() -> None:
    silent = score_case(refusal_case(), planned("DraftReply"))
    assert silent.silent
    assert not silent.correct_refusal
    assert silent.status == "planned"
    declared = score_case(
        refusal_case(), planned(uncovered=(("Translate the reply", "nothing translates"),))
    )
    assert not declared.silent
    assert not declared.correct_refusal


def test_score_is_micro_averaged_and_broken_down() -> None:
    cases = [
        plan_case("c1"),
        plan_case("c2", tasks=(("A", "do a"), ("B", "do b"), ("C", "do c")), category="plain"),
        refusal_case("r1"),
        refusal_case("r2"),
    ]
    observations = {
        "c1": planned("A", "B", edges=(("A", "B", "x"),)),  # nodes 2/0/0, edges 1/0/0
        "c2": planned("A", "B", "D"),  # nodes tp 2 fp 1 fn 1, edges fn 1
        "r1": Observed("not_actionable", reasons=("cannot translate",)),
        "r2": planned("E"),
    }
    card = score(cases, observations, order=("plain", "chain", "impossible"))
    s = card.summary
    assert s.nodes == Counts(tp=4, fp=1, fn=1)
    assert s.nodes.f1 == pytest.approx(0.8)  # P = R = 4/5
    assert s.edges == Counts(tp=1, fn=1)
    assert s.edges.f1 == pytest.approx(2 / 3)  # P = 1, R = 1/2
    assert (s.cases, s.doable, s.refusals_expected, s.accepted) == (4, 2, 2, 3)
    assert (s.exact, s.correct_refusals, s.doable_refused, s.silent) == (1, 1, 0, 2)
    assert list(card.by_category) == ["plain", "chain", "impossible"]
    assert card.by_category["impossible"].correct_refusals == 1
    assert [r.case_id for r in card.failures] == ["c2", "r2"]
    assert not card.meets_targets
    data = card.to_dict()
    assert data["summary"]["nodes"]["f1"] == pytest.approx(0.8)
    assert [f["case"] for f in data["failures"]] == ["c2", "r2"]
    with pytest.raises(KeyError):
        score(cases, {})


def test_targets() -> None:
    cases = [plan_case(f"c{i}") for i in range(20)] + [refusal_case("r")]
    observations = {f"c{i}": planned("A", "B", edges=(("A", "B", "x"),)) for i in range(19)}
    observations["c19"] = Observed("invalid", reasons=("no",))  # 1 doable refused in 20
    observations["r"] = Observed("not_actionable", reasons=("translate",))
    summary = summarise([score_case(c, observations[c.id]) for c in cases])
    checks = {c.name: c.met for c in target_checks(summary)}
    # Node recall 38/40: F1 = 2 * 1 * 0.95 / 1.95 = 0.974 ≥ 0.97; edges 19/20 alike.
    assert summary.nodes.f1 == pytest.approx(0.9744, abs=1e-4)
    assert all(checks.values()), checks
    observations["c18"] = Observed("invalid", reasons=("no",))  # 2 in 20
    summary = summarise([score_case(c, observations[c.id]) for c in cases])
    checks = {c.name: c.met for c in target_checks(summary)}
    assert not checks["doable actions refused"]
    assert not checks["node F1"]  # recall 36/40: F1 0.947
    assert checks["silent divergences"]
