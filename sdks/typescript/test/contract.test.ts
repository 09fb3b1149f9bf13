/**
 * The shared contract cases of libs/orra_events/contract_cases, run against @orra/sdk; the
 * Python SDK runs the same files (tests/sdk/test_contract_cases.py).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { canonicalJson, kvKey, schemaHash } from "../src/canonical.js";
import { definitionHash } from "../src/registrations.js";
import { canonicalVersion } from "../src/versions.js";
import { decode } from "../src/codec.js";
import { DecodeError } from "../src/errors.js";
import { Service, jsonSchema } from "../src/index.js";
import { Harness, NatsServer } from "./helpers.js";
import { REPO } from "./nats.js";

const CASES = join(REPO, "libs/orra_events/contract_cases");

interface WorkCase {
  name: string;
  message?: Record<string, unknown>;
  raw?: string;
  outcome: "run" | "revert" | "fail" | "park";
  reason?: string;
  reason_prefix?: string;
  error?: string;
  retryable?: boolean;
}

const work = JSON.parse(readFileSync(join(CASES, "work_messages.json"), "utf8")) as { service: string; cases: WorkCase[] };
const rules = JSON.parse(readFileSync(join(CASES, "sdk_rules.json"), "utf8")) as {
  schema_hash: Array<{ definition: Record<string, unknown>; canonical: string; hash: string }>;
  kv_key: Array<{ service: string; idempotency_key: string; kv_key: string }>;
};

function bytesOf(c: WorkCase): string {
  return c.raw ?? JSON.stringify(c.message);
}

describe("sdk rules", () => {
  test("canonical JSON and schema hashes are the Python SDK's", () => {
    for (const { definition, canonical, hash } of rules.schema_hash) {
      const d = definition as {
        name: string;
        description: string;
        input_schema: Record<string, unknown>;
        output_schema: Record<string, unknown>;
        revertible: boolean;
        version: string;
        kind: "service" | "agent";
        examples?: string[];
      };
      const { examples, ...rest } = d;
      const hashed = { ...rest, version: canonicalVersion(d.version), ...(examples?.length ? { examples } : {}) };
      assert.equal(canonicalJson(hashed), canonical);
      assert.equal(schemaHash(hashed), hash);
      assert.equal(definitionHash(d), hash);
      const service = new Service({
        name: d.name,
        description: d.description,
        input: d.input_schema,
        output: d.output_schema,
        revertible: d.revertible,
        version: d.version,
        kind: d.kind,
        examples: d.examples ?? [],
      });
      assert.equal(service.schemaHash, hash, `a service declared with ${d.name}'s JSON Schemas`);
    }
  });

  test("idempotency records have the Python SDK's keys", () => {
    for (const c of rules.kv_key) assert.equal(kvKey(c.service, c.idempotency_key), c.kv_key, JSON.stringify(c));
  });

  test("undecodable work is refused with the Python SDK's reason", () => {
    for (const c of work.cases) {
      if (c.outcome !== "park") continue;
      let reason: string | undefined;
      try {
        decode(bytesOf(c));
      } catch (error) {
        assert.ok(error instanceof DecodeError);
        reason = `${error.name}: ${error.message}`;
      }
      if (reason === undefined) continue; // decodes; parked for its type or service (below)
      if (c.reason !== undefined) assert.equal(reason, c.reason, c.name);
      else assert.ok(reason.startsWith(c.reason_prefix ?? ""), `${c.name}: ${reason}`);
    }
  });
});

describe("work messages", () => {
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

  test("every case gets the outcome both SDKs give it", async () => {
    const svc = new Service({
      name: work.service,
      description: "Contract cases",
      input: jsonSchema<{ orderId: string }>({
        type: "object",
        properties: { orderId: { type: "string" } },
        required: ["orderId"],
      }),
      output: { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] },
      revertible: true,
    });
    const ran: string[] = [];
    const reverted: string[] = [];
    svc.handler(async (task) => {
      ran.push(task.taskId);
      return task.input.orderId === "BADOUT" ? {} : { ok: true };
    });
    svc.revert(async (task) => {
      reverted.push(task.taskId);
    });
    const client = h.client();
    await client.connect();
    await client.start(svc);

    const subject = h.topology.work(work.service);
    const sequences = new Map<number, WorkCase>();
    for (const c of work.cases) {
      const ack = await h.bus.js.publish(subject, bytesOf(c));
      sequences.set(ack.seq, c);
    }
    const expectedParks = work.cases.filter((c) => c.outcome === "park").length;
    const taskOf = (c: WorkCase): string => String(c.message?.task_id);
    for (const c of work.cases) {
      if (c.outcome === "run") await h.events.wait("task.completed", { task_id: taskOf(c) });
      if (c.outcome === "revert") await h.events.wait("task.compensated", { task_id: taskOf(c) });
      if (c.outcome === "fail") {
        const [failed] = await h.events.wait("task.failed", { task_id: taskOf(c) });
        assert.equal(failed?.error, c.error, c.name);
        assert.equal(failed?.retryable, c.retryable, c.name);
      }
    }
    const parked = new Map<string, string>();
    const dlq = h.topology.deadLetter(subject);
    const deadline = Date.now() + 10_000;
    while (parked.size < expectedParks && Date.now() < deadline) {
      const info = await h.bus.jsm.streams.info(h.topology.dlqStream);
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const stored = await h.bus.jsm.streams.getMessage(h.topology.dlqStream, { seq });
        if (stored === null || stored.subject !== dlq) continue;
        const c = sequences.get(Number(stored.header.get("Orra-Original-Sequence")));
        assert.ok(c, `a parked message that was not a case: ${stored.string()}`);
        assert.equal(stored.header.get("Orra-Original-Subject"), subject);
        assert.equal(stored.string(), bytesOf(c), `${c.name}: the payload is kept`);
        parked.set(c.name, stored.header.get("Orra-Dead-Letter-Reason"));
      }
      if (parked.size < expectedParks) await new Promise((r) => setTimeout(r, 100));
    }
    for (const c of work.cases.filter((k) => k.outcome === "park")) {
      const reason = parked.get(c.name);
      assert.ok(reason !== undefined, `${c.name} was not parked`);
      if (c.reason !== undefined) assert.equal(reason, c.reason.replace("{work_subject}", subject), c.name);
      else assert.ok(reason.startsWith(c.reason_prefix ?? ""), `${c.name}: ${reason}`);
    }
    const runs = work.cases.filter((c) => c.outcome === "run" || c.message?.task_id === "output_invalid").map(taskOf);
    assert.deepEqual(ran.sort(), runs.sort(), "the handler ran for the tasks, and only those");
    assert.deepEqual(reverted.sort(), work.cases.filter((c) => c.outcome === "revert").map(taskOf).sort());
    assert.equal(await h.workLeft(), 0, "every message was settled");
  });
});
