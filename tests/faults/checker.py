"""A Jepsen-style checker: what happened to every orchestration and every side effect.

The fault tests drive a bounded load of numbered orchestrations while they kill things,
then hand this module everything they can observe from the outside:

* the orchestration ids they submitted (and which of them are expected to fail);
* the whole event log, as read back from JetStream after the run;
* the example services' effects file (one JSON line per handler run that *finished*);
* the webhook receiver's requests;
* the pids of the processes they killed with SIGKILL.

:func:`check` classifies each orchestration as ``completed``, ``failed-as-expected``,
``failed`` (unexpectedly), ``lost`` (no terminal event) or ``duplicated`` (two terminal
events, two plan events, two ``task.dispatched`` of one attempt, or one task under two
idempotency keys), and each side effect, counted by idempotency key over handler runs with
outcome ``completed``, as ``once``, ``twice`` or ``never``. A second run is excused only in
the SDK's documented window (the process that ran the handler first was SIGKILLed before
it recorded the result): the effects file gets its line when the handler returns, before
the SDK writes the result to KV, so a run whose process died right after that line is
run again on redelivery. Webhooks are counted by ``webhook-id``: ``delivered`` once,
``undelivered``, or ``redelivered`` (allowed only when a notifier was killed: a crash in
the middle of a request repeats that attempt).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orra_events import (
    ActionSubmitted,
    Event,
    OrchestrationAborted,
    OrchestrationDone,
    OrchestrationFailed,
    PlanCreated,
    PlanFailed,
    TaskDispatched,
    WebhookDelivered,
    WebhookFailed,
)

TERMINAL = (OrchestrationDone, OrchestrationFailed, OrchestrationAborted)

COMPLETED = "completed"
FAILED_AS_EXPECTED = "failed-as-expected"
FAILED = "failed"
LOST = "lost"
DUPLICATED = "duplicated"

ONCE = "once"
TWICE = "twice"
TWICE_IN_WINDOW = "twice-in-documented-window"
NEVER = "never"


@dataclass(frozen=True)
class Receipt:
    """One webhook request as the receiver saw it."""

    webhook_id: str
    orchestration_id: str
    status: str


@dataclass
class Report:
    """What the checker found; ``ok`` when nothing is lost, duplicated or repeated."""

    orchestrations: dict[str, str]
    why: dict[str, list[str]]
    effects: dict[str, str]
    effect_runs: dict[str, list[dict[str, Any]]]
    webhooks: dict[str, str]
    allow_webhook_repeats: bool
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.orchestrations.values())

    @property
    def effect_counts(self) -> Counter[str]:
        return Counter(self.effects.values())

    @property
    def webhook_counts(self) -> Counter[str]:
        return Counter(self.webhooks.values())

    @property
    def problems(self) -> list[str]:
        out: list[str] = []
        for orch, verdict in sorted(self.orchestrations.items()):
            if verdict not in (COMPLETED, FAILED_AS_EXPECTED):
                out.append(f"orchestration {orch}: {verdict} ({'; '.join(self.why[orch])})")
        for key, verdict in sorted(self.effects.items()):
            if verdict in (TWICE, NEVER):
                runs = ", ".join(
                    f"pid {r['pid']} attempt {r['attempt']}" for r in self.effect_runs.get(key, [])
                )
                out.append(f"side effect {key}: {verdict} [{runs}]")
        for orch, verdict in sorted(self.webhooks.items()):
            if verdict in ("undelivered", "several-ids") or (
                verdict == "redelivered" and not self.allow_webhook_repeats
            ):
                out.append(f"webhook of {orch}: {verdict}")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        lines = [
            "orchestrations: " + _fmt(self.counts),
            "side effects:   " + _fmt(self.effect_counts),
            "webhooks:       " + _fmt(self.webhook_counts),
            *self.notes,
        ]
        problems = self.problems
        if problems:
            lines.append(f"{len(problems)} problem(s):")
            lines.extend(f"  - {p}" for p in problems[:40])
            if len(problems) > 40:
                lines.append(f"  ... and {len(problems) - 40} more")
        return "\n".join(lines)


def _fmt(counts: Counter[str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"


def read_effects(path: str | Any) -> list[dict[str, Any]]:
    """The lines of an effects file (missing file: none)."""
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def check(
    submitted: Sequence[str],
    events: Mapping[str, Sequence[Event]],
    *,
    effects: Iterable[dict[str, Any]] | None = None,
    receipts: Iterable[Receipt] | None = None,
    expected_failures: Iterable[str] = (),
    killed_pids: Iterable[int] = (),
    allow_webhook_repeats: bool = False,
    webhooks_expected: bool = True,
) -> Report:
    """Classify every submitted orchestration, its side effects and its webhook.

    Args:
        submitted: Orchestration ids the test submitted (each once).
        events: Every event of the log, by orchestration id, in log order.
        effects: Lines of the effects file; ``None`` when side effects are not counted.
        receipts: Webhook requests received; ``None`` when the test has no receiver.
        expected_failures: Orchestrations the test made fail on purpose.
        killed_pids: Processes the test SIGKILLed (for the documented window).
        allow_webhook_repeats: A notifier was killed, so a repeated ``webhook-id`` is the
            documented at-least-once and not an error.
        webhooks_expected: Every submitted orchestration had a webhook.
    """
    expected_failures = set(expected_failures)
    killed = set(killed_pids)
    verdicts: dict[str, str] = {}
    why: dict[str, list[str]] = defaultdict(list)
    planned_keys: dict[str, str] = {}  # idempotency key -> orchestration (completed only)
    submitted_set = set(submitted)

    by_request: dict[str, set[str]] = defaultdict(set)
    for orch, evs in events.items():
        for e in evs:
            if isinstance(e, ActionSubmitted) and e.idempotency_key:
                by_request[e.idempotency_key].add(orch)

    for orch in submitted:
        evs = list(events.get(orch, ()))
        reasons = why[orch]
        terminals = [e for e in evs if isinstance(e, TERMINAL)]
        plans = [e for e in evs if isinstance(e, (PlanCreated, PlanFailed))]
        actions = [e for e in evs if isinstance(e, ActionSubmitted)]
        dispatched = [e for e in evs if isinstance(e, TaskDispatched)]
        duplicated = False
        if len(actions) > 1:
            duplicated = True
            reasons.append(f"{len(actions)} action.submitted events")
        if len(terminals) > 1:
            duplicated = True
            reasons.append(f"{len(terminals)} terminal events: {[e.TYPE for e in terminals]}")
        if len(plans) > 1:
            duplicated = True
            reasons.append(f"{len(plans)} plan events")
        per_attempt = Counter((d.task_id, d.attempt) for d in dispatched)
        for (task, attempt), n in per_attempt.items():
            if n > 1:
                duplicated = True
                reasons.append(f"task {task} attempt {attempt} dispatched {n} times")
        keys_per_task: dict[str, set[str]] = defaultdict(set)
        for d in dispatched:
            keys_per_task[d.task_id].add(d.idempotency_key)
        for task, keys in keys_per_task.items():
            if len(keys) > 1:
                duplicated = True
                reasons.append(f"task {task} dispatched under keys {sorted(keys)}")
        for action in actions:
            if action.idempotency_key and len(by_request[action.idempotency_key]) > 1:
                duplicated = True
                reasons.append(
                    f"request {action.idempotency_key} made orchestrations "
                    f"{sorted(by_request[action.idempotency_key])}"
                )
        if duplicated:
            verdicts[orch] = DUPLICATED
        elif not terminals:
            verdicts[orch] = LOST
            last = evs[-1].TYPE if evs else "nothing in the log"
            reasons.append(f"no terminal event; last event: {last}; {len(evs)} events")
        elif isinstance(terminals[0], OrchestrationDone):
            verdicts[orch] = COMPLETED
        elif orch in expected_failures:
            verdicts[orch] = FAILED_AS_EXPECTED
        else:
            verdicts[orch] = FAILED
            t = terminals[0]
            reasons.append(f"{t.TYPE}: {getattr(t, 'error', None) or getattr(t, 'reason', '')}")
        if verdicts[orch] == COMPLETED:
            plan = next((p for p in plans if isinstance(p, PlanCreated)), None)
            if plan is not None:
                for task in plan.plan.tasks:
                    planned_keys[f"{orch}:{task.id}"] = orch

    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if effects is None:  # the test does not count side effects
        planned_keys.clear()
        effects = ()
    for line in effects:
        if line.get("orchestration_id") in submitted_set and line.get("outcome") == "completed":
            runs[line["idempotency_key"]].append(line)
    effect_verdicts: dict[str, str] = {}
    for key in set(planned_keys) | set(runs):
        rs = sorted(runs.get(key, []), key=lambda r: r.get("finished_at", 0.0))
        if not rs:
            effect_verdicts[key] = NEVER
        elif len(rs) == 1:
            effect_verdicts[key] = ONCE
        elif all(r["pid"] in killed for r in rs[:-1]):
            # Every earlier run finished in a process that was then SIGKILLed: the SDK's
            # window between the side effect and recording its result.
            effect_verdicts[key] = TWICE_IN_WINDOW
        else:
            effect_verdicts[key] = TWICE

    webhook_verdicts: dict[str, str] = {}
    if receipts is not None and webhooks_expected:
        per_orch: dict[str, Counter[str]] = defaultdict(Counter)
        for r in receipts:
            per_orch[r.orchestration_id][r.webhook_id] += 1
        for orch in submitted:
            if verdicts[orch] == LOST:
                continue
            ids = per_orch.get(orch)
            if not ids:
                webhook_verdicts[orch] = "undelivered"
            elif len(ids) > 1:
                webhook_verdicts[orch] = "several-ids"
            elif max(ids.values()) > 1:
                webhook_verdicts[orch] = "redelivered"
            else:
                webhook_verdicts[orch] = "delivered"
    report = Report(
        orchestrations=verdicts,
        why=why,
        effects=effect_verdicts,
        effect_runs=dict(runs),
        webhooks=webhook_verdicts,
        allow_webhook_repeats=allow_webhook_repeats,
    )
    outcomes = Counter(
        type(e).__name__
        for orch in submitted
        for e in events.get(orch, ())
        if isinstance(e, (WebhookDelivered, WebhookFailed))
    )
    if outcomes:
        report.notes.append("webhook events: " + _fmt(outcomes))
    if killed:
        report.notes.append(f"killed pids: {sorted(killed)}")
    return report
