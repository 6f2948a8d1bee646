// @ts-check
// The return page (FRONTEND_RETURN_PATH), where Stripe sends users when they
// leave onboarding. Leaving does not mean finishing: ask the API to re-read
// the account from Stripe, then poll a little while it is still changing,
// because webhooks can lag behind the browser.

import * as api from "./api.js";
import { CHANGING, handleError, pollWhileChanging, renderAccount, requireSignIn, takeStatusBeforeStripe } from "./view.js";

const panel = /** @type {HTMLElement} */ (document.getElementById("account"));

async function main() {
  if (!requireSignIn()) return;
  const before = takeStatusBeforeStripe();
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

main();
