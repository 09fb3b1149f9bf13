/**
 * The rules of the service registry the SDK applies when it registers (the TypeScript twin
 * of `orra_events.registrations`): one definition per name and version, example phrases,
 * the definition hash, and the message of a refused registration.
 */
import { schemaHash } from "./canonical.js";
import type { ServiceRegistered } from "./events.js";
import { reprString } from "./pyrepr.js";
import { canonicalVersion, compareVersions, parseVersion } from "./versions.js";

/** Example phrases a service may declare. */
export const MAX_EXAMPLES = 20;

/** Characters an example phrase may have. */
export const MAX_EXAMPLE_CHARS = 200;

const CONTROL = /\p{C}/u;
const ALNUM = /[\p{L}\p{N}]/u;

function fold(phrase: string): string {
  return phrase.trim().split(/\s+/u).join(" ").toLowerCase();
}

/** What is wrong with a list of example phrases, one message per problem (empty: fine). */
export function exampleProblems(examples: unknown): string[] {
  if (!Array.isArray(examples)) {
    const kind = typeof examples === "string" ? "str" : examples === null ? "NoneType" : typeof examples;
    return [
      `examples must be a list of phrases (strings), got ${kind}` +
        (typeof examples === "string" ? ": wrap the phrase in a list" : ""),
    ];
  }
  const problems: string[] = [];
  if (examples.length > MAX_EXAMPLES) problems.push(`examples has ${examples.length} phrases; at most ${MAX_EXAMPLES}`);
  const seen = new Map<string, number>();
  examples.forEach((phrase: unknown, i) => {
    const where = `examples[${i}]`;
    if (typeof phrase !== "string") {
      problems.push(`${where} is ${phrase === null ? "NoneType" : typeof phrase}, not a phrase (a string)`);
      return;
    }
    if (!phrase.trim()) {
      problems.push(`${where} is empty`);
      return;
    }
    const length = [...phrase].length;
    if (length > MAX_EXAMPLE_CHARS) {
      problems.push(`${where} has ${length} characters; at most ${MAX_EXAMPLE_CHARS} (one short phrase per example)`);
    }
    if (CONTROL.test(phrase)) problems.push(`${where} contains a line break or another control character`);
    if (!ALNUM.test(phrase)) problems.push(`${where} has no letter or digit: ${reprString(phrase)}`);
    const key = fold(phrase);
    const first = seen.get(key);
    if (first !== undefined) problems.push(`${where} repeats examples[${first}] (${reprString(phrase.trim())})`);
    else seen.set(key, i);
  });
  return problems;
}

/** Example phrases with their spacing normalised (stripped, runs of spaces as one). */
export function normaliseExamples(examples: readonly string[]): string[] {
  return examples.map((phrase) => phrase.trim().split(/\s+/u).join(" "));
}

/** What a definition is made of, as registered. */
export interface Definition {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
  output_schema: Record<string, unknown>;
  revertible: boolean;
  version: string;
  kind: string;
  examples?: readonly string[];
}

/**
 * The hash of a service definition, as `orra_events.registrations.definition_hash` makes it:
 * the version in its canonical form, the examples only when there are some.
 */
export function definitionHash(definition: Definition): string {
  const hashed: Record<string, unknown> = {
    name: definition.name,
    description: definition.description,
    input_schema: definition.input_schema,
    output_schema: definition.output_schema,
    revertible: definition.revertible,
    version: canonicalVersion(definition.version),
    kind: definition.kind,
  };
  if (definition.examples && definition.examples.length > 0) hashed.examples = [...definition.examples];
  return schemaHash(hashed);
}

function registrationHash(event: ServiceRegistered): string {
  return definitionHash({
    name: event.service,
    description: event.description,
    input_schema: event.input_schema,
    output_schema: event.output_schema,
    revertible: event.revertible ?? false,
    version: event.version ?? "1",
    kind: event.kind ?? "service",
    examples: event.examples ?? [],
  });
}

/** Why a registration breaks the rules on its own (version, examples), or `undefined`. */
export function registrationProblem(event: ServiceRegistered): string | undefined {
  const problems: string[] = [];
  try {
    parseVersion(event.version ?? "1");
  } catch (error) {
    problems.push((error as Error).message);
  }
  problems.push(...exampleProblems(event.examples ?? []));
  return problems.length ? `registration of ${event.service} refused: ${problems.join("; ")}` : undefined;
}

/** Whether two registrations of one name and version declare the same definition. */
export function sameDefinition(a: ServiceRegistered, b: ServiceRegistered): boolean {
  return (a.project ?? "default") === (b.project ?? "default") && registrationHash(a) === registrationHash(b);
}

function differences(a: ServiceRegistered, b: ServiceRegistered): string[] {
  const same = (x: unknown, y: unknown): boolean => JSON.stringify(x ?? null) === JSON.stringify(y ?? null);
  const fields: Array<[string, unknown, unknown]> = [
    ["project", a.project ?? "default", b.project ?? "default"],
    ["description", a.description, b.description],
    ["input schema", a.input_schema, b.input_schema],
    ["output schema", a.output_schema, b.output_schema],
    ["revertible", a.revertible ?? false, b.revertible ?? false],
    ["kind", a.kind ?? "service", b.kind ?? "service"],
    ["examples", a.examples ?? [], b.examples ?? []],
  ];
  return fields.filter(([, x, y]) => !same(x, y)).map(([label]) => label);
}

function join(items: string[]): string {
  return items.length === 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

/** The message of a refused registration: the conflict, and the two ways out. */
export function conflictMessage(registered: ServiceRegistered, refused: ServiceRegistered, versions: readonly string[] = []): string {
  const name = refused.service;
  const version = canonicalVersion(refused.version ?? "1");
  const differs = differences(registered, refused);
  const what = differs.length ? differs : ["definition"];
  const known = [...new Set([...versions.map(canonicalVersion), version])].sort(compareVersions);
  const suggestion = String((parseVersion(known[known.length - 1] ?? version)[0] ?? 0) + 1);
  const listed = known.length > 1 ? ` (registered: ${known.join(", ")})` : "";
  return (
    `service ${name} version ${version} is already registered with another definition ` +
    `(${join(what)} ${what.length === 1 ? "differs" : "differ"}); one name and ` +
    "version has one definition, so this registration is refused and the registered " +
    "one stays. Fix: give this service another name, or raise its version above every " +
    `registered one (version="${suggestion}"${listed}) to replace it for new plans.`
  );
}
