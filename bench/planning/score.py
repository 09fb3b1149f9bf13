"""Score planner outcomes against the corpus's expectations (pure: no I/O, no planner).

What a planner did with one case is an :class:`Observed`; :func:`score` compares every
case with its observation and returns a :class:`Scorecard`:

* **Node precision / recall / F1**, micro-averaged over the cases that expect a plan: a
  node is a service in the plan (a multiset, so a service planned twice counts twice). A
  doable case that was refused contributes its expected nodes as misses.
* **Edge F1**, the same over dependencies: an edge is (source service, target service),
  present when the target task's input references the source task's output. An expected
  edge may also name the fields that must flow along it; a missing field makes the plan
  inexact (it does not change the F1).
* **Exact plans**: same node multiset, same edge set, every expected field wired, and, in
  a partial case, every left-out part declared uncovered.
* **Correct refusals**: among the cases that expect a refusal, those refused (``invalid``
  or ``not_actionable``) with every expected fragment quoted in a reason (compared after
  :func:`normalise`). A different refusal status is reported but not counted against.
* **Doable refused**: a case that expects a plan and got none (refused or errored).
* **Silent divergences**: accepted plans that differ from the request without saying so:
  a requested part's service missing and that part not declared uncovered, a service
  added that serves no requested part, or, in a case expecting a refusal or a partial
  plan, the impossible part neither served nor declared uncovered. Plans carrying
  declared ``uncovered`` parts are honest, so not silent (they may still be wrong).

Cases that expect a refusal are not in the node and edge figures: whether they were
refused, and how, is what the refusal and silent-divergence figures measure.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from bench.planning.corpus import Case

__all__ = [
    "TARGETS",
    "CaseResult",
    "Counts",
    "Observed",
    "Scorecard",
    "Summary",
    "TargetCheck",
    "normalise",
    "quoted",
    "score",
    "score_case",
    "summarise",
    "target_checks",
]

TARGETS: dict[str, float] = {
    "node_f1": 0.97,
    "edge_f1": 0.97,
    "silent": 0,
    "doable_refused_rate": 1 / 20,
}
"""Issue 15's targets for the offline planner (and every expected refusal correct)."""

_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    """Lower case, every run of non-alphanumerics one space (``Gift-wrap`` → ``gift wrap``)."""
    return " ".join(_NON_WORD.sub(" ", text.casefold()).split())


def quoted(fragment: str, texts: Iterable[str]) -> bool:
    """Whether ``fragment`` appears, as whole words, in one of ``texts`` (normalised)."""
    needle = f" {normalise(fragment)} "
    return any(needle in f" {normalise(text)} " for text in texts)


@dataclass(frozen=True)
class Observed:
    """What a planner did with one case.

    Attributes:
        status: ``planned``, or the refusal's status (``invalid``, ``not_actionable``,
            ``error``).
        reasons: The refusal's reasons.
        nodes: The service of every planned task, in plan order.
        edges: ``(source service, target service, field)`` of every reference.
        uncovered: ``(part, reason)`` of every part the plan declares left out.
        serves: The part each planned task says it serves (``None``: not said).
    """

    status: str
    reasons: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    edges: tuple[tuple[str, str, str], ...] = ()
    uncovered: tuple[tuple[str, str], ...] = ()
    serves: tuple[str | None, ...] = ()

    @property
    def accepted(self) -> bool:
        """Whether a plan was produced."""
        return self.status == "planned"


