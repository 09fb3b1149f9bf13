"""Domain grounding: use cases that show the model how actions of a domain are planned.

A grounding is a YAML document::

    name: ecommerce
    domain: e-commerce
    strict: false            # true: an action matching none of its use cases is refused
    use-cases:
      - action: "Process order {orderId} and arrange delivery"
        intent: Charge the customer, check stock, then ship
        capabilities: [payment, inventory check, delivery]
        services: [PaymentService, InventoryService, DeliveryAgent]   # optional
        params: {orderId: ORD123}                                      # optional
    constraints:
      - Never ship before the payment is confirmed

Groundings live in the JetStream KV bucket ``grounding`` (one key per name), so every
planner replica sees the same ones. Use cases whose action template matches the submitted
action (template placeholders match any text; otherwise enough shared words) go into the
prompt as worked examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec

from orra_planner.errors import PlannerError

if TYPE_CHECKING:
    import builtins
    from collections.abc import Iterable, Sequence

    from orra_events import Bus, ServiceRegistered

__all__ = [
    "BUCKET",
    "SERVICE_EXAMPLES",
    "Grounding",
    "GroundingError",
    "GroundingMatch",
    "GroundingResult",
    "GroundingStore",
    "UseCase",
    "apply_grounding",
    "list_groundings",
    "match_groundings",
    "parse_groundings",
    "remove_grounding",
    "service_examples_grounding",
]

BUCKET: Final = "grounding"
"""Name of the KV bucket (namespaced by the topology) that holds the groundings."""

_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")
_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS: Final = frozenset(
    {
        *("a", "an", "and", "the", "of", "for", "to", "in", "on", "at", "by", "with", "from"),
        *("into", "onto", "or", "our", "my", "your", "their", "its", "is", "are", "be"),
        *("this", "that", "these", "those", "it", "as", "new", "please"),
    }
)
_KEY_ALIASES: Final = {
    "use-cases": "use_cases",
    "useCases": "use_cases",
    "usecases": "use_cases",
    "examples": "use_cases",
}


class GroundingError(PlannerError, ValueError):
    """A grounding document is malformed."""


class UseCase(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One worked example of a domain.

    Attributes:
        action: The action template, with ``{placeholders}`` for its data.
        intent: What the user wants to achieve.
        capabilities: What the plan must be able to do.
        services: The services expected in the plan (optional).
        params: Example values of the placeholders (optional).
        plan: An example plan, ``{"tasks": [...], "parallel_groups": [...]}`` (optional).
    """

    action: str
    intent: str = ""
    capabilities: list[str] = msgspec.field(default_factory=list)
    services: list[str] = msgspec.field(default_factory=list)
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    plan: dict[str, Any] | None = None


