"""The rules of the service registry, written once for the SDK and every registry follower.

**One definition per name and version.** A service's *definition* is everything a plan
relies on: its description, example phrases, input and output schemas, ``revertible``,
``retry_on_timeout``, ``kind`` and project. The first registration of a (name, version) is
the one that counts; a later registration of the same name and version with another
definition is refused, whoever sends it and whenever:

* the broker keeps one message per registration subject,
  ``service.registered.<name>.<version token>``, and refuses a second one (the
  ``ORRA_SERVICES`` stream discards new messages per subject), so nothing already
  registered is replaced, across restarts and retention;
* the SDK appends its registration with an expected last subject sequence of 0 and, when
  the subject is taken, compares the stored definition with its own: the same is fine
  (another replica), another one stops the process with :func:`conflict_message`;
* every follower (planner, dispatcher, gateway) folds registrations with
  :class:`RegistrationBook`, which applies the same rule in stream order, so a
  registration published elsewhere (an old SDK's ``service.registered.<name>``, a
  hand-written publisher) cannot replace a definition either: it is parked on the
  dead-letter subject with its reason.

**Versions.** Dotted numbers (:mod:`orra_events.versions`). A higher version replaces a
lower one for new plans; tasks already planned keep the version they were planned against.

**Examples.** Up to :data:`MAX_EXAMPLES` phrases of what the service does, in its users'
words, each one line of 1 to :data:`MAX_EXAMPLE_CHARS` characters with at least one letter
or digit, no two alike (:func:`example_problems` names each problem).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from orra_events.errors import InvalidVersion
from orra_events.gates import GateSyntaxError, parse_gate
from orra_events.versions import Version, canonical_version, parse_version

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from orra_events.events import ServiceRegistered

__all__ = [
    "MAX_EXAMPLES",
    "MAX_EXAMPLE_CHARS",
    "Registration",
    "RegistrationBook",
    "Verdict",
    "conflict_message",
    "definition_differences",
    "definition_hash",
    "example_problems",
    "normalise_examples",
    "registration_hash",
    "registration_problem",
    "same_definition",
]

MAX_EXAMPLES: Final = 20
"""Example phrases a service may declare."""

MAX_EXAMPLE_CHARS: Final = 200
"""Characters an example phrase may have."""


# --- examples ------------------------------------------------------------------------------


def _fold(phrase: str) -> str:
    return " ".join(phrase.split()).casefold()


def example_problems(examples: object) -> list[str]:
    """What is wrong with a list of example phrases, one message per problem (empty: fine).

    Each message names the phrase at fault by its index (``examples[2] ...``).
    """
    if isinstance(examples, str | bytes) or not isinstance(examples, list | tuple):
        return [
            f"examples must be a list of phrases (strings), got {type(examples).__name__}"
            + (": wrap the phrase in a list" if isinstance(examples, str) else "")
        ]
    problems: list[str] = []
    if len(examples) > MAX_EXAMPLES:
        problems.append(f"examples has {len(examples)} phrases; at most {MAX_EXAMPLES}")
    seen: dict[str, int] = {}
    for i, phrase in enumerate(examples):
        where = f"examples[{i}]"
        if not isinstance(phrase, str):
            problems.append(f"{where} is {type(phrase).__name__}, not a phrase (a string)")
            continue
        if not phrase.strip():
            problems.append(f"{where} is empty")
            continue
        if len(phrase) > MAX_EXAMPLE_CHARS:
            problems.append(
                f"{where} has {len(phrase)} characters; at most {MAX_EXAMPLE_CHARS} "
                "(one short phrase per example)"
            )
        if any(unicodedata.category(c).startswith("C") for c in phrase):
            problems.append(f"{where} contains a line break or another control character")
        if not any(c.isalnum() for c in phrase):
            problems.append(f"{where} has no letter or digit: {phrase!r}")
        key = _fold(phrase)
        if key in seen:
            problems.append(f"{where} repeats examples[{seen[key]}] ({phrase.strip()!r})")
        else:
            seen[key] = i
    return problems


def normalise_examples(examples: Iterable[str]) -> list[str]:
    """Example phrases with their spacing normalised (stripped, runs of spaces as one)."""
    return [" ".join(phrase.split()) for phrase in examples]


# --- definitions ---------------------------------------------------------------------------


def definition_hash(
    *,
    name: str,
    description: str,
    input_schema: Mapping[str, Any],
    output_schema: Mapping[str, Any],
    revertible: bool,
    version: str,
    kind: str,
    examples: Iterable[str] = (),
    retry_on_timeout: bool = True,
    approval_when: str | None = None,
) -> str:
    """A short, stable hash of a service definition (canonical JSON, SHA-256).

    The SDK sends it as ``schema_hash``; followers recompute it from the registration
    itself and never trust the one sent. ``version`` is hashed in its canonical form;
    ``examples`` only when there are some, and ``retry_on_timeout`` only when false, so a
    definition without them hashes as it did before they existed (``approval_when`` too:
    only when set).

    Raises:
        InvalidVersion: ``version`` is not a version.
    """
    definition: dict[str, Any] = {
        "name": name,
        "description": description,
        "input_schema": input_schema,
        "output_schema": output_schema,
        "revertible": revertible,
        "version": canonical_version(version),
        "kind": kind,
    }
    phrases = list(examples)
    if phrases:
        definition["examples"] = phrases
    if not retry_on_timeout:
        definition["retry_on_timeout"] = False
    if approval_when is not None:
        definition["approval_when"] = approval_when
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def registration_hash(event: ServiceRegistered) -> str:
    """:func:`definition_hash` of a registration, computed from its fields.

    Raises:
        InvalidVersion: its version is not a version.
    """
    return definition_hash(
        name=event.service,
        description=event.description,
        input_schema=event.input_schema,
        output_schema=event.output_schema,
        revertible=event.revertible,
        version=event.version,
        kind=event.kind,
        examples=event.examples,
        retry_on_timeout=event.retry_on_timeout,
        approval_when=event.approval_when,
    )


def registration_problem(event: ServiceRegistered) -> str | None:
    """Why a registration breaks the registry's rules on its own (``None``: it does not).

    Checks the version and the example phrases; a conflict with an earlier registration
    is :class:`RegistrationBook`'s business.
    """
    problems: list[str] = []
    try:
        parse_version(event.version)
    except InvalidVersion as exc:
        problems.append(str(exc))
    problems.extend(example_problems(event.examples))
    if event.approval_when is not None:
        try:
            parse_gate(event.approval_when)
        except GateSyntaxError as exc:
            problems.append(f"approval condition {event.approval_when!r}: {exc}")
    if not problems:
        return None
    return f"registration of {event.service} refused: " + "; ".join(problems)


def same_definition(a: ServiceRegistered, b: ServiceRegistered) -> bool:
    """Whether two registrations of one name and version declare the same definition."""
    return a.project == b.project and registration_hash(a) == registration_hash(b)


def definition_differences(a: ServiceRegistered, b: ServiceRegistered) -> list[str]:
    """What differs between two definitions, in words (``["input schema", "description"]``)."""
    fields = (
        ("project", a.project, b.project),
        ("description", a.description, b.description),
        ("input schema", a.input_schema, b.input_schema),
        ("output schema", a.output_schema, b.output_schema),
        ("revertible", a.revertible, b.revertible),
        ("kind", a.kind, b.kind),
        ("examples", a.examples, b.examples),
        ("retry on timeout", a.retry_on_timeout, b.retry_on_timeout),
        ("approval condition", a.approval_when, b.approval_when),
    )
    return [label for label, x, y in fields if x != y]


def conflict_message(
    registered: ServiceRegistered,
    refused: ServiceRegistered,
    *,
    versions: Iterable[str] = (),
) -> str:
    """The message of a refused registration: the conflict, and the two ways out.

    Args:
        registered: The registration that counts (the first of its name and version).
        refused: The registration refused.
        versions: Every registered version of the name, if known, for the suggestion.
    """
    name = refused.service
    version = canonical_version(refused.version)
    differs = definition_differences(registered, refused) or ["definition"]
    known = sorted({canonical_version(v) for v in versions} | {version}, key=parse_version)
    above = (parse_version(known[-1])[0] + 1,)
    suggestion = ".".join(str(n) for n in above)
    listed = f" (registered: {', '.join(known)})" if len(known) > 1 else ""
    return (
        f"service {name} version {version} is already registered with another definition "
        f"({_join(differs)} {'differs' if len(differs) == 1 else 'differ'}); one name and "
        f"version has one definition, so this registration is refused and the registered "
        f"one stays. Fix: give this service another name, or raise its version above every "
        f'registered one (version="{suggestion}"{listed}) to replace it for new plans.'
    )


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --- the book ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Registration:
    """A registration that counts: the first of its name and version.

    Attributes:
        event: The registration.
        version: Its canonical version.
        numbers: Its version's numbers, for ordering.
        digest: Its definition hash (:func:`registration_hash`).
    """

    event: ServiceRegistered
    version: str
    numbers: Version
    digest: str

    @property
    def name(self) -> str:
        """The service name."""
        return self.event.service

    @property
    def registered_at(self) -> float:
        """When it was registered (the registration's ``at``)."""
        return self.event.at


@dataclass(frozen=True, slots=True)
class Verdict:
    """What :meth:`RegistrationBook.apply` made of a registration.

    Attributes:
        accepted: It is a new (name, version): it counts from now on.
        reason: Why it was refused (``None`` when not refused). A repeat of the
            registered definition is neither accepted nor refused.
    """

    accepted: bool = False
    reason: str | None = None

    @property
    def refused(self) -> bool:
        """Whether the registration was refused (park it with :attr:`reason`)."""
        return self.reason is not None


class RegistrationBook:
    """Every service's registrations that count, by name and version (pure, no I/O).

    Feed it every registration in stream order; it keeps the first of each name and
    version and refuses a different definition of one already kept.
    """

    def __init__(self) -> None:
        self._names: dict[str, dict[str, Registration]] = {}
        self._sorted: dict[str, list[Registration]] = {}

    def apply(self, event: ServiceRegistered) -> Verdict:
        """Take one registration into account (see the module's rules)."""
        problem = registration_problem(event)
        if problem is not None:
            return Verdict(reason=problem)
        version = canonical_version(event.version)
        versions = self._names.setdefault(event.service, {})
        kept = versions.get(version)
        if kept is None:
            versions[version] = Registration(
                event=event,
                version=version,
                numbers=parse_version(version),
                digest=registration_hash(event),
            )
            self._sorted.pop(event.service, None)
            return Verdict(accepted=True)
        if kept.event.project == event.project and kept.digest == registration_hash(event):
            return Verdict()
        return Verdict(reason=conflict_message(kept.event, event, versions=versions))

    def versions(self, name: str) -> list[Registration]:
        """The registrations of ``name``, highest version first (do not modify the list)."""
        ordered = self._sorted.get(name)
        if ordered is None:
            registered = self._names.get(name, {}).values()
            ordered = sorted(registered, key=lambda r: r.numbers, reverse=True)
            self._sorted[name] = ordered
        return ordered

    def get(self, name: str, version: str) -> Registration | None:
        """The registration of ``name`` at ``version`` (any spelling of it), if any."""
        try:
            canonical = canonical_version(version)
        except InvalidVersion:
            return None
        return self._names.get(name, {}).get(canonical)

    def latest(self, name: str) -> Registration | None:
        """The highest registered version of ``name``."""
        versions = self.versions(name)
        return versions[0] if versions else None

    @property
    def names(self) -> list[str]:
        """Every registered service name, sorted."""
        return sorted(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names
