// Passkeys in a real headless Chromium with a CDP virtual authenticator (CTAP2, internal,
// resident keys, user verification), against a real local-api: the example page adds a
// passkey, signs out and signs in with it without typing an email; the hosted sign-in page
// signs in with it for an OpenID client; a passkey whose user is not verified is refused where
// a route needs a second factor. An independent relying party (@simplewebauthn/server)
// verifies the options this product sent and the answers the browser made, to prove the JSON
// is the standard's. Screenshots go to BROWSER_OUTPUT.
//
// Environment: as sign_in.test.mjs (LOCAL_API, NODE_TOOLS, CHROMIUM, BROWSER_OUTPUT).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { launchChromium } from "./chromium.mjs";
import { startLocalApi } from "./local_api.mjs";

const root = resolve(import.meta.dirname, "../..");
const output = process.env.BROWSER_OUTPUT || join(root, "target/browser-test");
const tools = process.env.NODE_TOOLS || join(root, ".tools/node");
const rp = createRequire(join(tools, "node_modules/"))("@simplewebauthn/server");

const PASSWORD = "correct horse battery staple";
const EMAIL = `passkey-${Date.now()}@example.com`;

let server;
let api;
let web;
let appId;
let browser;
let closeChromium;
let callback;
let callbackUrl;
const codes = [];

before(async () => {
  ({ server, api, web, appId } = await startLocalApi({
    args: ["--web", join(root, "examples/web")],
    env: {
      REFRESH_TOKEN_TRANSPORT: "cookie",
      // One route needs a second factor at the gateway.
      AUTHORIZER_RULES: JSON.stringify({ "* /*": ["user"], "GET /sessions": ["@mfa"] }),
      AUTHORIZER_SESSION_CACHE_SECONDS: "0",
    },
    wants: {
      api: /listening on (http:\/\/localhost:\d+)/,
      web: /web page\s+(http:\/\/localhost:\d+)\//,
      appId: /dev app +(\S+) /,
      passkeys: /passkeys   RP ID localhost/,
    },
  }));
  callback = createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    if (url.pathname === "/callback") codes.push(url);
    res.end("signed in");
  });
  await new Promise((ok) => callback.listen(0, "127.0.0.1", ok));
  callbackUrl = `http://127.0.0.1:${callback.address().port}/callback`;
  ({ browser, close: closeChromium } = await launchChromium());
  mkdirSync(output, { recursive: true });
});

after(async () => {
  await closeChromium?.();
  server?.kill();
  callback?.close();
});

async function visible(page, selector) {
  await page.waitForSelector(selector, { visible: true, timeout: 15000 });
}

/// The claims of a JWT, unchecked (local-api signed it; the tests of tokens check that).
function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());
}

/// The ceremonies' JSON as it crosses the wire: options by challenge_id, and answers.
function capture(page) {
  const seen = { options: new Map(), registrations: [], assertions: [] };
  page.on("response", async (response) => {
    if (response.request().method() !== "POST" || !response.url().endsWith("/options")) return;
    const body = await response.json().catch(() => null);
    if (body?.challenge_id) seen.options.set(body.challenge_id, body.options);
  });
  page.on("request", (request) => {
    if (request.method() !== "POST") return;
    if (request.url().endsWith("/passkeys/register")) {
      seen.registrations.push(JSON.parse(request.postData()));
    } else if (request.url().endsWith("/passkeys/login")) {
      seen.assertions.push(JSON.parse(request.postData()));
    }
  });
  return seen;
}

async function verifyEmail() {
  const mails = await (await fetch(`${api}/_local/outbox`)).json();
  const mail = mails.reverse().find((m) => m.to === EMAIL && m.subject.startsWith("Verify"));
  const token = /token=([A-Za-z0-9_-]+)/.exec(mail.text)[1];
  const answer = await fetch(`${api}/email/verify`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  assert.equal(answer.status, 200);
}

/// A passkey sign-in made by the page's browser straight against the API: its answer.
async function passkeySignIn(page, email) {
  return page.evaluate(async (base, body) => {
    const json = { "content-type": "application/json" };
    const start = await (
      await fetch(`${base}/passkeys/login/options`, { method: "POST", headers: json, body })
    ).json();
    const credential = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(start.options),
    });
    const answer = await fetch(`${base}/passkeys/login`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ challenge_id: start.challenge_id, credential: credential.toJSON() }),
    });
    return { status: answer.status, body: await answer.json() };
  }, api, JSON.stringify(email ? { email } : {}));
}

// One tab, one virtual authenticator (they belong to a tab), for both tests.
let page;
let cdp;
let authenticatorId;

/// A platform authenticator that verifies its user (a fingerprint, say).
const VERIFYING = { transport: "internal", hasUserVerification: true, isUserVerified: true };

/// Moves the authenticator's credentials (private keys and counters included) to a new one
/// with `options`.
async function moveCredentials(options) {
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId });
  ({ authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      hasResidentKey: true,
      automaticPresenceSimulation: true,
      ...options,
    },
  }));
  for (const credential of credentials) {
    await cdp.send("WebAuthn.addCredential", { authenticatorId, credential });
  }
}

