// The example single-page app (examples/spa, oidc-client-ts, no build step) in a real
// headless Chromium against a real local-api: signinRedirect → the hosted sign-in page →
// callback → the ID token's claims on the page → a protected API call → a silent refresh →
// signoutRedirect, and the session really ended. A screenshot of the hosted sign-in page.
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

const EMAIL = "spa@example.com";
const PASSWORD = "correct horse battery staple";

let server;
let api;
let spa;
let browser;
let closeChromium;

before(async () => {
  ({ server, api, spa } = await startLocalApi({
    env: { BRAND_NAME: "Photo Book Accounts" },
    wants: {
      api: /listening on (http:\/\/(?:127\.0\.0\.1|localhost):\d+)/,
      spa: /spa +(http:\/\/localhost:\d+\/spa\/)/,
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

async function text(page, selector) {
  await page.waitForSelector(selector, { visible: true, timeout: 10000 });
  return page.$eval(selector, (el) => el.textContent);
}

test("oidc-client-ts signs in through the hosted page, calls an API, refreshes and signs out", async () => {
  const page = await browser.newPage();
  const problems = [];
  let probing = false;
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // Chromium's own 404 line for a missing favicon names no URL; answers are checked below.
    if (m.type() === "error" && !probing && !m.text().startsWith("Failed to load resource")) {
      problems.push(`console: ${m.text()}`);
    }
  });
  page.on("response", (r) => {
    if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) {
      problems.push(`${r.status()} ${r.url()}`);
    }
  });
  await page.goto(spa);
  await page.waitForSelector("#sign-in", { visible: true });

  // signinRedirect: to the provider's hosted sign-in page.
  const [hostedResponse] = await Promise.all([page.waitForNavigation(), page.click("#sign-in")]);
  await page.waitForSelector("input[name=email]");
  assert.ok(page.url().startsWith(`${api}/oauth2/login?`), page.url());
  const hosted = await page.content();
  assert.match(hosted, /Photo Book Accounts/);
  await page.screenshot({ path: join(output, "hosted-sign-in.png"), fullPage: true });
  const csp = hostedResponse.headers()["content-security-policy"];
  assert.match(csp, /frame-ancestors 'none'/);
  // No inline script may run on the page, and its one script (passkey.js) may call this
  // origin only: the CSP blocks a fetch elsewhere, even one that needs no CORS.
  assert.match(csp, /script-src 'self'; connect-src 'self'$/);
  assert.equal((hosted.match(/<script/g) || []).length, 1);
  probing = true;
  await assert.rejects(page.evaluate((other) => fetch(other, { mode: "no-cors" }), spa));
  probing = false;
  await page.type("input[name=email]", EMAIL);
  await page.type("input[name=password]", PASSWORD);
  await Promise.all([
    page.waitForNavigation({ waitUntil: "networkidle0" }),
    page.click("button[type=submit]"),
  ]);

  // Back in the app (callback.html → the app), signed in, with the ID token's claims.
  assert.equal(await text(page, "#email"), EMAIL);
  assert.ok(page.url().startsWith(spa), page.url());
  const scopes = await text(page, "#scopes");
  assert.equal(scopes, "openid email offline_access api:read");
  const first = await page.evaluate(() => {
    const key = Object.keys(sessionStorage).find((k) => k.startsWith("oidc.user:"));
    return JSON.parse(sessionStorage.getItem(key));
  });
  assert.ok(first.id_token && first.refresh_token && first.access_token);

  // A protected route, with the access token.
  await page.click("#call-api");
  await page.waitForFunction(() => document.getElementById("api-answer").textContent.length > 0);
  const answer = await page.$eval("#api-answer", (el) => el.textContent);
  assert.ok(answer.startsWith("200 "), answer);
  assert.match(answer, new RegExp(EMAIL));

  // Silent refresh: the refresh_token grant, a new refresh token.
  await page.click("#refresh");
  await page.waitForFunction(
    (old) => {
      const key = Object.keys(sessionStorage).find((k) => k.startsWith("oidc.user:"));
      return key && JSON.parse(sessionStorage.getItem(key)).refresh_token !== old;
    },
    { timeout: 10000 },
    first.refresh_token,
  );
  const refreshed = await page.evaluate(() => {
    const key = Object.keys(sessionStorage).find((k) => k.startsWith("oidc.user:"));
    return JSON.parse(sessionStorage.getItem(key));
  });

  // signoutRedirect: the provider ends the session and sends the browser back.
  await Promise.all([page.waitForNavigation({ waitUntil: "networkidle0" }), page.click("#sign-out")]);
  await page.waitForSelector("#sign-in", { visible: true, timeout: 10000 });
  assert.ok(page.url().startsWith(spa), page.url());
  const gone = await fetch(`${api}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "refresh_token",
      client_id: first.profile.aud,
      refresh_token: refreshed.refresh_token,
    }),
  });
  assert.equal(gone.status, 400, "the session ended");
  assert.deepEqual(problems, []);
});
