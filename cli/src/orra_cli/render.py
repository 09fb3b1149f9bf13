"""Pure rendering of orchestrations for humans: ``inspect``, ``ps``, plans, durations.

Everything here takes the JSON shapes of the gateway (docs/architecture.md) and returns
Rich :class:`~rich.text.Text`; nothing does I/O. ``inspect`` draws the seed's format::

    ┌─ Orchestration Details
    │ ID: order123
    │ Status: completed
    ...
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, get_args

from rich.text import Text

from orra_events.projection import OrchestrationStatus

__all__ = [
    "ORCHESTRATION_STATUSES",
    "STATUS_STYLES",
    "TERMINAL_STATUSES",
    "comp_fail_rows",
    "format_duration",
    "inspect_text",
    "left_out_lines",
    "parse_time",
    "plan_text",
    "ps_text",
    "relative_time",
    "table_text",
    "task_notes",
]

ORCHESTRATION_STATUSES = frozenset(get_args(OrchestrationStatus))
"""Every status an orchestration can have (what ``orra ps --status`` accepts)."""

TERMINAL_STATUSES = frozenset({"completed", "failed", "aborted", "not_actionable"})
"""Orchestration statuses after which nothing changes."""

STATUS_STYLES: dict[str, str] = {
    "completed": "green",
    "running": "cyan",
    "dispatched": "cyan",
    "planning": "yellow",
    "pending": "dim",
    "retrying": "yellow",
    "timed_out": "red",
    "failed": "red",
    "not_actionable": "red",
    "aborted": "magenta",
    "delivered": "green",
    "paused": "yellow",
    "compensating": "magenta",
    "compensated": "green",
    "resolved": "green",
    "ignored": "dim",
}

_FINISHED_TASK = {"completed", "failed", "timed_out", "aborted", "skipped"}
_UNSTARTED_TASK = {"pending", "waiting", "planned", "", None}


def parse_time(value: Any) -> float | None:
    """UNIX seconds of a timestamp given as epoch seconds, epoch milliseconds or ISO 8601."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        return number / 1000.0 if number > 1e11 else number
    if isinstance(value, str) and value:
        try:
            return parse_time(float(value))
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed.timestamp()
    return None


def relative_time(value: Any, now: float | None = None) -> str:
    """``2m ago`` style age of a timestamp; ``-`` when unknown."""
    at = parse_time(value)
    if at is None:
        return "-"
    age = max(0.0, (time.time() if now is None else now) - at)
    if age < 1:
        return "just now"
    if age < 60:
        return f"{int(age)}s ago"
    if age < 3600:
        return f"{int(age // 60)}m ago"
    if age < 86400:
        return f"{int(age // 3600)}h ago"
    return f"{int(age // 86400)}d ago"


def format_duration(ms: Any) -> str:
    """``1.2s`` for a duration in milliseconds (``45ms`` below a tenth of a second)."""
    if ms is None or isinstance(ms, bool) or not isinstance(ms, int | float):
        return "-"
    if not math.isfinite(ms) or ms < 0:
        return "-"
    if ms < 100:
        return f"{ms:.0f}ms"
    seconds = ms / 1000.0
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _styled(status: Any) -> Text:
    text = str(status) if status is not None else "-"
    return Text(text, style=STATUS_STYLES.get(text, ""))


def _task_duration(task: Mapping[str, Any], now: float | None) -> str:
    if task.get("durationMs") is not None:
        return format_duration(task.get("durationMs"))
    started = parse_time(task.get("startedAt"))
    finished = parse_time(task.get("finishedAt"))
    if started is not None and finished is not None:
        return format_duration((finished - started) * 1000)
    if started is not None and task.get("status") not in _FINISHED_TASK:
        return format_duration(((time.time() if now is None else now) - started) * 1000) + "…"
    return "-"


