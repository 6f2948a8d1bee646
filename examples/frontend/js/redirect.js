// @ts-check
// Where sign-in sends the user next: only a path of this site. A sign-in
// page that follows any `next` is an open redirect: a link to
// /?next=//evil.example would land a freshly signed-in user on a look-alike.

// C0 and C1 control characters, and DEL.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * The path, query and fragment to open after sign-in: `next` when it names
 * a page of `origin`, else `fallback`. Refused before parsing: anything not
 * starting with "/", "//" (another host, protocol-relative), a backslash
 * (browsers read "/\evil.example" as "//evil.example") and control
 * characters (the URL parser drops tabs and newlines, so "/\t/evil.example"
 * would become "//evil.example"). What is left is parsed against `origin`
 * and must keep it; the parsed path is returned, so what is opened is what
 * was checked.
 * @param {string | null} next  the raw `next` query parameter
 * @param {string} origin  location.origin
 * @param {string} fallback  a path of this site
 * @returns {string}
 */
export function safeNext(next, origin, fallback) {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.includes("\\") || CONTROL.test(next)) {
    return fallback;
  }
  let url;
  try {
    url = new URL(next, origin);
  } catch {
    return fallback;
  }
  if (url.origin !== origin) return fallback;
  return url.pathname + url.search + url.hash;
}
