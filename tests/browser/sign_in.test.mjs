// The example sign-in page (examples/web) in a real headless Chromium, against a real
// local-api: the page on one origin, the API on another, cookie transport and CORS as
// deployed. Run by scripts/test (`node --test tests/browser/`), which installs Debian's
// chromium, and puppeteer-core into .tools/node.
//
// Environment: LOCAL_API (the binary, default target/debug/local-api), NODE_TOOLS (the
// folder with node_modules/puppeteer-core), CHROMIUM (default /usr/bin/chromium),
// BROWSER_OUTPUT (where the screenshot goes, default target/browser-test).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { launchChromium } from "./chromium.mjs";

const root = resolve(import.meta.dirname, "../..");
const output = process.env.BROWSER_OUTPUT || join(root, "target/browser-test");

const PASSWORD = "correct horse battery staple";
const NEW_PASSWORD = "purple elephant juggling seventeen oranges";

let server;
let serverLog = "";
let api;
let web;
let browser;
let closeChromium;
let evil;
let evilUrl;

function waitForBanner(child) {
  return new Promise((resolveUrls, reject) => {
    const timer = setTimeout(() => reject(new Error(`local-api did not start:\n${serverLog}`)), 20000);
    child.stdout.on("data", (chunk) => {
      serverLog += chunk;
      const apiMatch = serverLog.match(/listening on (http:\/\/(?:127\.0\.0\.1|localhost):\d+)/);
      const webMatch = serverLog.match(/web page\s+(http:\/\/(?:127\.0\.0\.1|localhost):\d+)\//);
      if (apiMatch && webMatch) {
        clearTimeout(timer);
        resolveUrls({ api: apiMatch[1], web: webMatch[1] });
      }
    });
    child.stderr.on("data", (chunk) => (serverLog += chunk));
    child.on("exit", (code) => reject(new Error(`local-api exited (${code}):\n${serverLog}`)));
  });
}

before(async () => {
  const binary = process.env.LOCAL_API || join(root, "target/debug/local-api");
  server = spawn(binary, ["--port", "0", "--web", join(root, "examples/web")], {
    cwd: root,
    env: {
      ...process.env,
      BCRYPT_COST: "4",
      BCRYPT_ALLOW_LOW_COST: "true",
      // The shortest access token local-api allows: the page must renew it by itself.
      ACCESS_TOKEN_TTL_SECONDS: "60",
      REFRESH_TOKEN_TRANSPORT: "cookie",
      RUST_LOG: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  ({ api, web } = await waitForBanner(server));

  // A page on an origin the API does not list (same site, so the SameSite=Strict cookie
  // would be sent: only the CORS list and the CSRF checks stand in the way).
  evil = createServer((req, res) => {
    res.setHeader("content-type", "text/html");
    res.end(`<!doctype html><title>evil</title>
      <form id="f" method="POST" action="${api}/refresh"></form>`);
  });
  await new Promise((ok) => evil.listen(0, "127.0.0.1", ok));
  evilUrl = `http://localhost:${evil.address().port}`;

  ({ browser, close: closeChromium } = await launchChromium());
  mkdirSync(output, { recursive: true });
});

after(async () => {
  await closeChromium?.();
  server?.kill("SIGINT");
  evil?.close();
});

async function visible(page, selector) {
  await page.waitForSelector(selector, { visible: true, timeout: 10000 });
}

async function message(page) {
  await visible(page, "#message");
  return page.$eval("#message", (el) => el.textContent);
}

// The link of the newest mail to `to` whose subject starts with `subject`, from local-api's
// outbox: what its recipient clicks.
async function mailedLink(to, subject) {
  const mails = await (await fetch(`${api}/_local/outbox`)).json();
  const mail = mails.reverse().find((m) => m.to === to && m.subject.startsWith(subject));
  assert.ok(mail, `no "${subject}" mail to ${to}`);
  const link = /(http:\/\/\S+#token=[A-Za-z0-9_-]+)/.exec(mail.text);
  assert.ok(link, mail.text);
  return link[1];
}

async function apiCookies(page) {
  const client = await page.createCDPSession();
  const { cookies } = await client.send("Network.getAllCookies");
  return cookies.filter((c) => c.name === "__Host-refresh_token");
}

test("a user signs up, stays signed in across reloads and token expiry, signs out and in", async () => {
  const page = await browser.newPage();
  const email = `ada-${Date.now()}@example.com`;
  // A signed-out visit asks the API nothing: no /refresh without a session to renew.
  const firstVisit = [];
  const note = (r) => firstVisit.push(`${r.request().method()} ${r.url()} ${r.status()}`);
  page.on("response", note);
  await page.goto(`${web}/`);
  await visible(page, "#signed-out");
  page.off("response", note);
  assert.deepEqual(
    firstVisit.filter((line) => line.includes(api)),
    [],
    "a signed-out page load calls the API",
  );
  assert.notEqual(new URL(web).origin, new URL(api).origin, "the page is another origin");

  // The API's own advice for a weak password reaches the user.
  await page.type("#register-email", email);
  await page.type("#register-password", "password123");
  await page.click("#register");
  const weak = await message(page);
  assert.match(weak, /failed validation|invalid/i, weak);
  assert.match(weak, /password:/, weak);

  await page.$eval("#register-password", (el) => (el.value = ""));
  await page.type("#register-password", PASSWORD);
  await page.click("#register");
  await visible(page, "#signed-in");
  assert.equal(await page.$eval("#me-email", (el) => el.textContent), email);

  // The refresh token is in an HttpOnly, Secure, SameSite=Strict cookie: the browser has it,
  // the page's JavaScript cannot see it (cookies ignore ports: the page shares the host).
  const [cookie] = await apiCookies(page);
  assert.ok(cookie, "the refresh cookie is set");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.secure, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.equal(cookie.path, "/");
  const visibleToScript = await page.evaluate(() => document.cookie);
  assert.ok(!visibleToScript.includes(cookie.value), "document.cookie shows the refresh token");
  assert.ok(!visibleToScript.includes("__Host-refresh_token"));
  // Web storage holds no credential: only the page's hint that a session may exist.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
  assert.equal(stored, '{"auth-example.session-hint":"1"}', "only the hint in web storage");

  await page.screenshot({ path: join(output, "signed-in.png"), fullPage: true });

  // A reload keeps the session: the cookie brings a new access token.
  await page.reload();
  await visible(page, "#signed-in");
  assert.equal(await page.$eval("#me-email", (el) => el.textContent), email);

  // Before the 60 s access token expires, the page renews it by itself, and /me still works.
  const renewed = await page.waitForResponse(
    (r) => r.url() === `${api}/refresh` && r.request().method() === "POST",
    { timeout: 50000 },
  );
  assert.equal(renewed.status(), 200);
  const [rotated] = await apiCookies(page);
  assert.notEqual(rotated.value, cookie.value, "the cookie rotated");

  // Password change: a weak new password is explained; a good one keeps this session.
  await page.type("#current-password", PASSWORD);
  await page.type("#new-password", "short");
  await page.click("#change-password");
  assert.match(await message(page), /new_password:/);
  await page.$eval("#new-password", (el) => (el.value = ""));
  await page.type("#new-password", NEW_PASSWORD);
  await page.click("#change-password");
  assert.match(await message(page), /Password changed/);
  await page.reload();
  await visible(page, "#signed-in");

  // Sign out ends the session and drops the cookie; a reload stays signed out.
  await page.click("#sign-out");
  await visible(page, "#signed-out");
  assert.deepEqual(await apiCookies(page), []);
  assert.equal(
    await page.evaluate(() => JSON.stringify({ ...localStorage })),
    "{}",
    "signing out drops the hint",
  );
  await page.reload();
  await visible(page, "#signed-out");

  // Signing in through the form, with the new password.
  await page.type("#sign-in-email", email);
  await page.type("#sign-in-password", NEW_PASSWORD);
  await page.click("#sign-in");
  await visible(page, "#signed-in");
  assert.equal(await page.$eval("#me-email", (el) => el.textContent), email);
  assert.equal((await apiCookies(page)).length, 1);
  await page.click("#sign-out");
  await visible(page, "#signed-out");

  // Repeated wrong passwords: the page shows the API's backoff, with the wait.
  for (let i = 0; i < 6; i++) {
    await page.$eval("#sign-in-email", (el) => (el.value = ""));
    await page.$eval("#sign-in-password", (el) => (el.value = ""));
    await page.type("#sign-in-email", email);
    await page.type("#sign-in-password", `wrong password ${i}`);
    await page.click("#sign-in");
    await message(page);
  }
  const backoff = await message(page);
  assert.match(backoff, /paused after repeated failures/, backoff);
  assert.match(backoff, /try again in \d+ s/, backoff);
  await page.close();
});

test("a page on an origin the API does not list cannot use it, even with the cookie", async () => {
  // A signed-in user (the cookie is in the browser) ...
  const page = await browser.newPage();
  const email = `grace-${Date.now()}@example.com`;
  await page.goto(`${web}/`);
  await visible(page, "#signed-out");
  await page.type("#register-email", email);
  await page.type("#register-password", PASSWORD);
  await page.click("#register");
  await visible(page, "#signed-in");
  const [cookie] = await apiCookies(page);

  // ... visits another page on the same host, another port: an origin the API does not list.
  const other = await browser.newPage();
  await other.bringToFront();
  await other.goto(`${evilUrl}/`);
  const attempts = await other.evaluate(async (base) => {
    const tryFetch = async (path, init) => {
      try {
        const r = await fetch(base + path, init);
        return `read ${r.status}`;
      } catch {
        return "blocked";
      }
    };
    return {
      health: await tryFetch("/health"),
      login: await tryFetch("/login", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "x@example.com", password: "y" }),
      }),
      refresh: await tryFetch("/refresh", {
        method: "POST",
        credentials: "include",
        headers: { "x-requested-with": "fetch" },
      }),
    };
  }, api);
  assert.deepEqual(attempts, { health: "blocked", login: "blocked", refresh: "blocked" });

  // A plain form post needs no preflight and carries the cookie: the API refuses it.
  const [navigation] = await Promise.all([
    other.waitForNavigation(),
    other.$eval("#f", (form) => form.submit()),
  ]);
  assert.equal(navigation.status(), 403);
  assert.match(await other.content(), /origin-not-allowed/);

  // Nothing was spent: the user's session goes on.
  const [still] = await apiCookies(page);
  assert.equal(still.value, cookie.value);
  await page.bringToFront();
  await page.reload();
  await visible(page, "#signed-in");
  await other.close();
  await page.close();
});

// RFC 6238 as an authenticator app computes it (SHA-1, 6 digits, 30 s), written apart from
// the API's own code: the QR code's secret must work in an independent implementation.
function totp(base32, now = Date.now()) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of base32.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(now / 1000 / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return String(value).padStart(6, "0");
}

test("a user turns on two-factor sign-in from a QR code and signs in with a code", async () => {
  const page = await browser.newPage();
  const email = `hedy-${Date.now()}@example.com`;
  // A fresh browser state: the earlier tests' sessions would sign this page in.
  await (await page.createCDPSession()).send("Network.clearBrowserCookies");
  await page.goto(`${web}/`);
  await visible(page, "#signed-out");
  await page.type("#register-email", email);
  await page.type("#register-password", PASSWORD);
  await page.click("#register");
  await visible(page, "#signed-in");
  assert.equal(await page.$eval("#me-mfa", (el) => el.textContent), "off");

  // A second factor needs a verified address: the mailed link, opened in another tab.
  const verify = await browser.newPage();
  await verify.goto(await mailedLink(email, "Verify your email"));
  assert.match(await message(verify), /verified/);
  await verify.close();
  await page.bringToFront();

  // Enrollment: the password again, then the QR code (an SVG data URI) and the typed key.
  await page.type("#mfa-enroll-password", PASSWORD);
  await page.click("#mfa-enroll");
  await visible(page, "#mfa-confirm-form");
  const qr = await page.$eval("#mfa-qr", (img) => ({
    src: img.getAttribute("src"),
    loaded: img.complete && img.naturalWidth > 0,
  }));
  assert.match(qr.src, /^data:image\/svg\+xml;base64,/);
  assert.ok(qr.loaded, "the browser drew the QR code (CSP allows data: images)");
  const secret = await page.$eval("#mfa-secret", (el) => el.textContent);
  assert.match(secret, /^[A-Z2-7]{32}$/);
  await page.screenshot({ path: join(output, "mfa-enroll.png"), fullPage: true });

  // A wrong code is explained; the app's code turns it on and shows 10 recovery codes.
  await page.type("#mfa-confirm-code", "000000");
  await page.click("#mfa-confirm");
  assert.match(await message(page), /code/i);
  await page.$eval("#mfa-confirm-code", (el) => (el.value = ""));
  const confirmCode = totp(secret);
  await page.type("#mfa-confirm-code", confirmCode);
  await page.click("#mfa-confirm");
  await visible(page, "#recovery");
  const codes = await page.$$eval("#recovery-codes li", (items) => items.map((i) => i.textContent));
  assert.equal(codes.length, 10);
  assert.match(await page.$eval("#me-mfa", (el) => el.textContent), /^on \(10 recovery/);

  // Signing in again: the password, then the code step (a recovery code: the app's code of
  // this 30 s step was just used, and a code works once).
  await page.click("#sign-out");
  await visible(page, "#signed-out");
  await page.type("#sign-in-email", email);
  await page.type("#sign-in-password", PASSWORD);
  await page.click("#sign-in");
  await visible(page, "#mfa-form");
  assert.equal(await page.$eval("#sign-in-form", (el) => el.hidden), true);
  await page.type("#mfa-code", confirmCode);
  await page.click("#mfa-submit");
  assert.match(await message(page), /used already/, "the confirmation's code is spent");
  await page.$eval("#mfa-code", (el) => (el.value = ""));
  await page.type("#mfa-code", codes[0].toLowerCase());
  await page.click("#mfa-submit");
  await visible(page, "#signed-in");
  assert.equal(await page.$eval("#me-email", (el) => el.textContent), email);
  assert.match(await page.$eval("#me-mfa", (el) => el.textContent), /9 recovery codes left/);
  assert.equal((await apiCookies(page)).length, 1, "the session's cookie is set");
  await page.close();
});

test("mailed links open the page's own verify and reset screens, the token in the fragment", async () => {
  const page = await browser.newPage();
  const email = `katherine-${Date.now()}@example.com`;
  await (await page.createCDPSession()).send("Network.clearBrowserCookies");
  await page.goto(`${web}/`);
  await visible(page, "#signed-out");
  await page.type("#register-email", email);
  await page.type("#register-password", PASSWORD);
  await page.click("#register");
  await visible(page, "#signed-in");
  const registered = Date.now();
  assert.equal(await page.$eval("#me-verified", (el) => el.textContent), "not yet");

  // The verification link: the page (not a 403 from the API) verifies, then drops the token
  // from the address bar. The token was never in a URL a server saw.
  const verifyLink = await mailedLink(email, "Verify your email");
  assert.match(verifyLink, /^http:\/\/localhost:\d+\/verify-email#token=/);
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  await page.goto(verifyLink);
  assert.match(await message(page), /Your email address is verified/);
  assert.ok(!page.url().includes("token"), page.url());
  // The fragment is never sent: no request carries the token in its path or query.
  const token = verifyLink.split("#token=")[1];
  const sent = requests.map((url) => {
    const u = new URL(url);
    return u.origin + u.pathname + u.search;
  });
  assert.ok(sent.every((url) => !url.includes(token)), sent.join("\n"));

  // Signed out, forgot the password: the reset link opens the page's reset screen. Mail to
  // one address is limited to one a minute: the verification mail was this minute's.
  await new Promise((ok) => setTimeout(ok, Math.max(0, registered + 61000 - Date.now())));
  await page.goto(`${web}/`);
  await visible(page, "#signed-in");
  await page.click("#sign-out");
  await visible(page, "#signed-out");
  await page.type("#forgot-email", email);
  await page.click("#forgot");
  assert.match(await message(page), /reset link is on its way/);
  const resetLink = await mailedLink(email, "Reset your");
  assert.match(resetLink, /^http:\/\/localhost:\d+\/reset-password#token=/);
  await page.goto(resetLink);
  await visible(page, "#reset");
  assert.ok(!page.url().includes("token"), page.url());
  await page.type("#reset-password", NEW_PASSWORD);
  await page.click("#reset-submit");
  assert.match(await message(page), /Your password is changed/);
  await visible(page, "#signed-out");
  await page.screenshot({ path: join(output, "reset-done.png"), fullPage: true });

  // The new password signs in (on the page under the name the link used).
  await page.type("#sign-in-email", email);
  await page.type("#sign-in-password", NEW_PASSWORD);
  await page.click("#sign-in");
  await visible(page, "#signed-in");
  assert.equal(await page.$eval("#me-verified", (el) => el.textContent), "yes");
  await page.close();
});
