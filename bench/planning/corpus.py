"""The planning corpus: domain catalogues and cases, read from ``bench/planning/corpus/``.

Layout::

    corpus/catalogs/<domain>.yaml   the services a project of that domain registers
    corpus/dev/<domain>.yaml        dev cases (planner authors may tune on them)
    corpus/held_out/<domain>.yaml   held-out cases (planner authors must not read them)
    corpus/fresh/<domain>.yaml      fresh cases, by an author who read neither other set
                                    nor the planner (their failures were read in round 3)
    corpus/blind2/<domain>.yaml     blind2 cases, by another author who read no other set
                                    (beyond one dev file for the format) nor the planner,
                                    with a new domain (property); their failures were read
                                    in rounds 2 and 3, so they are no longer blind
    corpus/blind3/<domain>.yaml     blind3 cases, by a third author who read no other set
                                    (beyond one dev file for the format) nor the planner,
                                    with an eighth domain (logistics); nobody reads or tunes
                                    on them

A case is an action text with its data and either an expected plan (the services that
must run, each with the words of the action it serves, ``null`` for a service added only
to provide data, and the dependency edges between them) or an expected refusal (its
status and the fragments a reason must quote). See ``corpus/README.md`` for the format.
Loading checks the shape of every file and raises :class:`CorpusError` naming the file
and the case; whether the content is consistent (schemas valid, services known, data
used) is checked by ``tests/bench/test_planning_corpus.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = [
    "CATEGORIES",
    "CORPUS_DIR",
    "SETS",
    "UNREAD_SETS",
    "Case",
    "CorpusError",
    "Domain",
    "ExpectedEdge",
    "ExpectedTask",
    "Refusal",
    "ServiceDef",
    "SetName",
    "load_cases",
    "load_domains",
]

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
"""Where the corpus lives."""

SetName = Literal["dev", "held-out", "fresh", "blind2", "blind3"]
SETS: dict[SetName, str] = {
    "dev": "dev",
    "held-out": "held_out",
    "fresh": "fresh",
    "blind2": "blind2",
    "blind3": "blind3",
}
"""Case set name → its directory under :data:`CORPUS_DIR`.

``fresh`` was written after ``dev`` and ``held-out`` had both been used to tune the
offline planner, by an author who read neither them nor the planner's matching code: it
is the set that still measures generalisation. ``blind2`` was written the same way by a
different author, reading only one dev file for the format, with a seventh domain
(``property``) whose catalogue was written for it: a second unseen measure. ``blind3``
was written the same way by a third author after ``blind2`` had been read to tune the
planner, with an eighth domain (``logistics``) whose catalogue was written for it.
"""

UNREAD_SETS: frozenset[SetName] = frozenset({"held-out", "fresh", "blind2", "blind3"})
"""Sets whose failing cases reports give only as counts, so that they stay unread."""

CATEGORIES = (
    "plain",
    "synonym",
    "synonym-unlisted",
    "typo",
    "inflection",
    "shared-word",
    "chain",
    "partial",
    "impossible",
    "impossible-part",
    "missing-input",
)
"""Case categories, in report order.

``synonym``: the user's key word is absent from the service's name and description but
present in its ``examples``; ``synonym-unlisted``: absent from all three. ``partial``:
one part is doable and one is not, and the caller allows a partial plan.
``impossible-part``: the same without that permission (refused). ``missing-input``: the
service asked for cannot get a required input (refused as ``invalid``).
"""

RefusalStatus = Literal["invalid", "not_actionable"]

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it (several times faster), else the pure one."""


class CorpusError(Exception):
    """A corpus file is malformed (the message names the file and the case)."""


