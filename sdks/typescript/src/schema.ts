/**
 * The input and output schemas of a service: a JSON Schema given as is, or a schema of any
 * library that implements Standard Schema and Standard JSON Schema (zod 4 does: pass
 * `z.object({...})`). Either way the service registers a JSON Schema and the SDK validates
 * task inputs and handler outputs against it, with messages that name every invalid field,
 * as the Python SDK does with pydantic (`amount: must be number; orderId: Field required`).
 *
 * JSON Schemas are validated with Ajv (draft 2020-12, as pydantic and zod emit): scalar
 * types are coerced as pydantic's lax mode does (`"299.99"` for a number) and defaults are
 * filled in; `format` is not checked.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import { ServiceDefinitionError } from "./errors.js";

/** A JSON Schema (an object). */
export type JsonSchema = { readonly [keyword: string]: unknown };

/** A JSON Schema that also carries the TypeScript type of the values it describes (see {@link jsonSchema}). */
export type TypedJsonSchema<T> = JsonSchema & { readonly __orraType?: T };

/** A Standard Schema issue: a message and the path of the field at fault. */
interface StandardIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

type StandardResult<T> = { readonly value: T; readonly issues?: undefined } | { readonly issues: ReadonlyArray<StandardIssue> };

/**
 * A schema of a validation library that implements Standard Schema (and Standard JSON
 * Schema for its JSON Schema export), such as zod 4.
 */
export interface StandardSchema<Input = unknown, Output = Input> {
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
    readonly jsonSchema?: {
      readonly input: (options: { readonly target: string }) => Record<string, unknown>;
      readonly output: (options: { readonly target: string }) => Record<string, unknown>;
    };
  };
}

/** What a service takes as its input or output schema. */
export type SchemaSpec = StandardSchema<any, any> | JsonSchema;

/** The type a handler gets from a schema (a Standard Schema's output, a typed JSON Schema's type). */
export type Parsed<S> = S extends StandardSchema<any, infer O>
  ? O
  : S extends TypedJsonSchema<infer T>
    ? unknown extends T
      ? Record<string, unknown>
      : T
    : Record<string, unknown>;

/** The type a handler may return for a schema (a Standard Schema's input). */
export type Accepted<S> = S extends StandardSchema<infer I, any> ? I : Parsed<S>;

/**
 * Give a JSON Schema the TypeScript type of its values, so handlers are typed:
 * `input: jsonSchema<{ orderId: string }>({ type: "object", ... })`.
 */
export function jsonSchema<T>(schema: JsonSchema): TypedJsonSchema<T> {
  return schema as TypedJsonSchema<T>;
}

/** A validation outcome: the value to use, or one line naming every invalid field. */
export type Validated<T> = { ok: true; value: T } | { ok: false; error: string };

/** A compiled schema: its JSON Schema and how to validate a value against it. */
export interface Validator<T> {
  readonly jsonSchema: Record<string, unknown>;
  validate(value: unknown): Promise<Validated<T>>;
}

/** `value` as JSON would carry it (dates as strings, no functions or `undefined` fields). */
export function toJson(value: unknown): unknown {
  if (value === undefined) return undefined;
  return JSON.parse(JSON.stringify(value)) as unknown;
}

let ajv: Ajv2020 | undefined;

function compiler(): Ajv2020 {
  ajv ??= new Ajv2020({
    allErrors: true,
    strict: false,
    coerceTypes: true,
    useDefaults: true,
    validateFormats: false,
  });
  return ajv;
}

function isStandard(spec: unknown): spec is StandardSchema {
  return typeof spec === "object" && spec !== null && "~standard" in spec;
}

function dotted(segments: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }>): string {
  const parts = segments.map((s) => String(typeof s === "object" && s !== null ? s.key : s));
  return parts.length ? parts.join(".") : "<root>";
}

