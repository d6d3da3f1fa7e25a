// Contact Search: filters by contact ID, customer (phone, email or name),
// channel, date range, agent and queue; paged results; click through to
// the contact record. The filters live in the URL, so Back returns to them.

import { api, query } from '../api.js';
import { h, icon, fmtDate, fmtTime, fmtNumber, dateToISO } from '../dom.js';
import { suggest, checkDateRange, showFieldError, fieldOfError, pastLastPage } from '../filters.js';

const PAGE_SIZE = 25;

// Contact channels as the contact index records them (Amazon Connect style).
const CONTACT_CHANNELS = [
  ['', 'Any channel'], ['VOICE', 'Voice'], ['CHAT', 'Chat'], ['EMAIL', 'Email'], ['SOCIAL', 'Social'], ['TASK', 'Task'],
];

export function renderSearch(main, { params, navigate, setTitle }) {
  setTitle('Contact Search');
  const field = (id, label, input, wide) => h('div', { class: `field${wide ? ' field-wide' : ''}` }, h('label', { for: id }, label), input);
  const text = (id, testid, value, placeholder, extra = {}) => h('input', { type: 'text', id, name: id, 'data-testid': testid, value: value || '', placeholder, autocomplete: 'off', ...extra });

  const inputs = {
    contact_id: text('f-contact-id', 'search-contact-id', params.contact_id, 'e.g. 0a1b2c3d-…', { spellcheck: 'false' }),
    q: text('f-customer', 'search-customer', params.q, 'Phone, email or name'),
    channel: h('select', { id: 'f-channel', name: 'channel', 'data-testid': 'search-channel' },
      CONTACT_CHANNELS.map(([v, l]) => h('option', { value: v, selected: params.channel === v }, l))),
    agent: text('f-agent', 'search-agent', params.agent, 'Start of an agent login'),
    queue: text('f-queue', 'search-queue', params.queue, 'Start of a queue name'),
    from: h('input', { type: 'date', id: 'f-from', name: 'from', 'data-testid': 'search-from', value: params.from || '' }),
    to: h('input', { type: 'date', id: 'f-to', name: 'to', 'data-testid': 'search-to', value: params.to || '' }),
  };

  const form = h('form', {
    class: 'card-body', role: 'search', 'aria-label': 'Contact search', 'data-testid': 'search-form',
    onsubmit: (e) => {
      e.preventDefault();
      if (!checkDateRange(inputs.from, inputs.to)) return;
      const next = {};
      for (const [k, el] of Object.entries(inputs)) if (el.value.trim()) next[k] = el.value.trim();
      navigate('search', next);
    },
  },
  h('div', { class: 'filters' },
    field('f-contact-id', 'Contact ID', inputs.contact_id, true),
    field('f-customer', 'Customer', inputs.q, true),
    field('f-channel', 'Channel', inputs.channel),
    // Agents and queues match by their start, in any case; the lists offer
    // the ones that exist.
    field('f-agent', 'Agent', [inputs.agent, suggest(inputs.agent, 'agent')]),
    field('f-queue', 'Queue', [inputs.queue, suggest(inputs.queue, 'queue')]),
    field('f-from', 'From date', inputs.from),
    field('f-to', 'To date', inputs.to)),
  h('div', { class: 'form-actions' },
    h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'search-submit' }, icon('search'), 'Search'),
    h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'search-clear', onclick: () => navigate('search', {}) }, 'Clear filters')));

  const results = h('section', { class: 'card', 'aria-labelledby': 'results-title', 'data-testid': 'search-results' });

  main.replaceChildren(
    h('div', { class: 'page-head' }, h('div', { class: 'grow' },
      h('h1', {}, 'Contact Search'),
      h('p', { class: 'page-sub' }, 'Find a contact by its ID or the customer\u2019s details, then open its record.'))),
    h('section', { class: 'card', 'aria-label': 'Filters' }, form),
    results);

  load(results, params, navigate, inputs);
}

