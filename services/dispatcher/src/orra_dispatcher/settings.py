"""Settings of the dispatcher, read once from ``ORRA_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from orra_dispatcher.domain import Policy
from orra_dispatcher.errors import SettingsError
from orra_events.liveness import LivenessSettings
from orra_events.runtime import env_float, env_int

if TYPE_CHECKING:
    from orra_events import ExecutionMode

__all__ = ["DispatcherSettings"]


@dataclass(frozen=True)
class DispatcherSettings:
    """How the dispatcher retries, times out, releases tasks and uses the broker.

    Attributes:
        max_attempts: ``ORRA_DISPATCHER_MAX_ATTEMPTS``, attempts per task (first included).
        retry_base_s: ``ORRA_DISPATCHER_RETRY_BASE_S``, delay before the 2nd attempt;
            doubles per attempt.
        retry_max_s: ``ORRA_DISPATCHER_RETRY_MAX_S``, upper bound of a retry delay.
        retry_jitter: ``ORRA_DISPATCHER_RETRY_JITTER``, fraction (0..1) by which a delay is
            shortened, deterministically per task, to spread retries.
        task_timeout_s: ``ORRA_DISPATCHER_TASK_TIMEOUT_S``, per-attempt timeout when the
            plan does not set one.
        mode: ``ORRA_EXECUTION_MODE``, ``groups`` (default) or ``eager``, when the plan does
            not set one.
        concurrency: ``ORRA_DISPATCHER_CONCURRENCY``, orchestrations processed at once by
            one process (each orchestration's inputs are processed one at a time).
        max_ack_pending: ``ORRA_DISPATCHER_MAX_ACK_PENDING``, unacknowledged messages the
            broker lets one consumer have.
        ack_wait_s: ``ORRA_DISPATCHER_ACK_WAIT_S``, redelivery delay of an unacknowledged
            message (a crashed replica's messages).
        max_deliver: ``ORRA_DISPATCHER_MAX_DELIVER``, deliveries before a message that keeps
            failing is parked on the dead-letter subject.
        sweep_interval_s: ``ORRA_DISPATCHER_SWEEP_S``, how often stored snapshots are
            scanned to arm the timers of orchestrations this process did not load (another
            replica's, after it died); 0 disables the periodic sweep.
        comp_max_attempts: ``ORRA_DISPATCHER_COMP_MAX_ATTEMPTS``, attempts per compensation
            before it is abandoned for an operator.
        pause_grace_s: ``ORRA_DISPATCHER_PAUSE_GRACE_S``, how long tasks may wait for an
            unhealthy service before the orchestration fails, unless the action says.
        health_factor: ``ORRA_HEALTH_FACTOR`` (or its older name
            ``ORRA_DISPATCHER_HEALTH_FACTOR``), missed heartbeat intervals after which a
            service is unhealthy; one definition with the planner and the gateway
            (:mod:`orra_events.liveness`).
        health_check_s: ``ORRA_DISPATCHER_HEALTH_CHECK_S``, how often service health is
            re-evaluated.
        tombstone_ttl_s: ``ORRA_DISPATCHER_TOMBSTONE_TTL_S``, how long the marker of an
            ended orchestration stays in the snapshot bucket (0: forever, as before). Past
            it the end is known from the orchestration's terminal event in the log; a short
            life keeps the bucket, and so start-up and sweeps, to the orchestrations in
            flight.
        approval_timeout_s: ``ORRA_APPROVAL_TIMEOUT_S``, how long a plan submitted to
            preview, or a task held by its service's approval gate, waits for a decision
            before it is rejected as expired (default one hour).
    """

    max_attempts: int = 3
    retry_base_s: float = 0.5
    retry_max_s: float = 30.0
    retry_jitter: float = 0.2
    task_timeout_s: float = 30.0
    mode: ExecutionMode = "groups"
    concurrency: int = 512
    max_ack_pending: int = 4096
    ack_wait_s: float = 30.0
    max_deliver: int = 20
    sweep_interval_s: float = 15.0
    comp_max_attempts: int = 5
    pause_grace_s: float = 300.0
    health_factor: float = 3.0
    health_check_s: float = 0.5
    tombstone_ttl_s: float = 30.0
    approval_timeout_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.mode not in ("groups", "eager"):
            raise SettingsError(
                f"ORRA_EXECUTION_MODE must be 'groups' or 'eager', not {self.mode!r}"
            )
        if self.max_attempts < 1:
            raise SettingsError("ORRA_DISPATCHER_MAX_ATTEMPTS must be at least 1")
        if self.retry_base_s < 0 or self.retry_max_s < 0 or self.task_timeout_s <= 0:
            raise SettingsError("dispatcher delays and timeouts must be positive")
        if not 0.0 <= self.retry_jitter <= 1.0:
            raise SettingsError("ORRA_DISPATCHER_RETRY_JITTER must be between 0 and 1")
        if self.comp_max_attempts < 1:
            raise SettingsError("ORRA_DISPATCHER_COMP_MAX_ATTEMPTS must be at least 1")
        if self.pause_grace_s < 0 or self.health_factor <= 0 or self.health_check_s <= 0:
            raise SettingsError(
                "ORRA_DISPATCHER_PAUSE_GRACE_S must be >= 0, the health settings positive"
            )
        if self.approval_timeout_s <= 0:
            raise SettingsError("ORRA_APPROVAL_TIMEOUT_S must be positive (seconds)")
        if self.tombstone_ttl_s < 0:
            raise SettingsError("ORRA_DISPATCHER_TOMBSTONE_TTL_S must be >= 0")
        if self.concurrency < 1 or self.max_deliver < 1 or self.max_ack_pending < 1:
            raise SettingsError(
                "dispatcher concurrency, max_deliver and max_ack_pending must be >= 1"
            )

    @classmethod
    def from_env(cls) -> DispatcherSettings:
        """Read the settings from the environment (defaults for unset variables).

        Raises:
            SettingsError: a value is out of range or not a number.
        """
        try:
            return cls(
                max_attempts=env_int("ORRA_DISPATCHER_MAX_ATTEMPTS", cls.max_attempts),
                retry_base_s=env_float("ORRA_DISPATCHER_RETRY_BASE_S", cls.retry_base_s),
                retry_max_s=env_float("ORRA_DISPATCHER_RETRY_MAX_S", cls.retry_max_s),
                retry_jitter=env_float("ORRA_DISPATCHER_RETRY_JITTER", cls.retry_jitter),
                task_timeout_s=env_float("ORRA_DISPATCHER_TASK_TIMEOUT_S", cls.task_timeout_s),
                mode=cast("ExecutionMode", os.environ.get("ORRA_EXECUTION_MODE") or cls.mode),
                concurrency=env_int("ORRA_DISPATCHER_CONCURRENCY", cls.concurrency),
                max_ack_pending=env_int("ORRA_DISPATCHER_MAX_ACK_PENDING", cls.max_ack_pending),
                ack_wait_s=env_float("ORRA_DISPATCHER_ACK_WAIT_S", cls.ack_wait_s),
                max_deliver=env_int("ORRA_DISPATCHER_MAX_DELIVER", cls.max_deliver),
                sweep_interval_s=env_float("ORRA_DISPATCHER_SWEEP_S", cls.sweep_interval_s),
                comp_max_attempts=env_int(
                    "ORRA_DISPATCHER_COMP_MAX_ATTEMPTS", cls.comp_max_attempts
                ),
                pause_grace_s=env_float("ORRA_DISPATCHER_PAUSE_GRACE_S", cls.pause_grace_s),
                health_factor=LivenessSettings.from_env().factor,
                health_check_s=env_float("ORRA_DISPATCHER_HEALTH_CHECK_S", cls.health_check_s),
                tombstone_ttl_s=env_float("ORRA_DISPATCHER_TOMBSTONE_TTL_S", cls.tombstone_ttl_s),
                approval_timeout_s=env_float("ORRA_APPROVAL_TIMEOUT_S", cls.approval_timeout_s),
            )
        except ValueError as exc:
            if isinstance(exc, SettingsError):
                raise
            raise SettingsError(f"invalid dispatcher setting: {exc}") from None

    @property
    def policy(self) -> Policy:
        """The part of the settings that the pure transitions use."""
        return Policy(
            max_attempts=self.max_attempts,
            retry_base_s=self.retry_base_s,
            retry_max_s=self.retry_max_s,
            retry_jitter=self.retry_jitter,
            task_timeout_s=self.task_timeout_s,
            mode=self.mode,
            comp_max_attempts=self.comp_max_attempts,
            pause_grace_s=self.pause_grace_s,
            approval_timeout_s=self.approval_timeout_s,
        )
