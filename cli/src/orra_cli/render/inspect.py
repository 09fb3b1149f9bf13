"""The ``orra inspect`` view: the seed's summary and task table, then ``--detailed``'s parts.

``inspect`` draws the seed's format::

    ┌─ Orchestration Details
    │ ID: order123
    │ Status: completed
    ...
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.text import Text

from orra_cli.render.plans import (
    groups_inline,
    left_out_lines,
    ordered_tasks,
    plan_groups,
    task_duration,
    task_notes,
)
from orra_cli.render.text import action_text, compact, line, section, styled, table_text
from orra_cli.render.times import format_duration, parse_time, relative_time

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["inspect_text"]


def inspect_text(
    orch: Mapping[str, Any], *, detailed: bool = False, now: float | None = None
) -> Text:
    """The ``orra inspect`` view of an orchestration (``GET /orchestrations/{id}`` shape)."""
    expired = bool(orch.get("expired"))
    lines = _summary(orch, expired, now)
    lines.append(Text(""))
    lines.append(section("Tasks"))
    tasks = ordered_tasks(orch)
    lines.extend(_task_table(orch, tasks, expired, now))
    if detailed and not expired:
        lines.extend(_details(orch, tasks, now))
    return Text("\n").join(lines)


def _summary(orch: Mapping[str, Any], expired: bool, now: float | None) -> list[Text]:
    """The ``Orchestration Details`` section."""
    lines: list[Text] = [
        section("Orchestration Details"),
        line("ID", str(orch.get("id") or orch.get("orchestrationId") or "-")),
        line("Status", styled(orch.get("status"))),
        line("Action", action_text(orch)),
        line("Created", relative_time(orch.get("createdAt"), now)),
    ]
    if orch.get("error"):
        lines.append(line("Error", Text(str(orch["error"]), style="red")))
    if expired:
        removed = relative_time(orch.get("expiredAt"), now)
        lines.append(
            line(
                "Expired",
                Text(
                    f"events removed {removed} by the event log's retention; "
                    "this summary is what is kept",
                    style="yellow",
                ),
            )
        )
    if orch.get("status") == "paused" and orch.get("pausedServices"):
        lines.append(line("Waiting for", _held(orch, now)))
    approval = orch.get("approval")
    if isinstance(approval, Mapping):
        lines.append(line("Approval", _approval(approval, now)))
    for task in orch.get("tasks") or []:
        task_approval = task.get("approval") if isinstance(task, Mapping) else None
        if isinstance(task_approval, Mapping):
            label = Text(f"task {task.get('id')}: ")
            label.append_text(_approval(task_approval, now))
            lines.append(line("Approval", label))
    comp = orch.get("compensation")
    if isinstance(comp, Mapping) and comp:
        lines.append(line("Compensation", _compensation_summary(comp)))
    reasons = [str(r) for r in orch.get("reasons") or [] if str(r) != orch.get("error")]
    if reasons:
        lines.append(Text("│ Reasons:"))
        lines.extend(Text(f"│   - {reason}", style="red") for reason in reasons)
    lines.extend(left_out_lines(orch))
    return lines


def _approval(approval: Mapping[str, Any], now: float | None) -> Text:
    """A plan's or a task's approval: waiting (and until when), or who decided."""
    status = str(approval.get("status") or "awaiting")
    if status == "awaiting":
        text = Text("waiting for approval", style="yellow")
        expires = parse_time(approval.get("expiresAt"))
        if expires is not None:
            left = max(0.0, expires - (time.time() if now is None else now))
            text.append(f"; expires in {format_duration(left * 1000)}")
        if approval.get("condition"):
            text.append(f" (gate: {approval['condition']})")
        return text
    text = Text(status, style="green" if status == "approved" else "red")
    text.append(f" by {approval.get('decidedBy') or '-'}")
    decided = approval.get("decidedAt")
    if decided is not None:
        text.append(f" {relative_time(decided, now)}")
    if approval.get("reason"):
        text.append(f": {approval['reason']}")
    return text


def _held(orch: Mapping[str, Any], now: float | None) -> Text:
    """What a paused orchestration waits for, and when it fails unless it comes back."""
    held = Text(", ".join(str(s) for s in orch["pausedServices"]), style="yellow")
    held.append(" unhealthy (no heartbeat)")
    fail_at = parse_time(orch.get("pauseFailAt"))
    if fail_at is not None:
        left = max(0.0, fail_at - (time.time() if now is None else now))
        held.append(f"; fails in {format_duration(left * 1000)} unless it comes back")
    return held


def _task_table(
    orch: Mapping[str, Any],
    tasks: Sequence[Mapping[str, Any]],
    expired: bool,
    now: float | None,
) -> list[Text]:
    """The body of the ``Tasks`` section: the seed's table, or why there is none."""
    if not tasks and expired:
        count = orch.get("taskCount")
        counted = f"{count} task{'' if count == 1 else 's'}" if count is not None else "tasks"
        return [Text(f"│ ({counted}; their details expired)", style="dim")]
    if not tasks:
        waiting = orch.get("status") == "planning"
        return [Text("│ (planning…)" if waiting else "│ (no tasks)", style="dim")]
    notes = task_notes(orch)
    rows: list[list[Text | str]] = []
    for task in tasks:
        tid = str(task.get("id"))
        row: list[Text | str] = [
            tid,
            str(task.get("service") or "-"),
            styled(task.get("status")),
            task_duration(task, now),
        ]
        note = notes.get(tid)
        if task.get("progress") and task.get("status") in ("running", "paused"):
            note = f"progress: {compact(task['progress'])}"
        if note:
            row.append(Text(f"# {note}", style="dim"))
        rows.append(row)
    return table_text(
        ["ID", "SERVICE", "STATUS", "DURATION"],
        rows,
        prefix="│ ",
        pads=[1, 3, 4, 2],
        mins=[0, 13, 9, 8],
        header_extra=[0, 1, 0, 0],  # the seed's header is one space wider here
    )


