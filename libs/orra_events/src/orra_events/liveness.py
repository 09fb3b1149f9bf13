"""Whether a service has live instances: one definition for the planner, dispatcher and gateway.

Every SDK instance heartbeats every ``interval_s`` seconds (``ORRA_HEARTBEAT_INTERVAL_S``,
5) on ``service.heartbeat.<name>.<version token>``; the ``ORRA_HEARTBEATS`` stream keeps the
last beat of each subject. From the last beat and the registration, a service (or one
version of it) is:

* ``healthy``: a beat came within ``factor`` intervals (``ORRA_HEALTH_FACTOR``, 3);
* ``unhealthy``: none came for longer, but for less than ``down_after_s``: the dispatcher
  holds its tasks (they wait for it to come back, up to the pause grace);
* ``down``: no live instance for ``down_after_s`` (``ORRA_SERVICE_DOWN_AFTER_S``, 300):
  the planner leaves it out of new plans (the refusal says so) and ``orra services ls``
  shows ``down``. Without any beat, the registration is the last sign of life;
* ``unknown``: registered less than ``down_after_s`` ago and never heard from (a test
  double, or an instance that has not beaten yet).

Heartbeat times are the sender's clock (``at``): clocks must agree well within an interval.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, TypeVar

from orra_events.errors import InvalidSetting, InvalidVersion
from orra_events.runtime import env_float
from orra_events.versions import canonical_version

if TYPE_CHECKING:
    from orra_events.events import ServiceHeartbeat

__all__ = [
    "DEFAULT_DOWN_AFTER_S",
    "DEFAULT_HEALTH_FACTOR",
    "DOWN_AFTER_ENV",
    "HEALTH_FACTOR_ENV",
    "Beat",
    "Liveness",
    "LivenessSettings",
    "ServiceHealth",
    "down_reason",
    "format_duration",
    "health_of",
    "is_unhealthy",
]

DEFAULT_HEALTH_FACTOR: Final = 3.0
"""Missed heartbeat intervals after which a service is unhealthy."""

DEFAULT_DOWN_AFTER_S: Final = 300.0
"""Seconds without a live instance after which a service is down."""

HEALTH_FACTOR_ENV: Final = "ORRA_HEALTH_FACTOR"
DOWN_AFTER_ENV: Final = "ORRA_SERVICE_DOWN_AFTER_S"
_OLD_FACTOR_ENV: Final = "ORRA_DISPATCHER_HEALTH_FACTOR"

_K = TypeVar("_K")

ServiceHealth = Literal["healthy", "unhealthy", "down", "unknown"]
"""A service's (or one version's) health; see the module's documentation."""


@dataclass(frozen=True, slots=True)
class LivenessSettings:
    """The two thresholds of liveness.

    Attributes:
        factor: ``ORRA_HEALTH_FACTOR``: missed intervals after which a service is
            unhealthy (``ORRA_DISPATCHER_HEALTH_FACTOR``, its older name, is read too).
        down_after_s: ``ORRA_SERVICE_DOWN_AFTER_S``: seconds without a live instance after
            which a service is down.
    """

    factor: float = DEFAULT_HEALTH_FACTOR
    down_after_s: float = DEFAULT_DOWN_AFTER_S

    def __post_init__(self) -> None:
        if not self.factor > 0:
            raise InvalidSetting(f"{HEALTH_FACTOR_ENV}={self.factor} must be positive")
        if not self.down_after_s > 0:
            raise InvalidSetting(f"{DOWN_AFTER_ENV}={self.down_after_s} must be positive")

    @classmethod
    def from_env(cls) -> LivenessSettings:
        """Read the thresholds from the environment (defaults: 3 intervals, 300 s).

        Raises:
            InvalidSetting: a value is not a positive number (the message names it).
        """
        old = env_float(_OLD_FACTOR_ENV, DEFAULT_HEALTH_FACTOR)
        factor = env_float(HEALTH_FACTOR_ENV, old) if os.environ.get(HEALTH_FACTOR_ENV) else old
        return cls(factor=factor, down_after_s=env_float(DOWN_AFTER_ENV, DEFAULT_DOWN_AFTER_S))


