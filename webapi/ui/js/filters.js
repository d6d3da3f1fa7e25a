// What the filter forms of Contact Search and the Audit Log share: errors
// shown at the field they are about, suggestions of the values that exist,
// date ranges, and the answer to a page past the last one.

import { api, query } from './api.js';
import { h, fmtNumber, uid } from './dom.js';

// API error codes and the filter each is about; the API's message is a
// sentence written for the person who typed the value.
const FIELD_OF_CODE = {
  invalid_contact_id: 'contact_id', invalid_q: 'q', invalid_channel: 'channel', invalid_agent: 'agent',
  invalid_queue: 'queue', invalid_from: 'from', invalid_to: 'to', invalid_range: 'to', invalid_user: 'user',
  invalid_functionality: 'functionality', invalid_reason_code: 'reason_code', invalid_ticket: 'ticket',
  invalid_request_id: 'request_id',
};

export const fieldOfError = (err) => (err && FIELD_OF_CODE[err.code]) || '';

/** Shows message under input, tied to it for screen readers; focus goes there. */
export function showFieldError(input, message) {
  clearFieldError(input);
  const id = uid('field-error');
  const p = h('p', { class: 'field-error', id, 'data-testid': `${input.dataset.testid}-error` }, message);
  input.setAttribute('aria-invalid', 'true');
  input.setAttribute('aria-describedby', [input.getAttribute('aria-describedby'), id].filter(Boolean).join(' '));
  input.dataset.errorId = id;
  input.closest('.field').append(p);
  // Once the value changes the message no longer describes it.
  input.addEventListener('input', () => clearFieldError(input), { once: true });
  input.addEventListener('change', () => clearFieldError(input), { once: true });
  input.focus();
}

export function clearFieldError(input) {
  const id = input.dataset.errorId;
  if (!id) return;
  const p = document.getElementById(id);
  if (p) p.remove();
  const rest = (input.getAttribute('aria-describedby') || '').split(' ').filter((x) => x && x !== id);
  if (rest.length) input.setAttribute('aria-describedby', rest.join(' '));
  else input.removeAttribute('aria-describedby');
  input.removeAttribute('aria-invalid');
  delete input.dataset.errorId;
}

/**
 * Checks a date range before it is sent: an end before the start is said at
 * the end date. Returns false (and shows why) when the range is wrong.
 */
export function checkDateRange(fromInput, toInput) {
  clearFieldError(fromInput);
  clearFieldError(toInput);
  if (fromInput.value && toInput.value && toInput.value < fromInput.value) {
    showFieldError(toInput, 'The end date is before the start date. Choose an end date on or after the start date.');
    return false;
  }
  return true;
}

// Suggestions wait for a pause in typing and ask for a bounded list.
const SUGGEST_DELAY_MS = 200;

/**
 * Offers the values that exist for a filter (agent, queue or user) in a
 * datalist under input, by what has been typed so far. Returns the
 * datalist, to be placed in the document beside the input.
 */
export function suggest(input, field) {
  const list = h('datalist', { id: uid(`${field}-suggestions`), 'data-testid': `${input.dataset.testid}-suggestions` });
  input.setAttribute('list', list.id);
  let timer = null;
  let ctrl = null;
  let asked = null;
  const load = async () => {
    const prefix = input.value.trim();
    if (prefix === asked) return;
    asked = prefix;
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    try {
      const res = await api(`/api/v1/suggestions${query({ field, prefix })}`, { signal: ctrl.signal });
      // An exact value alone is no suggestion; the list would only repeat it.
      const values = res.values.filter((v) => v !== input.value);
      list.replaceChildren(...values.map((v) => h('option', { value: v })));
    } catch {
      // Suggestions are a help; the filter works without them.
    }
  };
  input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(load, SUGGEST_DELAY_MS); });
  input.addEventListener('focus', load, { once: true });
  return list;
}

/** YYYY-MM-DD of a local date. */
export function localDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** The local dates of the last n days, today included. */
export function lastDays(n) {
  const to = new Date();
  const from = new Date(to.getFullYear(), to.getMonth(), to.getDate() - (n - 1));
  return { from: localDate(from), to: localDate(to) };
}

/** The browser's time zone, as the dates of the page are shown in it. */
export function timeZoneLabel() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
  let offset = '';
  try {
    const parts = new Intl.DateTimeFormat('en', { timeZoneName: 'shortOffset' }).formatToParts(new Date());
    offset = (parts.find((p) => p.type === 'timeZoneName') || {}).value || '';
  } catch { /* older browsers: the zone's name is enough */ }
  return offset && offset !== zone ? `${zone} (${offset})` : zone;
}

/**
 * A page past the last one (an old link, a list that shrank): say so and
 * offer the last page and the first, instead of "nothing matches".
 */
export function pastLastPage({ page, pages, total, noun, nouns, go, testid }) {
  return h('div', { class: 'empty', 'data-testid': testid },
    h('strong', {}, `Page ${fmtNumber(page)} is past the last page`),
    `There ${total === 1 ? 'is' : 'are'} ${fmtNumber(total)} ${total === 1 ? noun : nouns} on ${fmtNumber(pages)} page${pages === 1 ? '' : 's'}.`,
    h('p', { class: 'form-actions center' },
      h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': `${testid}-last`, onclick: () => go(pages) },
        `Go to page ${fmtNumber(pages)}`),
      pages > 1 ? h('button', { type: 'button', class: 'btn', 'data-testid': `${testid}-first`, onclick: () => go(1) }, 'Go to the first page') : null));
}
