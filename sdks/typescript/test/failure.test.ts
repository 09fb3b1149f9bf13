/** Compensation, abort, progress and stop signals, against a real nats-server. */
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { z } from "zod";
import { AbortOrchestration, NonRetryableError, Service, type RevertTask } from "../src/index.js";
import { Harness, NatsServer, sleep } from "./helpers.js";

const PayIn = z.object({ orderId: z.string() });
const PayOut = z.object({ transactionId: z.string() });

function service(): Service<typeof PayIn, typeof PayOut> {
  return new Service({ name: "PaymentService", description: "Charge", input: PayIn, output: PayOut, revertible: true });
}

let server: NatsServer;
let h: Harness;
before(async () => {
  server = await NatsServer.start();
});
after(async () => {
  await server.stop();
});
beforeEach(async () => {
  h = await Harness.open(server);
});
afterEach(async () => {
  await h.close();
});

function sendCompensation(attempt = 1): Promise<unknown> {
  return h.compensate("PaymentService", "pay", { orderId: "ORD1" }, { transactionId: "TX1" }, {
    attempt,
    orchestrationId: "o_c",
    reason: "task 'ship' failed",
  });
}

describe("compensation", () => {
  test("the revert handler gets the input, output and reason, once", async () => {
    const svc = service();
    const seen: Array<RevertTask<z.infer<typeof PayIn>, z.infer<typeof PayOut>>> = [];
    svc.handler(async () => ({ transactionId: "TX1" }));
    svc.revert(async (task) => {
      seen.push(task);
    });
    const client = h.client();
    await client.connect();
    await client.start(svc);
    await sendCompensation();
    const [done] = await h.events.wait("task.compensated", { task_id: "pay" });
    assert.equal(done?.event_id, "cr:o_c:pay:1");
    assert.equal(seen.length, 1);
    assert.deepEqual(seen[0]?.input, { orderId: "ORD1" });
    assert.deepEqual(seen[0]?.output, { transactionId: "TX1" });
    assert.equal(seen[0]?.reason, "task 'ship' failed");
    assert.equal(seen[0]?.idempotencyKey, "o_c:pay:revert");
    // a redelivered compensation (a dispatcher retry) replays the result: no second refund
    await sendCompensation(2);
    await h.events.wait("task.compensated", { task_id: "pay" }, { count: 2 });
    assert.equal(seen.length, 1);
    assert.equal(await h.workLeft(), 0);
  });

  test("a failing revert reports each attempt; NonRetryableError gives up", async () => {
    const svc = service();
    svc.handler(async () => ({ transactionId: "TX1" }));
    svc.revert(async (task) => {
      if (task.attempt === 1) throw new Error("bank unavailable");
      throw new NonRetryableError("already settled");
    });
    const client = h.client();
    await client.connect();
    await client.start(svc);
    await sendCompensation(1);
    const [first] = await h.events.wait("task.compensation_failed", { attempt: 1 });
    assert.equal(first?.retryable, true);
    assert.equal(first?.error, "Error: bank unavailable");
    await sendCompensation(2);
    const [second] = await h.events.wait("task.compensation_failed", { attempt: 2 });
    assert.equal(second?.retryable, false);
    assert.equal(second?.error, "NonRetryableError: already settled");
  });

  test("a revertible service without a revert handler fails the compensation", async () => {
    const svc = service();
    svc.handler(async () => ({ transactionId: "TX1" }));
    const client = h.client();
    await client.connect();
    await client.start(svc);
    assert.ok(h.logs.some((l) => String(l.event).startsWith("revertible service without a revert handler")));
    await sendCompensation();
    const [failed] = await h.events.wait("task.compensation_failed");
    assert.equal(failed?.retryable, false);
    assert.match(failed?.error ?? "", /no revert handler/);
  });
});

describe("abort and progress", () => {
  test("a handler reports progress, then aborts its orchestration with a payload", async () => {
    const svc = service();
    svc.handler(async (task) => {
      await task.progress({ step: 1 });
      await task.progress({ step: 2 });
      throw new AbortOrchestration("card reported stolen", { orderId: task.input.orderId });
    });
    const client = h.client();
    await client.connect();
    await client.start(svc);
    await h.dispatch("PaymentService", "pay", { orderId: "ORD9" }, { orchestrationId: "o_ab" });
    const [aborted] = await h.events.wait("task.aborted");
    assert.equal(aborted?.event_id, "r:o_ab:pay:1");
    assert.equal(aborted?.reason, "card reported stolen");
    assert.deepEqual(aborted?.payload, { orderId: "ORD9" });
    const updates = await h.events.wait("task.progress", {}, { count: 2 });
    assert.deepEqual(updates.map((u) => [u.seq, u.update]), [[1, { step: 1 }], [2, { step: 2 }]]);
    assert.equal(updates[0]?.event_id, "pg:o_ab:pay:1:1");
    // the abort released the claim: a retry of that task would run the handler again
    const key = await h.bus.kv("sdk_results");
    const entry = await key.get("PaymentService.o_ab.pay");
    assert.equal(entry?.operation, "DEL");
  });

  test("progress without waiting is stored ahead of the result", async () => {
    const svc = service();
    svc.handler(async (task) => {
      await task.progress({ step: "charging" }, { wait: false });
      await task.progress({ step: "charged" }, { wait: false });
      return { transactionId: "TX" };
    });
    const client = h.client();
    await client.connect();
    await client.start(svc);
    await h.dispatch("PaymentService", "pay", { orderId: "ORD7" }, { orchestrationId: "o_pg" });
    await h.events.wait("task.completed");
    const info = await h.bus.jsm.streams.info(h.topology.eventsStream, { subjects_filter: `${h.namespace}.*.*.o_pg` });
    assert.equal(info.state.messages, 3);
    const types: string[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const stored = await h.bus.jsm.streams.getMessage(h.topology.eventsStream, { seq });
      if (stored?.subject.endsWith(".o_pg")) types.push(stored.subject.split(".").slice(1, 3).join("."));
    }
    assert.deepEqual(types, ["task.progress", "task.progress", "task.completed"]);
    assert.equal(await h.workLeft(), 0);
  });
});

