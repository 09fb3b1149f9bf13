"""The plan grammar: references, dependencies, parallel groups and structural checks.

The one definition of how a plan's tasks refer to each other. The planner (validation and
strategies), the dispatcher (refusal of a plan, substitution of outputs), the read-model
projection (``dependsOn``, which the gateway and the CLI show) all import it from here. Pure:
no I/O.

**Grammar.** A string anywhere in a task's input (also nested in lists and objects; never an
object key) is exactly one of:

* a **reference** when the *whole* string matches::

      reference = "$" task "." name { "." segment }
      task      = [A-Za-z_][A-Za-z0-9_-]{0,63}        (TASK_ID_PATTERN, a task id)
      segment   = name | index
      name      = [A-Za-z_][A-Za-z0-9_-]*            (an object member)
      index     = "0" | [1-9][0-9]*                   (a list position, from 0)

  It stands for the value at that path of the named task's output, with its JSON type:
  ``"$payment.status"`` is the ``status`` field of task ``payment``'s output,
  ``"$payment.items.0.id"`` the ``id`` of the first element of its ``items`` list. A name
  selects a member of an object and an index an element of a list, nothing else.
* an **escaped literal** when it starts with ``$$``: the text without its first ``$``
  (``"$$BRK.B"`` is the text ``"$BRK.B"``). :func:`escape` writes one.
* a **literal** otherwise, passed on unchanged: ``"$5.00"``, ``"$ 10"``, ``"$payment"`` (no
  field), ``"paid: $payment.status"`` (not the whole string).

In a plan, a literal that starts like a reference to one of the plan's tasks (``$``, the
task's id, then ``.`` or ``[``) but does not match, such as ``"$payment.items[0].id"``, is a
``malformed_reference``: a mistyped reference is refused, never sent on as text.

**Structure.** :func:`check_tasks` (a planner's candidate) and :func:`check_plan` (a plan
with its groups) return typed :class:`PlanIssue` values; :func:`resolve` substitutes outputs.

The grammar is in ``grammar``, the substitution in ``resolve`` and the structural checks in
``checks``; import them from here.
"""

from orra_events.errors import UnresolvedReference
from orra_events.plan.checks import (
    IssueKind,
    PlanAnalysis,
    PlanIssue,
    analyse_plan,
    check_plan,
    check_tasks,
)
from orra_events.plan.grammar import (
    REFERENCE_JSON_PATTERN,
    REFERENCE_PATTERN,
    TASK_ID_PATTERN,
    Reference,
    Segment,
    dependencies,
    dependency_levels,
    escape,
    find_references,
    parallel_groups,
    parse_reference,
    unescape,
)
from orra_events.plan.resolve import (
    resolve,
    value_at,
)

__all__ = [
    "REFERENCE_JSON_PATTERN",
    "REFERENCE_PATTERN",
    "TASK_ID_PATTERN",
    "IssueKind",
    "PlanAnalysis",
    "PlanIssue",
    "Reference",
    "Segment",
    "UnresolvedReference",
    "analyse_plan",
    "check_plan",
    "check_tasks",
    "dependencies",
    "dependency_levels",
    "escape",
    "find_references",
    "parallel_groups",
    "parse_reference",
    "resolve",
    "unescape",
    "value_at",
]
