/** The SDK against a real nats-server: registration, tasks, validation, idempotency, scale-out. */
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { z } from "zod";
import { NonRetryableError, Service, type Task, jsonSchema } from "../src/index.js";
import { decode } from "../src/codec.js";
import { Harness, NatsServer, sleep } from "./helpers.js";

const PayIn = z.object({ orderId: z.string(), amount: z.coerce.number() });
const PayOut = z.object({ paymentStatus: z.string(), transactionId: z.string() });

function paymentService(calls: Array<Task<z.infer<typeof PayIn>>> = [], options: { name?: string; delayMs?: number; version?: string } = {}) {
  const svc = new Service({
    name: options.name ?? "PaymentService",
    description: "Charge the payment of an order",
    input: PayIn,
    output: PayOut,
    revertible: true,
    version: options.version ?? "1",
  });
  svc.handler(async (task) => {
    calls.push(task);
    if (options.delayMs) await sleep(options.delayMs);
    return { paymentStatus: "confirmed", transactionId: `TX-${task.input.orderId}` };
  });
  return svc;
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

describe("registry", () => {
  test("registration carries the JSON schemas, then heartbeats follow", async () => {
    const client = h.client({ project: "shop" });
    await client.connect();
    const svc = paymentService();
    await client.start(svc);
    const stored = await h.bus.jsm.streams.getMessage(h.topology.servicesStream, {
      last_by_subj: h.topology.serviceSubject("service.registered", "PaymentService", "1"),
    });
    assert.ok(stored);
    const event = decode(stored.data);
    assert.equal(event.type, "service.registered");
    if (event.type !== "service.registered") return;
    assert.equal(stored.header.get("Nats-Msg-Id"), `reg:PaymentService:${svc.schemaHash}`);
    assert.equal(event.project, "shop");
    assert.equal(event.revertible, true);
    assert.equal(event.schema_hash, svc.schemaHash);
    assert.deepEqual(event.input_schema, {
      type: "object",
      properties: { orderId: { type: "string" }, amount: { type: "number" } },
      required: ["orderId", "amount"],
    });
    const [beat] = await h.events.wait("service.heartbeat", { service: "PaymentService" });
    assert.equal(beat?.instance_id, client.instanceId);
    assert.equal(beat?.interval_s, 5);
  });
});

describe("tasks", () => {
  test("a dispatched task completes with its output", async () => {
    const calls: Array<Task<z.infer<typeof PayIn>>> = [];
    const client = h.client();
    await client.connect();
    await client.start(paymentService(calls));
    await h.dispatch("PaymentService", "payment", { orderId: "ORD123", amount: "299.99" });
    const [done] = await h.events.wait("task.completed", { task_id: "payment" });
    assert.ok(done);
    assert.deepEqual(done.output, { paymentStatus: "confirmed", transactionId: "TX-ORD123" });
    assert.equal(done.event_id, "r:o_test:payment:1");
    assert.equal(done.idempotency_key, "o_test:payment");
    assert.equal(done.replayed, false);
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]?.input, { orderId: "ORD123", amount: 299.99 });
    assert.equal(calls[0]?.deliveries, 1);
    assert.equal(await h.workLeft(), 0);
  });
});

async function lastRegistration(name: string, version = "1") {
  const stored = await h.bus.jsm.streams.getMessage(h.topology.servicesStream, {
    last_by_subj: h.topology.serviceSubject("service.registered", name, version),
  });
  assert.ok(stored);
  const event = decode(stored.data);
  assert.ok(event.type === "service.registered");
  return { event, seq: stored.seq, msgId: stored.header.get("Nats-Msg-Id") };
}

