// Device sign-in (RFC 8628) approved in a real headless Chromium against a real local-api: the
// tool asks for a device code; the browser opens the link it shows, signs in on the hosted
// page (the code carried along), sees the confirmation naming the app and the code, allows;
// the tool's next poll gets its tokens. A screenshot of the confirmation.
//
// Environment: as tests/browser/sign_in.test.mjs.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { launchChromium } from "./chromium.mjs";
import { startLocalApi } from "./local_api.mjs";

const root = resolve(import.meta.dirname, "../..");
const output = process.env.BROWSER_OUTPUT || join(root, "target/browser-test");

const EMAIL = "cli@example.com";
const PASSWORD = "correct horse battery staple";

let server;
let api;
let appId;
let browser;
let closeChromium;

before(async () => {
  ({ server, api, appId } = await startLocalApi({
    args: ["--no-web"],
    wants: {
      api: /listening on (http:\/\/(?:127\.0\.0\.1|localhost):\d+)/,
      appId: /dev app +(\S+) /,
    },
  }));
  const registered = await fetch(`${api}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: EMAIL, password: PASSWORD }),
  });
  assert.equal(registered.status, 201);
  ({ browser, close: closeChromium } = await launchChromium());
  mkdirSync(output, { recursive: true });
});

after(async () => {
  await closeChromium?.();
  server?.kill("SIGINT");
});

async function form(path, fields) {
  const res = await fetch(`${api}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  });
  return [res.status, await res.json()];
}

test("a device code is approved in Chromium through the hosted sign-in and confirmation", async () => {
  const [status, device] = await form("/oauth2/device_authorization", {
    client_id: appId,
    scope: "openid email",
  });
  assert.equal(status, 200, JSON.stringify(device));
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

  // The link the tool shows: no session yet, so the sign-in page, the code carried along.
  await page.goto(device.verification_uri_complete);
  await page.waitForSelector("input[name=email]");
  assert.ok(page.url().startsWith(`${api}/oauth2/login?user_code=`), page.url());
  await page.type("input[name=email]", EMAIL);
  await page.type("input[name=password]", PASSWORD);
  const [confirmation] = await Promise.all([
    page.waitForNavigation(),
    page.click("button[type=submit]"),
  ]);
  // Signed in: the confirmation, naming the app and the code, with no script at all.
  assert.ok(page.url().startsWith(`${api}/oauth2/device?user_code=`), page.url());
  const html = await page.content();
  assert.match(html, /Allow local-api development app on your device\?/);
  assert.ok(html.includes(device.user_code));
  assert.ok(!html.includes("<script"));
  const csp = confirmation.headers()["content-security-policy"];
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /form-action 'self'/);
  await page.screenshot({ path: join(output, "device-confirmation.png"), fullPage: true });
  await Promise.all([page.waitForNavigation(), page.click("button[value=allow]")]);
  assert.match(await page.content(), /Your device is connected/);
  assert.deepEqual(problems, []);

  // The tool's poll: its tokens, for the user who allowed it.
  const [polled, tokens] = await form("/oauth2/token", {
    grant_type: "urn:ietf:params:oauth:grant-type:device_code",
    device_code: device.device_code,
    client_id: appId,
  });
  assert.equal(polled, 200, JSON.stringify(tokens));
  const claims = JSON.parse(Buffer.from(tokens.id_token.split(".")[1], "base64url"));
  assert.equal(claims.email, EMAIL);
  assert.equal(claims.aud, appId);
});
