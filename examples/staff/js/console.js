// @ts-check
// The staff console: the review queue, one account's evidence, and the
// decision. Every string that comes from the API (user ids, emails, notes,
// business names, URLs, Stripe's messages) is put in the page as text,
// through el() below, never as HTML.

import * as api from "./api.js";
import { signIn } from "./signin.js";

/** @param {string} id */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const panels = {
  signin: byId("signin-panel"),
  forbidden: byId("forbidden-panel"),
  queue: byId("queue-panel"),
  detail: byId("detail-panel"),
};
const errorBox = byId("error");
const rows = byId("rows");
const empty = byId("empty");
const paging = byId("paging");
const filterReview = /** @type {HTMLSelectElement} */ (byId("filter-review"));
const filterStatus = /** @type {HTMLSelectElement} */ (byId("filter-status"));
const signoutButton = byId("signout");

// ?limit=N sets the page size (1 to 100); the API's default otherwise.
const pageSize = Number(new URLSearchParams(location.search).get("limit")) || undefined;

/**
 * An element with attributes and children; strings become text nodes, so
 * nothing here is ever parsed as HTML.
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string | null | undefined)[]} children
 * @returns {HTMLElement}
 */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** @param {string | null | undefined} iso */
function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC");
}

/** @param {string} status */
function statusChip(status, testid = "") {
  const attrs = { class: `status ${status}` };
  if (testid) attrs["data-testid"] = testid;
  return el("span", attrs, status);
}

/**
 * The risk signals, or a dash when the API sends none (older APIs send no
 * signals field at all).
 * @param {api.Signal[] | undefined} signals
 */
function signalList(signals) {
  const box = el("span", { "data-testid": "staff-signals" });
  if (!Array.isArray(signals)) {
    box.append("—");
    return box;
  }
  if (signals.length === 0) {
    box.append("none");
    return box;
  }
  for (const s of signals) {
    box.append(el("span", { class: "signal", "data-signal": String(s.code), title: String(s.detail ?? "") }, String(s.code)));
  }
  return box;
}

/** @param {unknown} e */
function showError(e) {
  const err = e instanceof api.ApiError ? e : new api.ApiError(0, "error", String(e));
  if (err.status === 401) {
    // The token expired or was refused: sign in again.
    api.signOut();
    render("signin");
  }
  errorBox.replaceChildren(el("strong", {}, err.code), ": ", err.message);
  errorBox.hidden = false;
}

function clearError() {
  errorBox.hidden = true;
  errorBox.replaceChildren();
}

/** Shows one state of the page; "queue" also keeps the detail open. @param {"signin" | "forbidden" | "queue"} state */
function render(state) {
  panels.signin.hidden = state !== "signin";
  panels.forbidden.hidden = state !== "forbidden";
  panels.queue.hidden = state !== "queue";
  if (state !== "queue") {
    panels.detail.hidden = true;
    panels.detail.replaceChildren();
    rows.replaceChildren();
  }
  signoutButton.hidden = state === "signin";
}

// ------------------------------------------------------------------ queue

/** @type {string | null} */
let openUser = null;
/** The signals of the page's rows, by user. @type {Map<string, api.Signal[] | undefined>} */
const lastPageSignals = new Map();

/** @param {string} [cursor] */
async function loadQueue(cursor) {
  clearError();
  let page;
  try {
    page = await api.listAccounts({ review: filterReview.value, status: filterStatus.value, limit: pageSize, cursor });
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 403) {
      // Not in the staff group: show nothing of the data.
      render("forbidden");
      return;
    }
    showError(e);
    return;
  }
  render("queue");
  lastPageSignals.clear();
  for (const a of page.accounts) lastPageSignals.set(a.user_id, a.signals);
  rows.replaceChildren(...page.accounts.map(row));
  empty.hidden = page.accounts.length > 0;
  paging.replaceChildren();
  if (cursor) {
    paging.append(el("button", { type: "button", class: "secondary", "data-testid": "staff-first-page" }, "First page"));
    paging.lastElementChild?.addEventListener("click", () => loadQueue());
  }
  if (page.next_cursor) {
    const next = el("button", { type: "button", class: "secondary", "data-testid": "staff-next-page" }, "Next page");
    const nextCursor = page.next_cursor;
    next.addEventListener("click", () => loadQueue(nextCursor));
    paging.append(next);
  }
}

