// The Node.js peer's hot paths, measured the way criterion measures ours: warm up, then many
// timed batches, and report the median time per operation. Prints one JSON object (ns/op).
//
// The stack is the one the original JS project used: npm `jsonwebtoken` (HS256 with a string
// secret) and `bcryptjs`; and, for a fair EdDSA comparison (the same algorithm as ours), npm
// `jose`'s jwtVerify with an Ed25519 KeyObject. Run by scripts/bench with NODE_PATH pointing at
// the installed modules.
'use strict';

const crypto = require('node:crypto');
const jwt = require('jsonwebtoken');
const bcrypt = require('bcryptjs');
const jose = require('jose');

const SECRET = 'a-string-secret-of-at-least-32-bytes!!';
const KEY = crypto.createSecretKey(Buffer.from(SECRET));
const CLAIMS = {
  sub: '6f1d7a42-3c1b-4d8e-9a57-2b9e0c4d1f00',
  email: 'ada@example.com',
  roles: ['user'],
};
const OPTIONS = { algorithm: 'HS256', expiresIn: 900, issuer: 'https://auth.example', audience: 'api' };
const VERIFY = { algorithms: ['HS256'], issuer: 'https://auth.example', audience: 'api' };
const TOKEN = jwt.sign(CLAIMS, SECRET, OPTIONS);

/** Median ns per call of the async `fn`, awaited one call at a time, as `measure` does. */
async function measureAsync(fn, perBatch, batches) {
  for (let i = 0; i < perBatch * 2; i++) await fn();
  const samples = [];
  for (let b = 0; b < batches; b++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < perBatch; i++) await fn();
    samples.push(Number(process.hrtime.bigint() - start) / perBatch);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

/** Median ns per call of `fn` over `batches` batches of `perBatch` calls, after a warm-up. */
function measure(fn, perBatch, batches) {
  for (let i = 0; i < perBatch * 2; i++) fn();
  const samples = [];
  for (let b = 0; b < batches; b++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < perBatch; i++) fn();
    samples.push(Number(process.hrtime.bigint() - start) / perBatch);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

function check(ok, what) {
  if (!ok) throw new Error(`peer benchmark is broken: ${what}`);
}

check(jwt.verify(TOKEN, SECRET, VERIFY).sub === CLAIMS.sub, 'verify with a string secret');
check(jwt.verify(TOKEN, KEY, VERIFY).sub === CLAIMS.sub, 'verify with a KeyObject');
const HASH = bcrypt.hashSync('correct horse battery staple', 10);
check(bcrypt.compareSync('correct horse battery staple', HASH), 'bcryptjs compare');

async function main() {
  // EdDSA the way jose verifies it: an Ed25519 KeyObject, the algorithm pinned, the claims
  // checked as ours are (issuer, audience, typ, exp/nbf).
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const now = Math.floor(Date.now() / 1000);
  const edToken = await new jose.SignJWT({ ...CLAIMS, jti: 'j' })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'k' })
    .setIssuer('https://auth.example')
    .setAudience('api')
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + 900)
    .sign(privateKey);
  const edOptions = { algorithms: ['EdDSA'], issuer: 'https://auth.example', audience: 'api', typ: 'at+jwt' };
  check((await jose.jwtVerify(edToken, publicKey, edOptions)).payload.sub === CLAIMS.sub, 'jose EdDSA verify');

  const results = {
    jwt_verify_string_secret_ns: measure(() => jwt.verify(TOKEN, SECRET, VERIFY), 2000, 30),
    jwt_verify_key_object_ns: measure(() => jwt.verify(TOKEN, KEY, VERIFY), 2000, 30),
    jwt_sign_ns: measure(() => jwt.sign(CLAIMS, SECRET, OPTIONS), 2000, 30),
    jose_verify_eddsa_ns: await measureAsync(() => jose.jwtVerify(edToken, publicKey, edOptions), 500, 30),
    bcryptjs_compare_cost10_ns: measure(() => bcrypt.compareSync('correct horse battery staple', HASH), 1, 15),
    node_version: process.version,
  };
  process.stdout.write(JSON.stringify(results) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