@dataclass(frozen=True)
class Counts:
    """True positives, false positives and false negatives."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float:
        """tp / (tp + fp); 1 when nothing was predicted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """tp / (tp + fn); 1 when nothing was expected."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; 1 when nothing was expected or predicted."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class CaseResult:
    """How one case went.

    Attributes:
        case_id: The case.
        category: Its category.
        domain: Its domain.
        expects_plan: Whether a plan was expected.
        status: What the planner answered (``planned`` or a refusal status).
        nodes: Node counts (zero for a case expecting a refusal).
        edges: Edge counts (likewise).
        exact: A plan was expected and the plan is exactly it.
        correct_refusal: A refusal was expected and it quotes what it must.
        doable_refused: A plan was expected and none was produced.
        silent: An accepted plan diverges from the request without saying so.
        differences: What differed, one line each.
    """

    case_id: str
    category: str
    domain: str
    expects_plan: bool
    status: str
    nodes: Counts
    edges: Counts
    exact: bool
    correct_refusal: bool
    doable_refused: bool
    silent: bool
    differences: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """An exact plan when a plan was expected, a correct refusal otherwise."""
        return self.exact if self.expects_plan else self.correct_refusal


def _multiset(items: Iterable[str]) -> Counter[str]:
    return Counter(items)


def _show(counter: Counter[str]) -> str:
    return ", ".join(sorted(counter.elements())) or "nothing"


def _refusal_result(case: Case, seen: Observed) -> CaseResult:
    assert case.refusal is not None
    differences: list[str] = []
    correct = silent = False
    if seen.accepted:
        honest = bool(seen.uncovered)
        silent = not honest
        differences.append(
            f"accepted a plan of {_show(_multiset(seen.nodes))}"
            + (" declaring uncovered " + "; ".join(p for p, _ in seen.uncovered) if honest else "")
            + f" instead of refusing ({case.refusal.status}, quoting "
            + ", ".join(repr(q) for q in case.refusal.quote)
            + ")"
        )
    elif seen.status == "error":
        differences.append("planning errored: " + " | ".join(seen.reasons))
    else:
        missing = [q for q in case.refusal.quote if not quoted(q, seen.reasons)]
        correct = not missing
        if missing:
            differences.append(
                "refused without quoting "
                + ", ".join(repr(q) for q in missing)
                + ": "
                + " | ".join(seen.reasons)
            )
        if seen.status != case.refusal.status:
            differences.append(f"refused as {seen.status}, expected {case.refusal.status}")
    return CaseResult(
        case_id=case.id,
        category=case.category,
        domain=case.domain,
        expects_plan=False,
        status=seen.status,
        nodes=Counts(),
        edges=Counts(),
        exact=False,
        correct_refusal=correct,
        doable_refused=False,
        silent=silent,
        differences=tuple(differences),
    )


def _declared(part: str, seen: Observed) -> bool:
    """Whether the plan declares ``part`` (words of the action) left out."""
    wanted = normalise(part)
    for uncovered, reason in seen.uncovered:
        have = normalise(uncovered)
        if have and (have in wanted or wanted in have or quoted(part, [reason])):
            return True
    return False


def score_case(case: Case, seen: Observed) -> CaseResult:
    """Compare one case's expectation with what the planner did."""
    if not case.expects_plan:
        return _refusal_result(case, seen)
    expected_nodes = _multiset(t.service for t in case.tasks)
    expected_edges = {(e.source, e.target): set(e.fields) for e in case.edges}
    if not seen.accepted:
        verb = "errored" if seen.status == "error" else f"refused ({seen.status})"
        return CaseResult(
            case_id=case.id,
            category=case.category,
            domain=case.domain,
            expects_plan=True,
            status=seen.status,
            nodes=Counts(fn=expected_nodes.total()),
            edges=Counts(fn=len(expected_edges)),
            exact=False,
            correct_refusal=False,
            doable_refused=True,
            silent=False,
            differences=(f"doable but {verb}: " + " | ".join(seen.reasons),),
        )
    nodes = _multiset(seen.nodes)
    edges: dict[tuple[str, str], set[str]] = {}
    for source, target, name in seen.edges:
        edges.setdefault((source, target), set()).add(name)
    missing, extra = expected_nodes - nodes, nodes - expected_nodes
    node_counts = Counts(tp=(expected_nodes & nodes).total(), fp=extra.total(), fn=missing.total())
    common = expected_edges.keys() & edges.keys()
    edge_counts = Counts(
        tp=len(common), fp=len(edges.keys() - common), fn=len(expected_edges.keys() - common)
    )
    differences: list[str] = []
    if missing:
        differences.append(f"missing {_show(missing)}")
    if extra:
        differences.append(f"added {_show(extra)}")
    for source, target in sorted(expected_edges.keys() - common):
        differences.append(f"missing edge {source} → {target}")
    for source, target in sorted(edges.keys() - common):
        differences.append(f"added edge {source} → {target}")
    unwired = False
    for pair in sorted(common):
        lacking = expected_edges[pair] - edges[pair]
        if lacking:
            unwired = True
            differences.append(f"edge {pair[0]} → {pair[1]} lacks {', '.join(sorted(lacking))}")
    undeclared = [part for part in case.uncovered if not _declared(part, seen)]
    differences.extend(f"{part!r} left out without being declared uncovered" for part in undeclared)
    if seen.uncovered and not case.uncovered:
        differences.append(
            "declared uncovered though every part is doable: "
            + "; ".join(p for p, _ in seen.uncovered)
        )
    # Silent: a requested part's service missing without its part declared uncovered, a
    # service added for no requested part, or an impossible part dropped without a word.
    dropped = [
        t.service
        for t in case.tasks
        if t.serves is not None and t.service in missing and not _declared(t.serves, seen)
    ]
    silent = bool(dropped or extra or undeclared)
    exact = not (missing or extra or edge_counts.fp or edge_counts.fn or unwired or undeclared)
    exact = exact and not (seen.uncovered and not case.uncovered)
    return CaseResult(
        case_id=case.id,
        category=case.category,
        domain=case.domain,
        expects_plan=True,
        status=seen.status,
        nodes=node_counts,
        edges=edge_counts,
        exact=exact,
        correct_refusal=False,
        doable_refused=False,
        silent=silent,
        differences=tuple(differences),
    )


