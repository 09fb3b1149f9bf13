/**
 * Identifiers: random event and instance ids as `orra_events.ids` makes them, and the
 * deterministic event ids of the results an SDK publishes (docs/architecture.md, "Deterministic
 * event ids"): a process that repeats its work republishes the same ids, and JetStream
 * stores each once.
 */
import { randomBytes } from "node:crypto";

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

function base32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31];
  return out;
}

/** A fresh, random id such as `hb_mzxw6ytboi4tqmrs` (10 random bytes, base32, lower case). */
export function newEventId(prefix = "e"): string {
  return `${prefix}_${base32(randomBytes(10))}`;
}

/** `r:<orch>:<task>:<attempt>`: the result of an attempt (completed, failed or aborted). */
export function resultId(orchestrationId: string, taskId: string, attempt: number): string {
  return `r:${orchestrationId}:${taskId}:${attempt}`;
}

/** `cr:<orch>:<task>:<attempt>`: the result of a compensation attempt. */
export function compensationResultId(orchestrationId: string, taskId: string, attempt: number): string {
  return `cr:${orchestrationId}:${taskId}:${attempt}`;
}

/** `pg:<orch>:<task>:<attempt>:<seq>`: the seq-th progress update of an attempt. */
export function progressId(orchestrationId: string, taskId: string, attempt: number, seq: number): string {
  return `pg:${orchestrationId}:${taskId}:${attempt}:${seq}`;
}

/** `reg:<service>:<schema hash>`: a service's registration. */
export function registrationId(service: string, schemaHash: string): string {
  return `reg:${service}:${schemaHash}`;
}
