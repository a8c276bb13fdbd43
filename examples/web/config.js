// The auth API's base URL (its stage URL or custom domain, without a trailing slash).
// local-api writes its own config.js when it serves this folder.
window.AUTH_API_URL = "https://auth.example.com";
