"""Plans and tasks: parallel groups, task order, the notes of a task row, the plan view."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.text import Text

from orra_cli.render.text import compact, join_names, section, table_text
from orra_cli.render.times import format_duration, parse_time

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "FINISHED_TASK",
    "UNSTARTED_TASK",
    "groups_inline",
    "left_out_lines",
    "ordered_tasks",
    "plan_groups",
    "plan_text",
    "task_duration",
    "task_notes",
]

FINISHED_TASK = {"completed", "failed", "timed_out", "aborted", "skipped"}
UNSTARTED_TASK = {"pending", "waiting", "planned", "", None}


def task_duration(task: Mapping[str, Any], now: float | None) -> str:
    """How long a task took (or, running, has taken so far: ``3.1s…``)."""
    if task.get("durationMs") is not None:
        return format_duration(task.get("durationMs"))
    started = parse_time(task.get("startedAt"))
    finished = parse_time(task.get("finishedAt"))
    if started is not None and finished is not None:
        return format_duration((finished - started) * 1000)
    if started is not None and task.get("status") not in FINISHED_TASK:
        return format_duration(((time.time() if now is None else now) - started) * 1000) + "…"
    return "-"


def plan_groups(orch: Mapping[str, Any]) -> list[list[str]]:
    """The parallel groups of a plan, from ``parallel_groups`` or each task's ``group``."""
    groups = orch.get("parallel_groups") or []
    if groups:
        return [[str(t) for t in group] for group in groups]
    by_group: dict[int, list[str]] = {}
    for task in orch.get("tasks") or []:
        if isinstance(task.get("group"), int):
            by_group.setdefault(task["group"], []).append(str(task["id"]))
    return [by_group[k] for k in sorted(by_group)]


def ordered_tasks(orch: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The tasks in plan order: group by group."""
    tasks = [t for t in orch.get("tasks") or [] if isinstance(t, Mapping)]
    order = {tid: i for i, tid in enumerate(t for g in plan_groups(orch) for t in g)}
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
    groups = plan_groups(orch)
    notes: dict[str, str] = {}
    for index, group in enumerate(groups):
        for position, tid in enumerate(group):
            task = tasks.get(tid, {})
            status = task.get("status")
            finished = status in FINISHED_TASK
            started = finished or status not in UNSTARTED_TASK
            peers = []
            for other in group[:position]:
                overlap = _overlap(task, tasks.get(other, {}))
                if overlap is None or overlap:
                    peers.append(other)
            if peers:
                verb = "Ran" if finished else ("Running" if started else "Runs")
                notes[tid] = f"{verb} parallel with {join_names(peers)}"
                continue
            deps = task.get("dependsOn")
            if index > 0 and (not deps or _released_by_group(orch, task, groups[index - 1], tasks)):
                deps = groups[index - 1]
            if deps:
                verb = "Started after" if started else "Waits for"
                notes[tid] = f"{verb} {join_names([str(d) for d in deps])}"
    return notes


def groups_inline(groups: Sequence[Sequence[str]]) -> str:
    """``1. [a, b]  2. [c]`` for parallel groups on one line."""
    return "  ".join(f"{i}. [{', '.join(g)}]" for i, g in enumerate(groups, 1))


def plan_text(payload: Mapping[str, Any]) -> Text:
    """The plan of a new orchestration: its parallel groups and their tasks."""
    groups = plan_groups(payload)
    lines: list[Text] = [section("Parallel groups")]
    if not groups:
        lines.append(Text("│ (no plan yet)", style="dim"))
    for index, group in enumerate(groups, 1):
        lines.append(Text(f"│ {index}. {', '.join(group)}"))
    lines.append(Text(""))
    lines.append(section("Tasks"))
    rows: list[list[Text | str]] = []
    for task in ordered_tasks(payload):
        tid = str(task.get("id"))
        number = next((str(i) for i, g in enumerate(groups, 1) if tid in g), "-")
        rows.append(
            [tid, str(task.get("service") or "-"), number, compact(task.get("input") or {})]
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
    lines = [Text(""), section("Left out")]
    for entry in uncovered:
        line = Text(f"│ {entry.get('part')!r}", style="yellow")
        line.append(f"  {entry.get('reason') or ''}", style="dim")
        lines.append(line)
    return lines
