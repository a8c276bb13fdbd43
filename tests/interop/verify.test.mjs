// Our access tokens checked by two independent, widely used verifiers — npm `jose` and
// awslabs' `aws-jwt-verify` — that know only the issuer: they find the keys through
// {issuer}/.well-known/openid-configuration and its jwks_uri, as API Gateway's built-in JWT
// authorizers do. One local-api signs EdDSA (the default), another RS256 (an RSA key).
//
// Environment: LOCAL_API (the binary, default target/debug/local-api), NODE_TOOLS (the folder
// with node_modules/jose and aws-jwt-verify). Run by scripts/test.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const tools = process.env.NODE_TOOLS || join(root, ".tools/node");
const load = createRequire(join(tools, "node_modules/"));
const jose = load("jose");
const { JwtVerifier } = load("aws-jwt-verify");
const { SimpleJwksCache } = load("aws-jwt-verify/jwk");

// aws-jwt-verify fetches JWKS over https only; local-api speaks http on 127.0.0.1. Its
// documented fetcher option takes the body from Node's fetch instead. Parsing the JWKS,
// selecting the key and every check stay aws-jwt-verify's own.
const httpJwks = () =>
  new SimpleJwksCache({ fetcher: { fetch: async (uri) => (await fetch(uri)).arrayBuffer() } });

const AUDIENCE = "interop-api";
const PASSWORD = "correct horse battery staple";
const servers = [];

async function start(extraEnv) {
  const binary = process.env.LOCAL_API || join(root, "target/debug/local-api");
  const child = spawn(binary, ["--port", "0", "--no-web"], {
    cwd: root,
    env: {
      ...process.env,
      BCRYPT_COST: "4",
      BCRYPT_ALLOW_LOW_COST: "true",
      JWT_AUDIENCE: AUDIENCE,
      RUST_LOG: "warn",
      ...extraEnv,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  servers.push(child);
  let log = "";
  const url = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`local-api did not start:\n${log}`)), 20000);
    child.stdout.on("data", (chunk) => {
      log += chunk;
      const match = log.match(/listening on (http:\/\/(?:127\.0\.0\.1|localhost):\d+)/);
      if (match) {
        clearTimeout(timer);
        ok(match[1]);
      }
    });
    child.stderr.on("data", (chunk) => (log += chunk));
    child.on("exit", (code) => fail(new Error(`local-api exited (${code}):\n${log}`)));
  });
  return url;
}

async function json(url, init) {
  const response = await fetch(url, init);
  assert.ok(response.ok, `${url}: ${response.status} ${await response.clone().text()}`);
  return response.json();
}

async function tokenFrom(api, email) {
  const body = JSON.stringify({ email, password: PASSWORD });
  const headers = { "content-type": "application/json" };
  await json(`${api}/register`, { method: "POST", headers, body });
  return (await json(`${api}/login`, { method: "POST", headers, body })).access_token;
}

let eddsa;
let rs256;

before(async () => {
  eddsa = await start({});
  rs256 = await start({
    JWT_SIGNING_KEY: readFileSync(join(root, "tests/fixtures/rsa-2048.pem"), "utf8"),
  });
});

after(() => {
  for (const child of servers) child.kill("SIGINT");
});

