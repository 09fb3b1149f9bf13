/**
 * Service versions (the TypeScript twin of `orra_events.versions`): dotted numbers (`1`,
 * `2`, `1.4.2`, at most four numbers of at most nine digits, an optional leading `v`),
 * compared number by number, trailing zeros not counting (`1`, `1.0` and `v1.0.0` are one
 * version, canonically `1`). Subjects carry a version as one token: `1.4.2` → `1_4_2`.
 */
import { ServiceDefinitionError } from "./errors.js";
import { reprString } from "./pyrepr.js";

/** Numbers a version may have. */
export const MAX_VERSION_PARTS = 4;

const VERSION = /^[vV]?(\d{1,9}(?:\.\d{1,9}){0,3})$/;
const TOKEN = /^\d{1,9}(?:_\d{1,9}){0,3}$/;

/** A version that is not dotted numbers. */
export class InvalidVersion extends ServiceDefinitionError {
  override name = "InvalidVersion";
}

/** The numbers of a version, without trailing zeros; throws {@link InvalidVersion}. */
export function parseVersion(text: string): number[] {
  const match = typeof text === "string" ? VERSION.exec(text.trim()) : null;
  if (match === null) {
    throw new InvalidVersion(
      `version ${typeof text === "string" ? reprString(text) : String(text)} is not a version: use dotted numbers ` +
        `such as 1, 2 or 1.4.2 (at most ${MAX_VERSION_PARTS} numbers); a higher version replaces a lower one`,
    );
  }
  const numbers = (match[1] ?? "").split(".").map((part) => Number.parseInt(part, 10));
  while (numbers.length > 1 && numbers[numbers.length - 1] === 0) numbers.pop();
  return numbers;
}

/** The canonical form of a version: `"v1.0"` → `"1"`, `"01.20"` → `"1.20"`. */
export function canonicalVersion(text: string): string {
  return parseVersion(text).join(".");
}

/** The subject token of a version: `"1.4.2"` → `"1_4_2"`. */
export function versionToken(text: string): string {
  return parseVersion(text).join("_");
}

/** The canonical version a subject token names, or `undefined`. */
export function versionFromToken(token: string): string | undefined {
  return TOKEN.test(token) ? canonicalVersion(token.replaceAll("_", ".")) : undefined;
}

/** Compare two versions number by number (negative: `a` is lower). */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
