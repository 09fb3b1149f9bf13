/**
 * The idempotency record: one key per task in the `sdk_results` KV bucket, shared with the
 * Python SDK (`orra_sdk._results`, same bucket, keys and JSON values).
 *
 * A key holds either a *claim* (`running`, with the holder and a lease) or the *result*
 * (`done`, with the output). Claiming is a create-only write, so when two replicas get the
 * same idempotency key at once only one runs the handler; the other waits for the result.
 * A failure deletes the claim (compare-and-set), so a retry runs the handler again; a holder
 * that died leaves a claim whose lease expires, and the next delivery takes it over.
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";

export { kvKey } from "./canonical.js";

/** `err_code` of a refused `Nats-Expected-Last-Subject-Sequence` (a compare-and-set conflict). */
const WRONG_LAST_SEQUENCE = new Set([10071, 10164]);

/** Whether an error is a compare-and-set conflict. */
export function isConflict(error: unknown): boolean {
  return error instanceof JetStreamApiError && WRONG_LAST_SEQUENCE.has(error.code);
}

/** What the bucket holds for one idempotency key (the Python SDK's `Record`, field for field). */
export interface ResultRecord {
  state: "running" | "done";
  holder: string;
  lease_until: number;
  attempt: number;
  output: Record<string, unknown> | null;
  started_at: number;
  duration_ms: number;
}

/** This instance holds the key and must run the handler. */
export interface Claimed {
  kind: "claimed";
  key: string;
  revision: number;
}

/** The handler already succeeded for this key: replay its result. */
export interface Done {
  kind: "done";
  record: ResultRecord;
}

/** Another live instance is running the handler for this key. */
export interface Busy {
  kind: "busy";
  holder: string;
  retryAfterS: number;
}

const encoder = new TextEncoder();

/** The record a KV value holds, or `undefined` when it holds none. */
export function recordOf(value: Uint8Array): ResultRecord | undefined {
  try {
    return decodeRecord(value);
  } catch {
    return undefined;
  }
}

function decodeRecord(value: Uint8Array): ResultRecord {
  const raw = JSON.parse(new TextDecoder().decode(value)) as Partial<ResultRecord>;
  if (raw.state !== "running" && raw.state !== "done") throw new Error("not an idempotency record");
  return {
    state: raw.state,
    holder: raw.holder ?? "",
    lease_until: raw.lease_until ?? 0,
    attempt: raw.attempt ?? 0,
    output: raw.output ?? null,
    started_at: raw.started_at ?? 0,
    duration_ms: raw.duration_ms ?? 0,
  };
}

/** Claims and results of tasks, in one KV bucket shared by every SDK process. */
export class ResultStore {
  readonly kv: KV;
  readonly holder: string;

  /**
   * @param kv The `sdk_results` bucket of the namespace.
   * @param holder This process's instance id, written into its claims.
   */
  constructor(kv: KV, holder: string) {
    this.kv = kv;
    this.holder = holder;
  }

  #running(attempt: number, leaseS: number): Uint8Array {
    const record: ResultRecord = {
      state: "running",
      holder: this.holder,
      lease_until: Date.now() / 1000 + leaseS,
      attempt,
      output: null,
      started_at: 0,
      duration_ms: 0,
    };
    return encoder.encode(JSON.stringify(record));
  }

  /** Take the key, or learn that it is done or held by a live instance. */
  async claim(key: string, attempt: number, leaseS: number): Promise<Claimed | Done | Busy> {
    for (let i = 0; i < 5; i++) {
      try {
        // create() also takes over a released claim (a delete marker) from its revision
        return { kind: "claimed", key, revision: await this.kv.create(key, this.#running(attempt, leaseS)) };
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
      const entry = await this.kv.get(key);
      if (entry === null) continue; // gone between our write and the read: create again
      let last = entry.revision;
      if (entry.operation === "PUT") {
        const record = decodeRecord(entry.value);
        if (record.state === "done") return { kind: "done", record };
        const remaining = record.lease_until - Date.now() / 1000;
        if (remaining > 0 && record.holder !== this.holder) {
          // Poll rather than wait for the whole lease: the holder usually finishes well
          // before it, and then the next look replays its result.
          return { kind: "busy", holder: record.holder, retryAfterS: Math.min(Math.max(remaining, 0.1), 0.5) };
        }
        last = entry.revision; // the holder's lease ran out (it died or hung): take over
      }
      try {
        return { kind: "claimed", key, revision: await this.kv.update(key, this.#running(attempt, leaseS), last) };
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
    return { kind: "busy", holder: "unknown", retryAfterS: 1.0 };
  }

  /** Extend the lease of a claim; false when another instance took it over. */
  async renew(claim: Claimed, attempt: number, leaseS: number): Promise<boolean> {
    try {
      claim.revision = await this.kv.update(claim.key, this.#running(attempt, leaseS), claim.revision);
      return true;
    } catch (error) {
      if (isConflict(error)) return false;
      throw error;
    }
  }

  /**
   * Record a successful output; later deliveries replay it. Unconditional: the handler did
   * run, so its result is the truth even if a lease expired and another instance took over.
   */
  async complete(
    claim: Claimed,
    result: { output: Record<string, unknown>; attempt: number; startedAt: number; durationMs: number },
  ): Promise<void> {
    const record: ResultRecord = {
      state: "done",
      holder: this.holder,
      lease_until: 0,
      attempt: result.attempt,
      output: result.output,
      started_at: result.startedAt,
      duration_ms: result.durationMs,
    };
    await this.kv.put(claim.key, encoder.encode(JSON.stringify(record)));
  }

  /**
   * Drop the claim after a failure (a retry then runs the handler). Compare-and-set: a
   * claim taken over by another instance is no longer ours to delete, and that refusal is
   * expected (not thrown).
   */
  async release(claim: Claimed): Promise<void> {
    try {
      await this.kv.delete(claim.key, { previousSeq: claim.revision });
    } catch (error) {
      if (!isConflict(error)) throw error;
    }
  }
}
