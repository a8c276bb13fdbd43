// The OpenID Provider (the auth API's issuer: its stage URL or custom domain, no trailing
// slash) and this app's client_id, registered as a public client with
// redirect URI <this folder>/callback.html and post-logout URI <this folder>/.
// local-api writes its own config.js when it serves this folder.
window.AUTH_AUTHORITY = "https://auth.example.com";
window.AUTH_CLIENT_ID = "your-client-id";
