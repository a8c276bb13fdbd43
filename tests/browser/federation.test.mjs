// "Continue with …" in a real headless Chromium: the example SPA (oidc-client-ts) asks local-api
// to sign in, the hosted sign-in page offers a local OpenID provider (examples/local-idp, npm
// oauth2-mock-server, named by its issuer URL in FEDERATION_PROVIDERS, as the README's walk), the browser goes there and back through
// /oauth2/callback/{provider} (state, nonce, PKCE and the __Host-fed cookie), and the SPA is
// signed in as the provider's user, with no password ever typed.
//
// Environment: as tests/browser/sign_in.test.mjs.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { join, resolve } from "node:path";
import { launchChromium } from "./chromium.mjs";
import { startLocalApi } from "./local_api.mjs";

const root = resolve(import.meta.dirname, "../..");

const EMAIL = "federated@example.com";

let provider;
let server;
let api;
let spa;
let web;
let browser;
let closeChromium;

before(async () => {
  provider = spawn(process.execPath, [join(root, "examples/local-idp/idp.mjs")], {
    env: { ...process.env, IDP_PORT: "0", IDP_EMAIL: EMAIL },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: provider.stdout })[Symbol.asyncIterator]();
  const { value: line } = await lines.next();
  const { issuer } = JSON.parse(line);
  const providers = JSON.stringify([
    {
      id: "local",
      name: "Local IdP",
      issuer,
      client_id: "local-api",
      client_secret: "local-secret",
      trusted_email: true,
    },
  ]);
  ({ server, api, spa, web } = await startLocalApi({
    env: { FEDERATION_PROVIDERS: providers },
    wants: {
      api: /listening on (http:\/\/(?:127\.0\.0\.1|localhost):\d+)/,
      spa: /spa +(http:\/\/localhost:\d+\/spa\/)/,
      web: /web page\s+(http:\/\/localhost:\d+)\//,
    },
  }));
  ({ browser, close: closeChromium } = await launchChromium());
});

after(async () => {
  await closeChromium?.();
  server?.kill("SIGINT");
  provider?.kill("SIGINT");
});

test("the hosted page's provider button signs the SPA in through a local OpenID provider", async () => {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("response", (r) => {
    if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) {
      problems.push(`${r.status()} ${r.url()}`);
    }
  });
  await page.goto(spa);
  await page.waitForSelector("#sign-in", { visible: true });
  await Promise.all([page.waitForNavigation(), page.click("#sign-in")]);
  await page.waitForSelector("input[name=email]");
  assert.ok(page.url().startsWith(`${api}/oauth2/login?`), page.url());

  // The provider's link: off to it, back through the callback, on to the SPA's callback.
  const link = await page.$$eval("a", (links) =>
    links.filter((a) => a.textContent === "Continue with Local IdP").map((a) => a.href),
  );
  assert.equal(link.length, 1, "one button for the one provider");
  assert.ok(link[0].startsWith(`${api}/oauth2/federate/local?`), link[0]);
  const seen = [];
  page.on("framenavigated", (frame) => frame === page.mainFrame() && seen.push(frame.url()));
  await Promise.all([
    page.waitForNavigation({ waitUntil: "networkidle0" }),
    page.click("a[href^='federate/local']"),
  ]);
  await page.waitForSelector("#email", { visible: true, timeout: 15000 });
  assert.equal(await page.$eval("#email", (el) => el.textContent), EMAIL);
  assert.ok(page.url().startsWith(spa), page.url());
  const cookies = await page.cookies(api);
  assert.ok(cookies.some((c) => c.name === "__Host-sso"), "a browser session at the provider's return");
  assert.ok(!cookies.some((c) => c.name === "__Host-fed"), "the binding is spent");
  const user = await page.evaluate(() => {
    const key = Object.keys(sessionStorage).find((k) => k.startsWith("oidc.user:"));
    return JSON.parse(sessionStorage.getItem(key));
  });
  const access = JSON.parse(Buffer.from(user.access_token.split(".")[1], "base64url"));
  assert.deepEqual(access.amr, ["fed"]);
  assert.equal(access.email, EMAIL);
  assert.deepEqual(problems, []);
});

test("an app's own button: the example page exchanges the code it comes back with", async () => {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // Straight to the provider, no hosted page: the sign-in ends on FEDERATION_APP_URL (the
  // example page, by default) with a one-time code in the fragment.
  await page.goto(`${api}/oauth2/federate/local`, { waitUntil: "networkidle0" });
  await page.waitForSelector("#me-email", { visible: true, timeout: 15000 });
  assert.equal(await page.$eval("#me-email", (el) => el.textContent), EMAIL);
  assert.ok(page.url().startsWith(web), page.url());
  assert.ok(!page.url().includes("code="), "the code is taken out of the address bar");
  assert.deepEqual(problems, []);
});
