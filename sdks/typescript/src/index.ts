/**
 * Orra's TypeScript SDK: declare services and agents, and run the tasks Orra plans for
 * them, in the same orchestrations as services written with the Python SDK (`orra_sdk`).
 *
 * @example
 * import { z } from "zod";
 * import { Service, run } from "@orra/sdk";
 *
 * const payments = new Service({
 *   name: "PaymentService",
 *   description: "Charge a customer for an order.",
 *   input: z.object({ orderId: z.string(), amount: z.number() }),
 *   output: z.object({ transactionId: z.string() }),
 * });
 *
 * payments.handler(async (task) => {
 *   await task.progress({ step: "charging" }, { wait: false });
 *   return { transactionId: `TXN-${task.input.orderId}` };
 * });
 *
 * run(payments); // reads ORRA_NATS_URL; replicas of it share the work
 *
 * @module
 */
export { OrraClient, RESULTS_BUCKET, STOP_SIGNALS, type ClientOptions } from "./client.js";
export {
  AbortOrchestration,
  ClientClosed,
  DecodeError,
  InvalidSetting,
  MalformedEvent,
  NonRetryableError,
  OrraSdkError,
  RegistrationConflict,
  SchemaMismatch,
  ServiceDefinitionError,
  UnknownEventType,
  UnsupportedVersion,
} from "./errors.js";
export { decode, encode, isEvent } from "./codec.js";
export { canonicalJson, kvKey, schemaHash } from "./canonical.js";
export { HealthServer } from "./health.js";
export { configureLogging, log, withLogContext } from "./log.js";
export { METRICS, Metrics } from "./metrics.js";
export { EXIT_DEFINITION, healthServer, run, serveUntilSignal, type ServeOptions } from "./runner.js";
export { InvalidVersion, canonicalVersion, parseVersion } from "./versions.js";
export {
  jsonSchema,
  type Accepted,
  type JsonSchema,
  type Parsed,
  type SchemaSpec,
  type StandardSchema,
  type TypedJsonSchema,
} from "./schema.js";
export {
  Service,
  type AnyService,
  type Handler,
  type ProgressOptions,
  type RevertHandler,
  type RevertTask,
  type ServiceOptions,
  type Task,
} from "./service.js";
export { Topology, checkName, InvalidName } from "./topology.js";
export type * from "./generated/events.js";