/** One line naming every invalid field, from Ajv's errors (`items.0.id: Field required`). */
export function describeAjvErrors(errors: readonly ErrorObject[]): string {
  const lines: string[] = [];
  for (const error of errors) {
    const base = error.instancePath.split("/").slice(1).map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"));
    let line: string;
    if (error.keyword === "required") {
      line = `${dotted([...base, String(error.params.missingProperty)])}: Field required`;
    } else if (error.keyword === "additionalProperties") {
      line = `${dotted([...base, String(error.params.additionalProperty)])}: Extra inputs are not permitted`;
    } else {
      line = `${dotted(base)}: ${error.message ?? error.keyword}`;
    }
    if (!lines.includes(line)) lines.push(line);
  }
  return lines.join("; ");
}

/** One line naming every invalid field, from Standard Schema issues. */
export function describeIssues(issues: ReadonlyArray<StandardIssue>): string {
  const lines: string[] = [];
  for (const issue of issues) {
    const message = /received undefined$/.test(issue.message) ? "Field required" : issue.message;
    const line = `${dotted(issue.path ?? [])}: ${message}`;
    if (!lines.includes(line)) lines.push(line);
  }
  return lines.join("; ");
}

function exportJsonSchema(spec: StandardSchema, io: "input" | "output", label: string): Record<string, unknown> {
  const standard = spec["~standard"];
  let schema: Record<string, unknown>;
  try {
    if (standard.jsonSchema !== undefined) {
      schema = standard.jsonSchema[io]({ target: "draft-2020-12" });
    } else if (typeof (spec as { toJSONSchema?: unknown }).toJSONSchema === "function") {
      schema = (spec as unknown as { toJSONSchema(o: { io: string }): Record<string, unknown> }).toJSONSchema({ io });
    } else {
      throw new Error(`${standard.vendor} schemas do not export JSON Schema (Standard JSON Schema)`);
    }
  } catch (error) {
    throw new ServiceDefinitionError(`${label}: cannot export a JSON Schema: ${(error as Error).message}`);
  }
  const { $schema: _ignored, ...rest } = schema;
  return rest;
}

/**
 * Compile a service's input or output schema.
 *
 * @param spec A JSON Schema, or a Standard Schema with a JSON Schema export (zod 4).
 * @param io Which side: a Standard Schema's input JSON Schema is registered for inputs
 *   (what callers send), its output JSON Schema for outputs (what the task produces).
 * @param label `<service>: input`, for error messages.
 * @throws {ServiceDefinitionError} the schema cannot be used.
 */
export function compileSchema<T>(spec: SchemaSpec, io: "input" | "output", label: string): Validator<T> {
  if (isStandard(spec)) {
    const standard = spec["~standard"];
    const jsonSchemaOf = exportJsonSchema(spec, io, label);
    return {
      jsonSchema: jsonSchemaOf,
      async validate(value: unknown): Promise<Validated<T>> {
        const result = await standard.validate(value);
        if (result.issues !== undefined) return { ok: false, error: describeIssues(result.issues) };
        return { ok: true, value: result.value as T };
      },
    };
  }
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new ServiceDefinitionError(`${label} must be a JSON Schema object or a Standard Schema (zod 4), got ${typeof spec}`);
  }
  const { $schema: _ignored, ...schema } = spec as Record<string, unknown>;
  let check: ValidateFunction;
  try {
    check = compiler().compile(schema);
  } catch (error) {
    throw new ServiceDefinitionError(`${label} is not a valid JSON Schema: ${(error as Error).message}`);
  }
  return {
    jsonSchema: JSON.parse(JSON.stringify(schema)) as Record<string, unknown>,
    async validate(value: unknown): Promise<Validated<T>> {
      let copy: unknown;
      try {
        copy = toJson(value);
      } catch (error) {
        return { ok: false, error: `<root>: not JSON: ${(error as Error).message}` };
      }
      if (check(copy)) return { ok: true, value: copy as T };
      return { ok: false, error: describeAjvErrors(check.errors ?? []) };
    },
  };
}
