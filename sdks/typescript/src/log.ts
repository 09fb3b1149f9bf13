/**
 * Structured logs: one JSON object per line on stderr, as every Orra process writes them
 * (structlog's `{"event": ..., "level": ..., "timestamp": ...}`), or a readable line with
 * `ORRA_LOG_FORMAT=console`. `ORRA_LOG_LEVEL` (debug, info, warning, error) filters them.
 *
 * While a task is handled, its `orchestration_id`, `task_id`, `attempt` and `service` are
 * bound with `AsyncLocalStorage`, so every line logged meanwhile through {@link log}, by
 * the SDK or by the handler, carries them (the Python SDK binds structlog's context
 * variables the same way).
 */
import { AsyncLocalStorage } from "node:async_hooks";

/** The fields logged with every line of the current asynchronous context. */
export type LogContext = Readonly<Record<string, unknown>>;

const LEVELS = { debug: 10, info: 20, warning: 30, error: 40 } as const;
type Level = keyof typeof LEVELS;

const context = new AsyncLocalStorage<LogContext>();
let processContext: LogContext = {};
let threshold: number = LEVELS.info;
let format: "json" | "console" = "json";
let sink: (line: string) => void = (line) => process.stderr.write(`${line}\n`);

/**
 * Read `ORRA_LOG_LEVEL` and `ORRA_LOG_FORMAT` and bind `service` to every line of the
 * process (what `run()` does).
 */
export function configureLogging(service?: string): void {
  const level = (process.env.ORRA_LOG_LEVEL ?? "INFO").toLowerCase();
  threshold = level in LEVELS ? LEVELS[level as Level] : level === "warn" ? LEVELS.warning : LEVELS.info;
  format = process.env.ORRA_LOG_FORMAT === "console" ? "console" : "json";
  if (service !== undefined) processContext = { ...processContext, service };
}

/** Send log lines somewhere else (tests); returns the previous sink. */
export function setLogSink(next: (line: string) => void): (line: string) => void {
  const previous = sink;
  sink = next;
  return previous;
}

/** Run `fn` with `fields` bound to every line it (and what it starts) logs. */
export function withLogContext<T>(fields: LogContext, fn: () => T): T {
  return context.run({ ...(context.getStore() ?? {}), ...fields }, fn);
}

function emit(level: Level, event: string, fields: Record<string, unknown>): void {
  if (LEVELS[level] < threshold) return;
  const record: Record<string, unknown> = {
    ...processContext,
    ...(context.getStore() ?? {}),
    ...fields,
    event,
    level,
    timestamp: new Date().toISOString(),
  };
  let line: string;
  if (format === "console") {
    const rest = Object.entries(record)
      .filter(([k]) => !["event", "level", "timestamp"].includes(k))
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    line = `${record.timestamp as string} [${level.padEnd(7)}] ${event} ${rest}`.trimEnd();
  } else {
    line = JSON.stringify(record, (_key, value: unknown) =>
      value instanceof Error ? `${value.name}: ${value.message}` : value,
    );
  }
  sink(line);
}

/** The logger of the SDK and of the handlers that want the task's context on their lines. */
export const log = {
  debug: (event: string, fields: Record<string, unknown> = {}) => emit("debug", event, fields),
  info: (event: string, fields: Record<string, unknown> = {}) => emit("info", event, fields),
  warning: (event: string, fields: Record<string, unknown> = {}) => emit("warning", event, fields),
  error: (event: string, fields: Record<string, unknown> = {}) => emit("error", event, fields),
};
