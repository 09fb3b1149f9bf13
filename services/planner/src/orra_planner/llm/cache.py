"""The plan cache: reuse a validated plan for the same action with new data values.

A cached plan is keyed by

* the normalised action text (lowercase, punctuation removed, whitespace collapsed),
* the sorted names of the action's data fields, and
* a fingerprint of the registered services (name and schema hash of each),

so a change to any service's schema, or a differently shaped action, misses. The value is
the plan as a *template*: every input value that exactly equals one of the action's data
values is recorded as a slot naming that data field; a hit fills the slots with the new
action's values. The caller validates the filled plan again before using it.

Entries live in the JetStream KV bucket ``plan_cache``, so they survive restarts and every
planner replica shares them. Optionally, a miss looks for an entry of the same shape whose
action embedding is similar enough (cosine similarity at or above a threshold).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec

from orra_events import Plan, PlanTask, UncoveredPart

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from orra_events import Bus, DataField, ServiceRegistered

__all__ = [
    "BUCKET",
    "CacheKey",
    "CachedPlan",
    "MemoryKv",
    "PlanCache",
    "Slot",
    "cache_key",
    "fill_template",
    "make_template",
    "normalise_action",
    "services_fingerprint",
]

BUCKET: Final = "plan_cache"
"""Name of the KV bucket (namespaced by the topology) that holds cached plans."""

FORMAT: Final = "v1"
"""Version of the key and value format; part of every key."""

DEFAULT_TTL_S: Final = 30 * 24 * 3600.0
"""How long an entry lives when the bucket is created by :meth:`PlanCache.open`."""

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")


def normalise_action(text: str) -> str:
    """Lowercase, strip punctuation and collapse whitespace: what the cache key sees."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _PUNCTUATION.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def _sha(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def services_fingerprint(services: Iterable[ServiceRegistered]) -> str:
    """A hash of the registered services' names and schemas.

    Uses each service's ``schema_hash``, or a hash of its input and output schemas when
    the service did not send one.
    """
    parts = sorted(
        (s.service, s.schema_hash or _sha([s.input_schema, s.output_schema])) for s in services
    )
    return _sha(parts)


@dataclass(frozen=True)
class CacheKey:
    """Where a plan is cached.

    Attributes:
        key: The KV key: ``v1.<shape>.<action hash>``.
        shape: Hash of the data field names and the services fingerprint; entries that
            share it are candidates for semantic matching.
        action: The normalised action text.
        fields: The sorted data field names.
    """

    key: str
    shape: str
    action: str
    fields: tuple[str, ...]


def cache_key(
    action: str, field_names: Iterable[str], services: Iterable[ServiceRegistered]
) -> CacheKey:
    """Compute the cache key of an action for the given registered services."""
    fields = tuple(sorted(set(field_names)))
    shape = _sha([list(fields), services_fingerprint(services)])[:32]
    normalised = normalise_action(action)
    return CacheKey(
        key=f"{FORMAT}.{shape}.{_sha(normalised)[:32]}",
        shape=shape,
        action=normalised,
        fields=fields,
    )


class Slot(msgspec.Struct, frozen=True):
    """An input value of a cached plan that comes from a data field.

    Attributes:
        task: The task id.
        path: Keys and indexes from the task's input to the value.
        field: The data field whose value goes there.
    """

    task: str
    path: list[str | int]
    field: str


class CachedPlan(msgspec.Struct, frozen=True, kw_only=True):
    """A cache entry: a plan template and where it came from."""

    action: str
    fields: list[str]
    tasks: list[PlanTask]
    parallel_groups: list[list[str]]
    slots: list[Slot]
    model: str | None = None
    created_at: float = 0.0
    embedding: list[float] | None = None
    parts: list[str] = msgspec.field(default_factory=list)
    uncovered: list[UncoveredPart] = msgspec.field(default_factory=list)


def _canonical(value: Any) -> str:
    # Type-aware equality: 1, 1.0 and True are different data values.
    return type(value).__name__ + ":" + json.dumps(value, sort_keys=True, default=str)


def make_template(
    plan: Plan, data: Sequence[DataField], *, action: str = "", model: str | None = None
) -> CachedPlan | None:
    """Turn a validated plan into a cache entry.

    Args:
        plan: The plan.
        data: The data fields of the action it was made for.
        action: The normalised action text (kept for people and semantic matching).
        model: The model that made the plan.

    Returns:
        The entry, or ``None`` when the plan cannot be templated safely: a value used in
        the plan equals the values of two different data fields.
    """
    by_value: dict[str, set[str]] = {}
    for d in data:
        by_value.setdefault(_canonical(d.value), set()).add(d.field)
    slots: list[Slot] = []
    ambiguous = False

    def walk(task: str, value: Any, path: list[str | int]) -> None:
        nonlocal ambiguous
        owners = by_value.get(_canonical(value))
        if owners and path:
            if len(owners) > 1:
                ambiguous = True
            else:
                slots.append(Slot(task, list(path), next(iter(owners))))
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(task, v, [*path, k])
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(task, v, [*path, i])

    for t in plan.tasks:
        walk(t.id, t.input, [])
    if ambiguous:
        return None
    return CachedPlan(
        action=action,
        fields=sorted({d.field for d in data}),
        tasks=list(plan.tasks),
        parallel_groups=[list(g) for g in plan.parallel_groups],
        slots=slots,
        model=model,
        created_at=time.time(),
        parts=list(plan.parts),
        uncovered=list(plan.uncovered),
    )


