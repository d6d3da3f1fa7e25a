// DOM helpers, labels and formatters. Everything is built with
// createElement and textContent: no data ever goes through innerHTML.

/**
 * h('button', {class: 'btn', onclick: fn, 'data-testid': 'x'}, 'Text', child)
 * Props: class, text, on<event>, boolean attributes (true/false), other attributes.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

// Icon paths (24x24, stroked), drawn for this console.
const ICONS = {
  search: 'M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16zM21 21l-4.35-4.35',
  audit: 'M9 5H7a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2h-2M9 5a2 2 0 0 0 2 2h2a2 2 0 0 0 2-2M9 5a2 2 0 0 1 2-2h2a2 2 0 0 1 2 2M9 12h6M9 16h4',
  trash: 'M3 6h18M8 6V4a2 2 0 0 1 2-2h4a2 2 0 0 1 2 2v2M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6M10 11v6M14 11v6',
  check: 'M20 6 9 17l-5-5',
  checkCircle: 'M22 11.08V12a10 10 0 1 1-5.93-9.14M22 4 12 14.01l-3-3',
  alert: 'M12 9v4M12 17h.01M10.29 3.86 1.82 18a2 2 0 0 0 1.71 3h16.94a2 2 0 0 0 1.71-3L13.71 3.86a2 2 0 0 0-3.42 0z',
  x: 'M18 6 6 18M6 6l12 12',
  info: 'M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20zM12 16v-4M12 8h.01',
  download: 'M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4M7 10l5 5 5-5M12 15V3',
  retry: 'M1 4v6h6M3.51 15a9 9 0 1 0 2.13-9.36L1 10',
  logout: 'M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9',
  chevronRight: 'M9 18l6-6-6-6',
  chevronDown: 'M6 9l6 6 6-6',
  shield: 'M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z',
};

export function icon(name) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '2');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const p = document.createElementNS(SVG_NS, 'path');
  p.setAttribute('d', ICONS[name] || '');
  svg.appendChild(p);
  return svg;
}

// Channel names as the specification groups them.
export const CHANNEL_LABELS = {
  'contact-search': 'Contact Search / History',
  'data-warehouse': 'Data Warehouse',
  'email-webform': 'Email / Webform',
  'voice': 'Voice',
  'messaging': 'Webchat / WhatsApp / SMS',
  'social': 'Social',
};

export const channelLabel = (ch) => CHANNEL_LABELS[ch] || ch;

// Channels in deletion order: contact-search is always last.
export function orderChannels(chans) {
  const order = ['data-warehouse', 'email-webform', 'voice', 'messaging', 'social', 'contact-search'];
  return [...chans].sort((a, b) => rank(order, a) - rank(order, b));
}
function rank(order, ch) { const i = order.indexOf(ch); return i < 0 ? order.length - 1 : i; }

const ACRONYMS = new Set(['ctr', 'etr', 'etrs', 'qa', 's3', 'dm', 'dms', 'sms', 'id']);

/** Artefact type name for display: "qa_evaluations" → "QA evaluations". */
export function artefactLabel(name) {
  const words = String(name).split('_').map((w) => (ACRONYMS.has(w) ? w.toUpperCase() : w));
  const s = words.join(' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// Failure reasons, from the error codes of the event contract.
const ERROR_TEXT = {
  store_unavailable: 'a data store was unavailable',
  store_rejected: 'a data store refused the deletion',
  verification_failed: 'data was still found after deletion',
  deadline_exceeded: 'it did not finish in time',
  channel_failed: 'a channel failed',
  invalid_request: 'the request was invalid',
  internal_error: 'an internal error occurred',
  request_id_conflict: 'its request ID was already used for another request, so nothing was deleted',
  legal_hold: 'every contact of the request is under legal hold, so nothing was deleted',
};

export const errorText = (code) => ERROR_TEXT[code] || (code ? code.replaceAll('_', ' ') : 'unknown reason');

/** The first failed channel and its reason, for toasts and banners. */
export function failureReason(outcome) {
  const failed = (outcome.channels || []).filter((c) => c.status === 'failed');
  if (failed.length) {
    return failed.map((c) => `${channelLabel(c.channel)}: ${errorText(c.error_code || outcome.error_code)}`).join('; ');
  }
  return errorText(outcome.error_code);
}

export const STATUS_LABELS = {
  pending: 'Pending', running: 'Deleting…', succeeded: 'Succeeded', failed: 'Failed', skipped: 'Not run',
  not_found: 'Not found', refused: 'Refused', held: 'Held',
  hold_placed: 'Hold placed', hold_lifted: 'Hold lifted',
};

// accountBadge marks a principal as a single sign-on or a local account;
// SSO principals, and only they, start with "sso:".
export function accountBadge(principal) {
  const sso = /^sso:/i.test(principal || '');
  return h('span', {
    class: `badge nodot badge-account${sso ? ' badge-sso' : ''}`, 'data-testid': 'account-kind', 'data-kind': sso ? 'sso' : 'local',
    title: sso ? 'Single sign-on account' : 'Local account',
  }, sso ? 'SSO' : 'local');
}

export function statusBadge(status, testid, pendingLabel) {
  const label = status === 'pending' && pendingLabel ? pendingLabel : STATUS_LABELS[status] || status;
  return h('span', { class: `badge badge-${status}`, 'data-testid': testid, 'data-status': status }, label);
}

const dtFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dtFmtSec = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function fmtDateTime(iso, seconds = false) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return (seconds ? dtFmtSec : dtFmt).format(d);
}

const dFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const tFmt = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const tFmtSec = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

// Date and time apart, for tables that put them on two lines.
export function fmtDate(iso) {
  const d = new Date(iso || NaN);
  return Number.isNaN(d.getTime()) ? (iso ? String(iso) : '—') : dFmt.format(d);
}

export function fmtTime(iso, seconds = false) {
  const d = new Date(iso || NaN);
  return Number.isNaN(d.getTime()) ? '' : (seconds ? tFmtSec : tFmt).format(d);
}

export const fmtNumber = (n) => new Intl.NumberFormat().format(n || 0);

export function sumDeleted(artefacts) {
  return (artefacts || []).reduce((n, a) => n + (a.deleted || 0), 0);
}

/** Local calendar date (YYYY-MM-DD) to an RFC 3339 instant at its start or end. */
export function dateToISO(value, end) {
  if (!value) return '';
  const [y, m, d] = value.split('-').map(Number);
  const t = end ? new Date(y, m - 1, d, 23, 59, 59, 999) : new Date(y, m - 1, d, 0, 0, 0, 0);
  return Number.isNaN(t.getTime()) ? '' : t.toISOString();
}

let idSeq = 0;
export const uid = (prefix) => `${prefix}-${++idSeq}`;