describe("registry, continued", () => {
  test("one name and version has one definition: another one is refused, a new version registers", async () => {
    const v1 = paymentService();
    const changed = (version: string) => {
      const svc = new Service({
        name: "PaymentService",
        description: "Charge the payment of an order",
        input: PayIn.extend({ currency: z.string().default("EUR") }),
        output: PayOut,
        revertible: true,
        version,
        examples: ["charge the card", "take  the money "],
      });
      svc.handler(async () => ({ paymentStatus: "confirmed", transactionId: "T" }));
      return svc;
    };
    const first = h.client();
    await first.connect();
    await first.start(v1);
    await first.close();
    const refused = h.client();
    await refused.connect();
    await assert.rejects(refused.start(changed("1.0")), (error: Error) => {
      assert.equal(error.name, "RegistrationConflict");
      assert.equal(
        error.message,
        "service PaymentService version 1 is already registered with another definition (input schema and " +
          "examples differ); one name and version has one definition, so this registration is refused and the " +
          'registered one stays. Fix: give this service another name, or raise its version above every registered ' +
          'one (version="2") to replace it for new plans.',
      );
      return true;
    });
    assert.equal(refused.ready, false);
    const v2 = changed("v2.0");
    assert.equal(v2.version, "2");
    assert.deepEqual(v2.examples, ["charge the card", "take the money"]);
    const second = h.client();
    await second.connect();
    await second.start(v2);
    const stored = await lastRegistration("PaymentService", "2");
    assert.equal(stored.event.schema_hash, v2.schemaHash);
    assert.deepEqual(stored.event.examples, ["charge the card", "take the money"]);
    assert.deepEqual(stored.event.input_schema, v2.inputSchema);
    assert.equal((await lastRegistration("PaymentService", "1")).event.schema_hash, v1.schemaHash);
    const [beat] = await h.events.wait("service.heartbeat", { service: "PaymentService", version: "2" });
    assert.equal(beat?.instance_id, second.instanceId);
  });

  test("a task planned against another version is handed back to a replica of it", async () => {
    const runs: string[] = [];
    const replica = (version: string) => {
      const svc = new Service({ name: "Versioned", description: "d", input: PayIn, output: PayOut, version });
      svc.handler(async () => {
        runs.push(version);
        return { paymentStatus: "ok", transactionId: version };
      });
      return svc;
    };
    const old = h.client();
    await old.connect();
    await old.start(replica("1"));
    await h.bus.publish(
      {
        type: "task.dispatched",
        event_id: "d:o_v:t:1",
        orchestration_id: "o_v",
        task_id: "t",
        service: "Versioned",
        input: { orderId: "O", amount: 1 },
        attempt: 1,
        idempotency_key: "o_v:t",
        timeout_s: 30,
        version: "2",
      },
      h.topology.work("Versioned"),
    );
    await sleep(500);
    assert.deepEqual(runs, [], "version 1 does not run a task planned against version 2");
    const upgraded = h.client();
    await upgraded.connect();
    await upgraded.start(replica("2"));
    const [done] = await h.events.wait("task.completed", { task_id: "t" });
    assert.equal(done?.output.transactionId, "2");
    assert.deepEqual(runs, ["2"]);
  });

  test("restarting an unchanged service stores no new registration", async () => {
    for (let i = 0; i < 2; i++) {
      const client = h.client();
      await client.connect();
      await client.start(paymentService());
      await client.close();
    }
    const { seq } = await lastRegistration("PaymentService");
    assert.equal(seq, 1);
  });

  test("heartbeats are sent periodically", async () => {
    const client = h.client({ heartbeatIntervalS: 0.1 });
    await client.connect();
    await client.start(paymentService());
    const beats = await h.events.wait("service.heartbeat", { service: "PaymentService" }, { count: 3 });
    assert.deepEqual(new Set(beats.map((b) => b.instance_id)), new Set([client.instanceId]));
    assert.equal(beats[0]?.interval_s, 0.1);
    assert.equal(new Set(beats.map((b) => b.event_id)).size, beats.length);
    assert.match(beats[0]?.event_id ?? "", /^hb_[a-z2-7]{16}$/);
  });

  test("bad definitions are refused with what to do", () => {
    const base = { description: "d", input: PayIn, output: PayOut };
    assert.throws(() => new Service({ ...base, name: "bad name" }), /service name 'bad name' is not a valid name/);
    assert.throws(() => new Service({ ...base, name: "S", concurrency: 0 }), /concurrency must be at least 1/);
    assert.throws(
      () => new Service({ ...base, name: "S" }).revert(async () => undefined),
      /S is not revertible: declare it with new Service\(\{\.\.\., revertible: true\}\)/,
    );
    assert.throws(() => new Service({ ...base, name: "S", input: { type: "nope" } }), /S: input is not a valid JSON Schema/);
    assert.throws(() => new Service({ ...base, name: "S" }).handle, /S has no handler/);
    assert.throws(() => new Service({ ...base, name: "S", version: "beta" }), /S: version 'beta' is not a version: use dotted numbers/);
    assert.throws(
      () => new Service({ ...base, name: "S", examples: ["ok", "", "OK", "line\nbreak"] }),
      /S: examples\[1\] is empty; examples\[2\] repeats examples\[0\] \('OK'\); examples\[3\] contains a line break/,
    );
  });

  test("a service without a handler is refused at start", async () => {
    const client = h.client();
    await client.connect();
    await assert.rejects(
      client.start(new Service({ name: "S", description: "d", input: PayIn, output: PayOut })),
      /S has no handler/,
    );
  });
});