@dataclass(frozen=True)
class Summary:
    """Aggregate figures over a group of case results."""

    cases: int
    doable: int
    refusals_expected: int
    accepted: int
    nodes: Counts
    edges: Counts
    exact: int
    correct_refusals: int
    doable_refused: int
    silent: int
    errors: int

    @property
    def doable_refused_rate(self) -> float:
        """Doable cases refused, as a share of doable cases (0 when there are none)."""
        return self.doable_refused / self.doable if self.doable else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict with the derived figures."""
        out = asdict(self)
        for name in ("nodes", "edges"):
            counts: Counts = getattr(self, name)
            out[name].update(precision=counts.precision, recall=counts.recall, f1=counts.f1)
        out["doable_refused_rate"] = self.doable_refused_rate
        return out


def summarise(results: Sequence[CaseResult]) -> Summary:
    """Sum ``results`` into a :class:`Summary`."""
    nodes, edges = Counts(), Counts()
    for result in results:
        nodes += result.nodes
        edges += result.edges
    return Summary(
        cases=len(results),
        doable=sum(r.expects_plan for r in results),
        refusals_expected=sum(not r.expects_plan for r in results),
        accepted=sum(r.status == "planned" for r in results),
        nodes=nodes,
        edges=edges,
        exact=sum(r.exact for r in results),
        correct_refusals=sum(r.correct_refusal for r in results),
        doable_refused=sum(r.doable_refused for r in results),
        silent=sum(r.silent for r in results),
        errors=sum(r.status == "error" for r in results),
    )


@dataclass(frozen=True)
class TargetCheck:
    """One of the issue's targets against a summary."""

    name: str
    target: str
    measured: str
    met: bool


def target_checks(summary: Summary) -> list[TargetCheck]:
    """The issue's targets, each measured on ``summary``."""
    return [
        TargetCheck(
            "node F1",
            f"≥ {TARGETS['node_f1']:.2f}",
            f"{summary.nodes.f1:.3f}",
            summary.nodes.f1 >= TARGETS["node_f1"],
        ),
        TargetCheck(
            "edge F1",
            f"≥ {TARGETS['edge_f1']:.2f}",
            f"{summary.edges.f1:.3f}",
            summary.edges.f1 >= TARGETS["edge_f1"],
        ),
        TargetCheck(
            "silent divergences",
            "0",
            f"{summary.silent} of {summary.accepted} accepted",
            summary.silent <= TARGETS["silent"],
        ),
        TargetCheck(
            "impossible or unsatisfiable actions refused, quoting the part",
            f"all {summary.refusals_expected}",
            f"{summary.correct_refusals} of {summary.refusals_expected}",
            summary.correct_refusals == summary.refusals_expected,
        ),
        TargetCheck(
            "doable actions refused",
            "≤ 1 in 20",
            f"{summary.doable_refused} of {summary.doable}",
            summary.doable_refused_rate <= TARGETS["doable_refused_rate"],
        ),
    ]


@dataclass(frozen=True)
class Scorecard:
    """Every case's result, the overall summary and the breakdowns."""

    results: tuple[CaseResult, ...]
    summary: Summary
    by_category: dict[str, Summary] = field(default_factory=dict)
    by_domain: dict[str, Summary] = field(default_factory=dict)

    @property
    def failures(self) -> list[CaseResult]:
        """The cases that did not pass, in corpus order."""
        return [r for r in self.results if not r.passed]

    @property
    def targets(self) -> list[TargetCheck]:
        """The issue's targets on the overall summary."""
        return target_checks(self.summary)

    @property
    def meets_targets(self) -> bool:
        """Whether every target is met."""
        return all(check.met for check in self.targets)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (what the harness stores and the report renders)."""
        return {
            "summary": self.summary.to_dict(),
            "targets": [asdict(check) for check in self.targets],
            "by_category": {k: v.to_dict() for k, v in self.by_category.items()},
            "by_domain": {k: v.to_dict() for k, v in self.by_domain.items()},
            "failures": [
                {
                    "case": r.case_id,
                    "category": r.category,
                    "status": r.status,
                    "silent": r.silent,
                    "differences": list(r.differences),
                }
                for r in self.failures
            ],
        }


def score(
    cases: Sequence[Case], observations: Mapping[str, Observed], order: Sequence[str] = ()
) -> Scorecard:
    """Score every case against its observation.

    Args:
        cases: The cases.
        observations: Case id → what the planner did (every case must have one).
        order: Category order of the breakdown (categories not in it follow, sorted).

    Raises:
        KeyError: a case has no observation.
    """
    results = tuple(score_case(case, observations[case.id]) for case in cases)
    rank = {name: i for i, name in enumerate(order)}

    def groups(key: str) -> dict[str, Summary]:
        names = sorted({getattr(r, key) for r in results}, key=lambda n: (rank.get(n, 99), n))
        return {n: summarise([r for r in results if getattr(r, key) == n]) for n in names}

    return Scorecard(
        results=results,
        summary=summarise(results),
        by_category=groups("category"),
        by_domain=groups("domain"),
    )
