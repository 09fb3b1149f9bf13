"""Every plan the planner accepts is accepted by the dispatcher and runs to completion.

Property tests (hypothesis) across the two processes' pure logic: catalogues of services
with generated schemas (nested objects, lists, optional values, ``$ref``), candidate plans
whose inputs hold literals (some that start with ``$``) and references to earlier tasks'
outputs (dotted paths and list indexes), judged by the planner's real validation; and
actions planned by the real offline planner. Each accepted plan is driven through the
dispatcher's domain transitions, every task answering an output that matches its output
schema, in a drawn order. The dispatcher must accept the plan, send each task its input
with every reference replaced by the value at its path (computed here independently of
``orra_events.plan``) and every escaped literal unescaped, and complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from orra_dispatcher.domain import Orchestration, Policy, apply
from orra_events import (
    DataField,
    Event,
    OrchestrationDone,
    Plan,
    PlanCreated,
    PlanTask,
    TaskCompleted,
    TaskDispatched,
)
from orra_events.plan import check_plan, escape, find_references, parallel_groups
from orra_planner import OfflinePlanner, Planned, ServiceCatalog, ServiceSpec, validate_plan
from orra_planner import schema as json_schema
from tests.planner.catalog import registered, request

SCALARS = ("string", "integer", "number", "boolean")
WEIGHTED = ("string", "string", "string", "integer", "number", "boolean")
TEXTS = ("ok", "ORD-1", "$5.00", "$ 10", "$AAPL", "$BRK.B", "$$x", "$t0.status", "a $t1.x", "")
NAMES = ("id", "status", "items", "total", "customer", "tags", "count", "note", "detail")
POLICY = Policy(max_attempts=1, task_timeout_s=30.0)
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- schemas and values ----------------------------------------------------------------------


@st.composite
def value_schemas(draw: st.DrawFn, defs: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """A schema of an output value: scalars, closed objects, lists, optionals, ``$ref``."""
    kinds = ["scalar", "scalar", "scalar"]
    if depth < 2:
        kinds += ["object", "array", "optional", "ref"]
    kind = draw(st.sampled_from(kinds))
    if kind == "scalar":
        return {"type": draw(st.sampled_from(WEIGHTED))}
    if kind == "object":
        return draw(object_schemas(defs, depth + 1))
    if kind == "array":
        return {"type": "array", "items": draw(value_schemas(defs, depth + 1))}
    if kind == "optional":
        return {"anyOf": [draw(value_schemas(defs, depth + 1)), {"type": "null"}]}
    name = f"D{len(defs)}"
    defs[name] = {}  # reserved before drawing, so nested refs get other names
    defs[name] = draw(object_schemas(defs, depth + 1))
    return {"$ref": f"#/$defs/{name}"}


@st.composite
def object_schemas(draw: st.DrawFn, defs: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    props = {name: draw(value_schemas(defs, depth)) for name in names}
    required = [n for n in names if draw(st.booleans())]
    return {"type": "object", "properties": props, "required": required}


@st.composite
def output_schemas(draw: st.DrawFn) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    root = draw(object_schemas(defs))
    if defs:
        root["$defs"] = defs
    return root


@st.composite
def input_schemas(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    props: dict[str, Any] = {}
    for name in names:
        props[name] = draw(
            st.sampled_from(
                [*({"type": t} for t in WEIGHTED), {"type": "array", "items": {"type": "string"}}]
            )
        )
    required = [n for n in names if draw(st.booleans())]
    return {"type": "object", "properties": props, "required": required}


def scalar_values(kind: str) -> st.SearchStrategy[Any]:
    return {
        "string": st.sampled_from(TEXTS),
        "integer": st.integers(-1000, 1000),
        "number": st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 3)),
        "boolean": st.booleans(),
    }[kind]


@st.composite
def outputs_of(draw: st.DrawFn, node: Any, root: dict[str, Any]) -> Any:
    """A value that matches ``node``: every property present, lists of 3, optionals set."""
    node = json_schema.resolve(node, root)
    if "anyOf" in node:
        return draw(outputs_of(next(b for b in node["anyOf"] if b != {"type": "null"}), root))
    kind = node.get("type")
    if kind == "object":
        return {n: draw(outputs_of(s, root)) for n, s in node["properties"].items()}
    if kind == "array":
        return [draw(outputs_of(node["items"], root)) for _ in range(3)]
    return draw(scalar_values(kind))


def paths(node: Any, root: dict[str, Any], prefix: tuple[Any, ...] = ()) -> list[Any]:
    """``(path, scalar type)`` of every scalar the schema describes (indexes 0 and 2)."""
    node = json_schema.resolve(node, root)
    if "anyOf" in node:
        return paths(node["anyOf"][0], root, prefix)
    kind = node.get("type")
    if kind == "object":
        return [p for n, s in node["properties"].items() for p in paths(s, root, (*prefix, n))]
    if kind == "array":
        return [p for i in (0, 2) for p in paths(node["items"], root, (*prefix, i))]
    return [(prefix, kind)] if prefix else []


# --- candidates --------------------------------------------------------------------------------


@dataclass
class Candidate:
    catalog: ServiceCatalog
    tasks: list[PlanTask]
    data: list[DataField]
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per task and input: ("lit", value) or ("ref", task, path), or a list of them."""