def fill_template(entry: CachedPlan, data: Sequence[DataField]) -> Plan | None:
    """Put the new data values into a cached plan.

    Returns:
        The plan, or ``None`` when a slot names a field the new data lacks.
    """
    values = {d.field: d.value for d in data}
    inputs: dict[str, Any] = {
        t.id: msgspec.json.decode(msgspec.json.encode(t.input)) for t in entry.tasks
    }
    for slot in entry.slots:
        if slot.field not in values or slot.task not in inputs or not slot.path:
            return None
        target: Any = inputs[slot.task]
        try:
            for step in slot.path[:-1]:
                target = target[step]
            target[slot.path[-1]] = values[slot.field]
        except (KeyError, IndexError, TypeError):
            return None
    return Plan(
        tasks=[
            PlanTask(id=t.id, service=t.service, input=inputs[t.id], serves=t.serves)
            for t in entry.tasks
        ],
        parallel_groups=[list(g) for g in entry.parallel_groups],
        parts=list(entry.parts),
        uncovered=list(entry.uncovered),
    )


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b) or not a:
        return 0.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class _MemoryEntry:
    def __init__(self, key: str, value: bytes) -> None:
        self.key = key
        self.value = value


class MemoryKv:
    """An in-process stand-in for a KV bucket (one process, lost on restart)."""

    def __init__(self) -> None:
        """Create an empty store."""
        self._data: dict[str, bytes] = {}

    async def get(self, key: str) -> _MemoryEntry:
        """Return the entry of ``key``; raise ``KeyNotFoundError`` when missing."""
        from nats.js.errors import KeyNotFoundError

        if key not in self._data:
            raise KeyNotFoundError
        return _MemoryEntry(key, self._data[key])

    async def put(self, key: str, value: bytes) -> int:
        """Store ``value`` under ``key``."""
        self._data[key] = value
        return len(self._data)

    async def delete(self, key: str) -> bool:
        """Delete ``key``."""
        self._data.pop(key, None)
        return True

    async def keys(self, filters: list[str] | None = None) -> list[str]:
        """Every key (containing one of ``filters``); raise ``NoKeysError`` when none."""
        from nats.js.errors import NoKeysError

        keys = [k for k in self._data if not filters or any(f in k for f in filters)]
        if not keys:
            raise NoKeysError
        return keys


class PlanCache:
    """Cached plan templates in a KV bucket.

    Args:
        kv: An open JetStream KV bucket (or a :class:`MemoryKv`).
    """

    def __init__(self, kv: Any) -> None:
        """Wrap an open bucket; see :meth:`open` and :meth:`memory`."""
        self._kv = kv

    @classmethod
    async def open(cls, bus: Bus, *, ttl_s: float | None = DEFAULT_TTL_S) -> PlanCache:
        """Open (creating when missing) the ``plan_cache`` bucket of ``bus``'s topology.

        Args:
            bus: The connected bus.
            ttl_s: Lifetime of entries, applied when the bucket is created.
        """
        return cls(await bus.kv(BUCKET, ttl_s=ttl_s))

    @classmethod
    def memory(cls) -> PlanCache:
        """A cache in this process's memory only (for tests and single-process tools)."""
        return cls(MemoryKv())

    async def _read(self, key: str) -> CachedPlan | None:
        from nats.js.errors import KeyNotFoundError

        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        try:
            return msgspec.json.decode(entry.value, type=CachedPlan)
        except msgspec.DecodeError:
            return None

    async def get(self, key: CacheKey) -> CachedPlan | None:
        """Return the entry of exactly this key, or ``None``."""
        return await self._read(key.key)

    async def find_similar(
        self, key: CacheKey, embedding: Sequence[float], threshold: float
    ) -> CachedPlan | None:
        """Return the most similar entry of the same shape at or above ``threshold``."""
        from nats.js.errors import NoKeysError

        prefix = f"{FORMAT}.{key.shape}."
        try:
            keys = await self._kv.keys(filters=[prefix])
        except NoKeysError:
            return None
        best: tuple[float, CachedPlan] | None = None
        for k in keys:
            if not k.startswith(prefix) or k == key.key:
                continue
            entry = await self._read(k)
            if entry is None or entry.embedding is None:
                continue
            score = _cosine(embedding, entry.embedding)
            if score >= threshold and (best is None or score > best[0]):
                best = (score, entry)
        return best[1] if best else None

    async def put(
        self,
        key: CacheKey,
        plan: Plan,
        data: Sequence[DataField],
        *,
        model: str | None = None,
        embedding: Sequence[float] | None = None,
    ) -> bool:
        """Store a validated plan as a template; return whether it could be templated."""
        entry = make_template(plan, data, action=key.action, model=model)
        if entry is None:
            return False
        if embedding is not None:
            entry = msgspec.structs.replace(entry, embedding=list(embedding))
        await self._kv.put(key.key, msgspec.json.encode(entry))
        return True

    async def invalidate(self, key: CacheKey) -> None:
        """Delete an entry (for example when its filled plan no longer validates)."""
        await self._kv.delete(key.key)