/** @param {api.AccountSummary} a */
function row(a) {
  const who = el("td", {}, el("div", { class: "mono" }, a.user_id));
  if (a.email) who.append(el("div", { class: "muted" }, a.email));
  const tr = el("tr", { "data-testid": "staff-row", "data-user-id": a.user_id, tabindex: "0" },
    who,
    el("td", { class: "mono" }, a.account_id),
    el("td", {}, statusChip(a.status, "staff-row-status")),
    el("td", {}, a.country),
    el("td", {}, when(a.created_at)),
    el("td", {}, signalList(a.signals)),
  );
  if (a.user_id === openUser) tr.classList.add("selected");
  const open = () => openDetail(a.user_id);
  tr.addEventListener("click", open);
  tr.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") open();
  });
  return tr;
}

/** The row of a user, if the page shows it. @param {string} userId */
function rowOf(userId) {
  for (const tr of rows.querySelectorAll("[data-testid=staff-row]")) {
    if (tr.getAttribute("data-user-id") === userId) return tr;
  }
  return null;
}

/** @param {string} userId @param {string} status */
function updateRowStatus(userId, status) {
  const chip = rowOf(userId)?.querySelector("[data-testid=staff-row-status]");
  if (!chip) return;
  chip.textContent = status;
  chip.className = `status ${status}`;
}

// ----------------------------------------------------------------- detail

/** @param {string} userId */
async function openDetail(userId) {
  clearError();
  openUser = userId;
  for (const tr of rows.querySelectorAll("tr")) tr.classList.toggle("selected", tr.getAttribute("data-user-id") === userId);
  let acct;
  try {
    acct = await api.getAccount(userId);
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 403) return render("forbidden");
    showError(e);
    return;
  }
  if (openUser !== userId) return; // another row was opened meanwhile
  panels.detail.replaceChildren(...detail(acct));
  panels.detail.hidden = false;
  updateRowStatus(userId, acct.account.status);
}

/** @param {api.StaffAccount} s */
function detail(s) {
  const a = s.account || {};
  const req = a.requirements || {};
  const signals = s.signals ?? rowSignals(s.user_id);
  return [
    el("h2", {}, "Account of ", el("span", { class: "mono", "data-testid": "staff-detail-user" }, s.user_id)),
    el("dl", { class: "facts" },
      el("dt", {}, "Account"), el("dd", { class: "mono", "data-testid": "staff-detail-account" }, a.account_id),
      el("dt", {}, "Status"), el("dd", {}, statusChip(a.status, "staff-detail-status")),
      el("dt", {}, "Review"), el("dd", {}, statusChip(s.review), s.reviewed_by ? ` by ${s.reviewed_by} at ${when(s.reviewed_at)}` : ""),
      el("dt", {}, "Country"), el("dd", {}, `${a.country} (${a.service_agreement} service agreement)`),
      el("dt", {}, "Details submitted"), el("dd", {}, String(a.details_submitted)),
      el("dt", {}, "Charges, payouts"), el("dd", {}, `${a.charges_enabled ? "enabled" : "disabled"}, ${a.payouts_enabled ? "enabled" : "disabled"}`),
      el("dt", {}, "Created"), el("dd", {}, when(a.created_at)),
      el("dt", {}, "First onboarding link"), el("dd", {}, when(s.first_link_at)),
      el("dt", {}, "Signals"), el("dd", {}, signalDetails(signals)),
    ),
    el("h3", {}, "Stripe's requirements"),
    requirements(req),
    el("h3", {}, "Capabilities"),
    capabilities(a.capabilities),
    el("h3", {}, "Status history"),
    history(s.status_changes || []),
    el("h3", {}, "Decisions"),
    audit(s.reviews || []),
    ...decisionForm(s),
  ];
}

