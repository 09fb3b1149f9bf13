/**
 * Encode events to bytes and decode them back, with the errors of `orra_events.codec`.
 *
 * Events are JSON objects tagged by `type`, as msgspec writes them. Decoding checks the
 * bytes against the committed JSON Schema of their type (src/generated/schemas.ts, from
 * libs/orra_events/schemas) with msgspec's own rules and messages: unknown fields are
 * ignored, a field missing or of the wrong type is named with its path
 * (`Expected \`int\`, got \`str\` - at \`$.attempt\``), so a message parked by this SDK
 * carries the reason the Python SDK would give it (the shared cases in
 * libs/orra_events/contract_cases/work_messages.json prove it). Two differences JSON
 * itself forces: JavaScript cannot tell `1.0` from `1` (msgspec refuses `1.0` for an int),
 * and the detail after `event is not valid JSON: ` is the JavaScript parser's.
 */
import type { EventsByType, EventType, OrraEvent } from "./generated/events.js";
import { EVENT_DEFS, EVENT_TYPES, type SchemaNode } from "./generated/schemas.js";
import { MalformedEvent, SchemaMismatch, UnknownEventType, UnsupportedVersion } from "./errors.js";
import { isPythonInt, pyRepr } from "./pyrepr.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** Serialise an event to JSON bytes. */
export function encode(event: OrraEvent | Record<string, unknown>): Uint8Array {
  return encoder.encode(JSON.stringify(event));
}

class Mismatch extends Error {}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  switch (typeof value) {
    case "string":
      return "str";
    case "boolean":
      return "bool";
    case "number":
      return isPythonInt(value) ? "int" : "float";
    default:
      return "object";
  }
}

function at(path: string): string {
  return path === "$" ? "" : ` - at \`${path}\``;
}

function resolve(node: SchemaNode): SchemaNode {
  const ref = node.$ref;
  if (typeof ref === "string") {
    const def = EVENT_DEFS[ref.split("/").pop() ?? ""];
    if (def === undefined) throw new Error(`unknown schema reference ${ref}`);
    return def;
  }
  return node;
}

/** msgspec's name of what a schema node expects (`int`, `str | null`, `object`...). */
function expected(node: SchemaNode): string {
  const n = resolve(node);
  if (Array.isArray(n.anyOf)) return (n.anyOf as SchemaNode[]).map(expected).join(" | ");
  if (Array.isArray(n.enum)) return typeof n.enum[0] === "string" ? "str" : "int";
  switch (n.type) {
    case "string":
      return "str";
    case "integer":
      return "int";
    case "number":
      return "float";
    case "boolean":
      return "bool";
    case "null":
      return "null";
    case "array":
      return "array";
    case "object":
      return "object";
    default:
      return "any";
  }
}

/** Whether a value of `kind` is of the type a (non-union) node expects, before its details. */
function accepts(node: SchemaNode, value: unknown): boolean {
  const name = expected(node);
  const kind = kindOf(value);
  if (name === "any") return true;
  if (name === "float") return kind === "float" || kind === "int";
  return name === kind;
}

function check(node: SchemaNode, value: unknown, path: string): void {
  const n = resolve(node);
  if (Array.isArray(n.anyOf)) {
    const member = (n.anyOf as SchemaNode[]).find((m) => accepts(m, value));
    if (member === undefined) {
      throw new Mismatch(`Expected \`${expected(n)}\`, got \`${kindOf(value)}\`${at(path)}`);
    }
    check(member, value, path);
    return;
  }
  if (!accepts(n, value)) {
    throw new Mismatch(`Expected \`${expected(n)}\`, got \`${kindOf(value)}\`${at(path)}`);
  }
  if (Array.isArray(n.enum)) {
    if (!n.enum.includes(value)) throw new Mismatch(`Invalid enum value ${pyRepr(value)}${at(path)}`);
    return;
  }
  if (n.type === "array" && n.items !== undefined) {
    (value as unknown[]).forEach((item, i) => check(n.items as SchemaNode, item, `${path}[${i}]`));
    return;
  }
  if (n.type !== "object") return;
  const object = value as Record<string, unknown>;
  const properties = n.properties as Record<string, SchemaNode> | undefined;
  if (properties === undefined) {
    const values = n.additionalProperties;
    if (values !== undefined && typeof values === "object" && values !== null) {
      for (const item of Object.values(object)) check(values as SchemaNode, item, `${path}[...]`);
    }
    return;
  }
  for (const [key, item] of Object.entries(object)) {
    const property = properties[key];
    if (property !== undefined) check(property, item, `${path}.${key}`);
  }
  for (const field of (n.required as string[] | undefined) ?? []) {
    if (!(field in object)) throw new Mismatch(`Object missing required field \`${field}\`${at(path)}`);
  }
}

function kindOfJson(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "string":
      return "a string";
    case "number":
      return "a number";
    case "boolean":
      return "a boolean";
    default:
      return "another JSON value";
  }
}

/**
 * Parse JSON bytes into the event they hold.
 *
 * @throws {MalformedEvent} the bytes are not JSON, or not a JSON object.
 * @throws {UnknownEventType} the type is missing, not a string or not in the catalogue.
 * @throws {UnsupportedVersion} the major version is newer than this SDK knows.
 * @throws {SchemaMismatch} a field is missing or has the wrong type.
 */
export function decode(data: Uint8Array | string): OrraEvent {
  let value: unknown;
  try {
    value = JSON.parse(typeof data === "string" ? data : utf8.decode(data));
  } catch (error) {
    const detail = data.length === 0 ? "Input data was truncated" : (error as Error).message;
    throw new MalformedEvent(`event is not valid JSON: ${detail}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new MalformedEvent(`an event must be a JSON object, got ${kindOfJson(value)}`);
  }
  const object = value as Record<string, unknown>;
  const type = object.type;
  if (type === undefined || type === null) throw new UnknownEventType("event has no 'type' field");
  if (typeof type !== "string") {
    throw new UnknownEventType(`event 'type' must be a string, got ${pyRepr(type)}`);
  }
  const known = Object.hasOwn(EVENT_TYPES, type) ? EVENT_TYPES[type] : undefined;
  if (known === undefined) throw new UnknownEventType(`unknown event type ${pyRepr(type)}`);
  const v = object.v;
  if (typeof v === "number" && isPythonInt(v) && v > known.version) {
    throw new UnsupportedVersion(
      `${type} schema version ${v} is newer than the supported version ${known.version}`,
    );
  }
  try {
    check({ $ref: `#/$defs/${known.root}` }, object, "$");
  } catch (error) {
    if (error instanceof Mismatch) {
      throw new SchemaMismatch(`${type} does not match its schema: ${error.message}`);
    }
    throw error;
  }
  return object as unknown as OrraEvent;
}

/** Whether an event is of type `type` (narrows it). */
export function isEvent<T extends EventType>(event: OrraEvent, type: T): event is EventsByType[T] {
  return event.type === type;
}
