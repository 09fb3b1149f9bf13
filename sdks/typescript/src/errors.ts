/**
 * Errors of `@orra/sdk`; every one derives from {@link OrraSdkError} (the Python SDK's
 * `orra_sdk.errors`, one class for one class).
 */

/** Root of every error raised by the SDK. */
export class OrraSdkError extends Error {
  override name = "OrraSdkError";
}

/** A service is declared wrongly (bad name, no handler, unusable schema...). */
export class ServiceDefinitionError extends OrraSdkError {
  override name = "ServiceDefinitionError";
}

/**
 * The service's name and version are registered with another definition. The registered
 * one stays; this process must not serve the name. The message names the conflict and the
 * fix (another name, or a higher `version`); `run()` logs it and exits with status 2
 * before taking any task.
 */
export class RegistrationConflict extends ServiceDefinitionError {
  override name = "RegistrationConflict";
}

/** The client is not connected: it was never started, or it was closed. */
export class ClientClosed extends OrraSdkError {
  override name = "ClientClosed";
}

/** An `ORRA_*` environment variable has a value that cannot be used (its name is in the message). */
export class InvalidSetting extends OrraSdkError {
  override name = "InvalidSetting";
}

/**
 * Throw from a handler when trying the task again cannot help.
 *
 * The task is reported as `task.failed` with `retryable: false`, so the dispatcher fails
 * the orchestration at once instead of retrying. Any other error thrown by a handler is
 * reported as retryable.
 *
 * @example
 * if (card.expired) throw new NonRetryableError("card expired");
 */
export class NonRetryableError extends OrraSdkError {
  override name = "NonRetryableError";
}

/**
 * Throw from a handler to abort the whole orchestration, not just fail the task.
 *
 * The SDK reports `task.aborted` with `reason` and `payload`; the dispatcher dispatches
 * nothing more, tells the tasks still running to stop, compensates what completed and
 * appends `orchestration.aborted` with the same payload (the webhook's `results`).
 *
 * @example
 * if (order.cancelledByCustomer) throw new AbortOrchestration("customer cancelled", { orderId: order.id });
 */
export class AbortOrchestration extends OrraSdkError {
  override name = "AbortOrchestration";
  /** Why, for humans (the webhook's `error`). */
  readonly reason: string;
  /** JSON object handed back to the caller, or `null`. */
  readonly payload: Record<string, unknown> | null;

  constructor(reason: string, payload: Record<string, unknown> | null = null) {
    super(reason);
    this.reason = reason;
    this.payload = payload;
  }
}

/**
 * Bytes that are not an Orra event, with the reason. The subclasses mirror
 * `orra_events.errors` and their messages those of `orra_events.codec.decode`.
 */
export class DecodeError extends OrraSdkError {
  override name = "DecodeError";
}

/** Not JSON, or not a JSON object. */
export class MalformedEvent extends DecodeError {
  override name = "MalformedEvent";
}

/** No `type`, a `type` that is not a string, or a type not in the catalogue. */
export class UnknownEventType extends DecodeError {
  override name = "UnknownEventType";
}

/** The event's major version `v` is newer than this SDK knows. */
export class UnsupportedVersion extends DecodeError {
  override name = "UnsupportedVersion";
}

/** A field is missing or has the wrong type. */
export class SchemaMismatch extends DecodeError {
  override name = "SchemaMismatch";
}

/** `Name: message`, as the Python SDK writes `f"{type(exc).__name__}: {exc}"`. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return `Error: ${String(error)}`;
}
