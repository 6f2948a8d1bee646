// @ts-check
// The staff console: the review queue, one account's evidence, and the
// decision. Every string that comes from the API (user ids, emails, notes,
// business names, URLs, Stripe's messages) is put in the page as text,
// through el() below, never as HTML.

import * as api from "./api.js";
import { accountDetail, el, queueRow, when } from "./render.js";
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
  const tr = queueRow(a);
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
  panels.detail.replaceChildren(...accountDetail(acct, lastPageSignals.get(userId)), ...decisionForm(acct));
  panels.detail.hidden = false;
  updateRowStatus(userId, acct.account.status);
}

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
  if (final) outcome.append(el("div", { class: "muted" }, "A rejection is final: there is nothing more to decide."));

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
