/**
 * QuoteService: an example service written with Orra's TypeScript SDK. It prices the items
 * an order has reserved, in the e-commerce orchestrations of the Python example services
 * (examples/ecommerce): its input `reservedItems` comes from InventoryService's output,
 * and its output `amount` feeds PaymentService's input. An action such as "Reserve
 * inventory, quote the order and process payment" plans inventory → quote → payment.
 *
 * - Progress: it reports `{step: "pricing"}` while it works.
 * - Abort: with nothing reserved (an out-of-stock product) there is nothing to sell; it
 *   aborts the orchestration, and the inventory reservation is compensated.
 * - Compensation: when a later task fails (a payment over the card limit), its revert
 *   handler releases the price it holds.
 *
 * Like the Python example services, it reads `ORRA_EXAMPLES_LATENCY_SCALE` (1: a few
 * hundred ms per task; 0: instant) and appends one JSON line per handler run to
 * `ORRA_EXAMPLES_EFFECTS_FILE` when set, to count side effects.
 *
 *     node dist/quote.js          # ORRA_NATS_URL, ORRA_NAMESPACE, ORRA_HEALTH_PORT
 */
import { createHash } from "node:crypto";
import { appendFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { AbortOrchestration, Service, run, type RevertTask, type Task } from "@orra/sdk";

const UNIT_PRICE = 149.5;
const SHIPPING = 5;

const QuoteInput = z.object({
  orderId: z.string(),
  reservedItems: z.int().min(0),
});

const QuoteOutput = z.object({
  quoteId: z.string(),
  amount: z.number(),
  currency: z.literal("EUR"),
});

type QuoteIn = z.infer<typeof QuoteInput>;
type QuoteOut = z.infer<typeof QuoteOutput>;

export const QuoteService = new Service({
  name: "QuoteService",
  description:
    "Quote an order: price the reserved items of an order, shipping included, and hold " +
    "that price for the payment; returns the amount to charge.",
  input: QuoteInput,
  output: QuoteOutput,
  revertible: true,
  version: "1",
});

function latency(baseMs: number): Promise<void> {
  const scale = Number(process.env.ORRA_EXAMPLES_LATENCY_SCALE || "1");
  const ms = baseMs * scale * (0.8 + Math.random() * 0.4);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function recordEffect(task: Task<QuoteIn> | RevertTask<QuoteIn, QuoteOut>, outcome: string, startedAt: number): void {
  const path = process.env.ORRA_EXAMPLES_EFFECTS_FILE;
  if (!path) return;
  const line = {
    service: task.service,
    idempotency_key: task.idempotencyKey,
    orchestration_id: task.orchestrationId,
    task_id: task.taskId,
    attempt: task.attempt,
    pid: process.pid,
    outcome,
    started_at: startedAt,
    finished_at: Date.now() / 1000,
    ...("reason" in task ? { reason: task.reason } : {}),
  };
  appendFileSync(path, `${JSON.stringify(line)}\n`); // one write of one line: atomic
}

QuoteService.handler(async (task) => {
  const startedAt = Date.now() / 1000;
  await task.progress({ step: "pricing" }, { wait: false });
  await latency(200);
  const { orderId, reservedItems } = task.input;
  if (reservedItems === 0) {
    recordEffect(task, "aborted", startedAt);
    throw new AbortOrchestration(`nothing reserved for order ${orderId}: out of stock`, {
      orderId,
      by: "QuoteService",
    });
  }
  const quoteId = `QTE${Number.parseInt(createHash("sha256").update(task.idempotencyKey).digest("hex").slice(0, 8), 16) % 100_000}`;
  const amount = Math.round((reservedItems * UNIT_PRICE + SHIPPING) * 100) / 100;
  recordEffect(task, "completed", startedAt);
  return { quoteId, amount, currency: "EUR" as const };
});

QuoteService.revert(async (task) => {
  const startedAt = Date.now() / 1000;
  await latency(100);
  // A real service would release task.output.quoteId in its pricing system.
  recordEffect(task, "reverted", startedAt);
});

// Run as a program (node dist/quote.js), not when imported.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  run(QuoteService);
}