describe("validation and failures", () => {
  test("an invalid input fails without retry, naming the field; the handler is not called", async () => {
    const calls: Array<Task<z.infer<typeof PayIn>>> = [];
    const typed = new Service({
      name: "Typed",
      description: "d",
      input: jsonSchema<{ orderId: string; amount: number }>({
        type: "object",
        properties: { orderId: { type: "string" }, amount: { type: "number", minimum: 0 } },
        required: ["orderId", "amount"],
      }),
      output: { type: "object" },
    });
    typed.handler(async () => ({}));
    const client = h.client();
    await client.connect();
    await client.start(paymentService(calls), typed);
    await h.dispatch("PaymentService", "bad", { orderId: "ORD1", amount: "lots" });
    await h.dispatch("PaymentService", "missing", { amount: 3 });
    await h.dispatch("Typed", "negative", { orderId: "ORD1", amount: -2 });
    await h.dispatch("Typed", "coerced", { orderId: "ORD1", amount: "299.99" });
    const [bad] = await h.events.wait("task.failed", { task_id: "bad" });
    const [missing] = await h.events.wait("task.failed", { task_id: "missing" });
    const [negative] = await h.events.wait("task.failed", { task_id: "negative" });
    await h.events.wait("task.completed", { task_id: "coerced" });
    assert.equal(bad?.retryable, false);
    assert.equal(bad?.error, "invalid input for PaymentService: amount: Invalid input: expected number, received NaN");
    assert.equal(missing?.error, "invalid input for PaymentService: orderId: Field required");
    assert.equal(negative?.error, "invalid input for Typed: amount: must be >= 0");
    assert.equal(calls.length, 0);
  });

  test("handler errors become task failures; an invalid output fails with the validation error", async () => {
    const svc = new Service({ name: "Flaky", description: "d", input: PayIn, output: PayOut });
    const attempts: number[] = [];
    svc.handler(async (task) => {
      attempts.push(task.attempt);
      if (task.input.orderId === "fatal") throw new NonRetryableError("card expired");
      if (task.input.orderId === "badout") return { paymentStatus: "confirmed" } as never;
      if (task.attempt === 1) throw new Error("bank unavailable");
      return { paymentStatus: "confirmed", transactionId: "T2" };
    });
    const client = h.client();
    await client.connect();
    await client.start(svc);
    await h.dispatch("Flaky", "t", { orderId: "x", amount: 1 });
    const [failed] = await h.events.wait("task.failed", { task_id: "t" });
    assert.equal(failed?.retryable, true);
    assert.equal(failed?.error, "Error: bank unavailable");
    assert.equal(failed?.event_id, "r:o_test:t:1");
    // Failures are not recorded: the dispatcher's retry runs the handler again.
    await h.dispatch("Flaky", "t", { orderId: "x", amount: 1 }, { attempt: 2 });
    const [done] = await h.events.wait("task.completed", { task_id: "t" });
    assert.equal(done?.attempt, 2);
    assert.equal(done?.replayed, false);
    assert.deepEqual(attempts, [1, 2]);
    await h.dispatch("Flaky", "fatal", { orderId: "fatal", amount: 1 });
    await h.dispatch("Flaky", "badout", { orderId: "badout", amount: 1 });
    const [fatal] = await h.events.wait("task.failed", { task_id: "fatal" });
    const [badout] = await h.events.wait("task.failed", { task_id: "badout" });
    assert.deepEqual([fatal?.retryable, fatal?.error], [false, "NonRetryableError: card expired"]);
    assert.equal(badout?.retryable, false);
    assert.equal(badout?.error, "invalid output from Flaky: transactionId: Field required");
    assert.equal(await h.workLeft(), 0);
  });

  test("a failure releases the claim for another replica at once", async () => {
    const runs: string[] = [];
    const replica = (label: string) => {
      const svc = new Service({ name: "Split", description: "d", input: PayIn, output: PayOut });
      svc.handler(async (task) => {
        runs.push(label);
        if (task.attempt === 1) throw new Error("try again");
        return { paymentStatus: "ok", transactionId: label };
      });
      return svc;
    };
    const first = h.client({ ackWaitS: 10 });
    await first.connect();
    await first.start(replica("first"));
    await h.dispatch("Split", "t", { orderId: "O", amount: 1 });
    await h.events.wait("task.failed", { task_id: "t" });
    await first.close();
    const second = h.client({ ackWaitS: 10 });
    await second.connect();
    await second.start(replica("second"));
    const started = Date.now();
    await h.dispatch("Split", "t", { orderId: "O", amount: 1 }, { attempt: 2 });
    const [done] = await h.events.wait("task.completed", { task_id: "t" }, { timeoutMs: 15_000 });
    assert.ok(Date.now() - started < 5000, "the lease (20 s) was not waited out");
    assert.equal(done?.output.transactionId, "second");
    assert.deepEqual(runs, ["first", "second"]);
  });
});

