// Local Stripe simulator — not Stripe. A stand-in for Stripe's Connect.js
// (https://connect-js.stripe.com/v1.0/connect.js) that the simulator serves
// at /connect-js/v1.0/connect.js. It implements the script's side of the
// @stripe/connect-js loader contract, for the account-onboarding component
// only:
//   window.StripeConnect.init({publishableKey, fetchClientSecret, appearance})
//     returns an instance whose `connect` the loader hands to each element;
//   <stripe-connect-account-onboarding> has setConnector(connect) and the
//     setOnExitInternalOnly / setOnLoadErrorInternalOnly methods behind the
//     loader's setOnExit / setOnLoadError.
// Unlike Stripe's, it renders in the page's own DOM (no iframe), so browser
// tests can drive it, with the hosted onboarding page's outcome buttons.
(function () {
  "use strict";
  if (window.StripeConnect && typeof window.StripeConnect.init === "function") return;

  const script = /** @type {HTMLScriptElement | null} */ (document.currentScript);
  // The simulator's stand-in endpoints live beside this script.
  const base = new URL(".", script ? script.src : location.href).href;
  const TAG = "stripe-connect-account-onboarding";

  /** @param {string} type @param {string} message */
  function loadError(type, message) {
    const e = new Error(message);
    // @ts-ignore: the shape of the loader's LoadError.error
    e.type = type;
    return e;
  }

  function init(params) {
    if (!params || typeof params.fetchClientSecret !== "function") {
      throw new Error("StripeConnect.init needs fetchClientSecret");
    }
    const eager = params.metaOptions && params.metaOptions.eagerClientSecretPromise;
    let secret = eager || null;
    const connect = {
      // The client secret of this instance: fetched once, as Connect.js
      // does when it initialises; a new instance fetches a new one.
      clientSecret() {
        if (!secret) secret = Promise.resolve().then(() => params.fetchClientSecret());
        return secret;
      },
      // POSTs to a stand-in endpoint. An unknown, expired or disconnected
      // account's secret answers 401: the load error.
      async post(action, fields) {
        let value;
        try {
          value = await connect.clientSecret();
        } catch (e) {
          throw loadError("api_connection_error", "fetchClientSecret failed: " + (e && e.message ? e.message : e));
        }
        if (typeof value !== "string" || value === "") {
          throw loadError("invalid_request_error", "fetchClientSecret returned no client secret");
        }
        let resp;
        try {
          resp = await fetch(base + "account_sessions/" + action, {
            method: "POST",
            body: new URLSearchParams(Object.assign({ client_secret: value }, fields)),
            credentials: "omit",
          });
        } catch {
          throw loadError("api_connection_error", "The local Stripe simulator could not be reached.");
        }
        const data = await resp.json().catch(() => ({}));
        if (resp.status === 401) throw loadError("authentication_error", (data.error && data.error.message) || "Invalid client secret");
        if (!resp.ok) throw loadError("invalid_request_error", (data.error && data.error.message) || "Request failed");
        return data;
      },
    };
    return { connect, update() {}, logout: () => Promise.resolve() };
  }

  /** @param {string} tag @param {Record<string, string>} props @param {(Node|string)[]} children */
  function h(tag, props, children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) el.setAttribute(k, v);
    el.append(...(children || []));
    return el;
  }

  const OUTCOMES = [
    ["complete", "sim-complete", "Complete onboarding"],
    ["restricted", "sim-restricted", "Submit with something due (due soon)"],
    ["pending", "sim-pending", "Submit, verification pending"],
    ["reject", "sim-reject", "Stripe rejects the account"],
    ["leave", "sim-leave", "Leave without submitting"],
  ];

  class AccountOnboarding extends HTMLElement {
    constructor() {
      super();
      this.connector = null;
      this.onExit = undefined;
      this.onLoadError = undefined;
    }
    setOnExitInternalOnly(listener) { this.onExit = listener; }
    setOnLoadErrorInternalOnly(listener) { this.onLoadError = listener; }
    setConnector(connector) {
      this.connector = connector;
      if (this.isConnected) this.load();
    }
    connectedCallback() {
      if (this.connector && !this.loaded) this.load();
    }

    fail(error) {
      this.replaceChildren(banner(), h("p", { "data-testid": "sim-embedded-error", role: "alert" }, [error.message]));
      if (this.onLoadError) {
        this.onLoadError({ error: { type: error.type || "api_error", message: error.message }, elementTagName: TAG });
      }
    }

    async load() {
      this.loaded = true;
      this.replaceChildren(banner(), h("p", {}, ["Loading…"]));
      let data;
      try {
        data = await this.connector.post("claim", {});
      } catch (e) {
        this.fail(e);
        return;
      }
      const form = h("form", { "data-testid": "sim-embedded-onboarding" }, [
        h("p", {}, [`Account ${data.account}. At Stripe this is a series of forms; here you choose how onboarding ends.`]),
      ]);
      if (data.currently_due && data.currently_due.length > 0) {
        form.append(h("p", {}, ["Stripe still needs: " + data.currently_due.join(", ")]));
      }
      for (const [outcome, testid, label] of OUTCOMES) {
        const b = h("button", { type: "button", "data-testid": testid, value: outcome }, [label]);
        b.style.margin = "0.25rem 0.5rem 0.25rem 0";
        b.addEventListener("click", () => this.choose(outcome, form));
        form.append(b);
      }
      this.replaceChildren(banner(), form);
    }

    async choose(outcome, form) {
      for (const b of form.querySelectorAll("button")) b.disabled = true;
      try {
        await this.connector.post("outcome", { outcome });
      } catch (e) {
        this.fail(e);
        return;
      }
      this.replaceChildren(banner(), h("p", { "data-testid": "sim-embedded-done" }, ["Done: " + outcome]));
      if (this.onExit) this.onExit();
    }
  }

  function banner() {
    const b = h("p", { "data-sim-banner": "", role: "note" }, ["Local Stripe simulator — not Stripe"]);
    b.style.background = "#fff3cd";
    b.style.padding = "0.4rem 0.6rem";
    b.style.fontWeight = "bold";
    return b;
  }

  if (!customElements.get(TAG)) customElements.define(TAG, AccountOnboarding);
  window.StripeConnect = Object.assign(window.StripeConnect || {}, { init });
})();
