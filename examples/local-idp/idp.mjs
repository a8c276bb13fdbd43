// A local OpenID provider to try "Continue with …" against local-api (docs/federation.md):
// npm oauth2-mock-server, signing in whoever comes as IDP_EMAIL (verified), at once, with
// the code flow, PKCE and the nonce. Not for production: it asks nothing.
//
//   node examples/local-idp/idp.mjs        # prints {"issuer":"http://localhost:9400"}
//
// Environment: IDP_PORT (default 9400; 0 for any free port), IDP_EMAIL (default
// ada@example.com), IDP_SUBJECT (default local-user-1), NODE_TOOLS (the folder whose
// node_modules has oauth2-mock-server; default .tools/node, where scripts/test installs it,
// or `npm install --prefix .tools/node oauth2-mock-server@7.2.1`).

import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const tools = process.env.NODE_TOOLS || join(root, ".tools/node");
const { OAuth2Server } = createRequire(join(tools, "node_modules/"))("oauth2-mock-server");

const port = Number(process.env.IDP_PORT ?? 9400);
const email = process.env.IDP_EMAIL || "ada@example.com";
const subject = process.env.IDP_SUBJECT || "local-user-1";

const server = new OAuth2Server();
await server.issuer.keys.generate("RS256");
await server.start(port, "127.0.0.1");
server.service.on("beforeTokenSigning", (token) => {
  Object.assign(token.payload, { sub: subject, email, email_verified: true });
});
console.log(JSON.stringify({ issuer: server.issuer.url }));
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    await server.stop();
    process.exit(0);
  });
}
