"""The deterministic offline planner: no network, no model, same answer every time.

How it plans, in five explainable steps (each choice is recorded in the outcome's
``notes``):

1. **Parts.** The action is cut into its request parts, each in the user's own words
   (:mod:`orra_planner.parts`): "Process order payment and update inventory" asks for
   "Process order payment" and "update inventory". An action with no request in it (empty,
   or only words like "the" and "please") is ``not_actionable``.
2. **Who serves each part.** The services that match a part's head word, scored by the
   rest of the part and the data (:mod:`orra_planner.matching`); those within the band of
   the best serve it. When several tie, the data decides: those that can run with the
   action's data (or the output of services already in the plan) are kept over those that
   would need more services added, and those over services that cannot run at all. A part
   no service matches is **uncovered**, with a reason that quotes it ("nothing registered
   can translate: ...").
3. **Suppliers.** A required input that neither the data nor a planned task provides is
   supplied by adding the service whose output has it (its task serves no part: it only
   provides data). A service serving a part whose required inputs still cannot be met makes
   the plan ``invalid``, with a ``missing_input`` reason naming the service, the part and
   every missing field: a requested step is never silently dropped.
4. **Wire** inputs by field name (case and ``_`` insensitive): from the action data first
   (converting ``"299.99"`` to a number where the schema wants one), else from the output of
   another planned service as a ``$task.field`` reference, which orders the tasks. An
   optional input is filled when available and when it creates no cycle.
5. **Validate** through the same :func:`~orra_planner.validation.validate_plan` as every
   strategy. Data the plan does not use is refused (``unused_data``, naming the field and
   the services that could take it): a field silently ignored would run a plan the user
   did not ask for.

The plan lists its ``parts`` and, for a part nothing serves, an ``uncovered`` entry; the
service's shared gate (:func:`~orra_planner.strategy.finalize`) refuses such a plan as
``not_actionable`` unless the caller allowed partial plans. Parts that the same services
serve are one part of the plan ("check and reserve stock" is one step of one service).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec

from orra_events import DataField, PlanTask, UncoveredPart
from orra_events.plan import TASK_ID_PATTERN, Reference, dependency_levels, escape
from orra_planner import schema
from orra_planner.data_parts import data_requests
from orra_planner.fields import ServiceFields, aliased, fields_of
from orra_planner.matching import (
    PartMatch,
    field_key,
    match_action,
    uncovered_reason,
    vocabulary,
)
from orra_planner.questions import asked_of_data, most_like
from orra_planner.siblings import sibling_swaps
from orra_planner.strategy import Planned, PlanOutcome, PlanRejected, PlanRequest
from orra_planner.text import split_words
from orra_planner.validation import validate_plan

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from orra_planner.parts import Part
    from orra_planner.registry import ServiceCatalog, ServiceSpec

__all__ = ["OfflinePlanner", "match_action", "task_id_for", "uncovered_reason"]

_ID_SUFFIXES = frozenset({"service", "svc", "agent", "api"})


def _key(name: str) -> str:
    return field_key(name)


def task_id_for(service: str, taken: set[str]) -> str:
    """A readable task id for a service (``PaymentService`` → ``payment``), unique in ``taken``."""
    words = split_words(service)
    kept = [w for w in words if w not in _ID_SUFFIXES] or words or ["task"]
    base = kept[0] + "".join(w.capitalize() for w in kept[1:])
    base = re.sub(r"[^A-Za-z0-9_-]", "", base)[:60]
    if not TASK_ID_PATTERN.fullmatch(base):
        base = f"t_{base}"[:60]
    task_id, n = base, 2
    while task_id in taken:
        task_id, n = f"{base}_{n}", n + 1
    taken.add(task_id)
    return task_id


_CLEARLY_BEST: Final = 1.05
"""A top-scored service this much ahead is not swapped for a runnable runner-up."""
_NEAR: Final = 0.5
"""Services scoring this fraction of a part's best may be chosen by the data given."""


def _near(match: PartMatch) -> list[str]:
    """The services that score at least :data:`_NEAR` of the best for ``match``'s part."""
    if not match.ranked or not match.serving:
        return list(match.serving)
    floor = _NEAR * match.ranked[0][1]
    return [name for name, score in match.ranked if score >= floor]


@dataclass
class _Member:
    spec: ServiceSpec
    position: float
    keys: ServiceFields
    parts: set[int]


