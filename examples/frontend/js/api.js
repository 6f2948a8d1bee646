// @ts-check
// The platform API's calls, one function each, typed after openapi.yaml.
// This is the module to copy into your own app: it has no dependencies and
// keeps the caller's bearer token in sessionStorage (one sign-in per tab).

import config from "./config.js";

/**
 * @typedef {"onboarding" | "pending_verification" | "restricted" | "restricted_soon" |
 *           "active" | "rejected" | "deauthorized"} Status
 *
 * @typedef {object} Requirements
 * @property {string[]} currently_due
 * @property {string[]} eventually_due
 * @property {string[]} past_due
 * @property {string[]} pending_verification
 * @property {string | null} disabled_reason
 * @property {string | null} current_deadline  RFC 3339
 * @property {RequirementError[]} errors  why something is due again
 *
 * @typedef {object} RequirementError
 * @property {string} code  Stripe's code, e.g. verification_document_expired
 * @property {string} reason  Stripe's words for the seller: show as text
 * @property {string} requirement  the requirement it is about, as in currently_due
 *
 * @typedef {object} Account
 * @property {string} account_id
 * @property {Status} status
 * @property {boolean} details_submitted
 * @property {boolean} charges_enabled
 * @property {boolean} payouts_enabled
 * @property {string} country
 * @property {"full" | "recipient"} service_agreement
 * @property {Requirements} requirements
 * @property {Requirements} [future_requirements]
 * @property {Record<string, string>} [capabilities]  capability name -> Stripe status
 * @property {string} created_at
 * @property {string} updated_at
 *
 * @typedef {object} CreateAccountRequest  every field optional
 * @property {string} [country]
 * @property {string} [email]
 * @property {"individual" | "company" | "non_profit" | "government_entity"} [business_type]
 * @property {{url?: string, product_description?: string, name?: string, mcc?: string}} [business_profile]
 * @property {string[]} [capabilities]
 * @property {"full" | "recipient"} [service_agreement]
 *
 * @typedef {{url: string, expires_at: string}} OnboardingLink
 * @typedef {{url: string}} DashboardLink
 * @typedef {{client_secret: string, expires_at: string, publishable_key: string}} OnboardingSession
 */

/** An answer in the API's error envelope: {"error": {"code", "message", "param"}}. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status; 0 when the API could not be reached
   * @param {string} code
   * @param {string} message
   * @param {string} [param]
   */
  constructor(status, code, message, param) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

const TOKEN_KEY = "platform.token";

/** @returns {string | null} */
export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** @param {string} token */
export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function call(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(config.apiBase + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network_error", "The platform API could not be reached.");
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: handled below
  }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(resp.status, e.code || `http_${resp.status}`, e.message || resp.statusText, e.param);
  }
  return data;
}

/**
 * The dev server's stand-in for your sign-in: a token for any user id.
 * A real platform gets the token from its own identity provider.
 * @param {string} sub
 * @param {string} [email]
 * @returns {Promise<string>}
 */
export async function devSignIn(sub, email) {
  const q = new URLSearchParams({ sub });
  if (email) q.set("email", email);
  const { token } = await call("GET", `/dev/token?${q}`);
  return token;
}

/**
 * POST /accounts: creates the caller's Express account, or returns the one
 * they have (201 or 200, the same shape).
 * @param {CreateAccountRequest} [body]
 * @returns {Promise<Account>}
 */
export function createAccount(body = {}) {
  return call("POST", "/accounts", body);
}

/**
 * GET /accounts/me; with refresh, the API reads Stripe first (use it when the
 * user comes back from Stripe: webhooks may not have arrived yet).
 * @param {{refresh?: boolean}} [options]
 * @returns {Promise<Account>}
 */
export function getAccount({ refresh = false } = {}) {
  return call("GET", `/accounts/me${refresh ? "?refresh=true" : ""}`);
}

/**
 * POST /accounts/me/onboarding-link: a single-use Stripe-hosted URL that
 * expires in minutes. Send the browser there at once.
 * @returns {Promise<OnboardingLink>}
 */
export function createOnboardingLink() {
  return call("POST", "/accounts/me/onboarding-link");
}

/**
 * POST /accounts/me/dashboard-link: a login link to the Express Dashboard
 * (409 onboarding_incomplete until details are submitted).
 * @returns {Promise<DashboardLink>}
 */
export function createDashboardLink() {
  return call("POST", "/accounts/me/dashboard-link");
}

/**
 * POST /accounts/me/onboarding-session: an Account Session for Stripe's
 * embedded account-onboarding component. Its client_secret is a credential:
 * hand it to Connect.js (fetchClientSecret) and keep it nowhere else.
 * @returns {Promise<OnboardingSession>}
 */
export function createOnboardingSession() {
  return call("POST", "/accounts/me/onboarding-session");
}