describe("stop signals", () => {
  test("a running task is stopped when its orchestration is aborted; later tasks of it are not run", async () => {
    const svc = service();
    let signal: AbortSignal | undefined;
    let started!: () => void;
    const startedP = new Promise<void>((resolve) => {
      started = resolve;
    });
    let runs = 0;
    svc.handler(async (task) => {
      runs += 1;
      signal = task.signal;
      started();
      // a long call that honours the signal (as fetch does); its result comes too late
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 30_000);
        task.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        });
      });
      return { transactionId: "too late" };
    });
    const client = h.client();
    await client.connect();
    await client.start(svc);
    await h.dispatch("PaymentService", "pay", { orderId: "ORD1" }, { orchestrationId: "o_stop" });
    await startedP;
    await h.bus.publish({ type: "orchestration.aborted", event_id: "end:o_stop", orchestration_id: "o_stop", reason: "user" });
    const [failed] = await h.events.wait("task.failed", { orchestration_id: "o_stop" });
    assert.equal(signal?.aborted, true);
    assert.equal(failed?.retryable, false);
    assert.equal(failed?.error, "stopped: orchestration aborted: user");
    assert.equal(h.events.of("task.completed", { orchestration_id: "o_stop" }).length, 0);
    assert.equal(await h.workLeft(), 0);
    await h.dispatch("PaymentService", "other", { orderId: "ORD1" }, { orchestrationId: "o_stop" });
    const [late] = await h.events.wait("task.failed", { task_id: "other" });
    assert.equal(late?.error, "stopped: orchestration aborted: user");
    assert.equal(runs, 1);
  });

  test("compensation and failure signals stop running tasks too, with their reason", async () => {
    const svc = service();
    svc.handler(async (task) => {
      await new Promise((resolve) => task.signal.addEventListener("abort", resolve));
      return { transactionId: "late" };
    });
    const client = h.client();
    await client.connect();
    await client.start(svc);
    await h.dispatch("PaymentService", "a", { orderId: "O" }, { orchestrationId: "o_comp" });
    await h.dispatch("PaymentService", "b", { orderId: "O" }, { orchestrationId: "o_fail" });
    await sleep(200);
    await h.bus.publish({
      type: "orchestration.compensating",
      event_id: "cs:o_comp",
      orchestration_id: "o_comp",
      cause: "failed",
      reason: "task 'x' failed",
      tasks: [],
    });
    await h.bus.publish({ type: "orchestration.failed", event_id: "end:o_fail", orchestration_id: "o_fail", error: "boom" });
    const [comp] = await h.events.wait("task.failed", { task_id: "a" });
    const [fail] = await h.events.wait("task.failed", { task_id: "b" });
    assert.equal(comp?.error, "stopped: orchestration failed, compensating: task 'x' failed");
    assert.equal(fail?.error, "stopped: orchestration failed: boom");
    // a revert handler is never stopped by these signals
    svc.revert(async () => undefined);
    await h.compensate("PaymentService", "a", { orderId: "O" }, { transactionId: "T" }, { orchestrationId: "o_comp" });
    await h.events.wait("task.compensated", { task_id: "a" });
  });
});

describe("broker outage", () => {
  test("a result finished while the broker is down is kept and recorded once it is back", async () => {
    const svc = service();
    let runs = 0;
    let started!: () => void;
    const startedP = new Promise<void>((resolve) => {
      started = resolve;
    });
    let finish!: () => void;
    const finishP = new Promise<void>((resolve) => {
      finish = resolve;
    });
    svc.handler(async () => {
      runs += 1;
      started();
      await finishP;
      return { transactionId: "TX-outage" };
    });
    const client = h.client({ ackWaitS: 2 });
    await client.connect();
    await client.start(svc);
    await h.dispatch("PaymentService", "pay", { orderId: "ORD1" }, { orchestrationId: "o_out" });
    await startedP;
    await server.kill();
    finish(); // the handler returns while the broker is away
    await sleep(1500);
    assert.equal(client.ready, false);
    await server.restart();
    const [done] = await h.events.wait("task.completed", { task_id: "pay" }, { timeoutMs: 20_000 });
    assert.equal(done?.output.transactionId, "TX-outage");
    assert.equal(done?.replayed, false);
    assert.equal(runs, 1, "the handler ran once");
    assert.equal(await h.workLeft(10_000), 0);
    assert.ok(h.logs.some((l) => l.event === "result not recorded yet; keeping it and trying again"));
    assert.ok(h.logs.some((l) => l.event === "result recorded"));
    // the record is there: a retry of the task replays it
    await h.dispatch("PaymentService", "pay", { orderId: "ORD1" }, { orchestrationId: "o_out", attempt: 2 });
    const [replay] = await h.events.wait("task.completed", { task_id: "pay", attempt: 2 });
    assert.equal(replay?.replayed, true);
    assert.equal(runs, 1);
  });
});