def _fits(produced: str, wanted: str) -> bool:
    return produced == wanted or (produced, wanted) == ("integer", "number")


@st.composite
def candidates(draw: st.DrawFn) -> Candidate:
    """A catalogue and a plan over it that a planner could propose."""
    n_services = draw(st.integers(1, 3))
    specs = [
        ServiceSpec.from_event(
            registered(f"S{i}", f"service {i}", draw(input_schemas()), draw(output_schemas()))
        )
        for i in range(n_services)
    ]
    catalog = ServiceCatalog.of("default", specs)
    tasks: list[PlanTask] = []
    data: list[DataField] = []
    expected: dict[str, dict[str, Any]] = {}
    for index in range(draw(st.integers(2, 5))):
        spec = draw(st.sampled_from(specs))
        task_id = f"t{index}"
        sources = [
            (t.id, path, kind)
            for t in tasks
            for path, kind in paths(
                catalog[t.service].output_schema, catalog[t.service].output_schema
            )
        ]

        def value(kind: str, sources: list[Any] = sources) -> tuple[Any, Any]:
            usable = [s for s in sources if _fits(s[2], kind)]
            if usable and draw(st.integers(0, 3)) > 0:
                source, path, _ = draw(st.sampled_from(usable))
                return "$" + ".".join([source, *map(str, path)]), ("ref", source, path)
            raw = draw(scalar_values(kind))
            if draw(st.booleans()):
                data.append(DataField(f"d{len(data)}", raw))
            return escape(raw), ("lit", raw)

        inputs: dict[str, Any] = {}
        wanted: dict[str, Any] = {}
        for name, prop in spec.inputs.items():
            if name not in spec.required_inputs and draw(st.booleans()):
                continue
            if prop.get("type") == "array":
                pairs = [value("string") for _ in range(draw(st.integers(0, 3)))]
                inputs[name] = [p[0] for p in pairs]
                wanted[name] = [p[1] for p in pairs]
            else:
                inputs[name], wanted[name] = value(prop["type"])
        tasks.append(PlanTask(id=task_id, service=spec.name, input=inputs))
        expected[task_id] = wanted
    return Candidate(catalog, tasks, data, expected)


# --- running a plan in the dispatcher's domain ---------------------------------------------------


def _at(output: Any, path: tuple[Any, ...]) -> Any:
    for segment in path:
        output = output[segment]
    return output


