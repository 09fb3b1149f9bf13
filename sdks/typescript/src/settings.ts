/**
 * The `ORRA_*` environment variables the SDK reads, with the same names, defaults and
 * error messages as the Python SDK (`orra_events.runtime`, `orra_sdk.client`).
 */
import { InvalidSetting } from "./errors.js";
import { reprString } from "./pyrepr.js";

/** Where the broker is when `ORRA_NATS_URL` is not set. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** Port of `/healthz`, `/readyz` and `/metrics`; unset or 0 serves nothing. */
export const HEALTH_PORT_ENV = "ORRA_HEALTH_PORT";

function raw(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === "" ? undefined : value;
}

/** A string from the environment, or `fallback`. */
export function envString(name: string, fallback: string): string {
  return raw(name) ?? fallback;
}

/** A number from the environment, or `fallback`; throws {@link InvalidSetting} naming the variable. */
export function envFloat(name: string, fallback: number): number {
  const value = raw(name);
  if (value === undefined) return fallback;
  const parsed = Number(value.trim());
  if (value.trim() === "" || Number.isNaN(parsed)) {
    throw new InvalidSetting(`${name}=${reprString(value)} is not a number`);
  }
  return parsed;
}

/** A whole number from the environment, or `fallback`; throws {@link InvalidSetting} naming the variable. */
export function envInt(name: string, fallback: number): number {
  const value = raw(name);
  if (value === undefined) return fallback;
  if (!/^\s*[+-]?\d+\s*$/.test(value)) {
    throw new InvalidSetting(`${name}=${reprString(value)} is not a whole number`);
  }
  return Number.parseInt(value, 10);
}

/** A boolean from the environment (1/true/yes/on), or `fallback`. */
export function envBool(name: string, fallback: boolean): boolean {
  const value = raw(name);
  if (value === undefined) return fallback;
  return ["1", "true", "yes", "on"].includes(value.trim().toLowerCase());
}

/** `ORRA_HEALTH_PORT`, or 0 (no health server) when unset or empty. */
export function healthPortFromEnv(): number {
  return envInt(HEALTH_PORT_ENV, 0);
}