describe("idempotency", () => {
  test("a retried task replays the recorded result, even after a restart", async () => {
    const calls: Array<Task<z.infer<typeof PayIn>>> = [];
    const first = h.client();
    await first.connect();
    await first.start(paymentService(calls));
    await h.dispatch("PaymentService", "payment", { orderId: "ORD1", amount: 10 });
    const [original] = await h.events.wait("task.completed", { attempt: 1 });
    await h.dispatch("PaymentService", "payment", { orderId: "ORD1", amount: 10 }, { attempt: 2 });
    const [replay] = await h.events.wait("task.completed", { attempt: 2 });
    assert.equal(replay?.replayed, true);
    assert.deepEqual(replay?.output, original?.output);
    assert.equal(replay?.event_id, "r:o_test:payment:2");
    assert.equal(replay?.started_at, original?.started_at);
    await first.close();
    const second = h.client();
    await second.connect();
    await second.start(paymentService(calls));
    await h.dispatch("PaymentService", "payment", { orderId: "ORD1", amount: 10 }, { attempt: 3 });
    await h.dispatch("PaymentService", "payment", { orderId: "ORD1", amount: 10 }, { eventId: "late-copy" });
    const [third] = await h.events.wait("task.completed", { attempt: 3 });
    assert.equal(third?.replayed, true);
    const ofFirst = await h.events.wait("task.completed", { attempt: 1 }, { count: 2 });
    assert.equal(ofFirst[1]?.replayed, true);
    assert.equal(calls.length, 1);
    assert.equal(await h.workLeft(), 0);
  });

  test("concurrent copies of a task run the handler once", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let calls = 0;
    const slow = () => {
      const svc = new Service({ name: "Slow", description: "d", input: PayIn, output: PayOut, concurrency: 1 });
      svc.handler(async () => {
        calls += 1;
        await gate;
        return { paymentStatus: "confirmed", transactionId: "T" };
      });
      return svc;
    };
    for (let i = 0; i < 2; i++) {
      const client = h.client();
      await client.connect();
      await client.start(slow());
    }
    for (const attempt of [1, 2, 3]) await h.dispatch("Slow", "t", { orderId: "O", amount: 1 }, { attempt });
    while (calls === 0) await sleep(10);
    await sleep(300);
    release();
    const done = await h.events.wait("task.completed", { task_id: "t" }, { count: 3 });
    assert.equal(calls, 1);
    assert.deepEqual(done.map((e) => e.attempt).sort(), [1, 2, 3]);
    assert.equal(done.filter((e) => !e.replayed).length, 1);
  });
});