class Grounding(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A named set of use cases and constraints of one domain.

    Attributes:
        name: Unique name; applying a grounding of the same name replaces it.
        domain: The domain, for people.
        version: The document's version, for people.
        strict: Whether an action matching none of its use cases is not actionable.
        use_cases: The worked examples.
        constraints: Rules every plan of the domain must follow; they go into the prompt
            whenever one of the grounding's use cases matches.
    """

    name: str
    use_cases: list[UseCase]
    domain: str = ""
    version: str = "1"
    strict: bool = False
    constraints: list[str] = msgspec.field(default_factory=list)


@dataclass(frozen=True)
class GroundingMatch:
    """A use case that matches an action.

    Attributes:
        grounding: The grounding the use case belongs to.
        use_case: The matching use case.
        score: 1.0 for a template match; the share of the template's words otherwise.
        params: Placeholder values read from the action (template matches only).
    """

    grounding: Grounding
    use_case: UseCase
    score: float
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GroundingResult:
    """What the groundings say about one action.

    Attributes:
        matches: Matching use cases, best first.
        strict_violations: Names of strict groundings none of whose use cases matches;
            non-empty only when no strict grounding matches at all.
    """

    matches: list[GroundingMatch]
    strict_violations: list[str]

    @property
    def not_actionable(self) -> bool:
        """Whether strict grounding refuses the action."""
        return bool(self.strict_violations)


# --- parsing -----------------------------------------------------------------------------


def _normalise_keys(doc: dict[str, Any]) -> dict[str, Any]:
    return {_KEY_ALIASES.get(str(k), str(k)): v for k, v in doc.items()}


def parse_groundings(text: str) -> list[Grounding]:
    """Parse a YAML (or JSON) text of one or more grounding documents.

    Args:
        text: The file's content; several documents may be separated by ``---``.

    Returns:
        The groundings, in order.

    Raises:
        GroundingError: The text is not YAML, or a document is not a valid grounding.
    """
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - pyyaml is installed with the planner
        raise GroundingError("reading groundings needs the pyyaml package") from exc
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise GroundingError(f"not valid YAML: {exc}") from None
    if not docs:
        raise GroundingError("the file holds no grounding")
    groundings: list[Grounding] = []
    for i, doc in enumerate(docs, 1):
        if not isinstance(doc, dict):
            raise GroundingError(f"document {i}: expected a mapping, got {type(doc).__name__}")
        try:
            grounding = msgspec.convert(_normalise_keys(doc), Grounding, strict=False)
        except msgspec.ValidationError as exc:
            raise GroundingError(f"document {i}: {exc}") from None
        if not _NAME.match(grounding.name):
            raise GroundingError(
                f"document {i}: name {grounding.name!r} must be letters, digits, '_', '-', '.'"
            )
        if not grounding.use_cases:
            raise GroundingError(f"grounding {grounding.name!r}: no use cases")
        for case in grounding.use_cases:
            if not case.action.strip():
                raise GroundingError(f"grounding {grounding.name!r}: a use case has no action")
        groundings.append(grounding)
    names = [g.name for g in groundings]
    if len(set(names)) != len(names):
        raise GroundingError("the file holds two groundings of the same name")
    return groundings


# --- matching ----------------------------------------------------------------------------


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def _template_regex(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    last = 0
    seen: set[str] = set()
    for m in _PLACEHOLDER.finditer(template):
        literal = template[last : m.start()]
        parts.append(r"\s+".join(re.escape(w) for w in literal.split()))
        name = re.sub(r"\W", "_", m.group(1))
        group = f"(?P<{name}>.+?)" if name not in seen else ".+?"
        seen.add(name)
        parts.append(group)
        last = m.end()
    parts.append(r"\s+".join(re.escape(w) for w in template[last:].split()))
    # Literal parts are joined to placeholders with optional whitespace.
    pattern = r"\s*".join(p for p in parts if p)
    return re.compile(rf"\s*{pattern}\s*[.!?]*\s*", re.IGNORECASE | re.DOTALL)


def _score(
    action: str, field_names: Iterable[str], case: UseCase, min_overlap: float
) -> tuple[float, dict[str, str]] | None:
    """Score a use case against an action; ``None`` when it does not match."""
    m = _template_regex(case.action).fullmatch(action)
    if m:
        return 1.0, {k: v.strip() for k, v in m.groupdict().items()}
    wanted = _words(_PLACEHOLDER.sub(" ", case.action))
    if not wanted:
        return None
    shared = len(wanted & _words(action))
    overlap = shared / len(wanted)
    if overlap < min_overlap or shared < min(2, len(wanted)):
        return None
    # Use cases whose placeholders are all data fields of the action rank higher.
    placeholders = {p.lower() for p in _PLACEHOLDER.findall(case.action)}
    names = {n.lower() for n in field_names}
    bonus = 0.05 if placeholders and placeholders <= names else 0.0
    return min(0.99, 0.9 * overlap + bonus), {}


def match_groundings(
    action: str,
    field_names: Iterable[str],
    groundings: Sequence[Grounding],
    *,
    limit: int = 3,
    min_overlap: float = 0.6,
) -> GroundingResult:
    """Pick the use cases of ``groundings`` that match an action.

    A use case matches when its template matches the whole action (each placeholder
    matches any text, case and spacing are ignored), or when at least ``min_overlap`` of
    the template's words appear in the action.

    Args:
        action: The submitted action text.
        field_names: The names of the action's data fields.
        groundings: Every grounding.
        limit: Use cases returned at most.
        min_overlap: Share of template words an action must contain to match loosely.

    Returns:
        The matches, best first, and the strict groundings that refuse the action.
    """
    names = list(field_names)
    found: list[GroundingMatch] = []
    for grounding in groundings:
        for case in grounding.use_cases:
            scored = _score(action, names, case, min_overlap)
            if scored is not None:
                found.append(GroundingMatch(grounding, case, scored[0], scored[1]))
    found.sort(key=lambda m: m.score, reverse=True)
    strict = [g for g in groundings if g.strict]
    violations: list[str] = []
    if strict and not any(m.grounding.strict for m in found):
        violations = [g.name for g in strict]
    return GroundingResult(matches=found[: max(limit, 0)], strict_violations=violations)


# --- the store ---------------------------------------------------------------------------


class GroundingStore:
    """The groundings of an installation, in the JetStream KV bucket ``grounding``."""

    def __init__(self, kv: Any) -> None:
        """Wrap an open KV bucket; use :meth:`open` to get one from a bus."""
        self._kv = kv

    @classmethod
    async def open(cls, bus: Bus) -> GroundingStore:
        """Open (creating when missing) the grounding bucket of ``bus``'s topology."""
        return cls(await bus.kv(BUCKET))

    async def apply(self, text: str) -> builtins.list[Grounding]:
        """Parse a YAML text and store its groundings, replacing those of the same names.

        Args:
            text: One or more grounding documents.

        Returns:
            The groundings stored.

        Raises:
            GroundingError: The text is not a valid grounding file (nothing is stored).
        """
        groundings = parse_groundings(text)
        for grounding in groundings:
            await self._kv.put(grounding.name, msgspec.json.encode(grounding))
        return groundings

    async def get(self, name: str) -> Grounding | None:
        """Return one grounding, or ``None`` when there is none of that name."""
        from nats.js.errors import KeyNotFoundError

        if not _NAME.match(name):
            return None
        try:
            entry = await self._kv.get(name)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        return msgspec.json.decode(entry.value, type=Grounding)

    async def list(self) -> builtins.list[Grounding]:
        """Return every grounding, sorted by name."""
        from nats.js.errors import NoKeysError

        try:
            keys = await self._kv.keys()
        except NoKeysError:
            return []
        groundings = []
        for key in sorted(keys):
            grounding = await self.get(key)
            if grounding is not None:
                groundings.append(grounding)
        return groundings

    async def remove(self, name: str) -> bool:
        """Delete a grounding; return whether it existed."""
        if await self.get(name) is None:
            return False
        await self._kv.delete(name)
        return True

    async def match(
        self,
        action: str,
        field_names: Iterable[str],
        *,
        limit: int = 3,
        extra: Sequence[Grounding] = (),
    ) -> GroundingResult:
        """Match an action against every stored grounding and ``extra`` ones.

        See :func:`match_groundings`; ``extra`` is typically
        :func:`service_examples_grounding` of the registered services.
        """
        groundings = [*await self.list(), *extra]
        return match_groundings(action, field_names, groundings, limit=limit)


SERVICE_EXAMPLES: Final = "service-examples"
"""Name of the grounding made of the registered services' example phrases."""


def service_examples_grounding(services: Iterable[ServiceRegistered]) -> list[Grounding]:
    """The services' example phrases as a grounding: each phrase a use case of its service.

    A service registered with ``examples=[...]`` (words its users use for it) then shows
    the model, as a worked example, which service an action worded that way needs.
    Empty when no service has examples.
    """
    cases = [
        UseCase(action=phrase, services=[s.service])
        for s in sorted(services, key=lambda s: s.service)
        for phrase in s.examples
    ]
    return [Grounding(name=SERVICE_EXAMPLES, use_cases=cases)] if cases else []


# --- entry points for the CLI ------------------------------------------------------------


async def apply_grounding(bus: Bus, text: str) -> builtins.list[Grounding]:
    """``orra grounding apply -f FILE``: store the groundings of a YAML text."""
    return await (await GroundingStore.open(bus)).apply(text)


async def list_groundings(bus: Bus) -> builtins.list[Grounding]:
    """``orra grounding ls``: every stored grounding, sorted by name."""
    return await (await GroundingStore.open(bus)).list()


async def remove_grounding(bus: Bus, name: str) -> bool:
    """``orra grounding rm NAME``: delete a grounding; return whether it existed."""
    return await (await GroundingStore.open(bus)).remove(name)
