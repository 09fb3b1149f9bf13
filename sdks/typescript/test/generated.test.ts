/** The generated event types and schema table are those of the committed JSON Schemas. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { REPO } from "./nats.js";

test("src/generated is up to date with libs/orra_events/schemas (run `make schemas`)", async () => {
  const script = join(REPO, "sdks/typescript/scripts/generate.mjs");
  const generator = (await import(pathToFileURL(script).href)) as {
    generate(): Promise<{ types: string; schemas: string }>;
    OUTPUTS: { types: string; schemas: string };
  };
  const fresh = await generator.generate();
  for (const kind of ["types", "schemas"] as const) {
    const committed = readFileSync(generator.OUTPUTS[kind], "utf8");
    assert.ok(committed === fresh[kind], `${generator.OUTPUTS[kind]} is stale: run \`make schemas\``);
  }
});