def _data_dict(data: Any) -> Any:
    if isinstance(data, list) and all(isinstance(d, Mapping) and "field" in d for d in data):
        return {str(d["field"]): d.get("value") for d in data}
    return data


def _span_ms(orch: Mapping[str, Any]) -> float | None:
    start, end = parse_time(orch.get("createdAt")), parse_time(orch.get("finishedAt"))
    if start is None or end is None:
        return None
    return max(0.0, (end - start) * 1000)


def _details(
    orch: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]], now: float | None
) -> list[Text]:
    """The sections ``--detailed`` adds: run, each task, plan, results, webhooks."""
    lines: list[Text] = [Text(""), section("Run")]
    lines.append(line("Data", compact(_data_dict(orch.get("data") or []))))
    if orch.get("mode"):
        lines.append(line("Mode", str(orch["mode"])))
    finished = orch.get("finishedAt")
    lines.append(line("Finished", relative_time(finished, now) if finished else "-"))
    total = _span_ms(orch)
    if total is not None:
        lines.append(line("Took", format_duration(total)))
    for task in tasks:
        lines.extend(_task_section(task, now))
    plan = orch.get("plan")
    if isinstance(plan, Mapping) and plan:
        lines.extend(_plan_section(orch, plan))
    if orch.get("results") is not None:
        lines.append(Text(""))
        lines.append(section("Results"))
        lines.append(Text(f"│ {compact(orch['results'])}"))
    lines.extend(_webhooks_section(orch, now))
    return lines


def _task_section(task: Mapping[str, Any], now: float | None) -> list[Text]:
    """One task's section of ``--detailed``."""
    head = section(f"Task {task.get('id')}")
    head.append(f" ({task.get('service') or '-'})", style="dim")
    lines = [Text(""), head]
    lines.append(line("Status", styled(task.get("status"))))
    lines.append(line("Attempts", str(task.get("attempts") or "-")))
    if task.get("group") is not None:
        lines.append(line("Group", str(task.get("group"))))
    if task.get("dependsOn"):
        lines.append(line("Depends on", ", ".join(str(d) for d in task["dependsOn"])))
    if "serves" in task:
        serves = task.get("serves")
        lines.append(
            line("Serves", repr(serves) if serves else Text("(data for other tasks)", "dim"))
        )
    lines.append(line("Duration", task_duration(task, now)))
    lines.append(line("Input", compact(task.get("input") or {})))
    if task.get("output") is not None:
        lines.append(line("Output", compact(task.get("output"))))
    if task.get("error"):
        lines.append(line("Error", Text(str(task["error"]), style="red")))
    if task.get("progress") is not None:
        count = task.get("progressUpdates") or 1
        text = Text(compact(task["progress"]))
        text.append(
            f"  ({count} update{'s' if count != 1 else ''}, last "
            f"{relative_time(task.get('progressAt'), now)})",
            style="dim",
        )
        lines.append(line("Progress", text))
    tcomp = task.get("compensation")
    if isinstance(tcomp, Mapping) and tcomp:
        lines.append(line("Compensation", _task_compensation(tcomp)))
    return lines


def _task_compensation(tcomp: Mapping[str, Any]) -> Text:
    text = styled(tcomp.get("status"))
    text.append(f"  (attempts {tcomp.get('attempts') or 0})", style="dim")
    if tcomp.get("error"):
        text.append(f"  {tcomp['error']}", style="red")
    if tcomp.get("resolutionNote"):
        text.append(f"  note: {tcomp['resolutionNote']}")
    return text