describe("scale-out and long tasks", () => {
  test("two replicas split the tasks of one service through one consumer", async () => {
    const ranOn = new Map<string, string>();
    const replica = (label: string) => {
      const svc = new Service({ name: "Split", description: "d", input: PayIn, output: PayOut, concurrency: 2 });
      svc.handler(async (task) => {
        assert.ok(!ranOn.has(task.taskId));
        ranOn.set(task.taskId, label);
        await sleep(20);
        return { paymentStatus: "confirmed", transactionId: label };
      });
      return svc;
    };
    for (const label of ["a", "b"]) {
      const client = h.client();
      await client.connect();
      await client.start(replica(label));
    }
    for (let i = 0; i < 20; i++) await h.dispatch("Split", `t${i}`, { orderId: String(i), amount: 1 });
    const done = await h.events.wait("task.completed", {}, { count: 20 });
    assert.equal(new Set(done.map((e) => e.task_id)).size, 20);
    const labels = [...ranOn.values()];
    assert.ok(labels.filter((l) => l === "a").length >= 2, labels.join());
    assert.ok(labels.filter((l) => l === "b").length >= 2, labels.join());
    const names = [];
    for await (const c of h.bus.jsm.consumers.list(h.topology.workStream)) names.push(c.name);
    assert.deepEqual(names, ["svc_Split"]);
  });

  test("concurrency is bounded per service", async () => {
    let running = 0;
    let peak = 0;
    const svc = new Service({ name: "Bounded", description: "d", input: PayIn, output: PayOut, concurrency: 3 });
    svc.handler(async (task) => {
      running += 1;
      peak = Math.max(peak, running);
      await sleep(30);
      running -= 1;
      return { paymentStatus: "ok", transactionId: task.taskId };
    });
    const client = h.client();
    await client.connect();
    await client.start(svc);
    for (let i = 0; i < 12; i++) await h.dispatch("Bounded", `t${i}`, { orderId: String(i), amount: 1 });
    await h.events.wait("task.completed", {}, { count: 12 });
    assert.equal(peak, 3);
  });

  test("in-progress acks keep a long task from being redelivered", async () => {
    const deliveries: number[] = [];
    const svc = new Service({ name: "Long", description: "d", input: PayIn, output: PayOut });
    svc.handler(async (task) => {
      deliveries.push(task.deliveries);
      await sleep(2600); // more than twice the ack wait
      return { paymentStatus: "ok", transactionId: "T" };
    });
    const client = h.client({ ackWaitS: 1 });
    await client.connect();
    await client.start(svc);
    await h.dispatch("Long", "t", { orderId: "O", amount: 1 });
    const [done] = await h.events.wait("task.completed", { task_id: "t" });
    assert.equal(done?.replayed, false);
    assert.ok((done?.duration_ms ?? 0) >= 2600);
    assert.deepEqual(deliveries, [1]);
    assert.equal(await h.workLeft(), 0);
    const info = await h.bus.jsm.consumers.info(h.topology.workStream, "svc_Long");
    assert.equal(info.num_redelivered, 0);
    assert.equal(info.num_ack_pending, 0);
    assert.equal(info.config.ack_wait, 1e9);
  });

  test("stopping abandons a running task to another replica", async () => {
    const runs: string[] = [];
    let started!: () => void;
    const startedP = new Promise<void>((resolve) => {
      started = resolve;
    });
    let abandonedSignal: AbortSignal | undefined;
    const replica = (label: string, hang: boolean) => {
      const svc = new Service({ name: "Handover", description: "d", input: PayIn, output: PayOut });
      svc.handler(async (task) => {
        runs.push(label);
        started();
        if (hang) {
          abandonedSignal = task.signal;
          await new Promise(() => undefined);
        }
        return { paymentStatus: "ok", transactionId: label };
      });
      return svc;
    };
    const leaving = h.client({ drainTimeoutS: 0.1 });
    await leaving.connect();
    await leaving.start(replica("leaving", true));
    await h.dispatch("Handover", "t", { orderId: "O", amount: 1 });
    await startedP;
    await leaving.close();
    assert.equal(abandonedSignal?.aborted, true, "the handler is told through its signal");
    const staying = h.client();
    await staying.connect();
    await staying.start(replica("staying", false));
    const [done] = await h.events.wait("task.completed", { task_id: "t" });
    assert.equal(done?.output.transactionId, "staying");
    assert.deepEqual(runs, ["leaving", "staying"]);
    assert.equal(h.events.of("task.failed").length, 0);
  });

  test("with manageStreams off the client binds to the streams another component made", async () => {
    const client = h.client({ manageStreams: false });
    await client.connect();
    await client.start(paymentService());
    await h.dispatch("PaymentService", "bound", { orderId: "B", amount: 1 });
    await h.events.wait("task.completed", { task_id: "bound" });
  });

  test("one process hosts several services", async () => {
    const stock = new Service({
      name: "InventoryService",
      description: "stock",
      input: z.object({ productId: z.string() }),
      output: z.object({ inStock: z.boolean() }),
    });
    stock.handler(async (task) => ({ inStock: task.input.productId !== "none" }));
    const client = h.client();
    await client.connect();
    await client.start(paymentService(), stock);
    await h.dispatch("PaymentService", "payment", { orderId: "O", amount: 2 });
    await h.dispatch("InventoryService", "inventory", { productId: "PROD456" });
    const [pay] = await h.events.wait("task.completed", { task_id: "payment" });
    const [inv] = await h.events.wait("task.completed", { task_id: "inventory" });
    assert.equal(pay?.service, "PaymentService");
    assert.deepEqual(inv?.output, { inStock: true });
    for (const name of ["PaymentService", "InventoryService"]) assert.equal((await lastRegistration(name)).event.service, name);
  });
});
