// The Node.js peer as a Lambda function: loads the modules the original JS project's handler
// loaded (jsonwebtoken, bcryptjs), then serves the Lambda Runtime API loop the way Node's own
// runtime does, answering authorizer TOKEN events by verifying the token with a string secret.
// scripts/bench times it from spawn to first answer, exactly as it times the Rust binaries.
'use strict';

const http = require('node:http');
const jwt = require('jsonwebtoken');
require('bcryptjs'); // loaded at start-up, as the original handler module did

const SECRET = process.env.JWT_SECRET;
const VERIFY = { algorithms: ['HS256'], issuer: process.env.JWT_ISSUER, audience: process.env.JWT_AUDIENCE };
const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
const agent = new http.Agent({ keepAlive: true });

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function decide(event) {
  const token = (event.authorizationToken || '').replace(/^Bearer /i, '');
  const claims = jwt.verify(token, SECRET, VERIFY);
  return {
    principalId: claims.sub,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }],
    },
    context: { sub: claims.sub, email: claims.email },
  };
}

async function main() {
  for (;;) {
    const next = await call('GET', '/2018-06-01/runtime/invocation/next');
    const id = next.headers['lambda-runtime-aws-request-id'];
    try {
      const answer = decide(JSON.parse(next.body));
      await call('POST', `/2018-06-01/runtime/invocation/${id}/response`, JSON.stringify(answer));
    } catch (err) {
      const body = JSON.stringify({ errorType: 'Unauthorized', errorMessage: 'Unauthorized' });
      await call('POST', `/2018-06-01/runtime/invocation/${id}/error`, body);
    }
  }
}

main().catch((err) => {
  process.stderr.write(`runtime loop failed: ${err}\n`);
  process.exit(1);
});
