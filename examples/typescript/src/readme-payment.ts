// The TypeScript service of the README ("Your own service or agent"), word for word:
// `make install` compiles it, so the example stays correct. Run it with
// `node examples/typescript/dist/readme-payment.js`.
import { z } from "zod";
import { Service, run } from "@orra/sdk";

const payments = new Service({
  name: "PaymentService",
  description: "Charge a customer for an order.",
  input: z.object({ orderId: z.string(), amount: z.number() }),
  output: z.object({ transactionId: z.string() }),
});

payments.handler(async (task) => {
  // task.idempotencyKey is stable across retries: pass it to the systems you call
  await task.progress({ step: "charging" }, { wait: false }); // optional interim update
  return { transactionId: `TXN-${task.input.orderId}` };
});

run(payments); // reads ORRA_NATS_URL; replicas of it, Python or Node, share the work
