// A dependency-free client of the auth API for a page on another origin.
//
// - The access token lives only in this closure: never in localStorage, sessionStorage or a
//   cookie, so a script injected elsewhere cannot read it from storage.
// - The refresh token is an HttpOnly __Host- cookie that JavaScript cannot read; the API sets
//   it on sign-in, refresh and password change (REFRESH_TOKEN_TRANSPORT=cookie or both).
// - Requests that the cookie authenticates carry X-Requested-With (the API's CSRF check) and
//   credentials: "include" (so the browser sends and accepts the cookie cross-origin).
// - Since the page cannot see that cookie, it keeps a hint (no secret) in localStorage that a
//   session may exist, and only then asks /refresh at load: a signed-out visit sends nothing.
"use strict";

(() => {
  const api = String(window.AUTH_API_URL || "").replace(/\/+$/, "");
  let accessToken = null;
  let refreshTimer = null;
  // The password step's mfa_token, until the code step uses it (never stored).
  let mfaToken = null;

  const $ = (id) => document.getElementById(id);
  const HINT = "auth-example.session-hint";
  const hint = {
    get: () => {
      try {
        return localStorage.getItem(HINT) === "1";
      } catch (_) {
        return true; // storage off: ask, as before
      }
    },
    set: (on) => {
      try {
        if (on) localStorage.setItem(HINT, "1");
        else localStorage.removeItem(HINT);
      } catch (_) {
        // storage off: the next load asks /refresh anyway
      }
    },
  };

  function show(section) {
    $("loading").hidden = true;
    $("signed-out").hidden = section !== "signed-out";
    $("signed-in").hidden = section !== "signed-in";
    $("reset").hidden = section !== "reset";
  }

  function say(kind, text, details) {
    const box = $("message");
    box.className = kind;
    box.textContent = text;
    if (details && details.length) {
      const list = document.createElement("ul");
      for (const line of details) {
        const item = document.createElement("li");
        item.textContent = line;
        list.appendChild(item);
      }
      box.appendChild(list);
    }
    box.hidden = false;
  }

  function quiet() {
    $("message").hidden = true;
  }

  // Calls the API. Resolves to { status, body, headers }; a problem+json answer is turned
  // into an Error whose message and details come from the API (title, detail, errors).
  async function call(method, path, { body, bearer, cookie } = {}) {
    const headers = { "X-Requested-With": "fetch" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (bearer) headers.Authorization = `Bearer ${accessToken}`;
    let response;
    try {
      response = await fetch(api + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: cookie ? "include" : "omit",
        mode: "cors",
      });
    } catch (err) {
      throw Object.assign(new Error("The auth API cannot be reached (network or CORS)."), {
        status: 0,
        details: [],
      });
    }
    const type = response.headers.get("content-type") || "";
    const parsed = type.includes("json") ? await response.json().catch(() => null) : null;
    if (response.ok) return { status: response.status, body: parsed };
    const details = [];
    if (parsed && Array.isArray(parsed.errors)) {
      for (const e of parsed.errors) details.push(`${e.field}: ${e.message}`);
    }
    const retry = response.headers.get("retry-after");
    if (retry) details.push(`You can try again in ${retry} s.`);
    const text = parsed && (parsed.detail || parsed.message || parsed.title);
    throw Object.assign(new Error(text || `The API answered ${response.status}.`), {
      status: response.status,
      details,
    });
  }

  function scheduleRefresh(expiresIn) {
    clearTimeout(refreshTimer);
    // Well before expiry: at 80% of the lifetime, and at least 30 s early for long ones.
    const seconds = Math.max(1, Math.min(expiresIn - 30, expiresIn * 0.8));
    refreshTimer = setTimeout(() => {
      refresh().catch((err) => {
        signedOut();
        say("error", `Your session ended: ${err.message}`);
      });
    }, seconds * 1000);
    const at = new Date(Date.now() + expiresIn * 1000);
    $("token-status").textContent =
      `valid until ${at.toLocaleTimeString()}, renewed silently before then`;
  }

  function accept(tokens) {
    accessToken = tokens.access_token;
    hint.set(true);
    scheduleRefresh(tokens.expires_in);
  }

  async function refresh() {
    const { body } = await call("POST", "/refresh", { cookie: true });
    accept(body);
    return body;
  }

  async function showMe() {
    const { body: me } = await call("GET", "/me", { bearer: true });
    $("me-email").textContent = me.email;
    $("me-id").textContent = me.user_id;
    $("me-roles").textContent = (me.roles || []).join(", ");
    $("me-verified").textContent = me.email_verified ? "yes" : "not yet";
    $("me-mfa").textContent = me.mfa_enabled
      ? `on (${me.recovery_codes_left} recovery codes left)`
      : "off";
    $("mfa-enroll-form").hidden = me.mfa_enabled;
    await listPasskeys();
    // A two-factor account's password change needs a current code as well.
    $("password-code-label").hidden = !me.mfa_enabled;
    show("signed-in");
  }

  // Passkeys: WebAuthn Level 3's JSON helpers turn the API's options into what the browser
  // takes, and its answer back into JSON. Where they are missing, no passkey button shows.
  const webauthn =
    window.PublicKeyCredential &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";
  let passkeyAutofill = null;

  async function passkeyAssertion(optionsPath, body, mediation) {
    const { body: start } = await call("POST", optionsPath, { body });
    const controller = new AbortController();
    if (mediation === "conditional") passkeyAutofill = controller;
    const credential = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(start.options),
      mediation,
      signal: controller.signal,
    });
    return { challenge_id: start.challenge_id, credential: credential.toJSON() };
  }

  async function signInWithPasskey(mediation) {
    const answer = await passkeyAssertion("/passkeys/login/options", {}, mediation);
    const { body } = await call("POST", "/passkeys/login", { body: answer, cookie: true });
    accept(body);
    await showMe();
  }

  // Autofill starts when the email field is first focused, not at load: a signed-out visit
  // asks the API nothing.
  function offerPasskeyAutofill() {
    if (passkeyAutofill || !webauthn ||
        typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") {
      return;
    }
    PublicKeyCredential.isConditionalMediationAvailable()
      .then((available) => (available ? signInWithPasskey("conditional") : undefined))
      .catch(() => {});
  }

  function stopPasskeyAutofill() {
    if (passkeyAutofill) passkeyAutofill.abort();
    passkeyAutofill = null;
  }

  async function listPasskeys() {
    const section = $("passkeys");
    try {
      const { body } = await call("GET", "/passkeys", { bearer: true });
      const list = $("passkey-list");
      list.replaceChildren(
        ...body.passkeys.map((passkey) => {
          const item = document.createElement("li");
          const used = passkey.last_used_at
            ? `last used ${new Date(passkey.last_used_at).toLocaleString()}`
            : "never used";
          item.textContent = `${passkey.name} (${passkey.synced ? "synced" : "this device"}, ${used}) `;
          const remove = document.createElement("button");
          remove.type = "button";
          remove.textContent = "Remove";
          remove.dataset.passkey = passkey.id;
          remove.addEventListener("click", () => {
            const password = $("passkey-password").value;
            if (!password) {
              say("error", "Enter your password above to remove a passkey.");
              return;
            }
            busy(remove, async () => {
              await call("DELETE", `/passkeys/${passkey.id}`, { body: { password }, bearer: true });
              $("passkey-password").value = "";
              await listPasskeys();
              say("info", "Passkey removed.");
            });
          });
          item.appendChild(remove);
          return item;
        }),
      );
      section.hidden = !webauthn;
    } catch (_) {
      section.hidden = true; // passkeys are off on this API
    }
  }

  $("passkey-add-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("passkey-add"), async () => {
      const { body: start } = await call("POST", "/passkeys/register/options", {
        body: { password: $("passkey-password").value },
        bearer: true,
      });
      const created = await navigator.credentials.create({
        publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(start.options),
      });
      const added = { challenge_id: start.challenge_id, credential: created.toJSON() };
      if ($("passkey-name").value.trim()) added.name = $("passkey-name").value.trim();
      await call("POST", "/passkeys/register", { body: added, bearer: true });
      $("passkey-password").value = "";
      $("passkey-name").value = "";
      await listPasskeys();
      say("info", "Passkey added: you can sign in with it now.");
    });
  });

  $("passkey-sign-in").addEventListener("click", () => {
    stopPasskeyAutofill();
    busy($("passkey-sign-in"), () => signInWithPasskey("optional"));
  });

  $("mfa-passkey").addEventListener("click", () => {
    busy($("mfa-passkey"), async () => {
      const answer = await passkeyAssertion("/login/mfa/passkey/options", { mfa_token: mfaToken });
      const { body } = await call("POST", "/login/mfa", {
        body: { mfa_token: mfaToken, ...answer },
        cookie: true,
      });
      mfaToken = null;
      $("mfa-form").hidden = true;
      $("sign-in-form").hidden = false;
      accept(body);
      await showMe();
    });
  });

  function signedOut() {
    accessToken = null;
    hint.set(false);
    mfaToken = null;
    clearTimeout(refreshTimer);
    $("mfa-form").hidden = true;
    $("sign-in-form").hidden = false;
    $("mfa-confirm-form").hidden = true;
    $("recovery").hidden = true;
    $("passkey-sign-in").hidden = !webauthn;
    show("signed-out");
  }
  $("sign-in-email").addEventListener("focus", offerPasskeyAutofill);

  async function busy(button, work) {
    stopPasskeyAutofill();
    button.disabled = true;
    quiet();
    try {
      await work();
    } catch (err) {
      say("error", err.message, err.details);
    } finally {
      button.disabled = false;
    }
  }

  async function signIn(email, password) {
    const { body } = await call("POST", "/login", { body: { email, password }, cookie: true });
    if (body.mfa_required) {
      // The password was right; the code comes next, within mfa_token_expires_in seconds.
      mfaToken = body.mfa_token;
      stopPasskeyAutofill();
      $("mfa-passkey").hidden = !(webauthn && (body.methods || []).includes("webauthn"));
      $("mfa-code").required = (body.methods || ["totp"]).includes("totp");
      $("sign-in-form").hidden = true;
      $("mfa-form").hidden = false;
      $("mfa-code").focus();
      return;
    }
    accept(body);
    await showMe();
  }

  $("mfa-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("mfa-submit"), async () => {
      const { body } = await call("POST", "/login/mfa", {
        body: { mfa_token: mfaToken, code: $("mfa-code").value },
        cookie: true,
      });
      mfaToken = null;
      $("mfa-code").value = "";
      $("mfa-form").hidden = true;
      $("sign-in-form").hidden = false;
      accept(body);
      await showMe();
    });
  });

  $("mfa-enroll-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("mfa-enroll"), async () => {
      const { body } = await call("POST", "/mfa/totp/enroll", {
        body: { password: $("mfa-enroll-password").value },
        bearer: true,
      });
      $("mfa-enroll-password").value = "";
      $("mfa-qr").src = body.qr_code;
      $("mfa-secret").textContent = body.secret;
      $("mfa-enroll-form").hidden = true;
      $("mfa-confirm-form").hidden = false;
    });
  });

  $("mfa-confirm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("mfa-confirm"), async () => {
      const { body } = await call("POST", "/mfa/totp/confirm", {
        body: { code: $("mfa-confirm-code").value },
        bearer: true,
        cookie: true,
      });
      accept(body);
      $("mfa-confirm-code").value = "";
      $("mfa-confirm-form").hidden = true;
      $("mfa-secret").textContent = "";
      $("mfa-qr").removeAttribute("src");
      const list = $("recovery-codes");
      list.replaceChildren(
        ...body.recovery_codes.map((code) => {
          const item = document.createElement("li");
          item.textContent = code;
          return item;
        }),
      );
      $("recovery").hidden = false;
      await showMe();
      say("info", "Two-factor sign-in is on. Every other session was signed out.");
    });
  });

  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("sign-in"), async () => {
      await signIn($("sign-in-email").value, $("sign-in-password").value);
      $("sign-in-password").value = "";
    });
  });

  $("register-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("register"), async () => {
      const email = $("register-email").value;
      const password = $("register-password").value;
      await call("POST", "/register", { body: { email, password } });
      await signIn(email, password);
      $("register-password").value = "";
      say("info", "Account created. A verification link is on its way if mail is set up.");
    });
  });

  $("password-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("change-password"), async () => {
      const change = {
        current_password: $("current-password").value,
        new_password: $("new-password").value,
      };
      if ($("password-code").value) change.code = $("password-code").value;
      const { body } = await call("POST", "/password", {
        body: change,
        bearer: true,
        cookie: true,
      });
      accept(body);
      $("current-password").value = "";
      $("new-password").value = "";
      $("password-code").value = "";
      say("info", "Password changed. Every other session was signed out.");
    });
  });

  $("sign-out").addEventListener("click", () => {
    busy($("sign-out"), async () => {
      await call("POST", "/logout", { cookie: true });
      signedOut();
      say("info", "Signed out.");
    });
  });

  $("forgot-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("forgot"), async () => {
      await call("POST", "/password/forgot", { body: { email: $("forgot-email").value } });
      say("info", "If an account has this address, a reset link is on its way.");
    });
  });

  // A mailed link opens /verify-email#token=… or /reset-password#token=…: the token travels in
  // the fragment, which the browser never sends to a server (no log, proxy or Referer sees
  // it). It is read once and taken out of the address bar and history at once.
  const linkToken = (/(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash) || [])[1] || null;
  // A sign-in at another provider (GET {api}/oauth2/federate/{provider}) ends here with a
  // one-time code in the fragment: exchanged once, within a minute, for the usual tokens.
  const federatedCode = (/(?:^#|&)code=([A-Za-z0-9_-]+)/.exec(location.hash) || [])[1] || null;
  const screen = location.pathname.replace(/\/+$/, "").split("/").pop();
  if (linkToken || federatedCode) history.replaceState(null, "", "/");
  let resetToken = screen === "reset-password" ? linkToken : null;

  $("reset-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("reset-submit"), async () => {
      await call("POST", "/password/reset", {
        body: { token: resetToken, new_password: $("reset-password").value },
      });
      resetToken = null;
      $("reset-password").value = "";
      signedOut();
      say("info", "Your password is changed, and every session was signed out. Sign in with it.");
    });
  });

  // On load (and reload): a link's screen first; then the cookie, if any, brings the
  // session back.
  $("api-url").textContent = api || "(not set: edit config.js)";
  async function start() {
    if (resetToken) {
      show("reset");
      $("reset-password").focus();
      return;
    }
    if (federatedCode) {
      try {
        const { body } = await call("POST", "/federation/exchange", {
          body: { code: federatedCode },
          cookie: true,
        });
        accept(body);
        await showMe();
      } catch (err) {
        signedOut();
        say("error", err.message, err.details);
      }
      return;
    }
    if (screen === "verify-email" && linkToken) {
      try {
        await call("POST", "/email/verify", { body: { token: linkToken } });
        say("info", "Your email address is verified.");
      } catch (err) {
        say("error", err.message, err.details);
      }
    }
    if (!hint.get()) {
      signedOut();
      return;
    }
    await refresh()
      .then(showMe)
      .catch(() => signedOut());
  }
  start();
})();
