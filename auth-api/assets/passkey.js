// Passkeys on the hosted sign-in pages (served as /oauth2/passkey.js, the only script the
// pages load). The pages work without it; with it, the sign-in page offers "Sign in with a
// passkey" and browser autofill, and the second step offers the user's passkeys. The
// browser's answer goes back in the page's own form (its CSRF token included), never to the
// JSON API from here.
(() => {
  "use strict";
  const form = document.getElementById("passkey-form");
  const button = document.getElementById("passkey-button");
  const status = document.getElementById("passkey-status");
  if (!form || !button || !window.PublicKeyCredential ||
      typeof PublicKeyCredential.parseRequestOptionsFromJSON !== "function") {
    return;
  }
  const secondFactor = form.dataset.mode === "second-factor";
  let conditional = null;

  async function options() {
    const url = secondFactor ? "../login/mfa/passkey/options" : "../passkeys/login/options";
    const body = secondFactor ? { mfa_token: form.elements.mfa_token.value } : {};
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
    });
    if (!res.ok) throw new Error(`passkey options: ${res.status}`);
    return res.json();
  }

  async function signIn(mediation) {
    const { challenge_id: challengeId, options: json } = await options();
    const controller = new AbortController();
    if (mediation === "conditional") conditional = controller;
    const credential = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(json),
      mediation,
      signal: controller.signal,
    });
    if (!credential) return;
    form.elements.passkey_challenge_id.value = challengeId;
    form.elements.passkey_credential.value = JSON.stringify(credential.toJSON());
    form.submit();
  }

  button.hidden = false;
  button.addEventListener("click", () => {
    if (conditional) {
      conditional.abort();
      conditional = null;
    }
    status.textContent = "";
    signIn("optional").catch(() => {
      status.textContent = "No passkey was used. Try again, or sign in another way.";
    });
  });
  if (!secondFactor && typeof PublicKeyCredential.isConditionalMediationAvailable === "function") {
    PublicKeyCredential.isConditionalMediationAvailable()
      .then((available) => (available ? signIn("conditional") : undefined))
      .catch(() => {});
  }
})();
