// @ts-check
// What the onboarding pages share: the account panel with the buttons that
// fit its status, plain words for Stripe's requirement names, and polling.

import * as api from "./api.js";
import config from "./config.js";
import { loadConnectAndInitialize } from "./connect-loader.js";

/** @typedef {import("./api.js").Account} Account */

/** Statuses that change without the user doing anything (Stripe is working). */
export const CHANGING = new Set(["pending_verification"]);

// The status the account had when the user left for Stripe. Back on the
// return page, the same status may only mean the news is still on its way
// (a webhook, or a re-read the API answers from its store), so the page
// keeps asking for a while.
const BEFORE_STRIPE = "platform.statusBeforeStripe";

/** @returns {string | null} the status before Stripe, once */
export function takeStatusBeforeStripe() {
  const v = sessionStorage.getItem(BEFORE_STRIPE);
  sessionStorage.removeItem(BEFORE_STRIPE);
  return v;
}

/** @type {Record<string, string>} */
const SENTENCES = {
  onboarding: "You have not finished setting up payouts yet.",
  pending_verification: "Stripe is verifying your details. This page updates by itself.",
  restricted: "Payouts are paused until you provide what is listed below.",
  restricted_soon: "Payouts work, but Stripe needs what is listed below to keep them running.",
  active: "Payouts are set up. You can see your balance and payouts in the Express Dashboard.",
  rejected: "Stripe could not accept this account, so it cannot be set up for payouts. Please contact support.",
  deauthorized: "This payout account is no longer connected to the platform. Please contact support.",
};

// Stripe's requirement names, in words a seller understands. Longer
// prefixes first; the first match wins.
/** @type {[string, string][]} */
const WORDS = [
  ["external_account", "a bank account for payouts"],
  ["tos_acceptance.", "accepting Stripe's terms of service"],
  ["business_type", "the type of your business"],
  ["business_profile.url", "your website (or a description of what you sell)"],
  ["business_profile.product_description", "a description of what you sell"],
  ["business_profile.mcc", "your business category"],
  ["business_profile.", "details of your business"],
  ["individual.verification.", "an identity document"],
  ["individual.dob.", "your date of birth"],
  ["individual.address.", "your address"],
  ["individual.first_name", "your name"],
  ["individual.last_name", "your name"],
  ["individual.ssn_last_4", "the last 4 digits of your SSN"],
  ["individual.id_number", "your ID number"],
  ["individual.email", "your email address"],
  ["individual.phone", "your phone number"],
  ["individual.", "details about you"],
  ["representative.verification.", "an identity document of your company's representative"],
  ["representative.", "details of your company's representative"],
  ["owners", "your company's owners"],
  ["directors", "your company's directors"],
  ["company.tax_id", "your company's tax ID"],
  ["company.", "details of your company"],
];

/**
 * @param {string} field Stripe's requirement name, e.g. individual.dob.day
 * @returns {string}
 */
export function inWords(field) {
  const hit = WORDS.find(([prefix]) => field === prefix || field.startsWith(prefix));
  return hit ? hit[1] : field.replaceAll(/[._]/g, " ");
}

/**
 * One list item per thing due, in words, each with Stripe's reason when it
 * is due again (requirements.errors: an expired document, a name that does
 * not match). Reasons come from Stripe and go in as text, never as HTML.
 * @param {string[]} fields Stripe's requirement names
 * @param {import("./api.js").RequirementError[]} [errors]
 * @returns {HTMLElement[]}
 */
function dueItems(fields, errors = []) {
  /** @type {Map<string, Set<string>>} words -> reasons */
  const items = new Map();
  for (const field of fields) {
    const words = inWords(field);
    const reasons = items.get(words) || new Set();
    for (const e of errors) if (e.requirement === field && e.reason) reasons.add(e.reason);
    items.set(words, reasons);
  }
  return [...items].map(([words, reasons]) =>
    h("li", {}, reasons.size === 0 ? [words] : [words, h("span", { class: "reason", "data-testid": "requirement-reason" }, [` (${[...reasons].join(" ")})`])]),
  );
}

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 */
export function h(tag, attrs = {}, children = []) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/** @param {string} message */
export function showError(message) {
  const el = /** @type {HTMLElement} */ (document.getElementById("error"));
  el.textContent = message;
  el.hidden = !message;
}

/**
 * Runs a button's action with the button disabled, and shows what failed.
 * @param {HTMLButtonElement} button
 * @param {() => Promise<void>} action
 */
async function busy(button, action) {
  button.disabled = true;
  showError("");
  try {
    await action();
  } catch (e) {
    handleError(e);
    button.disabled = false;
  }
}

/** @param {unknown} e */
export function handleError(e) {
  if (e instanceof api.ApiError) {
    if (e.status === 401) {
      api.signOut();
      goToSignIn();
      return;
    }
    /** @type {Record<string, string>} */
    const words = {
      rate_limited: "Too many attempts in a short time. Wait a minute, then try again.",
      stripe_unavailable: "Stripe could not be reached just now. Try again in a moment.",
      onboarding_incomplete: "Finish setting up payouts first: the dashboard opens once your details are submitted.",
      account_rejected: SENTENCES.rejected,
      account_deauthorized: SENTENCES.deauthorized,
      network_error: "The platform could not be reached. Check your connection and try again.",
    };
    showError(words[e.code] || e.message);
    return;
  }
  showError("Something went wrong. Please try again.");
}

