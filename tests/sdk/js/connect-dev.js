// Starts `opsync connect-dev --seed demo` for one test file and mints scoped tokens with it.
"use strict";

const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const readline = require("node:readline");

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
const STARTUP_TIMEOUT_MS = 60_000;
const ID_RE = /^[a-z0-9]{26}$/;
const SEEDED_CATEGORIES = ["LOGIN", "PASSWORD", "API_CREDENTIAL", "DATABASE", "SERVER", "SSH_KEY"];

function opsyncBin() {
  const bin = path.resolve(REPO_ROOT, process.env.OPSYNC_BIN || path.join("target", "debug", "opsync"));
  if (!fs.existsSync(bin)) {
    throw new Error(
      `opsync binary not found at ${bin}; build it with \`cargo build --bin opsync\` or point OPSYNC_BIN at it`,
    );
  }
  return bin;
}

class ConnectDev {
  constructor(bin, proc, workdir, logPath) {
    this.bin = bin;
    this.proc = proc;
    this.workdir = workdir;
    this.logPath = logPath;
    this.host = "";
    this.token = "";
    this.exited = null;
    proc.on("exit", (code, signal) => {
      this.exited = { code, signal };
    });
  }

  static async start() {
    const bin = opsyncBin();
    const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "opsync-sdk-js-"));
    const logPath = path.join(workdir, "connect-dev.log");
    const log = fs.openSync(logPath, "w");
    const proc = spawn(bin, ["connect-dev", "--listen", "127.0.0.1:0", "--seed", "demo"], {
      cwd: workdir,
      stdio: ["ignore", "pipe", log],
    });
    fs.closeSync(log);
    const dev = new ConnectDev(bin, proc, workdir, logPath);
    try {
      const env = await dev.readEnvLines();
      dev.host = env.OP_CONNECT_HOST;
      dev.token = env.OP_CONNECT_TOKEN;
    } catch (err) {
      await dev.stop();
      throw err;
    }
    if (!dev.host.startsWith("http://127.0.0.1:")) {
      await dev.stop();
      throw new Error(`unexpected OP_CONNECT_HOST ${dev.host}`);
    }
    return dev;
  }

  readEnvLines() {
    return new Promise((resolve, reject) => {
      const env = {};
      const lines = readline.createInterface({ input: this.proc.stdout });
      const fail = (why) => {
        clearTimeout(timer);
        lines.close();
        reject(new Error(`${why}${this.logTail()}`));
      };
      const timer = setTimeout(
        () => fail(`connect-dev printed no OP_CONNECT_* lines within ${STARTUP_TIMEOUT_MS} ms`),
        STARTUP_TIMEOUT_MS,
      );
      lines.on("line", (line) => {
        const eq = line.indexOf("=");
        const key = line.slice(0, eq).trim();
        if (eq > 0 && (key === "OP_CONNECT_HOST" || key === "OP_CONNECT_TOKEN")) {
          env[key] = line.slice(eq + 1).trim();
        }
        if (env.OP_CONNECT_HOST && env.OP_CONNECT_TOKEN) {
          clearTimeout(timer);
          resolve(env);
        }
      });
      this.proc.on("error", (err) => fail(`could not start connect-dev: ${err.message}`));
      this.proc.on("exit", (code) => fail(`connect-dev exited (${code}) before it was ready`));
    });
  }

  logTail(n = 30) {
    try {
      const lines = fs.readFileSync(this.logPath, "utf8").split("\n").slice(-n);
      return `\nconnect-dev stderr (tail):\n${lines.join("\n")}`;
    } catch {
      return "";
    }
  }

  /** A new token from `opsync connect-dev token`, e.g. mint(["Production:r"]). */
  mint(grants, expiresIn) {
    const args = ["connect-dev", "token", "--host", this.host, "--token", this.token];
    for (const grant of grants) args.push("--vault", grant);
    if (expiresIn) args.push("--expires-in", expiresIn);
    const out = execFileSync(this.bin, args, { cwd: this.workdir, encoding: "utf8", timeout: 30_000 })
      .trim()
      .split("\n");
    if (out.length !== 1 || !out[0]) throw new Error(`token printed ${out.length} lines, expected 1`);
    return out[0];
  }

  /** Stops the server; rejects if it had died on its own while the tests ran. */
  async stop() {
    const diedEarly = this.exited !== null;
    if (!diedEarly) {
      const gone = new Promise((resolve) => this.proc.once("exit", resolve));
      this.proc.kill("SIGTERM");
      const timer = setTimeout(() => this.proc.kill("SIGKILL"), 10_000);
      await gone;
      clearTimeout(timer);
    }
    const tail = this.logTail();
    fs.rmSync(this.workdir, { recursive: true, force: true });
    if (diedEarly && this.host) {
      throw new Error(`connect-dev died during the tests (${JSON.stringify(this.exited)})${tail}`);
    }
  }
}

/** Asserts a rejection carries the Connect error body `{status, message}` and returns it. */
async function rejectsWith(promise, status) {
  let body;
  try {
    await promise;
  } catch (err) {
    body = err;
  }
  if (body === undefined) throw new Error(`expected a rejection with status ${status}, got success`);
  if (typeof body !== "object" || body === null || body instanceof Error) {
    throw new Error(`expected the {status, message} body, got ${body && body.stack ? body.stack : body}`);
  }
  if (body.status !== status || typeof body.message !== "string" || !body.message) {
    throw new Error(`expected {status: ${status}, message}, got ${JSON.stringify(body)}`);
  }
  return body;
}

module.exports = { ConnectDev, ID_RE, SEEDED_CATEGORIES, rejectsWith };
