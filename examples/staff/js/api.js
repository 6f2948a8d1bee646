// @ts-check
// The staff API's calls, one function each, typed after openapi.yaml. Every
// call the console makes goes through this module; it keeps the staff
// member's bearer token in sessionStorage (one sign-in per tab).

import config from "./config.js";

/**
 * @typedef {{code: string, detail: string}} Signal  a risk signal; absent on APIs that predate them
 *
 * @typedef {object} AccountSummary  one row of GET /admin/accounts
 * @property {string} user_id
 * @property {string} account_id
 * @property {string} status
 * @property {"pending" | "approved" | "rejected"} review
 * @property {string} country
 * @property {string} service_agreement
 * @property {string} created_at  RFC 3339
 * @property {string} updated_at  RFC 3339
 * @property {number} requirements_due_count
 * @property {string} [email]
 * @property {Signal[]} [signals]
 *
 * @typedef {{accounts: AccountSummary[], next_cursor: string | null}} StaffPage
 *
 * @typedef {object} AccountFilter
 * @property {string} [review]  pending (the review queue), approved, rejected; "" for any
 * @property {string} [status]  one status; "" for any
 * @property {number} [limit]  1 to 100; the API's default when absent
 * @property {string} [cursor]  a previous page's next_cursor
 *
 * @typedef {object} StaffAccount  GET /admin/accounts/{user_id}
 * @property {string} user_id
 * @property {string} review
 * @property {string | null} reviewed_by
 * @property {string | null} reviewed_at
 * @property {string | null} first_link_at
 * @property {any} account  the Account of the user routes (requirements, capabilities, …)
 * @property {{from: string, to: string, at: string, cause: string}[]} status_changes  newest first
 * @property {ReviewItem[]} reviews  newest first
 * @property {Signal[]} [signals]
 *
 * @typedef {object} ReviewItem  one append-only audit item
 * @property {"approve" | "reject"} decision
 * @property {string} [reason]
 * @property {string} note
 * @property {string} reviewer  the staff member's sub
 * @property {string} at
 * @property {"intent" | "refused" | "unknown" | "recorded"} outcome
 * @property {string} [stripe_code]
 * @property {string} [stripe_message]
 *
 * @typedef {object} ReviewAnswer
 * @property {string} user_id
 * @property {string} account_id
 * @property {string} review
 * @property {string} status
 * @property {string} reviewed_by
 * @property {string} reviewed_at
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

const TOKEN_KEY = "staff.token";

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
 * The dev server's stand-in for your staff sign-in: a token in the staff
 * group for any user id. Only js/signin.js calls it.
 * @param {string} sub
 * @returns {Promise<string>}
 */
export async function devStaffToken(sub) {
  const q = new URLSearchParams({ sub, groups: "onboarding-staff" });
  const { token } = await call("GET", `/dev/token?${q}`);
  return token;
}

/**
 * GET /admin/accounts: one page of the accounts the filter selects.
 * review=pending is the review queue.
 * @param {AccountFilter} filter
 * @returns {Promise<StaffPage>}
 */
export function listAccounts(filter) {
  const q = new URLSearchParams();
  if (filter.review) q.set("review", filter.review);
  if (filter.status) q.set("status", filter.status);
  if (filter.limit) q.set("limit", String(filter.limit));
  if (filter.cursor) q.set("cursor", filter.cursor);
  const query = q.toString();
  return call("GET", `/admin/accounts${query ? `?${query}` : ""}`);
}

/**
 * GET /admin/accounts/{user_id}: the account, its status history and its
 * decisions.
 * @param {string} userId
 * @returns {Promise<StaffAccount>}
 */
export function getAccount(userId) {
  return call("GET", `/admin/accounts/${encodeURIComponent(userId)}`);
}

/**
 * POST /admin/accounts/{user_id}/review: approve, or reject at Stripe (final).
 * @param {string} userId
 * @param {{decision: "approve" | "reject", reason: string, note: string}} body
 * @returns {Promise<ReviewAnswer>}
 */
export function reviewAccount(userId, body) {
  return call("POST", `/admin/accounts/${encodeURIComponent(userId)}/review`, body);
}
