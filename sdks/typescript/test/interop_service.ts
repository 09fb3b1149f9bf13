/**
 * A Node replica of a service that a Python test also serves with `orra_sdk`
 * (tests/sdk/test_typescript_interop.py): the definition (name, description, JSON Schemas)
 * comes from the test, so both register the same one. Its outputs say who ran the task.
 *
 *     ORRA_INTEROP_DEFINITION='{"name", "description", "input_schema", "output_schema"}' node dist/test/interop_service.js
 */
import { Service, run } from "../src/index.js";

const definition = JSON.parse(process.env.ORRA_INTEROP_DEFINITION ?? "{}") as {
  name: string;
  description: string;
  input_schema: Record<string, unknown>;
  output_schema: Record<string, unknown>;
};

const service = new Service({
  name: definition.name,
  description: definition.description,
  input: definition.input_schema,
  output: definition.output_schema,
  revertible: true,
});

service.handler(async (task) => {
  await new Promise((resolve) => setTimeout(resolve, 20));
  return { orderId: String(task.input.orderId), by: "node" };
});

service.revert(async () => undefined);

run(service, { ackWaitS: 5, drainTimeoutS: 1 });
