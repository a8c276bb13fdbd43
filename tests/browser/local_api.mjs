// local-api for the browser tests: the debug binary (or LOCAL_API) on a free port, with the
// cheap bcrypt cost and `env` on top of this process's, resolved once its banner names
// everything `wants` asks for (each a RegExp whose first group is the value).

import { spawn } from "node:child_process";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");

export async function startLocalApi({ args = [], env = {}, wants }) {
  const binary = process.env.LOCAL_API || join(root, "target/debug/local-api");
  const server = spawn(binary, ["--port", "0", ...args], {
    cwd: root,
    env: {
      ...process.env,
      BCRYPT_COST: "4",
      BCRYPT_ALLOW_LOW_COST: "true",
      RUST_LOG: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  const found = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`local-api did not start:\n${log}`)), 20000);
    server.stdout.on("data", (chunk) => {
      log += chunk;
      const values = {};
      for (const [name, pattern] of Object.entries(wants)) {
        const match = log.match(pattern);
        if (!match) return;
        values[name] = match[1] ?? match[0];
      }
      clearTimeout(timer);
      ok(values);
    });
    server.stderr.on("data", (chunk) => (log += chunk));
    server.on("exit", (code) => fail(new Error(`local-api exited (${code}):\n${log}`)));
  });
  return { server, ...found };
}
