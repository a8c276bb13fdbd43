// A single-page app signing users in with OpenID Connect, through a standard library
// (oidc-client-ts) configured with nothing but the provider's address and a client_id:
// the authorization code flow with PKCE on the provider's hosted pages, the ID token's claims
// for who is signed in, the access token for API calls, refresh tokens (offline_access) for
// silent renewal, and RP-initiated logout.
//
// Tokens live in sessionStorage (this tab only), the library's default for SPAs.
"use strict";

(() => {
  const here = new URL(".", window.location.href);
  const authority = String(window.AUTH_AUTHORITY || "").replace(/\/+$/, "");
  const manager = new oidc.UserManager({
    authority,
    client_id: window.AUTH_CLIENT_ID,
    redirect_uri: new URL("callback.html", here).href,
    post_logout_redirect_uri: here.href,
    response_type: "code",
    scope: "openid email offline_access api:read",
    // Refresh with the refresh token a little before the access token expires.
    automaticSilentRenew: true,
    userStore: new oidc.WebStorageStateStore({ store: window.sessionStorage }),
  });

  const $ = (id) => document.getElementById(id);
  const show = (id, on) => {
    const el = $(id);
    if (el) el.hidden = !on;
  };
  const message = (text) => {
    $("message").textContent = text;
    show("message", Boolean(text));
  };

  async function render() {
    const user = await manager.getUser();
    const signedIn = Boolean(user && !user.expired);
    show("signed-in", signedIn);
    show("signed-out", !signedIn);
    if (!signedIn) return;
    $("email").textContent = user.profile.email || "(no email scope)";
    $("subject").textContent = user.profile.sub;
    $("expires-in").textContent = `${user.expires_in} s`;
    $("scopes").textContent = user.scope;
  }

  async function callApi() {
    const user = await manager.getUser();
    // A protected route of the auth API itself: the gateway's authorizer checks the token.
    const answer = await fetch(`${authority}/me`, {
      headers: { Authorization: `Bearer ${user.access_token}` },
    });
    const body = await answer.json();
    $("api-answer").textContent = `${answer.status} ${JSON.stringify(body, null, 2)}`;
    show("api-answer", true);
  }

  async function main() {
    if (window.location.pathname.endsWith("/callback.html")) {
      try {
        await manager.signinRedirectCallback();
        window.location.replace(here.href);
      } catch (e) {
        message(`Sign-in failed: ${e.message}`);
      }
      return;
    }
    $("authority").textContent = authority;
    const params = new URLSearchParams(window.location.search);
    if (params.has("state") && !params.has("code")) {
      // Back from the provider's logout.
      await manager.signoutRedirectCallback().catch(() => {});
      window.history.replaceState(null, "", here.pathname);
    }
    if (params.has("error")) message(params.get("error_description") || params.get("error"));
    $("sign-in").addEventListener("click", () => manager.signinRedirect());
    $("sign-out").addEventListener("click", () => manager.signoutRedirect());
    $("call-api").addEventListener("click", () => callApi().catch((e) => message(e.message)));
    $("refresh").addEventListener("click", () =>
      manager.signinSilent().then(render).catch((e) => message(`Refresh failed: ${e.message}`)),
    );
    manager.events.addUserLoaded(render);
    manager.events.addUserSignedOut(render);
    await render();
  }

  main().catch((e) => message(e.message));
})();