/** The signals the queue showed for a user, when the detail answer has none. @param {string} userId */
function rowSignals(userId) {
  return lastPageSignals.get(userId);
}

/** @param {api.Signal[] | undefined} signals */
function signalDetails(signals) {
  if (!Array.isArray(signals)) return el("span", { class: "muted" }, "not reported by this API");
  if (signals.length === 0) return el("span", {}, "none");
  return el("ul", { "data-testid": "staff-detail-signals" },
    ...signals.map((s) => el("li", {}, el("span", { class: "signal" }, String(s.code)), " ", String(s.detail ?? ""))));
}

/** @param {any} req */
function requirements(req) {
  const list = (/** @type {string} */ name) => {
    const items = Array.isArray(req[name]) ? req[name] : [];
    return [el("dt", {}, name), el("dd", { class: "mono" }, items.length ? items.join(", ") : "—")];
  };
  const facts = el("dl", { class: "facts", "data-testid": "staff-requirements" },
    ...list("currently_due"), ...list("past_due"), ...list("eventually_due"), ...list("pending_verification"),
    el("dt", {}, "disabled_reason"), el("dd", { class: "mono" }, req.disabled_reason ?? "—"),
    el("dt", {}, "current_deadline"), el("dd", {}, when(req.current_deadline)),
  );
  const errors = Array.isArray(req.errors) ? req.errors : [];
  if (errors.length === 0) return facts;
  return el("div", {}, facts, el("ul", { "data-testid": "staff-requirement-errors" },
    ...errors.map((/** @type {any} */ e) => el("li", {}, el("span", { class: "mono" }, String(e.requirement)), ": ",
      String(e.reason), " ", el("span", { class: "muted" }, `(${e.code})`)))));
}

/** @param {Record<string, string> | undefined} caps */
function capabilities(caps) {
  const names = Object.keys(caps || {}).sort();
  if (names.length === 0) return el("p", { class: "muted" }, "none requested");
  return el("table", { "data-testid": "staff-capabilities" },
    el("tbody", {}, ...names.map((n) => el("tr", {}, el("td", { class: "mono" }, n), el("td", {}, statusChip(String(caps?.[n])))))));
}

/** @param {api.StaffAccount["status_changes"]} changes */
function history(changes) {
  const list = el("ol", { class: "log", "data-testid": "staff-history" });
  if (changes.length === 0) list.append(el("li", { class: "muted" }, "no change recorded yet"));
  for (const c of changes) {
    list.append(el("li", {}, when(c.at), ": ", statusChip(c.from || "—"), " → ", statusChip(c.to), el("span", { class: "muted" }, ` (${c.cause})`)));
  }
  return list;
}

/** @param {api.ReviewItem[]} reviews */
function audit(reviews) {
  const list = el("ol", { class: "log", "data-testid": "staff-audit" });
  if (reviews.length === 0) list.append(el("li", { class: "muted" }, "no decision yet"));
  for (const r of reviews) {
    const item = el("li", { "data-testid": "staff-audit-item" },
      el("strong", {}, `${r.decision} (${r.outcome || "recorded"})`), ` ${when(r.at)} by `,
      el("span", { class: "mono", "data-testid": "staff-audit-reviewer" }, r.reviewer));
    if (r.reason) item.append(", reason ", el("span", { class: "mono" }, r.reason));
    if (r.stripe_message) item.append(el("div", {}, "Stripe: ", r.stripe_message, r.stripe_code ? ` (${r.stripe_code})` : ""));
    if (r.note) item.append(el("div", { class: "note", "data-testid": "staff-audit-note" }, r.note));
    list.append(item);
  }
  return list;
}

// --------------------------------------------------------------- decision