@dataclass(frozen=True)
class ServiceDef:
    """A service of a domain's catalogue, as its author would register it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    examples: tuple[str, ...] = ()
    kind: Literal["service", "agent"] = "service"
    revertible: bool = False


@dataclass(frozen=True)
class Domain:
    """One domain: the catalogue of one project."""

    name: str
    description: str
    services: tuple[ServiceDef, ...]

    def service(self, name: str) -> ServiceDef | None:
        """The service called ``name``, if the catalogue has it."""
        return next((s for s in self.services if s.name == name), None)


@dataclass(frozen=True)
class ExpectedTask:
    """A service that must run, and the words of the action it serves (``None``: data)."""

    service: str
    serves: str | None


@dataclass(frozen=True)
class ExpectedEdge:
    """A dependency: ``target`` takes ``fields`` from ``source``'s output."""

    source: str
    target: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refusal:
    """An expected refusal: its status and the fragments some reason must quote."""

    status: RefusalStatus
    quote: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    """One benchmark case."""

    id: str
    set: SetName
    domain: str
    category: str
    action: str
    data: tuple[tuple[str, Any], ...]
    rationale: str
    allow_partial: bool = False
    tasks: tuple[ExpectedTask, ...] = ()
    edges: tuple[ExpectedEdge, ...] = ()
    refusal: Refusal | None = None
    uncovered: tuple[str, ...] = ()

    @property
    def expects_plan(self) -> bool:
        """Whether a plan is expected (the case is doable, perhaps partially)."""
        return self.refusal is None


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise CorpusError(f"{path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise CorpusError(f"{path}: expected a mapping at the top level")
    return loaded


def _str(value: Any, where: str, *, optional: bool = False) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if optional and value is None:
        return ""
    raise CorpusError(f"{where}: expected a non-empty string, got {value!r}")


def _strs(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CorpusError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(_str(item, f"{where}[{i}]") for i, item in enumerate(value))


def _keys(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise CorpusError(f"{where}: unknown keys {unknown} (allowed: {sorted(allowed)})")


def _service(entry: Any, where: str) -> ServiceDef:
    if not isinstance(entry, dict):
        raise CorpusError(f"{where}: expected a mapping")
    _keys(
        entry,
        {"name", "description", "examples", "input", "output", "kind", "revertible"},
        where,
    )
    for key in ("input", "output"):
        if not isinstance(entry.get(key), dict):
            raise CorpusError(f"{where}: {key!r} must be a JSON Schema object")
    kind = entry.get("kind", "service")
    if kind not in ("service", "agent"):
        raise CorpusError(f"{where}: kind must be service or agent, got {kind!r}")
    return ServiceDef(
        name=_str(entry.get("name"), f"{where}.name"),
        description=_str(entry.get("description"), f"{where}.description"),
        input_schema=entry["input"],
        output_schema=entry["output"],
        examples=_strs(entry.get("examples"), f"{where}.examples"),
        kind=kind,
        revertible=bool(entry.get("revertible", False)),
    )


def load_domains(root: Path = CORPUS_DIR) -> dict[str, Domain]:
    """Every domain catalogue under ``root/catalogs``, by name."""
    domains: dict[str, Domain] = {}
    for path in sorted((root / "catalogs").glob("*.yaml")):
        raw = _read(path)
        _keys(raw, {"domain", "description", "services"}, str(path))
        name = _str(raw.get("domain"), f"{path}: domain")
        if name != path.stem:
            raise CorpusError(f"{path}: domain {name!r} differs from the file name")
        services = raw.get("services")
        if not isinstance(services, list) or not services:
            raise CorpusError(f"{path}: services must be a non-empty list")
        domains[name] = Domain(
            name=name,
            description=_str(raw.get("description"), f"{path}: description"),
            services=tuple(_service(s, f"{path}: services[{i}]") for i, s in enumerate(services)),
        )
    if not domains:
        raise CorpusError(f"{root / 'catalogs'}: no catalogue")
    return domains


def _expect(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise CorpusError(f"{where}: expect must be a mapping")
    _keys(raw, {"tasks", "edges", "uncovered", "refuse"}, f"{where}.expect")
    if ("refuse" in raw) == ("tasks" in raw):
        raise CorpusError(f"{where}: expect needs exactly one of tasks and refuse")
    out: dict[str, Any] = {}
    if "refuse" in raw:
        refuse = raw["refuse"]
        if not isinstance(refuse, dict):
            raise CorpusError(f"{where}: refuse must be a mapping")
        _keys(refuse, {"status", "quote"}, f"{where}.refuse")
        status = refuse.get("status")
        if status not in ("invalid", "not_actionable"):
            raise CorpusError(f"{where}: refuse.status must be invalid or not_actionable")
        quote = _strs(refuse.get("quote"), f"{where}.refuse.quote")
        if not quote:
            raise CorpusError(f"{where}: refuse.quote must name what a reason quotes")
        if raw.keys() - {"refuse"}:
            raise CorpusError(f"{where}: a refusal has no tasks, edges or uncovered")
        out["refusal"] = Refusal(status=status, quote=quote)
        return out
    tasks = raw["tasks"]
    if not isinstance(tasks, list) or not tasks:
        raise CorpusError(f"{where}: tasks must be a non-empty list")
    expected = []
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise CorpusError(f"{where}: tasks[{i}] must be a mapping")
        _keys(task, {"service", "serves"}, f"{where}.tasks[{i}]")
        serves = task.get("serves")
        expected.append(
            ExpectedTask(
                service=_str(task.get("service"), f"{where}.tasks[{i}].service"),
                serves=_str(serves, f"{where}.tasks[{i}].serves") if serves is not None else None,
            )
        )
    edges = []
    for i, edge in enumerate(raw.get("edges") or []):
        if not isinstance(edge, dict):
            raise CorpusError(f"{where}: edges[{i}] must be a mapping")
        _keys(edge, {"from", "to", "fields"}, f"{where}.edges[{i}]")
        edges.append(
            ExpectedEdge(
                source=_str(edge.get("from"), f"{where}.edges[{i}].from"),
                target=_str(edge.get("to"), f"{where}.edges[{i}].to"),
                fields=_strs(edge.get("fields"), f"{where}.edges[{i}].fields"),
            )
        )
    out["tasks"] = tuple(expected)
    out["edges"] = tuple(edges)
    out["uncovered"] = _strs(raw.get("uncovered"), f"{where}.uncovered")
    return out


def _case(raw: Any, where: str, set_name: SetName, domain: str) -> Case:
    if not isinstance(raw, dict):
        raise CorpusError(f"{where}: a case must be a mapping")
    _keys(raw, {"id", "category", "action", "data", "expect", "rationale", "allow_partial"}, where)
    case_id = _str(raw.get("id"), f"{where}.id")
    where = f"{where} ({case_id})"
    category = _str(raw.get("category"), f"{where}.category")
    if category not in CATEGORIES:
        raise CorpusError(f"{where}: unknown category {category!r} (known: {CATEGORIES})")
    data = raw.get("data") or {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise CorpusError(f"{where}: data must map field names to values")
    allow_partial = raw.get("allow_partial", False)
    if not isinstance(allow_partial, bool):
        raise CorpusError(f"{where}: allow_partial must be true or false")
    return Case(
        id=case_id,
        set=set_name,
        domain=domain,
        category=category,
        action=_str(raw.get("action"), f"{where}.action"),
        data=tuple(data.items()),
        rationale=_str(raw.get("rationale"), f"{where}.rationale"),
        allow_partial=allow_partial,
        **_expect(raw.get("expect"), where),
    )


def load_cases(set_name: SetName, root: Path = CORPUS_DIR) -> list[Case]:
    """Every case of ``set_name`` (a key of :data:`SETS`), in file and corpus order."""
    if set_name not in SETS:
        raise CorpusError(f"unknown set {set_name!r} (known: {sorted(SETS)})")
    cases: list[Case] = []
    seen: set[str] = set()
    for path in sorted((root / SETS[set_name]).glob("*.yaml")):
        raw = _read(path)
        _keys(raw, {"domain", "set", "cases"}, str(path))
        domain = _str(raw.get("domain"), f"{path}: domain")
        if raw.get("set") != set_name:
            raise CorpusError(f"{path}: set must be {set_name!r}, got {raw.get('set')!r}")
        entries = raw.get("cases")
        if not isinstance(entries, list) or not entries:
            raise CorpusError(f"{path}: cases must be a non-empty list")
        for i, entry in enumerate(entries):
            case = _case(entry, f"{path}: cases[{i}]", set_name, domain)
            if case.id in seen:
                raise CorpusError(f"{path}: duplicate case id {case.id!r}")
            seen.add(case.id)
            cases.append(case)
    return cases
