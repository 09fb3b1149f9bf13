"""The dispatcher's pure logic: an orchestration aggregate and its transitions. No I/O.

An :class:`Orchestration` is the state of one running plan. :func:`apply` takes a state, an
input (an event from the log or a :class:`Timer` firing) and the current time, and returns
an :class:`Outcome`: the new state, the events to append and the timers to arm. The same
state, input and time always give the same outcome, and every emitted event has the
deterministic id of ``docs/architecture.md``, so a repeated transition (after a crash or
a redelivery) appends nothing new.

Rules, in one place:

* **Release** (:func:`releasable`): ``groups`` releases the tasks of parallel group k+1 only
  when every task of groups 1..k completed; ``eager`` releases each task as soon as every
  task that its input references completed (a task without references starts at once).
* **Plans and references**: the grammar is :mod:`orra_events.plan`'s, the planner's too.
  :func:`start` refuses a plan with a structural issue (:func:`validate_plan`: bad or
  duplicate ids, a task in no group or two, a reference that is malformed, unknown, to
  the task itself or not to an earlier group) by failing the orchestration with every
  issue. :func:`resolve` replaces each reference (``"$payment.items.0.id"``, at any depth
  of the input) by the value at that path of the task's output and unescapes ``$$``
  literals; a path the output lacks fails the orchestration
  (:class:`~orra_dispatcher.errors.UnresolvedReference`, saying where the path stops).
* **Retries**: a retryable failure or a timeout of attempt *n* < ``max_attempts`` emits
  ``task.retrying`` and dispatches attempt *n+1* after
  ``min(retry_max_s, retry_base_s * 2**(n-1))``, shortened by a deterministic jitter of
  up to ``retry_jitter`` of itself (derived from the idempotency key, so a replay computes
  the same delay). A non-retryable failure, or the failure of the last attempt, fails the
  orchestration naming the task and the cause.
* **Unknown outcomes**: a timeout of a task whose service is registered with
  ``retry_on_timeout`` false (:attr:`Services.no_timeout_retry`), or a failure reported
  with ``outcome_unknown``, is never retried: the task may have taken effect, and running
  it again could do it twice. The orchestration fails (and compensates what completed),
  and the task is left for an operator with ``task.compensation_abandoned`` (event id
  ``uk:<orch>:<task>``; listed by ``orra comp-fail ls``, settled with ``resolve`` or
  ``ignore``) whose ``error`` says what happened.
* **Stale and duplicate inputs** are no-ops: the completion of a completed task, the
  failure of an older attempt, a timer for an attempt that already ended, anything for an
  ended orchestration. A **late success of an earlier attempt is a success**: all attempts
  share one idempotency key, so any attempt's output is the task's output. A result for an
  attempt newer than the state knows, or for a task the state has not dispatched, means the
  state is stale (another replica moved on): the outcome says ``stale`` and the caller
  reloads the state before trying again.
* **Results** (:func:`merge_results`): see its docstring.
* **Compensation**: when an orchestration fails, or a service aborts it (``task.aborted``),
  or a user aborts it (``orchestration.aborted``), nothing more is dispatched and every
  completed task of a revertible service is compensated, one at a time, in reverse order
  of completion (``orchestration.compensating``, then ``task.compensating`` per attempt).
  A compensation attempt that fails or times out is retried with the same backoff, up to
  ``comp_max_attempts``; then it is abandoned (``task.compensation_abandoned``, kept for an
  operator) and the next task is compensated. When every compensation finished,
  ``orchestration.compensated`` is appended, then the terminal event (``orchestration.failed``
  or ``orchestration.aborted``) with the :class:`~orra_events.CompensationSummary`; a user's
  abort already appended its terminal event, so only the summary follows. A task that
  completes while compensation runs (it was in flight) is compensated next. With nothing
  to compensate the terminal event is appended at once, as before.
* **Approval**: a plan submitted with ``execute: false`` starts ``awaiting_approval``
  (``orchestration.awaiting_approval``, nothing dispatched) until ``orchestration.approved``
  (it runs) or ``orchestration.rejected`` (it ends ``aborted``), or ``approval_timeout_s``
  passes (the dispatcher appends ``orchestration.rejected`` with ``expired``). A task whose
  plan entry carries a gate (``PlanTask.gate``, its service's ``approval_when``) that holds
  on its resolved input (:func:`orra_events.gates.needs_approval`, fail-closed) is held as
  ``awaiting_approval`` before its first attempt (``task.approval_requested``) while the
  rest of its group runs; approved, it is dispatched (its timeout starts then); rejected
  or expired, it fails non-retryably and compensation runs (:mod:`.approvals`).
* **Pause** (unhealthy services): a task about to be dispatched whose service is unhealthy
  (:attr:`Services.unhealthy`, its heartbeats stopped) is held as ``paused`` instead.
  The first paused task appends ``orchestration.paused`` and arms a grace timer
  (``pause_grace_s``: the plan's, else the policy's); a ``health`` input (a service came
  back) dispatches every held task whose service is healthy, and when none is held any
  more ``orchestration.resumed`` is appended. A grace timer that fires while the same
  pause lasts fails the orchestration.

Modules, by role: :mod:`~orra_dispatcher.domain.state` (the aggregate, :class:`Timer`,
:class:`Outcome`, :class:`Policy`, :class:`Services`), :mod:`~orra_dispatcher.domain.rules`
(release, references, results, compensation order, the timers a state needs),
:mod:`~orra_dispatcher.domain.transitions` (:func:`apply` and one transition per input
kind) and :mod:`~orra_dispatcher.domain.builder` (the steps transitions share). This
package re-exports their public names.
"""

from orra_dispatcher.domain.rules import (
    compensation_order,
    dependencies,
    merge_results,
    releasable,
    resolve,
    timers_of,
    validate_plan,
)
from orra_dispatcher.domain.state import (
    ALL_HEALTHY,
    ORCHESTRATION_TIMER,
    SNAPSHOT_VERSION,
    CompState,
    Ending,
    Input,
    Orchestration,
    OrchestrationStatus,
    Outcome,
    Policy,
    Services,
    TaskState,
    TaskStatus,
    Timer,
    TimerKind,
)
from orra_dispatcher.domain.transitions import apply, start
from orra_events.liveness import is_unhealthy

__all__ = [
    "ALL_HEALTHY",
    "ORCHESTRATION_TIMER",
    "SNAPSHOT_VERSION",
    "CompState",
    "Ending",
    "Input",
    "Orchestration",
    "OrchestrationStatus",
    "Outcome",
    "Policy",
    "Services",
    "TaskState",
    "TaskStatus",
    "Timer",
    "TimerKind",
    "apply",
    "compensation_order",
    "dependencies",
    "is_unhealthy",
    "merge_results",
    "releasable",
    "resolve",
    "start",
    "timers_of",
    "validate_plan",
]
