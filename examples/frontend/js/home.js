// @ts-check
// The onboarding home (FRONTEND_ONBOARDING_PATH): the account's status, what
// is due, the buttons that fit; and, with ?error=, what went wrong on the way
// back from Stripe (the API's refresh route sends users here).

import * as api from "./api.js";
import { h, handleError, pollWhileChanging, renderAccount, requireSignIn } from "./view.js";

/** @type {Record<string, {title: string, text: string, testid?: string}>} */
const NOTICES = {
  link_expired: {
    testid: "link-expired",
    title: "That setup link has expired",
    text: "Links to Stripe work once and only for a few minutes, and this one was used or is too old. Continue below to get a fresh one.",
  },
  stripe_unavailable: {
    title: "Stripe could not be reached",
    text: "We could not open Stripe for you just now. Your link still works: try again in a moment.",
  },
  rate_limited: {
    title: "Too many attempts",
    text: "You opened setup many times in a short while. Wait a minute, then continue below.",
  },
  account_unavailable: {
    title: "This account can no longer be set up",
    text: "Stripe rejected it, or it was disconnected from the platform. Please contact support.",
  },
};

const panel = /** @type {HTMLElement} */ (document.getElementById("account"));

function showNotice() {
  const code = new URLSearchParams(location.search).get("error");
  if (!code) return;
  const n = NOTICES[code] || { title: "Something went wrong", text: "Please try again." };
  const attrs = { class: "notice", "data-notice": code };
  if (n.testid) attrs["data-testid"] = n.testid;
  /** @type {HTMLElement} */ (document.getElementById("notice")).replaceChildren(
    h("div", attrs, [h("strong", {}, [n.title]), h("p", {}, [n.text])]),
  );
}

async function main() {
  showNotice();
  if (!requireSignIn()) return;
  let account = null;
  try {
    account = await api.getAccount();
  } catch (e) {
    if (!(e instanceof api.ApiError && e.status === 404)) {
      panel.replaceChildren();
      handleError(e);
      return;
    }
  }
  renderAccount(panel, account);
  if (account) await pollWhileChanging(panel, account, { interval: 3000, within: 5 * 60 * 1000 });
}

main();