def _join(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " & " + names[-1]


def _groups(orch: Mapping[str, Any]) -> list[list[str]]:
    groups = orch.get("parallel_groups") or []
    if groups:
        return [[str(t) for t in group] for group in groups]
    by_group: dict[int, list[str]] = {}
    for task in orch.get("tasks") or []:
        if isinstance(task.get("group"), int):
            by_group.setdefault(task["group"], []).append(str(task["id"]))
    return [by_group[k] for k in sorted(by_group)]


def _ordered_tasks(orch: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    tasks = [t for t in orch.get("tasks") or [] if isinstance(t, Mapping)]
    order = {tid: i for i, tid in enumerate(t for g in _groups(orch) for t in g)}
    return sorted(tasks, key=lambda t: order.get(str(t.get("id")), len(order)))


def _overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool | None:
    a0, a1 = parse_time(a.get("startedAt")), parse_time(a.get("finishedAt"))
    b0, b1 = parse_time(b.get("startedAt")), parse_time(b.get("finishedAt"))
    if a0 is None or b0 is None:
        return None
    end_a = a1 if a1 is not None else math.inf
    end_b = b1 if b1 is not None else math.inf
    return a0 < end_b and b0 < end_a


def _released_by_group(
    orch: Mapping[str, Any],
    task: Mapping[str, Any],
    previous: Sequence[str],
    tasks: Mapping[str, Mapping[str, Any]],
) -> bool:
    """Whether ``task`` waits (waited) for the whole previous group, not just its dependencies.

    It does in ``groups`` mode, the default: a group starts once every earlier one completed.
    A plan without a mode runs in the dispatcher's default mode, which may be ``eager``:
    recorded times showing the task started before a task of the previous group finished
    say so.
    """
    if orch.get("mode") == "eager":
        return False
    started = parse_time(task.get("startedAt"))
    if started is None:
        return True
    for other in previous:
        finished = parse_time(tasks.get(other, {}).get("finishedAt"))
        if finished is None or finished > started:
            return False
    return True


def task_notes(orch: Mapping[str, Any]) -> dict[str, str]:
    """The comment of each task row: which tasks it ran in parallel with or after.

    A task shares its parallel group with the tasks listed before it: it "Ran parallel with"
    them (unless their recorded start and finish times show they did not overlap). The first
    task of a later group "Started after" the previous group in ``groups`` mode (the
    default), its dependencies (``dependsOn``) in ``eager`` mode. Tense follows the task's
    status: ``Runs``/``Waits for`` before it finished.
    """
    tasks = {str(t.get("id")): t for t in orch.get("tasks") or [] if isinstance(t, Mapping)}
    groups = _groups(orch)
    notes: dict[str, str] = {}
    for index, group in enumerate(groups):
        for position, tid in enumerate(group):
            task = tasks.get(tid, {})
            status = task.get("status")
            finished = status in _FINISHED_TASK
            started = finished or status not in _UNSTARTED_TASK
            peers = []
            for other in group[:position]:
                overlap = _overlap(task, tasks.get(other, {}))
                if overlap is None or overlap:
                    peers.append(other)
            if peers:
                verb = "Ran" if finished else ("Running" if started else "Runs")
                notes[tid] = f"{verb} parallel with {_join(peers)}"
                continue
            deps = task.get("dependsOn")
            if index > 0 and (not deps or _released_by_group(orch, task, groups[index - 1], tasks)):
                deps = groups[index - 1]
            if deps:
                verb = "Started after" if started else "Waits for"
                notes[tid] = f"{verb} {_join([str(d) for d in deps])}"
    return notes


def table_text(
    headers: Sequence[str],
    rows: Sequence[Sequence[Text | str]],
    *,
    prefix: str = "",
    pads: Sequence[int] | None = None,
    mins: Sequence[int] | None = None,
    header_extra: Sequence[int] | None = None,
) -> list[Text]:
    """Rows of plain aligned columns (the last column is not padded).

    Args:
        headers: Column titles.
        rows: Cells; a row may have more cells than there are headers (comments).
        prefix: Text before every line.
        pads: Spaces after the widest cell of each column (2 by default).
        mins: Minimum width of each column's cells.
        header_extra: More spaces after each header cell (to reproduce a fixed layout).
    """
    widths = []
    for col, header in enumerate(headers):
        cells = [len(r[col]) if isinstance(r[col], Text) else len(str(r[col])) for r in rows]
        width = max([len(header), *cells, (mins[col] if mins else 0)])
        widths.append(width + (pads[col] if pads else 2))
    lines: list[Text] = []
    for number, row in enumerate([list(headers), *rows]):
        line = Text(prefix)
        for col, cell in enumerate(row):
            piece = cell if isinstance(cell, Text) else Text(str(cell))
            line.append_text(piece)
            if col < len(row) - 1 and col < len(widths):
                extra = header_extra[col] if header_extra and number == 0 else 0
                line.append(" " * max(1, widths[col] + extra - len(piece)))
        line.rstrip()
        lines.append(line)
    lines[0].stylize("bold", len(prefix))
    return lines


def _section(title: str) -> Text:
    text = Text("┌─ ")
    text.append(title, style="bold")
    return text


def _line(label: str, value: Text | str) -> Text:
    text = Text(f"│ {label}: ")
    text.append_text(value if isinstance(value, Text) else Text(str(value)))
    return text


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def inspect_text(
    orch: Mapping[str, Any], *, detailed: bool = False, now: float | None = None
) -> Text:
    """The ``orra inspect`` view of an orchestration (``GET /orchestrations/{id}`` shape)."""
    lines: list[Text] = [
        _section("Orchestration Details"),
        _line("ID", str(orch.get("id") or orch.get("orchestrationId") or "-")),
        _line("Status", _styled(orch.get("status"))),
        _line("Action", _action(orch)),
        _line("Created", relative_time(orch.get("createdAt"), now)),
    ]
    if orch.get("error"):
        lines.append(_line("Error", Text(str(orch["error"]), style="red")))
    expired = bool(orch.get("expired"))
    if expired:
        removed = relative_time(orch.get("expiredAt"), now)
        lines.append(
            _line(
                "Expired",
                Text(
                    f"events removed {removed} by the event log's retention; "
                    "this summary is what is kept",
                    style="yellow",
                ),
            )
        )
    if orch.get("status") == "paused" and orch.get("pausedServices"):
        held = Text(", ".join(str(s) for s in orch["pausedServices"]), style="yellow")
        held.append(" unhealthy (no heartbeat)")
        fail_at = parse_time(orch.get("pauseFailAt"))
        if fail_at is not None:
            left = max(0.0, fail_at - (time.time() if now is None else now))
            held.append(f"; fails in {format_duration(left * 1000)} unless it comes back")
        lines.append(_line("Waiting for", held))
    comp = orch.get("compensation")
    if isinstance(comp, Mapping) and comp:
        lines.append(_line("Compensation", _compensation_summary(comp)))
    reasons = [str(r) for r in orch.get("reasons") or [] if str(r) != orch.get("error")]
    if reasons:
        lines.append(Text("│ Reasons:"))
        lines.extend(Text(f"│   - {reason}", style="red") for reason in reasons)
    lines.extend(left_out_lines(orch))
    lines.append(Text(""))
    lines.append(_section("Tasks"))
    tasks = _ordered_tasks(orch)
    if not tasks and expired:
        count = orch.get("taskCount")
        counted = f"{count} task{'' if count == 1 else 's'}" if count is not None else "tasks"
        lines.append(Text(f"│ ({counted}; their details expired)", style="dim"))
    elif not tasks:
        waiting = orch.get("status") == "planning"
        lines.append(Text("│ (planning…)" if waiting else "│ (no tasks)", style="dim"))
    else:
        notes = task_notes(orch)
        rows: list[list[Text | str]] = []
        for task in tasks:
            tid = str(task.get("id"))
            row: list[Text | str] = [
                tid,
                str(task.get("service") or "-"),
                _styled(task.get("status")),
                _task_duration(task, now),
            ]
            note = notes.get(tid)
            if task.get("progress") and task.get("status") in ("running", "paused"):
                note = f"progress: {_compact(task['progress'])}"
            if note:
                row.append(Text(f"# {note}", style="dim"))
            rows.append(row)
        lines.extend(
            table_text(
                ["ID", "SERVICE", "STATUS", "DURATION"],
                rows,
                prefix="│ ",
                pads=[1, 3, 4, 2],
                mins=[0, 13, 9, 8],
                header_extra=[0, 1, 0, 0],  # the seed's header is one space wider here
            )
        )
    if detailed and not expired:
        lines.extend(_details(orch, tasks, now))
    return Text("\n").join(lines)


def _action(orch: Mapping[str, Any]) -> str:
    action = orch.get("action")
    if isinstance(action, Mapping):
        return str(action.get("content") or "-")
    return str(action or "-")


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
    orch: Mapping[str, Any], tasks: list[Mapping[str, Any]], now: float | None
) -> list[Text]:
    lines: list[Text] = [Text(""), _section("Run")]
    lines.append(_line("Data", _compact(_data_dict(orch.get("data") or []))))
    if orch.get("mode"):
        lines.append(_line("Mode", str(orch["mode"])))
    finished = orch.get("finishedAt")
    lines.append(_line("Finished", relative_time(finished, now) if finished else "-"))
    total = _span_ms(orch)
    if total is not None:
        lines.append(_line("Took", format_duration(total)))
    for task in tasks:
        lines.append(Text(""))
        head = _section(f"Task {task.get('id')}")
        head.append(f" ({task.get('service') or '-'})", style="dim")
        lines.append(head)
        lines.append(_line("Status", _styled(task.get("status"))))
        lines.append(_line("Attempts", str(task.get("attempts") or "-")))
        if task.get("group") is not None:
            lines.append(_line("Group", str(task.get("group"))))
        if task.get("dependsOn"):
            lines.append(_line("Depends on", ", ".join(str(d) for d in task["dependsOn"])))
        if "serves" in task:
            serves = task.get("serves")
            lines.append(
                _line("Serves", repr(serves) if serves else Text("(data for other tasks)", "dim"))
            )
        lines.append(_line("Duration", _task_duration(task, now)))
        lines.append(_line("Input", _compact(task.get("input") or {})))
        if task.get("output") is not None:
            lines.append(_line("Output", _compact(task.get("output"))))
        if task.get("error"):
            lines.append(_line("Error", Text(str(task["error"]), style="red")))
        if task.get("progress") is not None:
            count = task.get("progressUpdates") or 1
            text = Text(_compact(task["progress"]))
            text.append(
                f"  ({count} update{'s' if count != 1 else ''}, last "
                f"{relative_time(task.get('progressAt'), now)})",
                style="dim",
            )
            lines.append(_line("Progress", text))
        tcomp = task.get("compensation")
        if isinstance(tcomp, Mapping) and tcomp:
            text = _styled(tcomp.get("status"))
            text.append(f"  (attempts {tcomp.get('attempts') or 0})", style="dim")
            if tcomp.get("error"):
                text.append(f"  {tcomp['error']}", style="red")
            if tcomp.get("resolutionNote"):
                text.append(f"  note: {tcomp['resolutionNote']}")
            lines.append(_line("Compensation", text))
    plan = orch.get("plan")
    if isinstance(plan, Mapping) and plan:
        lines.append(Text(""))
        lines.append(_section("Plan"))
        lines.append(_line("Planner", str(plan.get("planner") or "-")))
        lines.append(_line("Model", str(plan.get("model") or "-")))
        lines.append(_line("Cache hit", "yes" if plan.get("cacheHit") else "no"))
        lines.append(_line("Attempts", str(plan.get("attempts") or "-")))
        lines.append(_line("Latency", format_duration(plan.get("latencyMs"))))
        usage = plan.get("usage")
        if usage:
            lines.append(_line("Tokens", _tokens(usage)))
        groups = _groups(orch)
        if groups:
            lines.append(_line("Parallel groups", _groups_inline(groups)))
    if orch.get("results") is not None:
        lines.append(Text(""))
        lines.append(_section("Results"))
        lines.append(Text(f"│ {_compact(orch['results'])}"))
    lines.append(Text(""))
    lines.append(_section("Webhooks"))
    hooks = [h for h in orch.get("webhooks") or [] if isinstance(h, Mapping)]
    if hooks:
        pending = any(h.get("status") == "retrying" for h in hooks)
        rows: list[list[Text | str]] = [
            [
                str(h.get("url") or "-"),
                _styled(h.get("status")),
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
    else:
        lines.append(Text("│ (none)", style="dim"))
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
        return _compact(usage)
    known = {key for key, _ in _TOKEN_KINDS} | {"total_tokens"}
    parts = [f"{usage[key]} {label}" for key, label in _TOKEN_KINDS if key in usage]
    parts.extend(f"{v} {k}" for k, v in usage.items() if k not in known)
    total = usage.get("total_tokens")
    if total is None:
        return ", ".join(parts) or "-"
    return f"{total} ({', '.join(parts)})" if parts else str(total)


def _compensation_summary(comp: Mapping[str, Any]) -> Text:
    text = _styled(comp.get("status"))
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


def comp_fail_rows(
    items: Sequence[Mapping[str, Any]], now: float | None = None
) -> list[list[Text | str]]:
    """Rows of ``orra comp-fail ls``: ID, SERVICE, STATUS, ATTEMPTS, FAILED, ERROR."""
    return [
        [
            str(item.get("id") or "-"),
            str(item.get("service") or "-"),
            _styled(item.get("status")),
            str(item.get("attempts") if item.get("attempts") is not None else "-"),
            relative_time(item.get("failedAt"), now),
            _clip(str(item.get("error") or "-"), 60),
        ]
        for item in items
    ]


def _groups_inline(groups: Sequence[Sequence[str]]) -> str:
    return "  ".join(f"{i}. [{', '.join(g)}]" for i, g in enumerate(groups, 1))


def plan_text(payload: Mapping[str, Any]) -> Text:
    """The plan of a new orchestration: its parallel groups and their tasks."""
    groups = _groups(payload)
    lines: list[Text] = [_section("Parallel groups")]
    if not groups:
        lines.append(Text("│ (no plan yet)", style="dim"))
    for index, group in enumerate(groups, 1):
        lines.append(Text(f"│ {index}. {', '.join(group)}"))
    lines.append(Text(""))
    lines.append(_section("Tasks"))
    rows: list[list[Text | str]] = []
    for task in _ordered_tasks(payload):
        tid = str(task.get("id"))
        number = next((str(i) for i, g in enumerate(groups, 1) if tid in g), "-")
        rows.append(
            [tid, str(task.get("service") or "-"), number, _compact(task.get("input") or {})]
        )
    if rows:
        lines.extend(table_text(["ID", "SERVICE", "GROUP", "INPUT"], rows, prefix="│ "))
    else:
        lines.append(Text("│ (none)", style="dim"))
    left_out = left_out_lines(payload)
    if left_out:
        lines.append(Text(""))
        lines.extend(left_out[1:])
    return Text("\n").join(lines)


def left_out_lines(orch: Mapping[str, Any]) -> list[Text]:
    """The parts of the action the plan leaves out, with their reasons (none: no lines)."""
    uncovered = [u for u in orch.get("uncovered") or [] if isinstance(u, Mapping)]
    if not uncovered:
        return []
    lines = [Text(""), _section("Left out")]
    for entry in uncovered:
        line = Text(f"│ {entry.get('part')!r}", style="yellow")
        line.append(f"  {entry.get('reason') or ''}", style="dim")
        lines.append(line)
    return lines


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _ps_status(item: Mapping[str, Any]) -> Text:
    status = _styled(item.get("status"))
    if item.get("expired"):
        status.append(" (expired)", style="dim")
    return status


def ps_text(items: Sequence[Mapping[str, Any]], *, now: float | None = None) -> Text:
    """The ``orra ps`` table: ID, ACTION, STATUS, TASKS, CREATED."""
    rows: list[list[Text | str]] = [
        [
            str(item.get("id") or item.get("orchestrationId") or "-"),
            _clip(_action(item), 48),
            _ps_status(item),
            str(item.get("taskCount") if item.get("taskCount") is not None else "-"),
            relative_time(item.get("createdAt"), now),
        ]
        for item in items
    ]
    return Text("\n").join(table_text(["ID", "ACTION", "STATUS", "TASKS", "CREATED"], rows))
