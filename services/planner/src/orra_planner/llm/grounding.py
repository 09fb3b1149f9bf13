"""Domain grounding in the planner: which stored use cases match an action.

The document format, its checks and the KV store are shared with the gateway (which
stores them, ``/groundings``) in :mod:`orra_events.grounding`; this module matches an
action against them. Use cases whose action template matches the submitted action
(template placeholders match any text; otherwise enough shared words) go into the prompt
as worked examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from orra_events.errors import InvalidGrounding as GroundingError
from orra_events.grounding import (
    BUCKET,
    Grounding,
    UseCase,
    parse_groundings,
)
from orra_events.grounding import GroundingStore as SharedGroundingStore

if TYPE_CHECKING:
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
    "match_groundings",
    "parse_groundings",
    "service_examples_grounding",
]

_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS: Final = frozenset(
    {
        *("a", "an", "and", "the", "of", "for", "to", "in", "on", "at", "by", "with", "from"),
        *("into", "onto", "or", "our", "my", "your", "their", "its", "is", "are", "be"),
        *("this", "that", "these", "those", "it", "as", "new", "please"),
    }
)


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


class GroundingStore(SharedGroundingStore):
    """The stored groundings (:class:`orra_events.grounding.GroundingStore`), matched."""

    @classmethod
    async def open(cls, bus: Bus) -> GroundingStore:
        """Open (creating when missing) the grounding bucket of ``bus``'s topology."""
        return cls(await bus.kv(BUCKET))

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
