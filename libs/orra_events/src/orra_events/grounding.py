"""Domain groundings: the document format, its checks and the KV bucket that stores them.

A grounding is a YAML (or JSON) document of worked examples the LLM planner shows the
model for actions of one domain::

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

The gateway stores them (``/groundings``, admin keys) and the planner reads them, both
through :class:`GroundingStore`; the checks here are the only ones, so a document the
gateway accepts is one the planner can use. How the planner matches them against an
action lives with the planner (``orra_planner.llm.grounding``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

import msgspec

from orra_events.errors import InvalidGrounding

if TYPE_CHECKING:
    import builtins
    from collections.abc import Sequence

    from orra_events.bus import Bus

__all__ = [
    "BUCKET",
    "Grounding",
    "GroundingStore",
    "UseCase",
    "check_grounding_name",
    "groundings_from_documents",
    "parse_groundings",
]

BUCKET: Final = "grounding"
"""Name of the KV bucket (namespaced by the topology) that holds the groundings."""

_NAME: Final = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")
_KEY_ALIASES: Final = {
    "use-cases": "use_cases",
    "useCases": "use_cases",
    "usecases": "use_cases",
    "examples": "use_cases",
}


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


def check_grounding_name(name: str) -> bool:
    """Whether ``name`` can name a grounding (letters, digits, ``_``, ``-``, ``.``)."""
    return bool(_NAME.match(name))


def _normalise_keys(doc: dict[Any, Any]) -> dict[str, Any]:
    return {_KEY_ALIASES.get(str(k), str(k)): v for k, v in doc.items()}


def _grounding(doc: object, index: int) -> Grounding:
    where = f"document {index + 1}"
    if not isinstance(doc, dict):
        raise InvalidGrounding(f"{where}: expected a mapping, got {type(doc).__name__}", index)
    try:
        grounding = msgspec.convert(_normalise_keys(doc), Grounding, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidGrounding(f"{where}: {exc}", index) from None
    if not check_grounding_name(grounding.name):
        raise InvalidGrounding(
            f"{where}: name {grounding.name!r} must be letters, digits, '_', '-', '.'", index
        )
    if not grounding.use_cases:
        raise InvalidGrounding(f"grounding {grounding.name!r}: no use cases", index)
    if any(not case.action.strip() for case in grounding.use_cases):
        raise InvalidGrounding(f"grounding {grounding.name!r}: a use case has no action", index)
    return grounding


def groundings_from_documents(docs: Sequence[object]) -> list[Grounding]:
    """Check decoded grounding documents (mappings, as YAML or JSON gives them).

    Args:
        docs: The documents, in order.

    Returns:
        The groundings, in order.

    Raises:
        InvalidGrounding: None given, a document is not a valid grounding (its ``index``
            says which), or two share a name.
    """
    if not docs:
        raise InvalidGrounding("no grounding given")
    groundings = [_grounding(doc, i) for i, doc in enumerate(docs)]
    names = [g.name for g in groundings]
    if len(set(names)) != len(names):
        raise InvalidGrounding("two groundings have the same name")
    return groundings


def parse_groundings(text: str) -> list[Grounding]:
    """Parse a YAML (or JSON) text of one or more grounding documents.

    Args:
        text: The file's content; several documents may be separated by ``---``.

    Raises:
        InvalidGrounding: The text is not YAML, holds no grounding, or a document is not
            a valid grounding.
    """
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidGrounding(f"not valid YAML: {exc}") from None
    if not docs:
        raise InvalidGrounding("the file holds no grounding")
    return groundings_from_documents(docs)


class GroundingStore:
    """The groundings of an installation, in the JetStream KV bucket ``grounding``."""

    def __init__(self, kv: Any) -> None:
        """Wrap an open KV bucket; use :meth:`open` to get one from a bus."""
        self._kv = kv

    @classmethod
    async def open(cls, bus: Bus) -> GroundingStore:
        """Open (creating when missing) the grounding bucket of ``bus``'s topology."""
        return cls(await bus.kv(BUCKET))

    async def put(self, groundings: Sequence[Grounding]) -> None:
        """Store groundings, replacing those of the same names."""
        for grounding in groundings:
            await self._kv.put(grounding.name, msgspec.json.encode(grounding))

    async def get(self, name: str) -> Grounding | None:
        """Return one grounding, or ``None`` when there is none of that name."""
        from nats.js.errors import KeyNotFoundError

        if not check_grounding_name(name):
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
