"""The deterministic offline planner: no network, no model, same answer every time.

How it plans, in four explainable steps (each choice is recorded in the outcome's
``notes``):

1. **Select** the services relevant to the action text by lexical match on stems
   (:mod:`orra_planner.text`). A match on a word of the service *name* is *strong* (the
   action asks for that service); a match on its *description* is *weak*. Description
   words that most of a project's services share ("order" in a shop), words that another
   service's name already accounts for, and the catalogue's data entities ("customer" of
   ``customerId``) do not count. No match at all → ``not_actionable``.
2. **Complete from data**: a data field that no selected service takes is a sign of
   intent too, so the service that takes it (an input of the same name) is added, when its
   required inputs can be met. With several candidates the one with the fewest required
   inputs (then by name) wins, a service that *requires* the field first. A field that
   selected services take only as an optional input still adds a service that requires it.
3. **Wire** inputs by field name (case and ``_`` insensitive): from the action data first
   (converting ``"299.99"`` to a number where the schema wants one), else from the output
   of another selected service as a ``$task.field`` reference, which orders the tasks. A
   *required* input met neither way can be supplied by adding a service whose output has
   it. An optional input is filled when available and when it creates no cycle.
4. **Validate** through the same :func:`~orra_planner.validation.validate_plan` as every
   strategy.

A service the action names (strong match) whose required input cannot be met makes the
plan ``invalid`` with a ``missing_input`` reason, rather than quietly planning the rest
(updating inventory without the payment the action asked for). A weakly matched service
that cannot run is dropped, with a note.

Data the planner cannot use is **not** relaxed away: DESIGN.md requires every data field
to be used, and a field silently ignored (``items`` with quantities, say) would run a plan
the user did not ask for. Such an action fails ``invalid`` with an ``unused_data`` reason
that names the field and the registered services that could take it, so the fix is clear:
drop the field, or register a service that accepts it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from orra_events import DataField, PlanTask
from orra_events.plan import TASK_ID_PATTERN, dependency_levels, escape
from orra_planner import schema
from orra_planner.strategy import Planned, PlanOutcome, PlanRejected, PlanRequest
from orra_planner.text import GENERIC_NAME_WORDS, STOP_WORDS, split_words, stems
from orra_planner.validation import validate_plan

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from orra_planner.registry import ServiceCatalog, ServiceSpec

__all__ = ["OfflinePlanner", "ServiceMatch", "match_services", "task_id_for"]

_ID_SUFFIXES = frozenset({"service", "svc", "agent", "api"})


@dataclass(frozen=True)
class ServiceMatch:
    """Why a service was selected for an action.

    Attributes:
        service: The service name.
        strong: Whether the action names it (a word of its name matched).
        terms: The action stems that matched.
        position: Index of the first matching word in the action (plan order).
        reason: Why it was selected, for the notes.
    """

    service: str
    strong: bool
    terms: tuple[str, ...]
    position: int
    reason: str


@lru_cache(maxsize=16_384)
def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


@dataclass(frozen=True)
class _Words:
    """What :func:`match_services` reads off a catalogue, computed once per catalogue.

    Attributes:
        names: Service name → the stems of its name (generic words left out).
        descriptions: Service name → the stems of its description.
        frequency: Stem → how many services' names or descriptions have it.
        common: A description stem in more services than this does not select any.
        entities: Stems of every input and output field name (the data entities).
    """

    names: Mapping[str, frozenset[str]]
    descriptions: Mapping[str, frozenset[str]]
    frequency: Mapping[str, int]
    common: float
    entities: frozenset[str]

    @classmethod
    def of(cls, catalog: ServiceCatalog) -> _Words:
        names = {
            name: frozenset(stems(name, skip=GENERIC_NAME_WORDS | STOP_WORDS)) for name in catalog
        }
        descriptions = {name: frozenset(stems(spec.description)) for name, spec in catalog.items()}
        frequency: dict[str, int] = {}
        for name in catalog:
            for term in names[name] | descriptions[name]:
                frequency[term] = frequency.get(term, 0) + 1
        return cls(
            names=names,
            descriptions=descriptions,
            frequency=frequency,
            common=len(catalog) / 2 if len(catalog) >= 3 else float(len(catalog) + 1),
            entities=frozenset(
                t
                for spec in catalog.values()
                for field_name in (*spec.inputs, *spec.outputs)
                for t in stems(field_name, skip=GENERIC_NAME_WORDS | STOP_WORDS)
            ),
        )


def match_services(action: str, catalog: ServiceCatalog) -> list[ServiceMatch]:
    """Services of ``catalog`` whose name or description shares a stem with ``action``.

    Returns:
        The matches in the order their first matching word appears in the action.
    """
    action_stems = stems(action)
    distinct = list(dict.fromkeys(action_stems))
    words = catalog.derived("offline.words", _Words.of)
    name_stems, desc_stems, frequency = words.names, words.descriptions, words.frequency
    # A word that names one service ("payment" → PaymentService) is accounted for: it does
    # not also select every other service whose description mentions it (a refund service
    # "refunds an order's payment").
    named = {t for name in catalog for t in distinct if t in name_stems[name]}
    # Words that are the catalogue's data entities ("customer" of customerId) say what an
    # action is about, not what to do: they do not select a service by its description.
    entities = words.entities
    matches: list[ServiceMatch] = []
    for name in catalog:
        strong_terms = [t for t in distinct if t in name_stems[name]]
        weak_terms = [
            t
            for t in distinct
            if t in desc_stems[name]
            and t not in strong_terms
            and t not in named
            and t not in entities
            and frequency[t] <= words.common
        ]
        terms = strong_terms + weak_terms
        if not terms:
            continue
        position = min(action_stems.index(t) for t in terms)
        where = "name" if strong_terms else "description"
        matches.append(
            ServiceMatch(
                service=name,
                strong=bool(strong_terms),
                terms=tuple(terms),
                position=position,
                reason=f"{name}: action words {', '.join(terms)} match its {where}",
            )
        )
    matches.sort(key=lambda m: (m.position, not m.strong, m.service))
    return matches


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


@dataclass(frozen=True)
class _Keys:
    """A service's field names as :func:`_key` normalises them (computed once per catalogue).

    Attributes:
        inputs: Keys of every input.
        required: Keys of the required inputs.
        outputs: Keys of every output.
        output_named: Output key → the output's declared name (the first one, if several).
    """

    inputs: frozenset[str]
    required: frozenset[str]
    outputs: frozenset[str]
    output_named: Mapping[str, str]

    @classmethod
    def of(cls, spec: ServiceSpec) -> _Keys:
        output_named: dict[str, str] = {}
        for name in spec.outputs:
            output_named.setdefault(_key(name), name)
        return cls(
            inputs=frozenset(_key(n) for n in spec.inputs),
            required=frozenset(_key(n) for n in spec.required_inputs),
            outputs=frozenset(output_named),
            output_named=output_named,
        )


def _keys_of(catalog: ServiceCatalog) -> dict[str, _Keys]:
    return {name: _Keys.of(spec) for name, spec in catalog.items()}


@dataclass
class _Member:
    spec: ServiceSpec
    strong: bool
    position: float
    reason: str
    keys: _Keys


class OfflinePlanner:
    """The deterministic offline planning strategy (see the module docstring).

    Args:
        complete_from_data: Add a service to use a data field no selected service takes.
    """

    name = "offline"
    side_effect_free = True
    """Deterministic, free, no I/O: planning an action again is harmless."""

    def __init__(self, *, complete_from_data: bool = True) -> None:
        self.complete_from_data = complete_from_data

    async def plan(self, request: PlanRequest) -> PlanOutcome:
        """Plan ``request`` (never raises for bad input; see :class:`Planned`)."""
        return self.plan_now(request)

    def plan_now(self, request: PlanRequest) -> PlanOutcome:
        """Plan synchronously (the planner does no I/O)."""
        catalog = request.catalog
        if not catalog:
            return self._reject(
                "not_actionable",
                [f"project {catalog.project!r} has no registered services"],
                [],
            )
        matches = match_services(request.action, catalog)
        if not matches:
            looked = ", ".join(dict.fromkeys(stems(request.action))) or "no usable words"
            return self._reject(
                "not_actionable",
                [
                    (
                        f"no registered service of project {catalog.project!r} matches the action "
                        f"{request.action!r} (looked for: {looked})"
                    )
                ],
                [],
            )
        keys = catalog.derived("offline.keys", _keys_of)
        members = {
            m.service: _Member(catalog[m.service], m.strong, m.position, m.reason, keys[m.service])
            for m in matches
        }
        notes = [m.reason for m in matches]
        data = {_key(f.field): f for f in request.data}
        if self.complete_from_data:
            self._complete(members, data, catalog, notes)
        order = self._resolve(members, data, catalog, notes)
        failing = [
            (name, missing)
            for name, missing in self._missing(members, order, data).items()
            if members[name].strong
        ]
        if failing:
            reasons = [
                f"missing_input: {name} (asked for by the action) needs {field!r}, which is "
                "neither an action data field nor an output of a service that can run"
                for name, fields in failing
                for field in fields
            ]
            return self._reject("invalid", reasons, notes)
        for name in [n for n in members if n not in order]:
            notes.append(f"{name} dropped: its required inputs cannot be met")
            del members[name]
        if not order:
            return self._reject(
                "not_actionable",
                ["no matching service can run with the given data"],
                notes,
            )
        tasks = self._wire([members[n] for n in order], data)
        result = validate_plan(tasks, catalog, request.data)
        if result.plan is None:
            return self._reject("invalid", result.reasons, notes)
        return Planned(plan=result.plan, planner=self.name, notes=tuple(notes))

    def _reject(self, status: Any, reasons: Sequence[str], notes: Sequence[str]) -> PlanRejected:
        return PlanRejected(
            status=status, reasons=tuple(reasons), planner=self.name, notes=tuple(notes)
        )

    def _complete(
        self,
        members: dict[str, _Member],
        data: Mapping[str, DataField],
        catalog: ServiceCatalog,
        notes: list[str],
    ) -> None:
        keys = catalog.derived("offline.keys", _keys_of)
        for key, data_field in data.items():
            if any(key in m.keys.required for m in members.values()):
                continue
            # Used only as an optional input: a service that requires the field is what the
            # data asks for ("customerId" → the notification, not the payment's receipt).
            optional_only = any(key in m.keys.inputs for m in members.values())
            candidates = [
                spec
                for name, spec in catalog.items()
                if name not in members
                and key in (keys[name].required if optional_only else keys[name].inputs)
            ]
            # A service that *requires* the field is the surest reader of it; then the one
            # that needs the least else.
            candidates.sort(
                key=lambda s: (
                    key not in keys[s.name].required,
                    len(s.required_inputs),
                    s.name,
                )
            )
            for spec in candidates:
                trial = {
                    **members,
                    spec.name: _Member(
                        spec, strong=False, position=1e9, reason="", keys=keys[spec.name]
                    ),
                }
                if spec.name in self._resolve(trial, data, catalog, []):
                    reason = f"{spec.name}: added to use data field {data_field.field!r}"
                    members[spec.name] = _Member(
                        spec, strong=False, position=1e9, reason=reason, keys=keys[spec.name]
                    )
                    notes.append(reason)
                    break

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
        while True:
            order = self._runnable(members, data)
            missing = self._missing(members, order, data)
            added = False
            for name, fields in missing.items():
                for field in fields:
                    supplier = self._supplier(field, members, catalog)
                    if supplier is not None:
                        reason = f"{supplier.name}: added to provide {field!r} for {name}"
                        members[supplier.name] = _Member(
                            supplier,
                            strong=False,
                            position=1e9,
                            reason=reason,
                            keys=catalog.derived("offline.keys", _keys_of)[supplier.name],
                        )
                        notes.append(reason)
                        added = True
            if not added:
                return order

    @staticmethod
    def _supplier(
        field: str, members: Mapping[str, _Member], catalog: ServiceCatalog
    ) -> ServiceSpec | None:
        keys = catalog.derived("offline.keys", _keys_of)
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
            return sorted(found, key=lambda m: (not m.strong, rank[m.spec.name]))

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
                    earlier = [
                        p for p in providers(name, spec.name) if rank[p.spec.name] < rank[spec.name]
                    ]
                    source = earlier[0]
                    inputs[spec.name][name] = (
                        f"${ids[source.spec.name]}.{output_name(source, name)}"
                    )
                    deps[spec.name].add(source.spec.name)
                else:
                    optional.append((member, name))
        for member, name in optional:
            consumer = member.spec.name
            for provider in providers(name, consumer):
                if not reaches(provider.spec.name, consumer):
                    inputs[consumer][name] = (
                        f"${ids[provider.spec.name]}.{output_name(provider, name)}"
                    )
                    deps[consumer].add(provider.spec.name)
                    break
        by_position = sorted(members, key=lambda m: (m.position, m.spec.name))
        levels, _ = dependency_levels(deps, [m.spec.name for m in by_position])
        return [
            PlanTask(id=ids[name], service=name, input=inputs[name])
            for level in levels
            for name in level
        ]
