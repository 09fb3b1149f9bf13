/**
 * What the SDK measures about the tasks it runs, rendered at `/metrics` in the Prometheus
 * text format, under the Python SDK's names (`orra_sdk._metrics`, `orra_events.metrics`):
 *
 * - `orra_sdk_tasks_total{service, outcome}`: tasks (and compensations) reported, by
 *   outcome: `completed`, `failed`, `aborted`, `replayed`, `compensated`, `compensation_failed`;
 * - `orra_sdk_handler_duration_seconds{service, outcome}`: time in the handler itself;
 * - `orra_sdk_tasks_in_flight{service}`: tasks received and not finished yet;
 * - `orra_task_duration_seconds{service, outcome}`: task durations as reported in
 *   `task.completed` / `task.failed`.
 */
import type { TaskResult } from "./events.js";

type Labels = Readonly<Record<string, string>>;
type Key = string;

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

function keyOf(name: string, labels: Labels): Key {
  return JSON.stringify([name, Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1))]);
}

function labelText(pairs: Array<[string, string]>, extra = ""): string {
  const parts = pairs.map(([k, v]) => `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
}

/** Counters, gauges and histograms, rendered in the Prometheus text format. */
export class Metrics {
  readonly #help = new Map<string, [string, string]>();
  readonly #counters = new Map<Key, { name: string; labels: Array<[string, string]>; value: number }>();
  readonly #gauges = new Map<Key, { name: string; labels: Array<[string, string]>; read: () => number }>();
  readonly #histograms = new Map<Key, { name: string; labels: Array<[string, string]>; counts: number[] }>();

  #entry(name: string, labels: Labels): { key: Key; pairs: Array<[string, string]> } {
    return { key: keyOf(name, labels), pairs: Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)) };
  }

  /** Add `value` to a counter. */
  inc(name: string, labels: Labels, value = 1, help = ""): void {
    if (!this.#help.has(name)) this.#help.set(name, ["counter", help]);
    const { key, pairs } = this.#entry(name, labels);
    const current = this.#counters.get(key);
    if (current) current.value += value;
    else this.#counters.set(key, { name, labels: pairs, value });
  }

  /** Register a gauge read at scrape time. */
  gauge(name: string, labels: Labels, read: () => number, help = ""): void {
    if (!this.#help.has(name)) this.#help.set(name, ["gauge", help]);
    const { key, pairs } = this.#entry(name, labels);
    this.#gauges.set(key, { name, labels: pairs, read });
  }

  /** Record a value (seconds) in a histogram. */
  observe(name: string, labels: Labels, value: number, help = ""): void {
    if (!this.#help.has(name)) this.#help.set(name, ["histogram", help]);
    const { key, pairs } = this.#entry(name, labels);
    let entry = this.#histograms.get(key);
    if (!entry) {
      entry = { name, labels: pairs, counts: new Array<number>(BUCKETS.length + 2).fill(0) };
      this.#histograms.set(key, entry);
    }
    const counts = entry.counts;
    BUCKETS.forEach((bound, i) => {
      if (value <= bound) counts[i] = (counts[i] ?? 0) + 1;
    });
    counts[BUCKETS.length] = (counts[BUCKETS.length] ?? 0) + 1;
    counts[BUCKETS.length + 1] = (counts[BUCKETS.length + 1] ?? 0) + value;
  }

  /** The Prometheus text exposition of every metric. */
  render(): string {
    const lines: string[] = [];
    for (const name of [...this.#help.keys()].sort()) {
      const [kind, help] = this.#help.get(name) as [string, string];
      lines.push(`# HELP ${name} ${help || name}`, `# TYPE ${name} ${kind}`);
      for (const c of this.#counters.values()) if (c.name === name) lines.push(`${name}${labelText(c.labels)} ${c.value}`);
      for (const g of this.#gauges.values()) if (g.name === name) lines.push(`${name}${labelText(g.labels)} ${g.read()}`);
      for (const h of this.#histograms.values()) {
        if (h.name !== name) continue;
        BUCKETS.forEach((bound, i) => lines.push(`${name}_bucket${labelText(h.labels, `le="${bound}"`)} ${h.counts[i]}`));
        lines.push(`${name}_bucket${labelText(h.labels, 'le="+Inf"')} ${h.counts[BUCKETS.length]}`);
        lines.push(`${name}_count${labelText(h.labels)} ${h.counts[BUCKETS.length]}`);
        lines.push(`${name}_sum${labelText(h.labels)} ${h.counts[BUCKETS.length + 1]}`);
      }
    }
    return `${lines.join("\n")}\n`;
  }
}

/** The process's metrics. */
export const METRICS = new Metrics();

export const TASKS_TOTAL = "orra_sdk_tasks_total";
export const HANDLER_SECONDS = "orra_sdk_handler_duration_seconds";
export const IN_FLIGHT = "orra_sdk_tasks_in_flight";
export const TASK_SECONDS = "orra_task_duration_seconds";

const TASKS_HELP = "Tasks reported by this process, by service and outcome";
const HANDLER_HELP = "Duration of the service's handler, by service and outcome";
const IN_FLIGHT_HELP = "Tasks received and not finished yet, by service";
const TASK_SECONDS_HELP = "Task handler duration by service and outcome";

const inFlight = new Map<string, number>();

/** The `outcome` label of a reported result. */
export function outcomeOf(result: TaskResult): string {
  switch (result.type) {
    case "task.completed":
      return result.replayed ? "replayed" : "completed";
    case "task.failed":
      return "failed";
    case "task.aborted":
      return "aborted";
    case "task.compensated":
      return "compensated";
    default:
      return "compensation_failed";
  }
}

/** Time a result about to be published (`orra_task_duration_seconds`, as `observe_event`). */
export function observeResult(result: TaskResult): void {
  if (result.type === "task.completed" || result.type === "task.failed") {
    METRICS.observe(
      TASK_SECONDS,
      { service: result.service, outcome: result.type === "task.completed" ? "completed" : "failed" },
      result.duration_ms / 1000,
      TASK_SECONDS_HELP,
    );
  }
}

/** Count a result once it is stored. */
export function countResult(result: TaskResult): void {
  METRICS.inc(TASKS_TOTAL, { service: result.service, outcome: outcomeOf(result) }, 1, TASKS_HELP);
}

/** Record how long one call of a handler (or revert handler) took. */
export function observeHandler(service: string, outcome: string, seconds: number): void {
  METRICS.observe(HANDLER_SECONDS, { service, outcome }, seconds, HANDLER_HELP);
}

/** Add `delta` (1 on receipt, -1 when done) to a service's in-flight count. */
export function addInFlight(service: string, delta: number): void {
  inFlight.set(service, (inFlight.get(service) ?? 0) + delta);
}

/** A service's in-flight count. */
export function inFlightOf(service: string): number {
  return inFlight.get(service) ?? 0;
}

/** Show a service's metrics from the start: its counters at 0 and its in-flight gauge. */
export function prepareMetrics(service: string, revertible: boolean): void {
  const outcomes = ["completed", "failed", "aborted", "replayed"];
  if (revertible) outcomes.push("compensated", "compensation_failed");
  for (const outcome of outcomes) METRICS.inc(TASKS_TOTAL, { service, outcome }, 0, TASKS_HELP);
  METRICS.gauge(IN_FLIGHT, { service }, () => inFlightOf(service), IN_FLIGHT_HELP);
}
