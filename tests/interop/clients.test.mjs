// Machine clients with a real OAuth client library: npm `openid-client` (panva's, on
// oauth4webapi) finds the token endpoint through discovery and gets tokens with the
// client_credentials grant, by client_secret_basic and client_secret_post, from local-api's
// development client (read off its start-up banner, as a user would). npm `jose` and
// awslabs' `aws-jwt-verify` then verify the token with a scope check.
//
// Environment: LOCAL_API (the binary, default target/debug/local-api), NODE_TOOLS (the folder
// with node_modules/openid-client, jose and aws-jwt-verify). Run by scripts/test.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const tools = process.env.NODE_TOOLS || join(root, ".tools/node");
const load = createRequire(join(tools, "node_modules/"));
const client = load("openid-client");
const jose = load("jose");
const { JwtVerifier } = load("aws-jwt-verify");
const { SimpleJwksCache } = load("aws-jwt-verify/jwk");

const AUDIENCE = "interop-api";
let child;
let api;
let clientId;
let clientSecret;

before(async () => {
  const binary = process.env.LOCAL_API || join(root, "target/debug/local-api");
  child = spawn(binary, ["--port", "0", "--no-web"], {
    cwd: root,
    env: {
      ...process.env,
      BCRYPT_COST: "4",
      BCRYPT_ALLOW_LOW_COST: "true",
      JWT_AUDIENCE: AUDIENCE,
      LOCAL_CLIENT_SCOPES: "orders:read orders:write",
      RUST_LOG: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`local-api did not start:\n${log}`)), 20000);
    const check = () => {
      const url = log.match(/listening on (http:\/\/(?:127\.0\.0\.1|localhost):\d+)/);
      const id = log.match(/dev client (\S+) /);
      const secret = log.match(/secret +(\S+)/);
      if (url && id && secret) {
        clearTimeout(timer);
        [api, clientId, clientSecret] = [url[1], id[1], secret[1]];
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
});

after(() => child?.kill());

async function configuration(auth) {
  const config = await client.discovery(new URL(api), clientId, undefined, auth, {
    execute: [client.allowInsecureRequests],
  });
  assert.equal(config.serverMetadata().token_endpoint, `${api}/oauth2/token`);
  return config;
}

async function verifiedWithScope(token, scope) {
  const jwks = jose.createRemoteJWKSet(new URL(`${api}/.well-known/jwks.json`));
  const { payload } = await jose.jwtVerify(token, jwks, {
    issuer: api,
    audience: AUDIENCE,
    typ: "at+jwt",
  });
  assert.ok(payload.scope.split(" ").includes(scope), payload.scope);
  const verifier = JwtVerifier.create(
    { issuer: api, audience: AUDIENCE, jwksUri: `${api}/.well-known/jwks.json`, scope },
    { jwksCache: new SimpleJwksCache({ fetcher: { fetch: async (u) => (await fetch(u)).arrayBuffer() } }) },
  );
  return { payload, checked: await verifier.verify(token) };
}

test("client_secret_basic: a token for every scope of the client, verified with a scope check", async () => {
  const config = await configuration(client.ClientSecretBasic(clientSecret));
  const tokens = await client.clientCredentialsGrant(config);
  assert.equal(tokens.token_type.toLowerCase(), "bearer");
  assert.equal(tokens.scope, "orders:read orders:write");
  assert.equal(tokens.refresh_token, undefined);
  assert.ok(tokens.expiresIn() > 3500);
  const { payload, checked } = await verifiedWithScope(tokens.access_token, "orders:write");
  assert.equal(payload.sub, clientId);
  assert.equal(payload.client_id, clientId);
  assert.equal(payload.email, undefined);
  assert.equal(payload.roles, undefined);
  assert.equal(checked.sub, clientId);
});

test("client_secret_post: one scope asked, one granted; another scope fails the check", async () => {
  const config = await configuration(client.ClientSecretPost(clientSecret));
  const tokens = await client.clientCredentialsGrant(config, { scope: "orders:read" });
  assert.equal(tokens.scope, "orders:read");
  await verifiedWithScope(tokens.access_token, "orders:read");
  await assert.rejects(verifiedWithScope(tokens.access_token, "orders:write"));
});

test("a wrong secret and a scope the client may not have are the library's OAuth errors", async () => {
  const wrong = await configuration(client.ClientSecretBasic("not-the-secret"));
  // RFC 6749 §5.2: the client used Basic, so the answer is a 401 naming the Basic scheme,
  // which the library reports as the server's challenge.
  await assert.rejects(client.clientCredentialsGrant(wrong), (e) => {
    assert.equal(e.status, 401);
    assert.equal(e.code, "OAUTH_WWW_AUTHENTICATE_CHALLENGE");
    assert.equal(e.cause[0].scheme, "basic");
    return true;
  });
  const wrongPost = await configuration(client.ClientSecretPost("not-the-secret"));
  await assert.rejects(client.clientCredentialsGrant(wrongPost), (e) => {
    assert.equal(e.status, 401);
    return true;
  });
  const config = await configuration(client.ClientSecretBasic(clientSecret));
  await assert.rejects(client.clientCredentialsGrant(config, { scope: "admin" }), (e) => {
    assert.equal(e.error, "invalid_scope");
    return true;
  });
});
