// The Node.js peer's hot paths, measured the way criterion measures ours: warm up, then many
// timed batches, and report the median time per operation. Prints one JSON object (ns/op).
//
// The stack is the one the original JS project used: npm `jsonwebtoken` (HS256 with a string
// secret) and `bcryptjs`. Run by scripts/bench with NODE_PATH pointing at the installed modules.
'use strict';

const crypto = require('node:crypto');
const jwt = require('jsonwebtoken');
const bcrypt = require('bcryptjs');

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

const results = {
  jwt_verify_string_secret_ns: measure(() => jwt.verify(TOKEN, SECRET, VERIFY), 2000, 30),
  jwt_verify_key_object_ns: measure(() => jwt.verify(TOKEN, KEY, VERIFY), 2000, 30),
  jwt_sign_ns: measure(() => jwt.sign(CLAIMS, SECRET, OPTIONS), 2000, 30),
  bcryptjs_compare_cost10_ns: measure(() => bcrypt.compareSync('correct horse battery staple', HASH), 1, 15),
  node_version: process.version,
};
process.stdout.write(JSON.stringify(results) + '\n');
