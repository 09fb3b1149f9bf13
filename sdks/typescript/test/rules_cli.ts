/**
 * The TypeScript side of tests/sdk/test_typescript_rules.py: reads a JSON array of
 * questions on stdin and writes the answers of @orra/sdk as a JSON array on stdout, so a
 * Python property test can check that both SDKs agree on generated inputs.
 *
 * - `{"kind": "hash", "definition": {...}}` → `{"canonical", "hash"}` (the definition hash)
 * - `{"kind": "kv", "service", "key"}` → `{"kv_key"}`
 * - `{"kind": "decode", "raw": "..."}` → `{"type"}` or `{"error": "<Name>: <message>"}`
 */
import { canonicalJson, kvKey } from "../src/canonical.js";
import { type Definition, definitionHash } from "../src/registrations.js";
import { decode } from "../src/codec.js";
import { DecodeError } from "../src/errors.js";

type Question =
  | { kind: "hash"; definition: Record<string, unknown> }
  | { kind: "kv"; service: string; key: string }
  | { kind: "decode"; raw: string };

function answer(q: Question): Record<string, unknown> {
  switch (q.kind) {
    case "hash":
      return { canonical: canonicalJson(q.definition), hash: definitionHash(q.definition as unknown as Definition) };
    case "kv":
      return { kv_key: kvKey(q.service, q.key) };
    case "decode":
      try {
        return { type: decode(q.raw).type };
      } catch (error) {
        if (error instanceof DecodeError) return { error: `${error.name}: ${error.message}` };
        throw error;
      }
  }
}

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const questions = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Question[];
process.stdout.write(JSON.stringify(questions.map(answer)));