export function goToSignIn() {
  const next = location.pathname + location.search;
  location.assign(`${config.signInPath}?next=${encodeURIComponent(next)}`);
}

/** Sends the user to sign-in unless a token is stored; shows who is signed in. */
export function requireSignIn() {
  const token = api.getToken();
  if (!token) {
    goToSignIn();
    return false;
  }
  const who = document.getElementById("who");
  if (who) {
    try {
      const claims = JSON.parse(atob(token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/")));
      who.textContent = `Signed in as ${claims.sub}`;
    } catch {
      who.textContent = "Signed in";
    }
  }
  const out = document.getElementById("sign-out");
  if (out) {
    out.hidden = false;
    out.addEventListener("click", () => {
      api.signOut();
      location.assign(config.signInPath);
    });
  }
  return true;
}

/** Creates the account if needed. */
async function ensureAccount() {
  for (let attempt = 0; ; attempt++) {
    try {
      await api.createAccount({});
      return;
    } catch (e) {
      // Another tab is creating it right now: wait for that one.
      if (e instanceof api.ApiError && e.code === "creation_in_progress" && attempt < 5) {
        await sleep(1000);
        continue;
      }
      throw e;
    }
  }
}

/** Creates the account if needed, then goes to a fresh onboarding link. */
async function startOnboarding() {
  await ensureAccount();
  await continueOnboarding("none");
}

/**
 * Where the embedded component goes: [data-testid=embedded-onboarding],
 * after the account panel, outside it so re-rendering the panel (polling)
 * leaves the component alone.
 * @param {HTMLElement} panel
 */
function embeddedContainer(panel) {
  let box = /** @type {HTMLElement | null} */ (document.querySelector('[data-testid="embedded-onboarding"]'));
  if (!box) {
    box = h("section", { "data-testid": "embedded-onboarding", "aria-live": "polite" });
    panel.after(box);
  }
  return box;
}

/**
 * Embedded onboarding: Stripe's account-onboarding component on this page,
 * authorised by an Account Session. The tab never leaves this origin.
 * @param {HTMLElement} panel
 * @param {string} status the account's status now ("none": no account yet)
 */
async function startEmbeddedOnboarding(panel, status) {
  if (status === "none") await ensureAccount();
  const box = embeddedContainer(panel);
  // The first session gives the publishable key Connect.js needs; its
  // secret is the first fetchClientSecret answers. Later calls (Connect.js
  // asks again when it needs a fresh one) fetch new sessions.
  const first = await api.createOnboardingSession();
  /** @type {string | null} */
  let unused = first.client_secret;
  const connect = loadConnectAndInitialize({
    publishableKey: first.publishable_key,
    fetchClientSecret: async () => {
      const secret = unused;
      unused = null;
      return secret || (await api.createOnboardingSession()).client_secret;
    },
    appearance: { variables: { colorPrimary: "#2f80ed" } },
  });
  const onboarding = connect.create("account-onboarding");
  onboarding.setOnExit(() => {
    box.replaceChildren();
    refreshAfterStripe(panel, status);
  });
  onboarding.setOnLoadError((/** @type {{error: {type: string, message: string}}} */ { error }) => {
    const retry = button("embedded-retry", "Try again", () => startEmbeddedOnboarding(panel, status));
    box.replaceChildren(
      h("div", { role: "alert", "data-testid": "embedded-load-error", "data-error-type": error.type }, [
        "The setup form could not be loaded (it may have expired). Try again to open a fresh one.",
      ]),
      h("div", { class: "actions" }, [retry]),
    );
  });
  box.replaceChildren(onboarding);
}

/**
 * What the return page and the embedded component's exit do when the user
 * comes back: leaving does not mean finishing, so read the account from
 * Stripe, then poll while its status is still changing, because webhooks
 * can lag behind the browser.
 * @param {HTMLElement} panel
 * @param {string} before the status before the user went through onboarding
 */
export async function refreshAfterStripe(panel, before) {
  // Still changing: Stripe is verifying, or the status is what it was before
  // the visit to Stripe (the news may be on its way; if the user really
  // changed nothing, ten seconds of polling cost nothing).
  const settling = (/** @type {string} */ st) =>
    CHANGING.has(st) || st === before || (before === "none" && st === "onboarding");
  let account;
  try {
    account = await api.getAccount({ refresh: true });
  } catch (e) {
    // Stripe unreachable or the per-user limit hit: what webhooks stored
    // is the best we have.
    try {
      account = await api.getAccount();
    } catch (e2) {
      panel.replaceChildren();
      handleError(e2);
      return;
    }
    handleError(e);
  }
  renderAccount(panel, account);
  account = await pollWhileChanging(panel, account, { interval: 1000, within: 10 * 1000, changing: settling });
  // Still verifying after 10 s: keep watching, more slowly.
  await pollWhileChanging(panel, account, { interval: 3000, within: 5 * 60 * 1000 });
}

/** @param {string} status the account's status now */
async function continueOnboarding(status) {
  const link = await api.createOnboardingLink();
  sessionStorage.setItem(BEFORE_STRIPE, status);
  location.assign(link.url); // single use and short-lived: go now
}

async function openDashboard() {
  const link = await api.createDashboardLink();
  location.assign(link.url);
}

/**
 * @param {string} testid
 * @param {string} label
 * @param {() => Promise<void>} action
 * @param {string} [kind]
 */
function button(testid, label, action, kind = "primary") {
  const b = /** @type {HTMLButtonElement} */ (h("button", { type: "button", "data-testid": testid, class: kind }, [label]));
  b.addEventListener("click", () => busy(b, action));
  return b;
}

/**
 * Shown wherever start-onboarding or continue-onboarding is.
 * @param {HTMLElement} el the account panel
 * @param {string} status
 */
function embeddedButton(el, status) {
  return button("start-embedded-onboarding", "Continue on this page", () => startEmbeddedOnboarding(el, status), "secondary");
}

/**
 * Renders the account (or its absence) with the buttons that fit.
 * @param {HTMLElement} el
 * @param {Account | null} account
 */
export function renderAccount(el, account) {
  if (!account) {
    el.replaceChildren(
      h("p", {}, ["To get paid, set up payouts with our payments partner, Stripe. It takes a few minutes."]),
      h("div", { class: "actions" }, [
        button("start-onboarding", "Set up payouts", startOnboarding),
        button("start-embedded-onboarding", "Set up payouts on this page", () => startEmbeddedOnboarding(el, "none"), "secondary"),
      ]),
    );
    return;
  }
  const r = account.requirements;
  const due = dueItems([...r.past_due, ...r.currently_due], r.errors);
  const f = account.future_requirements;
  const futureDue = f ? dueItems([...f.past_due, ...f.currently_due], f.errors) : [];
  const parts = [
    h("p", { class: "status-line" }, [
      "Status: ",
      h("strong", { "data-testid": "account-status", "data-status": account.status, class: `status ${account.status}` }, [account.status]),
    ]),
    h("p", {}, [SENTENCES[account.status] || ""]),
  ];
  if (due.length > 0 && account.status !== "rejected" && account.status !== "deauthorized") {
    const deadline = r.current_deadline ? ` by ${new Date(r.current_deadline).toLocaleDateString()}` : "";
    parts.push(
      h("p", {}, [r.past_due.length > 0 ? "Stripe needs, now:" : `Stripe needs${deadline}:`]),
      h("ul", { "data-testid": "requirements-due" }, due),
    );
  }
  if (futureDue.length > 0 && account.status !== "rejected" && account.status !== "deauthorized" && f) {
    const deadline = f.current_deadline ? ` by ${new Date(f.current_deadline).toLocaleDateString()}` : " soon";
    parts.push(
      h("p", {}, [`After a change in the rules, Stripe will need${deadline}:`]),
      h("ul", { "data-testid": "future-requirements-due" }, futureDue),
    );
  }
  const actions = [];
  switch (account.status) {
    case "onboarding":
      actions.push(button("continue-onboarding", "Continue setting up payouts", () => continueOnboarding(account.status)));
      actions.push(embeddedButton(el, account.status));
      break;
    case "restricted":
    case "restricted_soon":
      actions.push(button("continue-onboarding", "Provide the missing information", () => continueOnboarding(account.status)));
      actions.push(embeddedButton(el, account.status));
      actions.push(button("open-dashboard", "Open the Express Dashboard", openDashboard, "secondary"));
      break;
    case "pending_verification":
    case "active":
      actions.push(button("open-dashboard", "Open the Express Dashboard", openDashboard));
      break;
    // rejected, deauthorized: nothing the user can do here.
  }
  if (actions.length > 0) parts.push(h("div", { class: "actions" }, actions));
  parts.push(h("p", { class: "muted" }, [`Account ${account.account_id} · ${account.country} · updated ${new Date(account.updated_at).toLocaleString()}`]));
  el.replaceChildren(...parts);
}

/** @param {number} ms */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Re-reads the account every interval while `changing` says its status is
 * still changing, for at most `within` ms, rendering each answer that
 * differs. Returns the last one.
 * @param {HTMLElement} el
 * @param {Account} account
 * @param {{interval: number, within: number, changing?: (status: string) => boolean}} timing
 */
export async function pollWhileChanging(el, account, { interval, within, changing = (st) => CHANGING.has(st) }) {
  const until = Date.now() + within;
  while (changing(account.status) && Date.now() < until) {
    await sleep(interval);
    try {
      const next = await api.getAccount();
      if (JSON.stringify(next) !== JSON.stringify(account)) renderAccount(el, next);
      account = next;
    } catch (e) {
      handleError(e);
      return account;
    }
  }
  return account;
}
