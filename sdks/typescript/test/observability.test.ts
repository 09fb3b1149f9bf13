/** Probes, metrics and logs of a service process, and the runner. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { z } from "zod";
import { AbortOrchestration, OrraClient, Service, healthServer, log, serveUntilSignal } from "../src/index.js";
import type { HealthServer } from "../src/health.js";
import { Harness, NatsServer, sleep } from "./helpers.js";

const In = z.object({ key: z.string(), mode: z.enum(["ok", "fail", "abort"]).default("ok") });
const Out = z.object({ key: z.string() });

function echoService(name: string, gate?: Promise<void>) {
  const svc = new Service({ name, description: "Echo", input: In, output: Out });
  svc.handler(async (task) => {
    log.info("handling", { marker: task.input.key });
    if (gate) await gate;
    log.info("handled", { marker: task.input.key });
    if (task.input.mode === "fail") throw new Error("asked to fail");
    if (task.input.mode === "abort") throw new AbortOrchestration("asked to abort");
    return { key: task.input.key };
  });
  return svc;
}

function uniqueName(): string {
  return `Echo_${randomBytes(4).toString("hex")}`;
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/** The value of the sample `name{labels}` in a Prometheus text exposition. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const same =
      Object.keys(found).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => found[k] === v);
    if (same) return Number(match[3]);
  }
  return undefined;
}

let server: NatsServer;
let h: Harness;
const servers: HealthServer[] = [];
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
  for (const s of servers.splice(0)) await s.stop();
  await h.close();
});

async function probes(client: OrraClient): Promise<(path: string) => Promise<Response>> {
  const health = healthServer(client, 0, "127.0.0.1");
  await health.start();
  servers.push(health);
  return (path) => fetch(`http://127.0.0.1:${health.boundPort}${path}`);
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met");
    await sleep(20);
  }
}

describe("probes and metrics", () => {
  test("probes follow the client and metrics count outcomes by service", async () => {
    const name = uniqueName();
    const g = gate();
    const client = h.client();
    const get = await probes(client);
    assert.equal((await get("/healthz")).status, 200);
    assert.equal((await get("/readyz")).status, 503); // not connected yet
    await client.connect();
    assert.equal((await get("/readyz")).status, 503); // connected, nothing served
    await client.start(echoService(name, g.wait));
    assert.equal(client.ready, true);
    const ready = await get("/readyz");
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: "ready" });
    assert.equal((await get("/nowhere")).status, 404);

    let text = await (await get("/metrics")).text();
    for (const outcome of ["completed", "failed", "replayed", "aborted"]) {
      assert.equal(sample(text, "orra_sdk_tasks_total", { outcome, service: name }), 0);
    }
    assert.equal(sample(text, "orra_sdk_tasks_in_flight", { service: name }), 0);
    await h.dispatch(name, "t1", { key: "a" });
    await h.dispatch(name, "t2", { key: "b", mode: "fail" });
    await until(async () => sample(await (await get("/metrics")).text(), "orra_sdk_tasks_in_flight", { service: name }) === 2);
    g.open();
    await h.events.wait("task.completed", { task_id: "t1" });
    await h.events.wait("task.failed", { task_id: "t2" });
    await h.dispatch(name, "t1", { key: "a" }, { attempt: 2 });
    const [replay] = await h.events.wait("task.completed", { task_id: "t1", attempt: 2 });
    assert.equal(replay?.replayed, true);
    await h.dispatch(name, "t3", { key: "c", mode: "abort" }, { orchestrationId: "o_abort" });
    await h.events.wait("task.aborted", { task_id: "t3" });
    await until(async () => {
      text = await (await get("/metrics")).text();
      return sample(text, "orra_sdk_tasks_total", { outcome: "aborted", service: name }) === 1;
    });
    const metrics = await get("/metrics");
    assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain/);
    for (const outcome of ["completed", "failed", "replayed", "aborted"]) {
      assert.equal(sample(text, "orra_sdk_tasks_total", { outcome, service: name }), 1, outcome);
    }
    assert.ok(text.includes("# TYPE orra_sdk_tasks_total counter"));
    assert.ok(text.includes("# TYPE orra_sdk_handler_duration_seconds histogram"));
    for (const outcome of ["completed", "failed", "aborted"]) {
      assert.equal(sample(text, "orra_sdk_handler_duration_seconds_count", { outcome, service: name }), 1, outcome);
    }
    assert.equal(sample(text, "orra_sdk_handler_duration_seconds_count", { outcome: "replayed", service: name }), undefined);
    assert.equal(
      sample(text, "orra_sdk_handler_duration_seconds_bucket", { outcome: "completed", service: name, le: "+Inf" }),
      1,
    );
    assert.equal(sample(text, "orra_task_duration_seconds_count", { outcome: "completed", service: name }), 2);
    assert.equal(sample(text, "orra_sdk_tasks_in_flight", { service: name }), 0);
    await client.close();
    assert.equal(client.ready, false);
    assert.equal((await get("/readyz")).status, 503);
    assert.equal((await get("/healthz")).status, 200);
  });

  test("readiness drops as soon as the client starts stopping", async () => {
    const name = uniqueName();
    const g = gate();
    const client = h.client({ drainTimeoutS: 10 });
    const get = await probes(client);
    await client.connect();
    await client.start(echoService(name, g.wait));
    await h.dispatch(name, "slow", { key: "a" });
    await until(async () => sample(await (await get("/metrics")).text(), "orra_sdk_tasks_in_flight", { service: name }) === 1);
    let stopped = false;
    const stopping = client.stop().then(() => {
      stopped = true;
    });
    await sleep(50);
    assert.equal(stopped, false); // draining the running task
    assert.equal((await get("/readyz")).status, 503);
    assert.equal((await get("/healthz")).status, 200);
    g.open();
    await stopping;
    await h.events.wait("task.completed", { task_id: "slow" });
  });
});

describe("logs", () => {
  test("handler lines carry the task's context without leaking across tasks", async () => {
    const name = uniqueName();
    const g = gate();
    const client = h.client();
    await client.connect();
    await client.start(echoService(name, g.wait));
    await h.dispatch(name, "a", { key: "a" }, { orchestrationId: "o_log1" });
    await h.dispatch(name, "b", { key: "b", mode: "fail" }, { orchestrationId: "o_log2", attempt: 3 });
    await until(async () => h.logs.filter((l) => l.event === "handling").length === 2);
    g.open(); // both handlers are suspended: they interleave from here
    await h.events.wait("task.completed", { task_id: "a" });
    await h.events.wait("task.failed", { task_id: "b" });
    const expected: Record<string, Record<string, unknown>> = {
      a: { orchestration_id: "o_log1", task_id: "a", attempt: 1, service: name },
      b: { orchestration_id: "o_log2", task_id: "b", attempt: 3, service: name },
    };
    const lines = h.logs.filter((l) => l.event === "handling" || l.event === "handled");
    assert.equal(lines.length, 4);
    for (const line of lines) {
      const bound = Object.fromEntries(["orchestration_id", "task_id", "attempt", "service"].map((k) => [k, line[k]]));
      assert.deepEqual(bound, expected[String(line.marker)]);
      assert.equal(line.level, "info");
      assert.match(String(line.timestamp), /^\d{4}-\d\d-\d\dT/);
    }
    const raised = h.logs.find((l) => l.event === "handler raised");
    assert.equal(raised?.orchestration_id, "o_log2");
    assert.equal(raised?.error, "Error: asked to fail");
  });
});

describe("runner", () => {
  test("it refuses to start when the health port is taken", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "0.0.0.0", resolve));
    const address = taken.address();
    const port = typeof address === "object" && address ? address.port : 0;
    const client = h.client();
    try {
      const code = await serveUntilSignal([echoService(uniqueName())], { client, healthPort: port, until: sleep(10) });
      assert.equal(code, 1);
    } finally {
      taken.close();
    }
    assert.equal(client.ready, false);
    const line = h.logs.find((l) => l.event === "cannot start");
    assert.match(String(line?.hint), new RegExp(`is port ${port} free\\? see ORRA_HEALTH_PORT`));
  });

  test("it says so when the broker cannot be reached", async () => {
    const client = new OrraClient({ natsUrl: "nats://127.0.0.1:1", namespace: h.namespace });
    const code = await serveUntilSignal([echoService(uniqueName())], { client, healthPort: 0, until: sleep(10) });
    assert.equal(code, 1);
    const line = h.logs.find((l) => l.event === "cannot start");
    assert.match(String(line?.error), /cannot reach NATS at nats:\/\/127\.0\.0\.1:1/);
    assert.equal(line?.hint, "is nats-server running? see ORRA_NATS_URL");
  });

  test("a refused registration exits with status 2 before taking a task, saying why", async () => {
    const name = uniqueName();
    const first = h.client();
    await first.connect();
    await first.start(echoService(name));
    await first.close();
    const other = new Service({ name, description: "Another definition", input: In, output: Out });
    other.handler(async (task) => ({ key: task.input.key }));
    const client = h.client();
    const code = await serveUntilSignal([other], { client, healthPort: 0, until: sleep(5000) });
    assert.equal(code, 2);
    const line = h.logs.find((l) => l.event === "cannot start");
    assert.match(String(line?.error), new RegExp(`^service ${name} version 1 is already registered with another definition \\(description differs\\)`));
    assert.equal(h.logs.some((l) => l.event === "ready"), false);
  });

  test("it serves until told to stop, logging ready and stopped", async () => {
    const client = h.client();
    const stop = gate();
    const name = uniqueName();
    const serving = serveUntilSignal([echoService(name)], { client, healthPort: 0, until: stop.wait });
    await until(async () => h.logs.some((l) => l.event === "ready"));
    const ready = h.logs.find((l) => l.event === "ready");
    assert.deepEqual(ready?.services, [name]);
    assert.equal(ready?.namespace, h.namespace);
    assert.equal(ready?.instance_id, client.instanceId);
    await h.dispatch(name, "t", { key: "k" });
    await h.events.wait("task.completed", { task_id: "t" });
    stop.open();
    assert.equal(await serving, 0);
    assert.ok(h.logs.some((l) => l.event === "stopped"));
  });
});
