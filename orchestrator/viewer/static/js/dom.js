// DOM helpers that never parse strings as HTML.
//
// Every string that comes from a trace (step ids, prompts, outputs, errors, workflow
// names) reaches the page through these helpers, which use createTextNode /
// textContent / setAttribute only. Nothing in the viewer assigns innerHTML or
// outerHTML, calls insertAdjacentHTML or document.write, or sets an on* attribute.

const SVG_NS = "http://www.w3.org/2000/svg";

function setAttrs(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (/^on/i.test(name)) throw new Error(`refusing to set event attribute ${name}`);
    if (name === "class") node.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : String(value));
    else if (name === "text") node.textContent = String(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

/** An HTML element; string children become text nodes. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

/** An SVG element; string children become text nodes. */
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

/** Replace a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** Make `group`'s children `wanted`, in order, moving and removing only what differs
 * (nothing when they are the same elements in the same order). */
export function place(group, wanted) {
  const keep = new Set(wanted);
  for (let c = group.firstChild; c !== null;) {
    const next = c.nextSibling;
    if (!keep.has(c)) c.remove();
    c = next;
  }
  let at = group.firstChild;
  for (const node of wanted) {
    if (node === at) at = at.nextSibling;
    else group.insertBefore(node, at); // moved from further on, or new
  }
}

/** JSON as indented text (strings as they are). */
export function pretty(value) {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, null, 2);
  } catch (err) {
    return String(value);
  }
}

/** `s` cut to `n` UTF-16 units with an ellipsis, never inside a character (an emoji
 * cut in two drew half a surrogate pair: a replacement character). */
export function clip(s, n) {
  s = String(s);
  if (s.length <= n) return s;
  let cut = Math.max(0, n - 1);
  const high = s.charCodeAt(cut - 1);
  if (cut > 0 && high >= 0xd800 && high <= 0xdbff) cut--; // the first half of a pair
  return s.slice(0, cut) + "\u2026";
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "\u2014";
  if (seconds < 0) seconds = 0;
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  if (seconds < 3600) {
    const m = Math.floor(seconds / 60);
    return `${m} m ${String(Math.floor(seconds % 60)).padStart(2, "0")} s`;
  }
  const h = Math.floor(seconds / 3600);
  return `${h} h ${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")} m`;
}

export function fmtTime(ts) {
  if (ts === null || ts === undefined) return "\u2014";
  const d = new Date(ts * 1000);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtTokens(prompt, completion) {
  if (prompt === null || prompt === undefined) return "\u2014";
  const total = (prompt || 0) + (completion || 0);
  return total.toLocaleString("en-US");
}

export const STATUSES = ["pending", "scheduled", "running", "retrying", "succeeded", "failed", "skipped", "cancelled"];

export function statusBadge(status, attrs = {}) {
  const st = STATUSES.includes(status) ? status : "pending";
  return el("span", { ...attrs, class: ["badge", `st-${st}`, attrs.class] }, String(status ?? "unknown"));
}