def is_unhealthy(
    last_beat_at: float, interval_s: float, now: float, factor: float = DEFAULT_HEALTH_FACTOR
) -> bool:
    """Whether no heartbeat came for more than ``factor`` intervals before ``now``."""
    return now - last_beat_at > factor * interval_s


def health_of(
    *,
    last_beat_at: float | None,
    interval_s: float | None,
    registered_at: float | None,
    now: float,
    settings: LivenessSettings,
) -> ServiceHealth:
    """The health of a service (or version) from its last beat and its registration."""
    if last_beat_at is not None and interval_s is not None:
        if not is_unhealthy(last_beat_at, interval_s, now, settings.factor):
            return "healthy"
        return "down" if now - last_beat_at >= settings.down_after_s else "unhealthy"
    if registered_at is not None and now - registered_at >= settings.down_after_s:
        return "down"
    return "unknown"


def format_duration(seconds: float) -> str:
    """A duration for people: ``45 s``, ``5 min``, ``2 h 10 min``, ``3 days``."""
    s = max(0, round(seconds))
    if s < 120:
        return f"{s} s"
    minutes = s // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def down_reason(name: str, last_seen: float, now: float) -> str:
    """Why a down service is left out of plans.

    For example ``PaymentService has had no live instance for 5 min``.
    """
    return f"{name} has had no live instance for {format_duration(now - last_seen)}"


@dataclass(frozen=True, slots=True)
class Beat:
    """The last heartbeat of a service version (or of a service, any version).

    Attributes:
        at: When it was sent (sender's clock).
        interval_s: The interval its instance announced.
        instance_id: The instance that sent it.
    """

    at: float
    interval_s: float
    instance_id: str


class Liveness:
    """The last heartbeat of each service and version, folded from heartbeats (no I/O)."""

    def __init__(self) -> None:
        self._versioned: dict[tuple[str, str], Beat] = {}
        self._unversioned: dict[str, Beat] = {}
        self._any: dict[str, Beat] = {}

    def observe(self, event: ServiceHeartbeat) -> bool:
        """Take a heartbeat into account; return whether it is its service's newest.

        A heartbeat without a version (an older SDK) stands for every version of its
        service; one with an unreadable version is ignored (the follower parks it).
        """
        beat = Beat(event.at, event.interval_s, event.instance_id)
        if event.version is None:
            _keep_newest(self._unversioned, event.service, beat)
        else:
            try:
                version = canonical_version(event.version)
            except InvalidVersion:
                return False
            _keep_newest(self._versioned, (event.service, version), beat)
        return _keep_newest(self._any, event.service, beat)

    def last_beat(self, name: str, version: str | None = None) -> Beat | None:
        """The last beat of ``name`` at ``version`` (canonical), or of any version."""
        if version is None:
            return self._any.get(name)
        own = self._versioned.get((name, version))
        legacy = self._unversioned.get(name)
        if own is None or legacy is None:
            return own or legacy
        return own if own.at >= legacy.at else legacy

    def health(
        self,
        name: str,
        version: str | None,
        *,
        registered_at: float | None,
        now: float,
        settings: LivenessSettings,
    ) -> ServiceHealth:
        """:func:`health_of` a service version (``None``: the service, any version)."""
        beat = self.last_beat(name, version)
        return health_of(
            last_beat_at=beat.at if beat is not None else None,
            interval_s=beat.interval_s if beat is not None else None,
            registered_at=registered_at,
            now=now,
            settings=settings,
        )

    def names(self) -> list[str]:
        """Every service that has beaten."""
        return sorted(self._any)


def _keep_newest(beats: dict[_K, Beat], key: _K, beat: Beat) -> bool:
    previous = beats.get(key)
    if previous is not None and previous.at > beat.at:
        return False
    beats[key] = beat
    return True
