// @ts-check
// How the console shows what the staff API answers. Every string from the
// API (user ids, emails, notes, business names, URLs, Stripe's messages)
// goes into the page through el(), as a text node, never parsed as HTML.

/** @typedef {import("./api.js").Signal} Signal */
/** @typedef {import("./api.js").AccountSummary} AccountSummary */
/** @typedef {import("./api.js").StaffAccount} StaffAccount */
/** @typedef {import("./api.js").ReviewItem} ReviewItem */

/**
 * An element with attributes and children; strings become text nodes, so
 * nothing here is ever parsed as HTML.
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string | null | undefined)[]} children
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** @param {string | null | undefined} iso */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC");
}

/** @param {string} status */
export function statusChip(status, testid = "") {
  const attrs = { class: `status ${status}` };
  if (testid) attrs["data-testid"] = testid;
  return el("span", attrs, status);
}

/**
 * The risk signals, or a dash when the API sends none (older APIs send no
 * signals field at all).
 * @param {Signal[] | undefined} signals
 */
export function signalList(signals) {
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

/**
 * What the seller told the platform, when the API sends it (email, the
 * business profile): as text, a URL too, never as a link staff might
 * follow without meaning to.
 * @param {any} a  a list item, or the detail's account and top level merged
 * @returns {HTMLElement[]}
 */
function sellerFacts(a) {
  const profile = a.business_profile && typeof a.business_profile === "object" ? a.business_profile : {};
  const facts = [
    ["Email", a.email],
    ["Business type", a.business_type],
    ["Business name", a.business_name ?? profile.name],
    ["Website", a.business_url ?? profile.url],
    ["Product", profile.product_description],
    ["MCC", profile.mcc],
  ];
  return facts.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .flatMap(([k, v]) => [el("dt", {}, String(k)), el("dd", { "data-testid": `staff-seller-${String(k).toLowerCase().replace(/ /g, "-")}` }, String(v))]);
}

/**
 * One row of the queue (the console wires its clicks).
 * @param {AccountSummary} a
 * @returns {HTMLElement}
 */
export function queueRow(a) {
  const who = el("td", {}, el("div", { class: "mono" }, a.user_id));
  const profile = /** @type {any} */ (a).business_profile || {};
  for (const extra of [a.email, /** @type {any} */ (a).business_name ?? profile.name]) {
    if (extra) who.append(el("div", { class: "muted" }, String(extra)));
  }
  return el("tr", { "data-testid": "staff-row", "data-user-id": a.user_id, tabindex: "0" },
    who,
    el("td", { class: "mono" }, a.account_id),
    el("td", {}, statusChip(a.status, "staff-row-status")),
    el("td", {}, a.country),
    el("td", {}, when(a.created_at)),
    el("td", {}, signalList(a.signals)),
  );
}

/**
 * The evidence of one account: its facts, Stripe's state, the status
 * history and the decisions (the decision form is the console's).
 * @param {StaffAccount} s
 * @param {Signal[] | undefined} [fallbackSignals]  the queue's, when the detail answer has none
 * @returns {HTMLElement[]}
 */
export function accountDetail(s, fallbackSignals) {
  const a = s.account || {};
  const req = a.requirements || {};
  const signals = s.signals ?? a.signals ?? fallbackSignals;
  return [
    el("h2", {}, "Account of ", el("span", { class: "mono", "data-testid": "staff-detail-user" }, s.user_id)),
    el("dl", { class: "facts" },
      el("dt", {}, "Account"), el("dd", { class: "mono", "data-testid": "staff-detail-account" }, a.account_id),
      el("dt", {}, "Status"), el("dd", {}, statusChip(a.status, "staff-detail-status")),
      el("dt", {}, "Review"), el("dd", {}, statusChip(s.review), s.reviewed_by ? ` by ${s.reviewed_by} at ${when(s.reviewed_at)}` : ""),
      el("dt", {}, "Country"), el("dd", {}, `${a.country} (${a.service_agreement} service agreement)`),
      el("dt", {}, "Details submitted"), el("dd", {}, a.details_submitted === undefined ? "—" : String(a.details_submitted)),
      el("dt", {}, "Charges, payouts"), el("dd", {}, `${a.charges_enabled ? "enabled" : "disabled"}, ${a.payouts_enabled ? "enabled" : "disabled"}`),
      el("dt", {}, "Created"), el("dd", {}, when(a.created_at)),
      el("dt", {}, "First onboarding link"), el("dd", {}, when(s.first_link_at)),
      ...sellerFacts({ ...a, ...s }),
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
  ];
}

/** @param {Signal[] | undefined} signals */
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

/** @param {StaffAccount["status_changes"]} changes */
function history(changes) {
  const list = el("ol", { class: "log", "data-testid": "staff-history" });
  if (changes.length === 0) list.append(el("li", { class: "muted" }, "no change recorded yet"));
  for (const c of changes) {
    list.append(el("li", {}, when(c.at), ": ", statusChip(c.from || "—"), " → ", statusChip(c.to), el("span", { class: "muted" }, ` (${c.cause})`)));
  }
  return list;
}

/** @param {ReviewItem[]} reviews */
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

