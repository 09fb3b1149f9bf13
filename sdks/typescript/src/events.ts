/**
 * The events a service publishes, built with every field msgspec would write (defaults
 * included, the `type` tag first), typed by the interfaces generated from the committed
 * schemas (src/generated/events.ts).
 */
import type {
  ServiceHeartbeat,
  ServiceRegistered,
  TaskAborted,
  TaskCompensated,
  TaskCompensating,
  TaskCompensationFailed,
  TaskCompleted,
  TaskDispatched,
  TaskFailed,
  TaskProgress,
} from "./generated/events.js";
import { compensationResultId, progressId, resultId } from "./ids.js";

export type {
  OrraEvent,
  EventType,
  EventsByType,
  ServiceHeartbeat,
  ServiceRegistered,
  TaskAborted,
  TaskCompensated,
  TaskCompensating,
  TaskCompensationFailed,
  TaskCompleted,
  TaskDispatched,
  TaskFailed,
  TaskProgress,
} from "./generated/events.js";

/** The current time as UNIX epoch seconds (a float, as every event time). */
export function now(): number {
  return Date.now() / 1000;
}

/** A result a service reports for a task or a compensation. */
export type TaskResult = TaskCompleted | TaskFailed | TaskAborted | TaskCompensated | TaskCompensationFailed;

type Timing = { startedAt: number; durationMs: number };

/** `task.completed`: the output of an attempt (or, `replayed`, the recorded one). */
export function taskCompleted(
  task: TaskDispatched,
  service: string,
  output: Record<string, unknown>,
  timing: Timing,
  replayed: boolean,
): TaskCompleted {
  return {
    type: "task.completed",
    event_id: resultId(task.orchestration_id, task.task_id, task.attempt),
    at: now(),
    v: 1,
    orchestration_id: task.orchestration_id,
    task_id: task.task_id,
    service,
    output,
    attempt: task.attempt,
    idempotency_key: task.idempotency_key,
    started_at: timing.startedAt,
    duration_ms: timing.durationMs,
    replayed,
  };
}

/** `task.failed`: an attempt that did not finish (`retryable` false: the dispatcher gives up). */
export function taskFailed(
  task: TaskDispatched,
  service: string,
  error: string,
  timing: Timing,
  retryable: boolean,
): TaskFailed {
  return {
    type: "task.failed",
    event_id: resultId(task.orchestration_id, task.task_id, task.attempt),
    at: now(),
    v: 1,
    orchestration_id: task.orchestration_id,
    task_id: task.task_id,
    service,
    error,
    attempt: task.attempt,
    idempotency_key: task.idempotency_key,
    started_at: timing.startedAt,
    duration_ms: timing.durationMs,
    retryable,
  };
}

/** `task.aborted`: a handler aborted its whole orchestration (the attempt's result). */
export function taskAborted(
  task: TaskDispatched,
  service: string,
  reason: string,
  payload: Record<string, unknown> | null,
  timing: Timing,
): TaskAborted {
  return {
    type: "task.aborted",
    event_id: resultId(task.orchestration_id, task.task_id, task.attempt),
    at: now(),
    v: 1,
    orchestration_id: task.orchestration_id,
    task_id: task.task_id,
    service,
    attempt: task.attempt,
    idempotency_key: task.idempotency_key,
    reason,
    payload,
    started_at: timing.startedAt,
    duration_ms: timing.durationMs,
  };
}

/** `task.progress`: the `seq`-th interim update of an attempt. */
export function taskProgress(task: TaskDispatched, seq: number, update: Record<string, unknown>): TaskProgress {
  return {
    type: "task.progress",
    event_id: progressId(task.orchestration_id, task.task_id, task.attempt, seq),
    at: now(),
    v: 1,
    orchestration_id: task.orchestration_id,
    task_id: task.task_id,
    service: task.service,
    attempt: task.attempt,
    seq,
    update,
  };
}

/** `task.compensated`: a revert handler undid a task. */
export function taskCompensated(task: TaskCompensating, service: string, timing: Timing): TaskCompensated {
  return {
    type: "task.compensated",
    event_id: compensationResultId(task.orchestration_id, task.task_id, task.attempt),
    at: now(),
    v: 1,
    orchestration_id: task.orchestration_id,
    task_id: task.task_id,
    service,
    attempt: task.attempt,
    started_at: timing.startedAt,
    duration_ms: timing.durationMs,
  };
}

/** `task.compensation_failed`: one attempt of a revert handler failed. */
export function taskCompensationFailed(
  task: TaskCompensating,
  service: string,
  error: string,
  timing: Timing,
  retryable: boolean,
): TaskCompensationFailed {
  return {
    type: "task.compensation_failed",
    event_id: compensationResultId(task.orchestration_id, task.task_id, task.attempt),
    at: now(),
    v: 1,
    orchestration_id: task.orchestration_id,
    task_id: task.task_id,
    service,
    attempt: task.attempt,
    error,
    retryable,
    started_at: timing.startedAt,
    duration_ms: timing.durationMs,
  };
}

/** `service.heartbeat`: a running instance of a service is alive. */
export function serviceHeartbeat(
  eventId: string,
  service: string,
  project: string,
  instanceId: string,
  intervalS: number,
  version: string,
): ServiceHeartbeat {
  return {
    type: "service.heartbeat",
    event_id: eventId,
    at: now(),
    v: 1,
    service,
    project,
    instance_id: instanceId,
    interval_s: intervalS,
    version,
  };
}

/** The fields of a `service.registered` event that describe the service. */
export interface Registration {
  service: string;
  project: string;
  description: string;
  input_schema: Record<string, unknown>;
  output_schema: Record<string, unknown>;
  revertible: boolean;
  version: string;
  kind: "service" | "agent";
  schema_hash: string;
  examples: string[];
}

/** `service.registered`: a service declared itself. */
export function serviceRegistered(eventId: string, registration: Registration): ServiceRegistered {
  return {
    type: "service.registered",
    event_id: eventId,
    at: now(),
    v: 1,
    service: registration.service,
    project: registration.project,
    description: registration.description,
    input_schema: registration.input_schema,
    output_schema: registration.output_schema,
    revertible: registration.revertible,
    version: registration.version,
    kind: registration.kind,
    schema_hash: registration.schema_hash,
    examples: registration.examples,
  };
}