def _plan_section(orch: Mapping[str, Any], plan: Mapping[str, Any]) -> list[Text]:
    """The ``Plan`` section of ``--detailed``: who planned it and at what cost."""
    lines = [Text(""), section("Plan")]
    lines.append(line("Planner", str(plan.get("planner") or "-")))
    lines.append(line("Model", str(plan.get("model") or "-")))
    lines.append(line("Cache hit", "yes" if plan.get("cacheHit") else "no"))
    lines.append(line("Attempts", str(plan.get("attempts") or "-")))
    lines.append(line("Latency", format_duration(plan.get("latencyMs"))))
    usage = plan.get("usage")
    if usage:
        lines.append(line("Tokens", _tokens(usage)))
    groups = plan_groups(orch)
    if groups:
        lines.append(line("Parallel groups", groups_inline(groups)))
    return lines


def _webhooks_section(orch: Mapping[str, Any], now: float | None) -> list[Text]:
    """The ``Webhooks`` section of ``--detailed``: one row per delivery, then retries."""
    lines = [Text(""), section("Webhooks")]
    hooks = [h for h in orch.get("webhooks") or [] if isinstance(h, Mapping)]
    if not hooks:
        lines.append(Text("│ (none)", style="dim"))
        return lines
    pending = any(h.get("status") == "retrying" for h in hooks)
    rows: list[list[Text | str]] = [
        [
            str(h.get("url") or "-"),
            styled(h.get("status")),
            str(h.get("attempts") if h.get("attempts") is not None else "-"),
            str(h.get("statusCode") if h.get("statusCode") is not None else "-"),
            *([_next_try(h, now)] if pending else []),
        ]
        for h in hooks
    ]
    headers = ["URL", "STATUS", "ATTEMPTS", "CODE", *(["NEXT TRY"] if pending else [])]
    lines.extend(table_text(headers, rows, prefix="│ "))
    for hook in hooks:
        log = _attempt_log(hook)
        if log:
            lines.append(Text(f"│   {hook.get('url') or '-'}: {log}", style="dim"))
    return lines


def _next_try(hook: Mapping[str, Any], now: float | None) -> str:
    """``in 12s`` for a delivery being retried (``due`` once the time has come)."""
    at = parse_time(hook.get("nextAttemptAt"))
    if hook.get("status") != "retrying" or at is None:
        return "-"
    left = at - (time.time() if now is None else now)
    return f"in {format_duration(left * 1000)}" if left >= 0.5 else "due"


def _attempt_log(hook: Mapping[str, Any]) -> str:
    """``#1 503 12ms · #2 timeout ... · #3 200 8ms`` for a delivery that took several attempts.

    Empty for a first-attempt success (nothing to add to the table's row).
    """
    entries = [a for a in hook.get("attemptLog") or [] if isinstance(a, Mapping)]
    if not entries or (len(entries) == 1 and hook.get("status") == "delivered"):
        return ""
    parts = []
    for a in entries:
        outcome = a.get("statusCode") if a.get("statusCode") is not None else a.get("error")
        took = a.get("durationMs")
        parts.append(
            f"#{a.get('n', '?')} {outcome or '-'}"
            + (f" {took:.0f}ms" if isinstance(took, int | float) else "")
        )
    attempts = hook.get("attempts")
    earlier = attempts - len(entries) if isinstance(attempts, int) else 0
    return (f"(+{earlier} earlier) " if earlier > 0 else "") + " · ".join(parts)


_TOKEN_KINDS = (("prompt_tokens", "prompt"), ("completion_tokens", "completion"))


def _tokens(usage: Any) -> str:
    """``952 (812 prompt, 140 completion)`` for the planner's token usage."""
    if not isinstance(usage, Mapping):
        return compact(usage)
    known = {key for key, _ in _TOKEN_KINDS} | {"total_tokens"}
    parts = [f"{usage[key]} {label}" for key, label in _TOKEN_KINDS if key in usage]
    parts.extend(f"{v} {k}" for k, v in usage.items() if k not in known)
    total = usage.get("total_tokens")
    if total is None:
        return ", ".join(parts) or "-"
    return f"{total} ({', '.join(parts)})" if parts else str(total)


def _compensation_summary(comp: Mapping[str, Any]) -> Text:
    text = styled(comp.get("status"))
    parts = []
    for key, label in (("compensated", "reverted"), ("failed", "failed"), ("skipped", "skipped")):
        ids = comp.get(key) or []
        if ids:
            parts.append(f"{label}: {', '.join(str(t) for t in ids)}")
    if comp.get("status") == "running" and comp.get("tasks"):
        parts.insert(0, f"order: {' → '.join(str(t) for t in comp['tasks'])}")
    if parts:
        text.append("  " + "; ".join(parts))
    return text
