// The OpenID Provider with a certified relying-party library: npm `openid-client` (panva's,
// on oauth4webapi) runs the authorization code flow with PKCE, state and nonce against
// local-api through the hosted pages — a cookie jar, redirects followed, the forms' inputs
// filled by their names — then userinfo, refresh with rotation, revocation and RP-initiated
// logout. npm `jose` verifies the ID token from the discovery document alone.
//
// Environment: LOCAL_API (the binary, default target/debug/local-api), NODE_TOOLS (the folder
// with node_modules/openid-client and jose). Run by scripts/test.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const tools = process.env.NODE_TOOLS || join(root, ".tools/node");
const load = createRequire(join(tools, "node_modules/"));
const client = load("openid-client");
const jose = load("jose");

const EMAIL = "ada@example.com";
const PASSWORD = "correct horse battery staple";
let child;
let api;
let web;
let appId;
let callback;
let listener;

before(async () => {
  const binary = process.env.LOCAL_API || join(root, "target/debug/local-api");
  child = spawn(binary, ["--port", "0"], {
    cwd: root,
    env: { ...process.env, BCRYPT_COST: "4", BCRYPT_ALLOW_LOW_COST: "true", RUST_LOG: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`local-api did not start:\n${log}`)), 20000);
    const check = () => {
      const url = log.match(/listening on (http:\/\/(?:127\.0\.0\.1|localhost):\d+)/);
      const id = log.match(/dev app +(\S+) /);
      const page = log.match(/web page +http:\/\/(?:127\.0\.0\.1|localhost):(\d+)\//);
      if (url && id && page) {
        clearTimeout(timer);
        [api, appId, web] = [url[1], id[1], `http://localhost:${page[1]}`];
        ok();
      }
    };
    child.stdout.on("data", (chunk) => {
      log += chunk;
      check();
    });
    child.stderr.on("data", (chunk) => (log += chunk));
    child.on("exit", (code) => fail(new Error(`local-api exited (${code}):\n${log}`)));
  });
  // A native app's loopback redirect (RFC 8252): any free port, the registered path.
  listener = createServer((_, res) => res.end("ok"));
  await new Promise((ok) => listener.listen(0, "127.0.0.1", ok));
  callback = `http://127.0.0.1:${listener.address().port}/callback`;
  const registered = await fetch(`${api}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: EMAIL, password: PASSWORD }),
  });
  assert.equal(registered.status, 201);
});

after(() => {
  child?.kill();
  listener?.close();
});

/// A browser: cookies by name, redirects by hand.
class Browser {
  cookies = new Map();

  async go(url, init = {}) {
    const headers = { ...(init.headers || {}) };
    if (this.cookies.size) {
      headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    }
    const res = await fetch(url, { ...init, headers, redirect: "manual" });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair] = cookie.split(";");
      const at = pair.indexOf("=");
      const [name, value] = [pair.slice(0, at), pair.slice(at + 1)];
      if (/Max-Age=0/.test(cookie)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  /// Submits the page's form with its hidden inputs and `fields`.
  async submit(pageUrl, html, fields) {
    const action = html.match(/<form method="post" action="([^"]+)"/)[1];
    const form = new URLSearchParams();
    for (const [, name, value] of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
      form.append(name, unescape(value));
    }
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    return this.go(new URL(action, pageUrl), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form.toString(),
    });
  }

  /// Follows the authorization request through the sign-in page to the client's redirect.
  async signIn(authorizationUrl) {
    let res = await this.go(authorizationUrl);
    assert.equal(res.status, 303);
    let location = new URL(res.headers.get("location"), authorizationUrl);
    if (location.href.startsWith(callback)) return location;
    res = await this.go(location);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /<input id="email" name="email"/);
    assert.match(html, /<input id="password" name="password"/);
    res = await this.submit(location, html, { email: EMAIL, password: PASSWORD });
    assert.equal(res.status, 303, await res.clone().text());
    return new URL(res.headers.get("location"));
  }
}

function unescape(text) {
  return text
    .replaceAll("&quot;", '"')
    .replaceAll("&#39;", "'")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&");
}

async function configuration() {
  return client.discovery(new URL(api), appId, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
}

test("the code flow with PKCE and nonce through the hosted pages, as openid-client runs it", async () => {
  const config = await configuration();
  const metadata = config.serverMetadata();
  assert.equal(metadata.authorization_endpoint, `${api}/oauth2/authorize`);
  assert.equal(metadata.authorization_response_iss_parameter_supported, true);
  assert.deepEqual(metadata.code_challenge_methods_supported, ["S256"]);

  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callback,
    scope: "openid email offline_access api:read",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  const browser = new Browser();
  const returned = await browser.signIn(url);
  assert.equal(returned.searchParams.get("iss"), api);
  const tokens = await client.authorizationCodeGrant(config, returned, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  assert.equal(claims.iss, api);
  assert.equal(claims.aud, appId);
  assert.equal(claims.email, EMAIL);
  assert.equal(claims.nonce, nonce);
  assert.ok(claims.sid && claims.at_hash && claims.auth_time);

  // The ID token checked from the discovery document alone.
  const discovered = await (await fetch(`${api}/.well-known/openid-configuration`)).json();
  const jwks = jose.createRemoteJWKSet(new URL(discovered.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(tokens.id_token, jwks, {
    issuer: discovered.issuer,
    audience: appId,
    typ: "JWT",
    algorithms: discovered.id_token_signing_alg_values_supported,
  });
  assert.equal(payload.sub, claims.sub);
  assert.equal(protectedHeader.typ, "JWT");
  // The access token is not an ID token, and the other way round.
  await assert.rejects(jose.jwtVerify(tokens.access_token, jwks, { typ: "JWT" }));

  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.deepEqual(info, { sub: claims.sub, email: EMAIL, email_verified: false });

  // Refresh: a new refresh token each time; the spent one, after the grace, ends the session.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  assert.equal(refreshed.claims().sub, claims.sub);

  // A second sign-in needs no password: the SSO session.
  const again = client.randomPKCECodeVerifier();
  const silent = client.buildAuthorizationUrl(config, {
    redirect_uri: callback,
    scope: "openid",
    code_challenge: await client.calculatePKCECodeChallenge(again),
    code_challenge_method: "S256",
    prompt: "none",
    state: "s2",
  });
  const res = await browser.go(silent);
  const back = new URL(res.headers.get("location"));
  assert.ok(back.href.startsWith(callback), back.href);
  const second = await client.authorizationCodeGrant(config, back, {
    pkceCodeVerifier: again,
    expectedState: "s2",
  });
  assert.equal(second.claims().sid, claims.sid);

  // Revocation ends the session its token belongs to.
  await client.tokenRevocation(config, refreshed.refresh_token);
  await assert.rejects(client.refreshTokenGrant(config, refreshed.refresh_token), (e) => {
    assert.equal(e.error, "invalid_grant");
    return true;
  });
  await assert.rejects(client.fetchUserInfo(config, second.access_token, claims.sub), (e) => {
    assert.equal(e.status, 401);
    return true;
  });
});

test("RP-initiated logout with id_token_hint ends the session and returns to the registered page", async () => {
  const config = await configuration();
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callback,
    scope: "openid offline_access",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state: "s3",
  });
  const browser = new Browser();
  const tokens = await client.authorizationCodeGrant(config, await browser.signIn(url), {
    pkceCodeVerifier: verifier,
    expectedState: "s3",
  });
  const after = `${web}/spa/`;
  const logout = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: after,
    state: "bye",
  });
  assert.equal(logout.origin + logout.pathname, `${api}/oauth2/logout`);
  const res = await browser.go(logout);
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), `${after}?state=bye`);
  assert.equal(browser.cookies.has("__Host-sso"), false);
  await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token), (e) => {
    assert.equal(e.error, "invalid_grant");
    return true;
  });
  // An unregistered address is never a destination.
  const evil = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: "https://evil.example/",
  });
  const refused = await browser.go(evil);
  assert.equal(refused.status, 400);
  assert.equal(refused.headers.get("location"), null);
});

test("errors of the authorization request come back as the library's errors, with iss", async () => {
  const config = await configuration();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callback,
    scope: "openid",
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: "S256",
    prompt: "none",
    state: "s4",
  });
  const res = await new Browser().go(url);
  const back = new URL(res.headers.get("location"));
  assert.equal(back.searchParams.get("iss"), api);
  await assert.rejects(
    client.authorizationCodeGrant(config, back, { pkceCodeVerifier: "x".repeat(43), expectedState: "s4" }),
    (e) => {
      assert.equal(e.error, "login_required");
      return true;
    },
  );
  // A response that claims another issuer is refused by the client (mix-up, RFC 9207).
  const forged = new URL(back);
  forged.searchParams.set("iss", "https://evil.example");
  await assert.rejects(
    client.authorizationCodeGrant(config, forged, { pkceCodeVerifier: "x".repeat(43), expectedState: "s4" }),
  );
});

/// The user's side of a device sign-in: the link the device shows, the sign-in page (or the
/// browser's session), and Allow on the confirmation that names the app.
async function approveDevice(browser, link, decision = "allow") {
  let res = await browser.go(link);
  let page = new URL(link);
  if (res.status === 303) {
    page = new URL(res.headers.get("location"), link);
    assert.match(page.pathname, /\/oauth2\/login$/);
    res = await browser.go(page);
    assert.equal(res.status, 200);
    res = await browser.submit(page, await res.text(), { email: EMAIL, password: PASSWORD });
    assert.equal(res.status, 303, await res.clone().text());
    page = new URL(res.headers.get("location"), page);
    assert.match(page.pathname, /\/oauth2\/device$/);
    res = await browser.go(page);
  }
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /local-api development app/);
  assert.match(html, /name="decision" value="allow"/);
  res = await browser.submit(page, html, { decision });
  assert.equal(res.status, 200);
  return res.text();
}

test("a CLI signs in with the device authorization grant, as openid-client polls for it", async () => {
  const config = await configuration();
  const metadata = config.serverMetadata();
  assert.equal(metadata.device_authorization_endpoint, `${api}/oauth2/device_authorization`);
  assert.ok(metadata.grant_types_supported.includes("urn:ietf:params:oauth:grant-type:device_code"));

  const device = await client.initiateDeviceAuthorization(config, {
    scope: "openid email offline_access",
  });
  assert.match(device.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  assert.equal(device.verification_uri, `${api}/oauth2/device`);
  assert.equal(device.interval, 5);
  // The library polls at the interval, through authorization_pending, while the user acts.
  const polling = client.pollDeviceAuthorizationGrant(config, device);
  const done = await approveDevice(new Browser(), device.verification_uri_complete);
  assert.match(done, /Your device is connected/);
  const tokens = await polling;
  const claims = tokens.claims();
  assert.equal(claims.iss, api);
  assert.equal(claims.aud, appId);
  assert.equal(claims.email, EMAIL);
  assert.ok(tokens.refresh_token);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.equal(refreshed.claims().sub, claims.sub);

  // Denied: the library's poll ends in access_denied.
  const denied = await client.initiateDeviceAuthorization(config, { scope: "openid" });
  const refused = client.pollDeviceAuthorizationGrant(config, denied);
  await approveDevice(new Browser(), denied.verification_uri_complete, "deny");
  await assert.rejects(refused, (err) => err.error === "access_denied");
});

test("the example CLI (examples/cli/device-login) signs in against local-api", async () => {
  const cli = spawn("python3", [join(root, "examples/cli/device-login"), api, appId, "openid email"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let [out, err] = ["", ""];
  cli.stdout.on("data", (chunk) => (out += chunk));
  const exited = new Promise((ok) => cli.on("exit", ok));
  const link = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no code shown:\n${err}`)), 20000);
    cli.stderr.on("data", (chunk) => {
      err += chunk;
      const found = err.match(/\(or open (\S+)\)/);
      if (found) {
        clearTimeout(timer);
        ok(found[1]);
      }
    });
  });
  assert.match(err, /enter the code [BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}/);
  await approveDevice(new Browser(), link);
  assert.equal(await exited, 0, err);
  const tokens = JSON.parse(out);
  assert.equal(jose.decodeJwt(tokens.id_token).email, EMAIL);
  assert.equal(tokens.refresh_token, undefined, "no offline_access asked");
});
