// @ts-check
// The one place the console gets a staff token. In `make dev` that is the
// dev server's /dev/token in the staff group; a platform replaces this
// function with its own identity provider's sign-in (Cognito, Okta, …),
// returning the JWT whose groups claim lists the staff group.

import * as api from "./api.js";

/**
 * @param {string} user  what the sign-in form holds
 * @returns {Promise<string>} a bearer token for the staff API
 */
export function signIn(user) {
  return api.devStaffToken(user);
}