def _expected_input(wanted: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    def one(spec: Any) -> Any:
        if isinstance(spec, list):
            return [one(s) for s in spec]
        if spec[0] == "lit":
            return spec[1]
        return _at(outputs[spec[1]], spec[2])

    return {name: one(spec) for name, spec in wanted.items()}


def run(
    plan: Plan, catalog: ServiceCatalog, draw: st.DrawFn, mode: str
) -> tuple[list[Event], dict[str, TaskDispatched], dict[str, Any]]:
    """Drive the dispatcher's transitions: each dispatched task completes, in a drawn order."""
    created = PlanCreated(
        event_id="p:o_prop", orchestration_id="o_prop", plan=plan, planner="offline", mode=mode
    )
    outcome = apply(None, created, POLICY, 1000.0)
    emitted: list[Event] = list(outcome.emit)
    state: Orchestration | None = outcome.state
    in_flight = [e for e in outcome.emit if isinstance(e, TaskDispatched)]
    dispatched: dict[str, TaskDispatched] = {}
    outputs: dict[str, Any] = {}
    services = {t.id: t.service for t in plan.tasks}
    now = 1000.0
    while in_flight:
        task = in_flight.pop(draw(st.integers(0, len(in_flight) - 1)))
        assert task.task_id not in dispatched, f"{task.task_id} dispatched twice"
        dispatched[task.task_id] = task
        spec = catalog[services[task.task_id]]
        output = draw(outputs_of(spec.output_schema, dict(spec.output_schema)))
        outputs[task.task_id] = output
        now += 1.0
        completed = TaskCompleted(
            event_id=f"r:o_prop:{task.task_id}:1",
            orchestration_id="o_prop",
            task_id=task.task_id,
            service=task.service,
            output=output,
            attempt=1,
            idempotency_key=task.idempotency_key,
            started_at=now,
            duration_ms=1.0,
        )
        outcome = apply(state, completed, POLICY, now)
        state = outcome.state
        emitted.extend(outcome.emit)
        in_flight.extend(e for e in outcome.emit if isinstance(e, TaskDispatched))
    return emitted, dispatched, outputs


def assert_runs(
    plan: Plan,
    catalog: ServiceCatalog,
    draw: st.DrawFn,
    expected: dict[str, dict[str, Any]] | None = None,
) -> dict[str, TaskDispatched]:
    """The dispatcher accepts ``plan``, resolves every input and completes it."""
    assert check_plan(plan, exact_groups=True) == []
    assert plan.parallel_groups == parallel_groups(plan.tasks)
    mode = draw(st.sampled_from(["groups", "eager"]))
    emitted, dispatched, outputs = run(plan, catalog, draw, mode)
    terminal = emitted[-1]
    assert isinstance(terminal, OrchestrationDone), terminal
    assert terminal.outputs == outputs
    assert set(dispatched) == {t.id for t in plan.tasks}
    for task in plan.tasks:
        sent = dispatched[task.id].input
        spec = catalog[task.service]
        if expected is not None:
            assert sent == _expected_input(expected[task.id], outputs), task.id
        problem = json_schema.check_value(sent, spec.input_schema, spec.input_schema)
        assert problem is None, (task.id, problem)
    return dispatched


@SETTINGS
@given(candidates(), st.data())
def test_every_plan_the_planner_validates_runs_in_the_dispatcher(
    candidate: Candidate, data: st.DataObject
) -> None:
    result = validate_plan(candidate.tasks, candidate.catalog, candidate.data)
    event("accepted" if result.ok else f"refused: {sorted(result.codes())}")
    assume(result.plan is not None)
    assert result.plan is not None
    depth = max(
        (len(r.path) for t in result.plan.tasks for _, r in find_references(t.input)), default=0
    )
    event(f"longest reference path: {min(depth, 3)}")
    assert_runs(result.plan, candidate.catalog, data.draw, candidate.expected)


# --- the offline planner -------------------------------------------------------------------------

PHRASES = {
    "PaymentService": ("Charges the payment of an order", "charge the payment"),
    "InventoryService": ("Reserves stock in the inventory", "reserve the inventory"),
    "ShippingService": ("Ships the parcel to the customer", "ship the parcel"),
    "ReceiptService": ("Emails the receipt to the customer", "email the receipt"),
    "LoyaltyService": ("Awards loyalty points to a member", "award loyalty points"),
}
FIELDS = ("orderId", "customerId", "amount", "parcelId", "points", "receiptId")


@st.composite
def offline_requests(draw: st.DrawFn) -> Any:
    chosen = draw(st.lists(st.sampled_from(sorted(PHRASES)), min_size=1, max_size=3, unique=True))
    events = []
    data: dict[str, Any] = {}
    produced: set[str] = set()  # outputs of the services before this one in the action
    for name in chosen:
        ins = draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=2, unique=True))
        outs = draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=2, unique=True))
        defs: dict[str, Any] = {}
        out_schema = {
            "type": "object",
            "properties": {
                **{o: {"type": "string"} for o in outs},
                "detail": draw(value_schemas(defs)),
            },
            "required": [*outs, "detail"],
        }
        if defs:
            out_schema["$defs"] = defs
        in_schema = {
            "type": "object",
            "properties": {i: {"type": "string"} for i in ins},
            "required": ins,
        }
        events.append(registered(name, PHRASES[name][0], in_schema, out_schema))
        for i in ins:  # a required input comes from the data or an earlier service
            if i not in produced or draw(st.booleans()):
                data.setdefault(i, draw(st.sampled_from(TEXTS)))
        produced.update(outs)
    catalog = ServiceCatalog.of("default", [ServiceSpec.from_event(e) for e in events])
    action = " and ".join(PHRASES[name][1] for name in chosen)
    return catalog, request(action, catalog, **data)


@SETTINGS
@given(offline_requests(), st.data())
def test_every_plan_the_offline_planner_makes_runs_in_the_dispatcher(
    planned: Any, data: st.DataObject
) -> None:
    catalog, plan_request = planned
    outcome = OfflinePlanner().plan_now(plan_request)
    groups = len(outcome.plan.parallel_groups) if isinstance(outcome, Planned) else 0
    event(f"offline: {type(outcome).__name__}, {groups} group(s)")
    if not isinstance(outcome, Planned):
        return  # refused (honestly): nothing to run
    dispatched = assert_runs(outcome.plan, catalog, data.draw)
    planned_values = {v for t in outcome.plan.tasks for v in t.input.values()}
    sent_values = {v for t in dispatched.values() for v in t.input.values()}
    for datum in plan_request.data:  # data that looks like a reference is escaped, then sent
        assert escape(datum.value) in planned_values
        assert datum.value in sent_values
