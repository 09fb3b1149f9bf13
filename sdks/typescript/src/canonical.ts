/**
 * Python-compatible canonical JSON and the rules derived from it, written once for both
 * SDKs' wire contract: the schema hash of a service definition and the KV key of an
 * idempotency key. The shared cases in libs/orra_events/contract_cases/sdk_rules.json
 * are checked against `orra_sdk` (tests/sdk/test_contract_cases.py) and against this module
 * (test/contract.test.ts), so a service registered from Node and from Python gets the same
 * hash and the same idempotency records.
 */
import { createHash } from "node:crypto";
import { isPythonInt, pyFloat } from "./pyrepr.js";

function codePointCompare(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i]?.codePointAt(0) ?? 0) - (y[i]?.codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function asciiString(value: string): string {
  let out = '"';
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    const char = value[i] as string;
    if (char === '"') out += '\\"';
    else if (char === "\\") out += "\\\\";
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (char === "\b") out += "\\b";
    else if (char === "\f") out += "\\f";
    else if (unit < 0x20 || unit > 0x7e) out += `\\u${unit.toString(16).padStart(4, "0")}`;
    else out += char;
  }
  return out + '"';
}

/**
 * `json.dumps(value, sort_keys=True, separators=(",", ":"))` as Python writes it
 * (`ensure_ascii`: every character beyond ASCII as `\uXXXX`; keys sorted by code point;
 * an integral number below 1e16 as an int, any other as Python's `repr(float)`; a
 * float such as `1.0` in a Python schema is therefore hashed differently: declare the
 * same service in both languages with integral bounds written as ints).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return value > 0 ? "Infinity" : value < 0 ? "-Infinity" : "NaN";
    return isPythonInt(value) ? String(value) : pyFloat(value);
  }
  if (typeof value === "string") return asciiString(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => codePointCompare(a, b));
    return `{${entries.map(([k, v]) => `${asciiString(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return asciiString(String(value));
}

/** A service definition, as hashed by `orra_sdk.service.schema_hash`. */
export interface ServiceDefinition {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
  output_schema: Record<string, unknown>;
  revertible: boolean;
  version: string;
  kind: "service" | "agent";
}

/** A short, stable hash of a service definition (canonical JSON, SHA-256, 16 hex digits). */
export function schemaHash(definition: ServiceDefinition | Record<string, unknown>): string {
  return createHash("sha256").update(canonicalJson(definition), "utf8").digest("hex").slice(0, 16);
}

const SAFE_KEY = /^[A-Za-z0-9_=-]+(?::[A-Za-z0-9_=-]+)*$/;

/**
 * The KV key of a service's idempotency key (`:` is not allowed in KV keys), as
 * `orra_sdk._results.kv_key` writes it: `<service>.<key with . for :>`, or
 * `<service>.h.<sha256 hex>` for a key with other characters.
 */
export function kvKey(service: string, idempotencyKey: string): string {
  if (SAFE_KEY.test(idempotencyKey)) return `${service}.${idempotencyKey.replaceAll(":", ".")}`;
  return `${service}.h.${createHash("sha256").update(idempotencyKey, "utf8").digest("hex")}`;
}
