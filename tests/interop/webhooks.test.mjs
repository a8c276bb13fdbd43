// Lifecycle events as webhooks, checked by an independent Standard Webhooks library (npm
// `standardwebhooks`): local-api, with WEBHOOK_URLS and WEBHOOK_SECRET, signs and sends every
// event; the receiver is down for its first seconds, then up. Every event arrives, each once
// after dropping repeats by id, in order per user, and every signature verifies.
//
// Environment: LOCAL_API (the binary, default target/debug/local-api), NODE_TOOLS (the folder
// with node_modules/standardwebhooks). Run by scripts/test.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const tools = process.env.NODE_TOOLS || join(root, ".tools/node");
const { Webhook } = createRequire(join(tools, "node_modules/"))("standardwebhooks");

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PASSWORD = "correct horse battery staple";
const DOWN_FOR_MS = 3000;
let child;
let api;
let receiver;
let log = "";
const taken = [];
let refused = 0;
let unverified = 0;

before(async () => {
  const started = Date.now();
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      if (Date.now() - started < DOWN_FOR_MS) {
        refused += 1;
        res.statusCode = 503;
        return res.end();
      }
      try {
        const event = new Webhook(SECRET).verify(body, req.headers);
        taken.push({ id: req.headers["webhook-id"], event, body, headers: req.headers });
        res.statusCode = 204;
      } catch {
        unverified += 1;
        res.statusCode = 400;
      }
      res.end();
    });
  });
  await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
  const hook = `http://127.0.0.1:${receiver.address().port}/hooks`;
  const binary = process.env.LOCAL_API || join(root, "target/debug/local-api");
  child = spawn(binary, ["--port", "0", "--no-web", "--no-dev-client"], {
    cwd: root,
    env: {
      ...process.env,
      BCRYPT_COST: "4",
      BCRYPT_ALLOW_LOW_COST: "true",
      RUST_LOG: "warn",
      WEBHOOK_URLS: hook,
      WEBHOOK_SECRET: SECRET,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`local-api did not start:\n${log}`)), 20000);
    child.stdout.on("data", (chunk) => {
      log += chunk;
      const url = log.match(/listening on (http:\/\/(?:127\.0\.0\.1|localhost):\d+)/);
      if (url && /events +\S+\/_local\/events, and to /.test(log)) {
        clearTimeout(timer);
        api = url[1];
        ok();
      }
    });
    child.stderr.on("data", (chunk) => (log += chunk));
    child.on("exit", (code) => fail(new Error(`local-api exited (${code}):\n${log}`)));
  });
});

after(() => {
  child?.kill();
  receiver?.close();
});

async function call(path, body) {
  const res = await fetch(`${api}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return [res.status, res.status === 204 ? null : await res.json()];
}

test("every event reaches the webhook once, in order per user, signed, through an outage", async () => {
  const users = [];
  for (const email of ["ada@example.com", "grace@example.com"]) {
    const [created, user] = await call("/register", { email, password: PASSWORD });
    assert.equal(created, 201);
    const [ok, tokens] = await call("/login", { email, password: PASSWORD });
    assert.equal(ok, 200);
    users.push({ id: user.user_id, refresh: tokens.refresh_token });
  }
  const [out] = await call("/logout", { refresh_token: users[0].refresh });
  assert.equal(out, 204);

  // Five events: two accounts, two sessions, one ended.
  const deadline = Date.now() + 45000;
  while (new Set(taken.map((t) => t.id)).size < 5 && Date.now() < deadline) {
    await new Promise((ok) => setTimeout(ok, 250));
  }
  assert.ok(refused > 0, "the receiver was down for a while");
  assert.equal(unverified, 0, "every signature verifies");
  const seen = new Set();
  const once = taken.filter((t) => !seen.has(t.id) && seen.add(t.id));
  assert.equal(once.length, 5, log);
  const ofUser = (id) => once.filter((t) => t.event.user_id === id).map((t) => t.event.type);
  assert.deepEqual(ofUser(users[0].id), ["user.created", "session.created", "session.revoked"]);
  assert.deepEqual(ofUser(users[1].id), ["user.created", "session.created"]);
  for (const t of once) {
    assert.equal(t.headers["webhook-id"], t.event.id);
    assert.match(t.event.id, /^evt_[0-9a-f]{32}$/);
    assert.ok(!t.body.includes(PASSWORD) && !t.body.includes(users[0].refresh));
  }
  // The library does check: a changed body or another secret is refused.
  const first = once[0];
  assert.throws(() => new Webhook(SECRET).verify(first.body.replace("user", "usr"), first.headers));
  assert.throws(() =>
    new Webhook("whsec_" + Buffer.alloc(24, 7).toString("base64")).verify(first.body, first.headers),
  );
  // The same events are listed locally, oldest first.
  const listed = await (await fetch(`${api}/_local/events`)).json();
  assert.deepEqual(new Set(listed.map((e) => e.id)), seen);
});
