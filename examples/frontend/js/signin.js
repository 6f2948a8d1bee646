// @ts-check
// Dev sign-in: any user id gets a token from the dev server's /dev/token.
// A real platform signs its users in with its own identity provider here
// and passes that provider's JWT to the API.

import * as api from "./api.js";
import config from "./config.js";
import { safeNext } from "./redirect.js";
import { handleError } from "./view.js";

const form = /** @type {HTMLFormElement} */ (document.getElementById("signin"));
const user = /** @type {HTMLInputElement} */ (document.querySelector("[data-testid=dev-user]"));
const email = /** @type {HTMLInputElement} */ (document.getElementById("email"));
const submit = /** @type {HTMLButtonElement} */ (document.querySelector("[data-testid=dev-signin]"));

// Only paths of this site: never send the user to another origin.
function next() {
  return safeNext(new URLSearchParams(location.search).get("next"), location.origin, config.onboardingPath);
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const sub = user.value.trim();
  if (!sub) return;
  submit.disabled = true;
  try {
    api.setToken(await api.devSignIn(sub, email.value.trim() || `${sub}@example.com`));
    location.assign(next());
  } catch (e) {
    handleError(e);
    submit.disabled = false;
  }
});