/** @param {api.StaffAccount} s */
function decisionForm(s) {
  const reason = /** @type {HTMLSelectElement} */ (el("select", { "data-testid": "staff-reason" },
    el("option", { value: "fraud" }, "fraud"),
    el("option", { value: "terms_of_service" }, "terms_of_service"),
    el("option", { value: "other" }, "other")));
  const note = /** @type {HTMLTextAreaElement} */ (el("textarea", { "data-testid": "staff-note", maxlength: "1000", placeholder: "What you checked, for the audit" }));
  const approve = /** @type {HTMLButtonElement} */ (el("button", { type: "button", class: "primary", "data-testid": "staff-approve" }, "Approve"));
  const reject = /** @type {HTMLButtonElement} */ (el("button", { type: "button", class: "danger", "data-testid": "staff-reject" }, "Reject…"));
  const confirmBox = el("div", { class: "confirm", hidden: "" });
  const outcome = el("div", { class: "decision", "data-testid": "staff-decision", hidden: "" });
  const failure = el("div", { role: "alert", "data-testid": "staff-decision-error", hidden: "" });
  const final = s.review === "rejected";
  if (s.review !== "pending") {
    outcome.replaceChildren(`${s.review} by `, el("span", { class: "mono" }, s.reviewed_by || "—"), ` at ${when(s.reviewed_at)}`);
    outcome.hidden = false;
  }
  approve.disabled = reject.disabled = final; // Stripe's rejection cannot be undone

  /** @param {"approve" | "reject"} decision */
  async function decide(decision) {
    failure.hidden = true;
    confirmBox.hidden = true;
    approve.disabled = reject.disabled = true;
    try {
      const answer = await api.reviewAccount(s.user_id, { decision, reason: decision === "reject" ? reason.value : "", note: note.value });
      updateRowStatus(answer.user_id, answer.status);
      await openDetail(answer.user_id); // the history and audit as they stand now
    } catch (e) {
      const err = e instanceof api.ApiError ? e : new api.ApiError(0, "error", String(e));
      // Stripe's own words when it refused (a balance that is not zero, …).
      failure.replaceChildren(el("strong", {}, err.code), ": ", err.message);
      failure.hidden = false;
      approve.disabled = reject.disabled = false;
    }
  }
  approve.addEventListener("click", () => decide("approve"));
  reject.addEventListener("click", () => {
    // Confirmation in the page, not a native dialog: a rejection is final.
    const yes = el("button", { type: "button", class: "danger", "data-testid": "staff-confirm" }, "Reject at Stripe");
    const no = el("button", { type: "button", class: "secondary", "data-testid": "staff-cancel" }, "Cancel");
    yes.addEventListener("click", () => decide("reject"));
    no.addEventListener("click", () => { confirmBox.hidden = true; });
    confirmBox.replaceChildren(
      el("p", {}, "Reject the account of ", el("span", { class: "mono" }, s.user_id), " at Stripe for ",
        el("span", { class: "mono" }, reason.value), "? Stripe's rejection is final: it cannot be undone."),
      el("div", { class: "actions" }, yes, no));
    confirmBox.hidden = false;
  });
  return [
    el("h3", {}, "Decision"),
    outcome,
    failure,
    el("div", { class: "decision-form" },
      el("label", {}, "Reason (for a rejection)", reason),
      el("label", {}, "Note", note),
      el("div", { class: "actions" }, approve, reject)),
    confirmBox,
  ];
}

// ------------------------------------------------------------------ start

byId("signin").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = /** @type {HTMLInputElement} */ (document.querySelector("[data-testid=staff-user]"));
  const button = /** @type {HTMLButtonElement} */ (document.querySelector("[data-testid=staff-signin]"));
  const user = input.value.trim();
  if (!user) return;
  button.disabled = true;
  try {
    api.setToken(await signIn(user));
    await loadQueue();
  } catch (e) {
    showError(e);
  } finally {
    button.disabled = false;
  }
});
signoutButton.addEventListener("click", () => {
  api.signOut();
  openUser = null;
  render("signin");
});
for (const select of [filterReview, filterStatus]) {
  select.addEventListener("change", () => {
    openUser = null;
    panels.detail.hidden = true;
    loadQueue();
  });
}

if (api.getToken()) {
  loadQueue();
} else {
  render("signin");
}