test("the example page adds a passkey and signs in with it without an email", async () => {
  page = await browser.newPage();
  cdp = await page.createCDPSession();
  await cdp.send("WebAuthn.enable");
  ({ authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", hasResidentKey: true, automaticPresenceSimulation: true, ...VERIFYING },
  }));
  const seen = capture(page);

  await page.goto(`${web}/`);
  await visible(page, "#signed-out");
  await visible(page, "#passkey-sign-in");
  await page.type("#register-email", EMAIL);
  await page.type("#register-password", PASSWORD);
  await page.click("#register");
  await visible(page, "#signed-in");
  await verifyEmail();
  await page.reload();
  await visible(page, "#passkeys");

  await page.type("#passkey-name", "Test key");
  await page.type("#passkey-password", PASSWORD);
  await page.click("#passkey-add");
  await page.waitForFunction(
    () => document.querySelector("#passkey-list")?.textContent.includes("Test key"),
    { timeout: 15000 },
  );
  await page.screenshot({ path: join(output, "passkey-added.png"), fullPage: true });
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.equal(credentials[0].isResidentCredential, true);

  // An independent relying party accepts the options we sent and the browser's answer.
  assert.equal(seen.registrations.length, 1);
  const registration = seen.registrations[0];
  const creationOptions = seen.options.get(registration.challenge_id);
  assert.equal(creationOptions.rp.id, "localhost");
  assert.equal(creationOptions.attestation, "none");
  assert.equal(creationOptions.authenticatorSelection.residentKey, "preferred");
  const { registrationInfo: registered, verified: registrationVerified } =
    await rp.verifyRegistrationResponse({
    response: registration.credential,
    expectedChallenge: creationOptions.challenge,
    expectedOrigin: web,
    expectedRPID: "localhost",
      requireUserVerification: true,
    });
  assert.equal(registrationVerified, true);

  // Signed out, then in with the passkey: no email typed.
  await page.click("#sign-out");
  await visible(page, "#signed-out");
  await page.click("#passkey-sign-in");
  await visible(page, "#signed-in");
  await page.screenshot({ path: join(output, "passkey-signed-in.png"), fullPage: true });
  const assertion = seen.assertions.at(-1);
  const requestOptions = seen.options.get(assertion.challenge_id);
  assert.deepEqual(requestOptions.allowCredentials, []);
  const authenticated = await rp.verifyAuthenticationResponse({
    response: assertion.credential,
    expectedChallenge: requestOptions.challenge,
    expectedOrigin: web,
    expectedRPID: "localhost",
    credential: registered.credential,
    requireUserVerification: true,
  });
  assert.equal(authenticated.verified, true);

  // A route that needs a second factor: a verified passkey passes, an unverified one not.
  await page.goto(`${web}/config.js`);
  const verified = await passkeySignIn(page);
  assert.equal(verified.status, 200, JSON.stringify(verified.body));
  assert.deepEqual(claims(verified.body.access_token).amr, ["hwk", "user", "mfa"]);
  const sessions = (token) =>
    fetch(`${api}/sessions`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
  assert.equal(await sessions(verified.body.access_token), 200);

  // The same credential on an authenticator that cannot verify its user (a plain security
  // key): the browser signs in without user verification. By email, as a key without a PIN
  // gives no discoverable credential.
  await moveCredentials({ transport: "internal", hasUserVerification: false });
  const unverified = await passkeySignIn(page, EMAIL);
  assert.equal(unverified.status, 200, JSON.stringify(unverified.body));
  assert.deepEqual(claims(unverified.body.access_token).amr, ["hwk"]);
  assert.equal(await sessions(unverified.body.access_token), 403);
  await moveCredentials(VERIFYING);
});

test("the hosted sign-in page signs in with a passkey from autofill for an OpenID client", async () => {
  assert.ok(page, "the first test added the passkey to this tab's authenticator");
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const query = new URLSearchParams({
    response_type: "code",
    client_id: appId,
    redirect_uri: callbackUrl,
    scope: "openid email",
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: "passkey-state",
  });
  // The sign-in page asks for a passkey in the email's autofill (conditional mediation) as
  // it loads; the virtual authenticator answers as a user picking it would: no email, no
  // password, no click.
  const before = codes.length;
  await page.goto(`${api}/oauth2/authorize?${query}`);
  for (let i = 0; i < 150 && codes.length === before; i++) {
    await new Promise((ok) => setTimeout(ok, 100));
  }
  await page.screenshot({ path: join(output, "hosted-passkey.png"), fullPage: true });
  const back = codes.at(-1);
  assert.ok(back, "the client's redirect URI was reached");
  assert.equal(back.searchParams.get("state"), "passkey-state");
  const tokens = await fetch(`${api}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: back.searchParams.get("code"),
      redirect_uri: callbackUrl,
      client_id: appId,
      code_verifier: verifier,
    }),
  }).then((r) => r.json());
  assert.ok(tokens.id_token, JSON.stringify(tokens));
  assert.equal(claims(tokens.id_token).email, EMAIL);
  assert.ok(claims(tokens.access_token).amr.includes("mfa"));
  await page.close();
});


