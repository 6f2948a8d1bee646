// @ts-check
// The return page (FRONTEND_RETURN_PATH), where Stripe sends users when they
// leave onboarding: refreshAfterStripe re-reads the account and polls.

import { refreshAfterStripe, requireSignIn, takeStatusBeforeStripe } from "./view.js";

const panel = /** @type {HTMLElement} */ (document.getElementById("account"));

if (requireSignIn()) refreshAfterStripe(panel, takeStatusBeforeStripe());