async function load(box, params, navigate, inputs) {
  const page = Math.max(1, parseInt(params.page || '1', 10) || 1);
  const head = h('div', { class: 'card-head' }, h('h2', { id: 'results-title', class: 'grow' }, 'Results'));
  box.replaceChildren(head, h('div', { class: 'empty', 'aria-busy': 'true' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' Searching…'));
  let res;
  try {
    res = await api(`/api/v1/contacts${query({
      contact_id: params.contact_id, q: params.q, channel: params.channel, agent: params.agent, queue: params.queue,
      from: dateToISO(params.from, false), to: dateToISO(params.to, true), page, page_size: PAGE_SIZE,
    })}`);
  } catch (err) {
    // A filter the server refused is said at the filter, in its words.
    const at = inputs[fieldOfError(err)];
    if (at) showFieldError(at, err.message);
    box.replaceChildren(head, h('div', { class: 'empty', role: at ? undefined : 'alert', 'data-testid': 'search-error' },
      h('strong', {}, at ? 'Correct the marked filter to search' : 'The search failed'), at ? '' : err.message));
    return;
  }
  const pages = Math.max(1, Math.ceil(res.total / res.page_size));
  head.append(h('span', { class: 'card-note', 'data-testid': 'search-total' }, `${fmtNumber(res.total)} contact${res.total === 1 ? '' : 's'}`));
  const go = (p) => navigate('search', { ...params, page: String(p) });
  if (!res.items.length && res.total > 0) {
    box.replaceChildren(head, pastLastPage({ page, pages, total: res.total, noun: 'contact', nouns: 'contacts', go, testid: 'search-past-end' }));
    return;
  }
  if (!res.items.length) {
    box.replaceChildren(head, h('div', { class: 'empty', 'data-testid': 'search-empty' },
      h('strong', {}, 'No contacts match these filters'), 'Check the contact ID, or widen the date range.'));
    return;
  }
  const open = (id) => navigate('contact', { id });
  const rows = res.items.map((c) => {
    const f = c.fields || {};
    return h('tr', {
      class: 'clickable', 'data-testid': 'contact-row', 'data-contact-id': c.contact_id,
      onclick: (e) => { if (!e.target.closest('a')) open(c.contact_id); },
    },
    h('td', { class: 'id-cell' }, h('a', { href: `#/contacts/${encodeURIComponent(c.contact_id)}`, 'data-testid': 'contact-link' }, c.contact_id)),
    h('td', { class: 'nowrap' }, fmtDate(f.initiation_timestamp), h('div', { class: 'sub' }, fmtTime(f.initiation_timestamp))),
    h('td', {}, f.channel || '—', f.subtype ? h('div', { class: 'sub' }, f.subtype) : null),
    h('td', { class: 'customer-cell' }, h('div', { 'data-testid': 'contact-customer' }, f.customer_name || '—'),
      f.customer_phone ? h('div', { class: 'sub' }, f.customer_phone) : null,
      f.customer_email ? h('div', { class: 'sub' }, f.customer_email) : null),
    h('td', {}, f.agent || '—'),
    h('td', {}, f.queue || '—'));
  });
  box.replaceChildren(head,
    h('div', { class: 'table-wrap' }, h('table', { class: 'dense fit', 'data-testid': 'search-table' },
      h('caption', { class: 'visually-hidden' }, 'Contacts matching the filters'),
      h('thead', {}, h('tr', {}, ['Contact ID', 'Initiated', 'Channel', 'Customer', 'Agent', 'Queue'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows))),
    h('div', { class: 'table-foot' },
      h('span', { 'data-testid': 'search-page' }, `Page ${page} of ${fmtNumber(pages)}`),
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', class: 'btn btn-sm', disabled: page <= 1, 'data-testid': 'search-prev', onclick: () => go(page - 1) }, 'Previous'),
      h('button', { type: 'button', class: 'btn btn-sm', disabled: page >= pages, 'data-testid': 'search-next', onclick: () => go(page + 1) }, 'Next')));
}