def _join_parts(indexes: Sequence[int], parts: Sequence[Part], action: str) -> str:
    """The text of parts served together: one verbatim slice when they are neighbours."""
    ordered = sorted(indexes)
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return action[parts[ordered[0]].start : parts[ordered[-1]].end].strip()
    return " … ".join(parts[i].text for i in ordered)


class OfflinePlanner:
    """The deterministic offline planning strategy (see the module docstring)."""

    name = "offline"
    side_effect_free = True
    """Deterministic, free, no I/O: planning an action again is harmless."""

    async def plan(self, request: PlanRequest) -> PlanOutcome:
        """Plan ``request`` (never raises for bad input; see :class:`Planned`)."""
        return self.plan_now(request)

    def plan_now(self, request: PlanRequest) -> PlanOutcome:
        """Plan synchronously (the planner does no I/O)."""
        catalog = request.catalog
        if not request.action.strip():
            return self._reject("not_actionable", ["the action is empty: say what to do"], [])
        matches = match_action(request.action, catalog, request.data) or asked_of_data(request)
        if not matches:
            return self._reject(
                "not_actionable",
                [
                    (
                        f"the action {request.action!r} has no words that say what to do "
                        "(only words like 'the', 'and', 'please', or data values)"
                    )
                ],
                [],
            )
        if not catalog:
            return self._reject(
                "not_actionable",
                [f"project {catalog.project!r} has no registered services"],
                [],
            )
        keys = catalog.derived("offline.keys", fields_of)
        notes: list[str] = []
        matches = [*matches, *data_requests(request.action, catalog, request.data, matches)]
        data = aliased(request.data, keys, notes)
        members = self._select(matches, catalog, keys, data, notes)
        order = self._resolve(members, data, catalog, notes)
        parts = [m.part for m in matches]
        failing = {
            name: missing
            for name, missing in self._missing(members, order, data).items()
            if members[name].parts
        }
        texts = self._part_texts(members, parts, request.action)
        served = {i for member in members.values() for i in member.parts}
        uncovered = [
            UncoveredPart(part=texts[i], reason=uncovered_reason(m, catalog.project))
            for i, m in enumerate(matches)
            if i not in served
        ]
        if failing:
            reasons = [
                f"missing_input: {name} (for {texts[min(members[name].parts)]!r}) needs "
                + ", ".join(repr(f) for f in fields)
                + ": neither action data nor the output of a service that can run"
                for name, fields in failing.items()
            ]
            reasons.extend(u.reason for u in uncovered)
            return self._reject("invalid", reasons, notes, uncovered)
        if not order:
            return self._reject("not_actionable", [u.reason for u in uncovered], notes, uncovered)
        planned = [members[n] for n in order]
        tasks = self._wire(planned, data)
        serves = {
            name: texts[min(member.parts)] if member.parts else None
            for name, member in members.items()
        }
        tasks = [msgspec.structs.replace(t, serves=serves[t.service]) for t in tasks]
        result = validate_plan(tasks, catalog, request.data)
        if result.plan is None:
            return self._reject("invalid", result.reasons, notes, uncovered)
        plan = msgspec.structs.replace(
            result.plan, parts=list(dict.fromkeys(texts)), uncovered=uncovered
        )
        return Planned(plan=plan, planner=self.name, notes=tuple(notes))

    @staticmethod
    def _part_texts(
        members: Mapping[str, _Member], parts: Sequence[Part], action: str
    ) -> list[str]:
        """Each part's text in the plan: parts that share a service are one part."""
        group = list(range(len(parts)))

        def root(i: int) -> int:
            while group[i] != i:
                group[i] = group[group[i]]
                i = group[i]
            return i

        for member in members.values():
            served = sorted(member.parts)
            for other in served[1:]:
                group[root(other)] = root(served[0])
        together: dict[int, list[int]] = {}
        for i in range(len(parts)):
            together.setdefault(root(i), []).append(i)
        return [_join_parts(together[root(i)], parts, action) for i in range(len(parts))]

    def _reject(
        self,
        status: Any,
        reasons: Sequence[str],
        notes: Sequence[str],
        uncovered: Sequence[UncoveredPart] = (),
    ) -> PlanRejected:
        return PlanRejected(
            status=status,
            reasons=tuple(reasons),
            planner=self.name,
            notes=tuple(notes),
            uncovered=tuple(uncovered),
        )

    def _select(
        self,
        matches: Sequence[PartMatch],
        catalog: ServiceCatalog,
        keys: Mapping[str, ServiceFields],
        data: Mapping[str, DataField],
        notes: list[str],
    ) -> dict[str, _Member]:
        """The services that serve the parts; ties are settled by the data."""
        members: dict[str, _Member] = {}

        def add(name: str, index: int, position: float) -> None:
            member = members.get(name)
            if member is None:
                members[name] = _Member(catalog[name], position, keys[name], {index})
            else:
                member.parts.add(index)

        for index, match in enumerate(matches):
            for typo, word in match.corrections:
                notes.append(f"read {typo!r} as {word!r} in {match.part.text!r}")
            if len(match.serving) == 1 and len(_near(match)) == 1:
                add(match.serving[0], index, match.part.start)
        produced = {k for m in members.values() for k in m.keys.outputs}
        for index, match in enumerate(matches):
            if match.vague:
                # too vague to choose by its words: the data may still say which
                match = dataclasses.replace(match, serving=match.vague, vague=())  # noqa: PLW2901
                if self._fit(match, set(), members, keys, data) is None:
                    continue
            if not match.serving or (len(match.serving) == 1 and len(_near(match)) == 1):
                continue
            elsewhere = {n for other in matches if other is not match for n, _ in other.ranked}
            fitting = self._fit(match, elsewhere, members, keys, data)
            if fitting is not None:
                why = (
                    "only it takes the data given for it"
                    if data.keys() & keys[fitting].inputs
                    else "the service that takes the data given only provides its input"
                )
                notes.append(
                    f"{fitting} for {match.part.text!r}: of {', '.join(_near(match))}, {why}"
                )
                add(fitting, index, match.part.start)
                produced.update(keys[fitting].outputs)
                continue
            kept = self._by_data(match, catalog, keys, data, produced=produced, notes=notes)
            for name in kept:
                add(name, index, match.part.start)
                produced.update(keys[name].outputs)
        self._answer_from_data(matches, members, catalog, keys, data, notes, add)
        self._sibling_by_data(matches, members, catalog, keys, data, notes)
        for match in matches:
            if match.serving:
                scores = ", ".join(f"{n} {s:.2f}" for n, s in match.ranked[:3])
                notes.append(
                    f"{match.part.text!r}: served by {', '.join(match.serving)} ({scores})"
                )
        return members

    @staticmethod
    def _sibling_by_data(  # noqa: PLR0917
        matches: Sequence[PartMatch],
        members: dict[str, _Member],
        catalog: ServiceCatalog,
        keys: Mapping[str, ServiceFields],
        data: Mapping[str, DataField],
        notes: list[str],
    ) -> None:
        """A request whose service would leave data unused goes to the sibling taking it."""
        for index, name, sibling, wanted in sibling_swaps(matches, members, catalog, keys, data):
            fields = ", ".join(sorted(data[k].field for k in wanted))
            text = matches[index].part.text
            notes.append(f"{sibling} over {name} for {text!r}: it takes the data {fields}")
            position = members.pop(name).position
            members[sibling] = _Member(catalog[sibling], position, keys[sibling], {index})

    def _by_data(
        self,
        match: PartMatch,
        catalog: ServiceCatalog,
        keys: Mapping[str, ServiceFields],
        data: Mapping[str, DataField],
        *,
        produced: set[str],
        notes: list[str],
    ) -> list[str]:
        """Of the services that serve a part, those the data (given or produced) suits best."""
        tiers: dict[str, int] = {}
        for name in match.serving:
            needed = keys[name].required - data.keys() - produced
            if not needed:
                tiers[name] = 0
            elif all(self._supplier(f, {}, catalog) is not None for f in needed):
                tiers[name] = 1
            else:
                tiers[name] = 2
        best = min(tiers.values())
        kept = [n for n in match.serving if tiers[n] == best]
        top, top_score = match.ranked[0]
        kept_score = max(score for name, score in match.ranked if name in kept)
        if top not in kept and top_score > _CLEARLY_BEST * kept_score:
            # the service the words point to, even if it cannot run: it is reported,
            # not swapped for one that can
            kept = [top]
        elif best == 2:
            kept = kept[:1]
        dropped = [n for n in match.serving if n not in kept]
        if dropped:
            notes.append(
                f"{', '.join(kept)} over {', '.join(dropped)} for {match.part.text!r}: "
                "the data suits them better"
            )
        return kept

    @staticmethod
    def _fit(
        match: PartMatch,
        elsewhere_serving: set[str],
        members: Mapping[str, _Member],
        keys: Mapping[str, ServiceFields],
        data: Mapping[str, DataField],
    ) -> str | None:
        """The one service the words point to that the data given says is meant, if one.

        "Tell customer CUS-1 that their order has shipped" with ``customerId`` and
        ``message``: several services know customers, one takes the message. "EMP-1 wants
        to go on holiday from 10 to 21 August" with ``startDate`` and ``endDate``: the
        holiday balance has the word, the leave request (a synonym: vacation) takes the
        dates. Among the services scoring at least :data:`_NEAR` of the best, the one that
        takes the most of the data no planned service takes, when it alone takes some of
        the data that the best-scored ones would leave unused and none of the others can
        run on the data.
        """
        used = {k for m in members.values() for k in m.keys.inputs}
        remaining = set(data) - used
        near = _near(match)
        if not remaining:
            return None
        fit = {name: len(remaining & keys[name].inputs) for name in near}
        best = max(fit.values())
        top = [name for name in near if fit[name] == best]
        if best == 0 or len(top) != 1:
            return None
        if match.part.question:
            # "Is Maria Costa behind on her rent?" with her name: the tenant look-up takes
            # the name, but only to give the rent ledger the lease it reads; the question is
            # the ledger's, and the look-up only provides its data
            fed = [
                name
                for name in match.serving
                if name != top[0]
                and (lacking := keys[name].required - data.keys())
                and lacking <= keys[top[0]].outputs
            ]
            if len(fed) == 1:
                return fed[0]
        others = {k for name in match.serving if name != top[0] for k in keys[name].inputs}
        if top[0] not in match.serving:
            # beyond the band, only when the best-scored ones run on the data alone (no
            # supplier of theirs could take the data they leave) and no other part's
            # services take it either
            needs = {k for name in match.serving for k in keys[name].required} - set(data)
            elsewhere = {k for name in elsewhere_serving for k in keys[name].inputs}
            if needs or remaining & keys[top[0]].inputs <= elsewhere:
                return None
        elif any(
            keys[name].required <= data.keys()
            and remaining & keys[name].inputs - keys[top[0]].inputs
            for name in match.serving
            if name != top[0]
        ):
            # another of the best-scored runs on the data too, and takes data the first does
            # not: both may be meant ("Process new order" is a payment and a stock
            # reservation); one that takes nothing more is not ("do the exit process" with
            # an employee and a last day: the leave balance takes only the employee)
            return None
        return top[0] if remaining & keys[top[0]].inputs - others else None

    def _answer_from_data(  # noqa: PLR0917
        self,
        matches: Sequence[PartMatch],
        members: Mapping[str, _Member],
        catalog: ServiceCatalog,
        keys: Mapping[str, ServiceFields],
        data: Mapping[str, DataField],
        notes: list[str],
        add: Callable[[str, int, float], None],
    ) -> None:
        """A question is answered by the one service its unused data identifies.

        "Has PROD-1 sold out?" with ``productId``, "Where can I sleep in Vienna?" with
        ``city``, ``checkIn`` and ``checkOut``: a question asks to read something, and the
        data the user gave for it says what. Only when exactly one service takes every data
        field no planned task takes, and it can run.
        """
        for index, match in enumerate(matches):
            head = match.part.head_term
            unread = (  # "Greenlight invoice INV-1": a verb the planner cannot read
                head is not None and not head.known and not match.serving and not match.corrections
            )
            if not (match.part.question or unread) or match.vague:
                continue
            used = {k for m in members.values() for k in m.keys.inputs}
            remaining = set(data) - used
            if not remaining:
                continue
            words = vocabulary(catalog).services
            takers = [
                n
                for n in catalog
                if n not in members
                and remaining <= keys[n].inputs
                and (not match.part.question or words[n].answers_question((), match.part.terms))
            ]
            if len(takers) > 1:
                takers = most_like(match.part.text, takers, catalog)
            if len(takers) != 1:
                continue
            name = takers[0]
            produced = {k for m in members.values() for k in m.keys.outputs}
            needed = keys[name].required - data.keys() - produced
            if any(self._supplier(f, members, catalog) is None for f in needed):
                continue
            fields = ", ".join(sorted(data[k].field for k in remaining))
            notes.append(f"{name} answers {match.part.text!r}: it takes the data {fields}")
            add(name, index, match.part.start)

    def _resolve(
        self,
        members: dict[str, _Member],
        data: Mapping[str, DataField],
        catalog: ServiceCatalog,
        notes: list[str],
    ) -> list[str]:
        """Which members can run, in an order where each one's required inputs come first.

        Adds supplier services for required inputs that nothing else provides.
        """
        keys = catalog.derived("offline.keys", fields_of)
        while True:
            order = self._runnable(members, data)
            missing = self._missing(members, order, data)
            added = False
            for name, fields in missing.items():
                for field in fields:
                    supplier = self._supplier(field, members, catalog)
                    if supplier is not None:
                        notes.append(f"{supplier.name}: added to provide {field!r} for {name}")
                        members[supplier.name] = _Member(supplier, 1e9, keys[supplier.name], set())
                        added = True
            if not added:
                return order

    @staticmethod
    def _supplier(
        field: str, members: Mapping[str, _Member], catalog: ServiceCatalog
    ) -> ServiceSpec | None:
        keys = catalog.derived("offline.keys", fields_of)
        wanted = _key(field)
        candidates = [
            spec
            for name, spec in catalog.items()
            if name not in members and wanted in keys[name].outputs
        ]
        candidates.sort(key=lambda s: (len(s.required_inputs), s.name))
        return candidates[0] if candidates else None

    @staticmethod
    def _runnable(members: Mapping[str, _Member], data: Mapping[str, DataField]) -> list[str]:
        order: list[str] = []
        produced: set[str] = set()
        pending = sorted(members, key=lambda n: (members[n].position, n))
        progress = True
        while progress:
            progress = False
            for name in list(pending):
                keys = members[name].keys
                if all(k in data or k in produced for k in keys.required):
                    order.append(name)
                    produced.update(keys.outputs)
                    pending.remove(name)
                    progress = True
        return order

    @staticmethod
    def _missing(
        members: Mapping[str, _Member], order: Sequence[str], data: Mapping[str, DataField]
    ) -> dict[str, list[str]]:
        produced = {k for n in order for k in members[n].keys.outputs}
        return {
            name: sorted(
                r
                for r in member.spec.required_inputs
                if _key(r) not in data and _key(r) not in produced
            )
            for name, member in members.items()
            if name not in order
        }

    def _wire(self, members: Sequence[_Member], data: Mapping[str, DataField]) -> list[PlanTask]:
        taken: set[str] = set()
        ids = {m.spec.name: task_id_for(m.spec.name, taken) for m in members}
        rank = {m.spec.name: i for i, m in enumerate(members)}  # order they became runnable
        inputs: dict[str, dict[str, Any]] = {m.spec.name: {} for m in members}
        deps: dict[str, set[str]] = {m.spec.name: set() for m in members}

        def providers(field: str, consumer: str) -> list[_Member]:
            wanted = _key(field)
            found = [m for m in members if m.spec.name != consumer and wanted in m.keys.outputs]
            return sorted(found, key=lambda m: (not m.parts, rank[m.spec.name]))

        def output_name(member: _Member, field: str) -> str:
            return member.keys.output_named[_key(field)]

        def reaches(start: str, goal: str) -> bool:
            stack, seen = [start], set()
            while stack:
                node = stack.pop()
                if node == goal:
                    return True
                if node not in seen:
                    seen.add(node)
                    stack.extend(deps[node])
            return False

        def reference(provider: _Member, name: str) -> str:
            return str(Reference(ids[provider.spec.name], (output_name(provider, name),)))

        optional: list[tuple[_Member, str]] = []
        for member in members:
            spec = member.spec
            for name in spec.inputs:
                if _key(name) in data:
                    value = data[_key(name)].value
                    inputs[spec.name][name] = escape(
                        schema.coerce_to(value, spec.input_types(name))
                    )
                elif name in spec.required_inputs:
                    source = next(
                        p for p in providers(name, spec.name) if rank[p.spec.name] < rank[spec.name]
                    )
                    inputs[spec.name][name] = reference(source, name)
                    deps[spec.name].add(source.spec.name)
                else:
                    optional.append((member, name))
        for member, name in optional:
            consumer = member.spec.name
            for provider in providers(name, consumer):
                if not reaches(provider.spec.name, consumer):
                    inputs[consumer][name] = reference(provider, name)
                    deps[consumer].add(provider.spec.name)
                    break
        by_position = sorted(members, key=lambda m: (m.position, m.spec.name))
        levels, _ = dependency_levels(deps, [m.spec.name for m in by_position])
        return [
            PlanTask(id=ids[name], service=name, input=inputs[name])
            for level in levels
            for name in level
        ]