for (const [name, alg, api] of [
  ["EdDSA", "EdDSA", () => eddsa],
  ["RS256", "RS256", () => rs256],
]) {
  test(`${name} tokens verify with jose and aws-jwt-verify from the discovery document alone`, async () => {
    const issuer = api();
    const discovery = await json(`${issuer}/.well-known/openid-configuration`);
    assert.equal(discovery.issuer, issuer);
    assert.equal(discovery.jwks_uri, `${issuer}/.well-known/jwks.json`);
    // ID tokens are signed with the same key: its algorithm, and only it, is claimed.
    assert.deepEqual(discovery.id_token_signing_alg_values_supported, [alg]);
    for (const [member, path] of [
      ["authorization_endpoint", "/oauth2/authorize"],
      ["token_endpoint", "/oauth2/token"],
      ["userinfo_endpoint", "/oauth2/userinfo"],
      ["end_session_endpoint", "/oauth2/logout"],
    ]) {
      assert.equal(discovery[member], `${issuer}${path}`);
    }
    const token = await tokenFrom(issuer, `${name.toLowerCase()}@example.com`);

    // jose: the remote JWKS from jwks_uri, issuer, audience, typ and the algorithm enforced.
    const keys = jose.createRemoteJWKSet(new URL(discovery.jwks_uri));
    const { payload, protectedHeader } = await jose.jwtVerify(token, keys, {
      issuer: discovery.issuer,
      audience: AUDIENCE,
      typ: "at+jwt",
      algorithms: [alg],
    });
    assert.equal(protectedHeader.alg, alg);
    assert.equal(payload.email, `${name.toLowerCase()}@example.com`);
    assert.equal(payload.client_id, AUDIENCE);
    assert.equal(payload.scope, "user");
    for (const wrong of [
      { audience: "another-api" },
      { issuer: "https://evil.example" },
      { typ: "JWT" },
    ]) {
      await assert.rejects(
        jose.jwtVerify(token, keys, {
          issuer: discovery.issuer,
          audience: AUDIENCE,
          typ: "at+jwt",
          ...wrong,
        }),
        `jose accepted the token with ${JSON.stringify(wrong)}`,
      );
    }
    const [h, p, s] = token.split(".");
    const tampered = `${h}.${p}.${s.startsWith("A") ? "B" : "A"}${s.slice(1)}`;
    await assert.rejects(jose.jwtVerify(tampered, keys, { issuer, audience: AUDIENCE }));

    // aws-jwt-verify: the same, with its own JWKS fetch and claim checks.
    const verifier = JwtVerifier.create(
      {
        issuer: discovery.issuer,
        audience: AUDIENCE,
        jwksUri: discovery.jwks_uri,
        customJwtCheck: ({ header }) => {
          if (header.typ !== "at+jwt") throw new Error(`typ ${header.typ}`);
        },
      },
      { jwksCache: httpJwks() },
    );
    const checked = await verifier.verify(token);
    assert.equal(checked.sub, payload.sub);
    const strict = JwtVerifier.create(
      { issuer: discovery.issuer, audience: "another-api", jwksUri: discovery.jwks_uri },
      { jwksCache: httpJwks() },
    );
    await assert.rejects(strict.verify(token));
    await assert.rejects(verifier.verify(tampered));
  });
}

test("a key set with one RSA and one EdDSA key verifies both kinds of token", async () => {
  // The RS256 instance publishes only its own key; rotation between the two kinds means a
  // JWKS with both, which jose selects from by kid.
  const both = {
    keys: [
      ...(await json(`${eddsa}/.well-known/jwks.json`)).keys,
      ...(await json(`${rs256}/.well-known/jwks.json`)).keys,
    ],
  };
  assert.deepEqual(both.keys.map((k) => k.kty).sort(), ["OKP", "RSA"]);
  const set = jose.createLocalJWKSet(both);
  for (const [issuer, email] of [
    [eddsa, "rotation-ed@example.com"],
    [rs256, "rotation-rsa@example.com"],
  ]) {
    const token = await tokenFrom(issuer, email);
    const { payload } = await jose.jwtVerify(token, set, { issuer, audience: AUDIENCE, typ: "at+jwt" });
    assert.equal(payload.email, email);
  }
});

test("keys made by auth-admin keys generate and keys jwks verify with jose", async () => {
  const admin = process.env.AUTH_ADMIN || join(root, "target/debug/auth-admin");
  const dir = mkdtempSync(join(tmpdir(), "keys-"));
  try {
    for (const kind of ["ed25519", "rsa"]) {
      const pem = join(dir, `${kind}.pem`);
      const jwk = JSON.parse(
        execFileSync(admin, ["keys", "generate", "--kind", kind, "--out", pem], { encoding: "utf8" }),
      );
      const jwks = execFileSync(admin, ["keys", "jwks", pem], { encoding: "utf8" }).trim();
      assert.deepEqual(JSON.parse(jwks).keys, [jwk], "keys jwks publishes the printed JWK");
      // A local-api that signs with the generated private key and publishes keys jwks' value.
      const issuer = await start({
        JWT_SIGNING_KEY: readFileSync(pem, "utf8"),
        JWT_PUBLIC_KEYS: jwks,
      });
      const token = await tokenFrom(issuer, `keys-${kind}@example.com`);
      // jose, given only the JWK that keys generate printed.
      const key = await jose.importJWK(jwk, jwk.alg);
      const { protectedHeader } = await jose.jwtVerify(token, key, {
        issuer,
        audience: AUDIENCE,
        typ: "at+jwt",
        algorithms: [jwk.alg],
      });
      assert.equal(protectedHeader.kid, jwk.kid);
      assert.equal(jwk.kid, await jose.calculateJwkThumbprint(jwk), "kid is the RFC 7638 thumbprint");
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
