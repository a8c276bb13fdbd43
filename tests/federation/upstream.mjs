// A real OpenID provider for the federation tests: npm oauth2-mock-server (axa-group) on
// 127.0.0.1, signing RS256, answering the authorization code flow with PKCE and nonce. It
// prints one JSON line, {"issuer", "control"}; a POST of a JSON object to `control` merges
// those claims into every token it signs from then on (a null deletes the claim), so a test
// can make it answer as Google, Microsoft or an attacker would.
//
// Environment: NODE_TOOLS (the folder with node_modules/oauth2-mock-server). Started by the
// federation tests (tests/tests/it/federation.rs).

import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const tools = process.env.NODE_TOOLS || join(root, ".tools/node");
const { OAuth2Server } = createRequire(join(tools, "node_modules/"))("oauth2-mock-server");

const server = new OAuth2Server();
await server.issuer.keys.generate("RS256");
await server.start(0, "127.0.0.1");

let overrides = {};
server.service.on("beforeTokenSigning", (token) => {
  for (const [name, value] of Object.entries(overrides)) {
    if (value === null) {
      delete token.payload[name];
    } else {
      token.payload[name] = value;
    }
  }
});

const control = createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    try {
      overrides = JSON.parse(body || "{}");
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    } catch {
      res.writeHead(400).end();
    }
  });
});
control.listen(0, "127.0.0.1", () => {
  const issuer = server.issuer.url;
  console.log(JSON.stringify({ issuer, control: `http://127.0.0.1:${control.address().port}` }));
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
