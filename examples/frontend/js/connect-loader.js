// @ts-check
// loadConnectAndInitialize, as @stripe/connect-js exports it, for a page
// without a build step: it adds the Connect.js script (config.connectJsUrl:
// Stripe's https://connect-js.stripe.com/v1.0/connect.js, or the local
// simulator's stand-in in `make dev`), then initialises it, and create()
// returns the component's element at once, wired when the script is ready.
// A platform with a bundler imports the same function from the package:
//   import { loadConnectAndInitialize } from "@stripe/connect-js";
// The script's side of the contract is the one the package uses:
// window.StripeConnect.init, elements named stripe-connect-<component>,
// setConnector and the <setter>InternalOnly methods.
// https://github.com/stripe/connect-js

import config from "./config.js";

/** @type {Promise<any> | null} */
let loading = null;

function loadScript() {
  if (loading) return loading;
  loading = new Promise((resolve, reject) => {
    const w = /** @type {any} */ (window);
    if (w.StripeConnect && typeof w.StripeConnect.init === "function") {
      resolve(w.StripeConnect);
      return;
    }
    const script = document.createElement("script");
    script.src = config.connectJsUrl;
    script.addEventListener("load", () =>
      w.StripeConnect && typeof w.StripeConnect.init === "function"
        ? resolve(w.StripeConnect)
        : reject(new Error("Connect.js did not load the necessary objects")),
    );
    script.addEventListener("error", () => {
      loading = null; // let a retry add it again
      script.remove();
      reject(new Error("Failed to load Connect.js"));
    });
    document.head.appendChild(script);
  });
  return loading;
}

const SETTERS = ["setOnExit", "setOnLoadError"];

/**
 * @param {{publishableKey: string, fetchClientSecret: () => Promise<string>, appearance?: object}} params
 */
export function loadConnectAndInitialize(params) {
  // Fetched at once, as the package does, while the script loads.
  const eagerClientSecretPromise = Promise.resolve().then(() => params.fetchClientSecret());
  eagerClientSecretPromise.catch(() => {}); // reported through the component's load error
  const instance = loadScript().then((sc) => sc.init({ ...params, metaOptions: { eagerClientSecretPromise } }));
  return {
    /** @param {string} component e.g. "account-onboarding" */
    create(component) {
      const tag = `stripe-connect-${component}`;
      const el = /** @type {any} */ (document.createElement(tag));
      /** @type {Record<string, any>} */
      const listeners = {};
      for (const m of SETTERS) {
        el[m] = (/** @type {unknown} */ value) => {
          listeners[m] = value;
          instance.then(() => el[`${m}InternalOnly`](value), () => {});
        };
      }
      // No script, no component: say so through the load-error callback.
      instance.catch((e) => {
        if (listeners.setOnLoadError) listeners.setOnLoadError({ error: { type: "api_connection_error", message: e.message }, elementTagName: tag });
      });
      instance.then((inst) => {
        if (!el.setConnector) {
          // Created before the script defined the element: upgrade it.
          customElements.upgrade(el);
        }
        el.setConnector(inst.connect);
      }, () => {});
      return el;
    },
  };
}
