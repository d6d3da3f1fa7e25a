// Audit Log: Setting name 'Data Deletion'; filters User, Start Date, End
// Date and Functionality (plus contact ID, reason, ticket and the request
// a link from a deletion names), with shortcuts for today and
// the last 7 and 30 days; each entry shows who, when, which contacts, the
// outcome and, expanded, every channel's items before, deleted and after
// with when each store purges them. Auditors see every entry; whoever may
// delete sees the entries of its own requests, to verify its deletions.
// The CSV export carries the same filters. Besides a request's decision
// there are late entries (a channel that finished after the decision,
// naming the entry they complete) and refused ones (a request ID reused
// with other contacts; nothing deleted). Each decision and late entry links
// to the signed receipt of its request; a refused entry has none of its
// own, since the receipt of its request ID covers the deletion it was
// refused for. Dates are the browser's: its time zone is shown.

import { api, query } from '../api.js';
import {
  h, icon, fmtDateTime, fmtDate, fmtTime, fmtNumber, channelLabel, artefactLabel, statusBadge, failureReason,
  dateToISO, sumDeleted, accountBadge,
} from '../dom.js';
import {
  suggest, checkDateRange, showFieldError, fieldOfError, pastLastPage, lastDays, timeZoneLabel,
} from '../filters.js';

const PAGE_SIZE = 50;

// Date-range shortcuts: the last n days, today included.
const RANGES = [['today', 'Today', 1], ['7', 'Last 7 days', 7], ['30', 'Last 30 days', 30]];

export function renderAudit(main, { params, navigate, setTitle, config, session }) {
  setTitle('Audit Log');
  const setting = (config && config.setting) || 'Data Deletion';
  const functionalities = (config && config.functionalities) || ['Delete Contact', 'Bulk Delete', 'Upstream Request', 'Replay'];
  const own = !(session && session.permissions.includes('audit.read'));
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);

  const inputs = {
    user: h('input', { type: 'text', id: 'a-user', 'data-testid': 'audit-user', value: params.user || '', placeholder: 'Start of a user name', autocomplete: 'off', spellcheck: 'false' }),
    from: h('input', { type: 'date', id: 'a-from', 'data-testid': 'audit-from', value: params.from || '' }),
    to: h('input', { type: 'date', id: 'a-to', 'data-testid': 'audit-to', value: params.to || '' }),
    functionality: h('select', { id: 'a-functionality', 'data-testid': 'audit-functionality' },
      h('option', { value: '' }, 'Any functionality'),
      functionalities.map((f) => h('option', { value: f, selected: params.functionality === f }, f))),
    contact_id: h('input', { type: 'text', id: 'a-contact', 'data-testid': 'audit-contact-id', value: params.contact_id || '', placeholder: 'Contact ID', autocomplete: 'off', spellcheck: 'false' }),
    reason_code: reasonSelect(config, params.reason_code),
    ticket: h('input', { type: 'text', id: 'a-ticket', 'data-testid': 'audit-ticket', value: params.ticket || '', placeholder: 'e.g. INC-20431', maxlength: '64', autocomplete: 'off', spellcheck: 'false' }),
    // A link from a deletion names its request; it is shown, and can be
    // cleared, like any other filter.
    request_id: h('input', { type: 'text', id: 'a-request', 'data-testid': 'audit-request-id', value: params.request_id || '', placeholder: 'Request ID', autocomplete: 'off', spellcheck: 'false' }),
  };
  const apply = (next) => navigate('audit', next);
  const form = h('form', {
    class: 'card-body', 'aria-label': 'Audit log filters', 'data-testid': 'audit-form',
    onsubmit: (e) => {
      e.preventDefault();
      if (!checkDateRange(inputs.from, inputs.to)) return;
      const next = {};
      for (const [k, el] of Object.entries(inputs)) if (el.value.trim()) next[k] = el.value.trim();
      apply(next);
    },
  },
  h('div', { class: 'filters' },
    field('a-setting', 'Setting name', h('input', { type: 'text', id: 'a-setting', value: setting, readonly: true, 'data-testid': 'audit-setting' })),
    // Only one's own entries are there to see: the user is oneself.
    own
      ? field('a-user-own', 'User', h('input', { type: 'text', id: 'a-user-own', value: session.display_name || session.user, readonly: true, 'data-testid': 'audit-user-own' }))
      : field('a-user', 'User', [inputs.user, suggest(inputs.user, 'user')]),
    field('a-from', 'Start Date', inputs.from),
    field('a-to', 'End Date', inputs.to),
    field('a-functionality', 'Functionality', inputs.functionality),
    field('a-contact', 'Contact ID', inputs.contact_id),
    field('a-reason', 'Reason', inputs.reason_code),
    field('a-ticket', 'Ticket', inputs.ticket),
    h('div', { class: 'field field-id' }, h('label', { for: 'a-request' }, 'Request ID'), inputs.request_id)),
  h('div', { class: 'form-actions wrap' },
    h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'audit-apply' }, 'Apply filters'),
    h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'audit-clear', onclick: () => apply({}) }, 'Clear'),
    h('span', { class: 'spacer' }),
    h('div', { class: 'range-buttons', role: 'group', 'aria-label': 'Date range' },
      RANGES.map(([key, label, days]) => {
        const r = lastDays(days);
        return h('button', {
          type: 'button', class: 'btn btn-sm', 'data-testid': `audit-range-${key}`,
          'aria-pressed': String(params.from === r.from && params.to === r.to),
          onclick: () => {
            const next = { ...params, ...lastDays(days) };
            delete next.page;
            apply(next);
          },
        }, label);
      }))));

  const apiParams = {
    user: own ? undefined : params.user, functionality: params.functionality, contact_id: params.contact_id,
    reason_code: params.reason_code, ticket: params.ticket, request_id: params.request_id,
    from: dateToISO(params.from, false), to: dateToISO(params.to, true),
  };
  const exportLink = h('a', {
    class: 'btn', href: `/api/v1/audit.csv${query(apiParams)}`, download: '', 'data-testid': 'audit-export',
  }, icon('download'), 'Export CSV');

  const results = h('section', { class: 'card', 'aria-labelledby': 'audit-results-title', 'data-testid': 'audit-results' });
  main.replaceChildren(
    h('div', { class: 'page-head' },
      h('div', { class: 'grow' },
        h('h1', {}, 'Audit Log'),
        h('p', { class: 'page-sub', 'data-testid': 'audit-scope' }, own
          ? 'The deletions you requested: who asked, when, and what each channel removed. Entries are hash-chained and cannot be edited.'
          : 'Every deletion, who asked for it, when, and what each channel removed. Entries are hash-chained and cannot be edited.')),
      h('div', { class: 'page-actions' }, h('span', { class: 'badge badge-setting nodot', 'data-testid': 'audit-setting-badge' }, `Setting: ${setting}`), exportLink)),
    h('section', { class: 'card', 'aria-label': 'Filters' }, form),
    results);
  load(results, params, apiParams, navigate, session, inputs);
}

async function load(box, params, apiParams, navigate, session, inputs) {
  const page = Math.max(1, parseInt(params.page || '1', 10) || 1);
  const head = h('div', { class: 'card-head' }, h('h2', { id: 'audit-results-title', class: 'grow' }, 'Entries'));
  box.replaceChildren(head, h('div', { class: 'empty', 'aria-busy': 'true' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' Loading…'));
  let res;
  try {
    res = await api(`/api/v1/audit${query({ ...apiParams, page, page_size: PAGE_SIZE })}`);
  } catch (err) {
    // A filter the server refused is said at the filter, in its words.
    const at = inputs[fieldOfError(err)];
    if (at && at.isConnected) showFieldError(at, err.message);
    box.replaceChildren(head, h('div', { class: 'empty', role: at ? undefined : 'alert', 'data-testid': 'audit-error' },
      h('strong', {}, at ? 'Correct the marked filter to see entries' : 'The audit log could not be loaded'), at ? '' : err.message));
    return;
  }
  const total = res.total || 0;
  const pages = Math.max(1, Math.ceil(total / res.page_size));
  head.append(
    h('span', { class: 'card-note', 'data-testid': 'audit-timezone' }, `Times in ${timeZoneLabel()}`),
    h('span', { class: 'card-note strong', 'data-testid': 'audit-total' }, `${fmtNumber(total)} entr${total === 1 ? 'y' : 'ies'}`));
  const go = (p) => navigate('audit', { ...params, page: String(p) });
  if (!res.entries.length && total > 0) {
    box.replaceChildren(head, pastLastPage({ page, pages, total, noun: 'entry', nouns: 'entries', go, testid: 'audit-past-end' }));
    return;
  }
  if (!res.entries.length) {
    box.replaceChildren(head, h('div', { class: 'empty', 'data-testid': 'audit-empty' }, h('strong', {}, 'No entries'), 'No deletion matches these filters.'));
    return;
  }
  const tbody = h('tbody');
  for (const e of res.entries) {
    const detailId = `audit-detail-${e.seq}`;
    const deleted = (e.channels || []).reduce((n, c) => n + sumDeleted(c.artefacts), 0);
    const toggle = h('button', {
      type: 'button', class: 'btn btn-ghost btn-sm', 'aria-expanded': 'false', 'aria-controls': detailId,
      'aria-label': `Show every channel's items for entry ${e.seq}`, 'data-testid': 'audit-expand',
    }, icon('chevronRight'));
    const detail = h('tr', { class: 'detail-row', id: detailId, hidden: true, 'data-testid': 'audit-detail' },
      h('td', { colspan: '8' }, h('div', { class: 'detail-inner' }, entryFacts(e), channelTable(e))));
    const row = h('tr', {
      'data-testid': 'audit-row', 'data-request-id': e.request_id, 'data-seq': String(e.seq),
      'data-amends': e.amends ? String(e.amends) : undefined, 'data-status': e.status,
    },
      h('td', {}, toggle),
      h('td', {}, h('div', { class: 'nowrap' }, fmtDate(e.completed_at)), h('div', { class: 'nowrap' }, fmtTime(e.completed_at, true)),
        h('div', { class: 'sub nowrap', title: `Requested ${fmtDateTime(e.requested_at, true)}` }, `requested ${sameDay(e.requested_at, e.completed_at) ? fmtTime(e.requested_at, true) : fmtDateTime(e.requested_at, true)}`)),
      actorCell(e.actor, session),
      h('td', {}, e.functionality, e.replay_of ? h('div', { class: 'sub mono wrap-any' }, `replay of ${e.replay_of}`) : null,
        e.amends ? h('div', { class: 'sub', 'data-testid': 'audit-late' }, `late result for entry #${e.amends}`) : null),
      h('td', { class: 'id-cell', 'data-testid': 'audit-contacts' }, contactList(e.contact_ids)),
      h('td', {}, statusBadge(e.status, 'audit-status'),
        e.status === 'failed' || e.status === 'refused' ? h('div', { class: 'sub' }, failureReason(e)) : null,
        h('div', { class: 'sub narrow-only' }, `${fmtNumber(deleted)} items deleted`),
        e.status === 'refused' ? null : receiptLink(e.request_id)),
      h('td', { class: 'num col-wide' }, fmtNumber(deleted)),
      h('td', { class: 'col-wide' }, h('span', { class: 'badge badge-setting nodot' }, e.setting || 'Data Deletion')));
    toggle.addEventListener('click', () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(open));
      toggle.replaceChildren(icon(open ? 'chevronDown' : 'chevronRight'));
      detail.hidden = !open;
      row.classList.toggle('expanded', open);
    });
    tbody.append(row, detail);
  }
  box.replaceChildren(head,
    h('div', { class: 'table-wrap' }, h('table', { class: 'fit', 'data-testid': 'audit-table' },
      h('caption', { class: 'visually-hidden' }, 'Audit log entries, newest first'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Expand')),
        ['When', 'User', 'Functionality', 'Contact IDs', 'Outcome'].map((t) => h('th', { scope: 'col' }, t)),
        h('th', { scope: 'col', class: 'num col-wide' }, 'Items deleted'),
        h('th', { scope: 'col', class: 'col-wide' }, 'Setting'))),
      tbody)),
    h('div', { class: 'table-foot' },
      h('span', { 'data-testid': 'audit-page' }, `Page ${fmtNumber(page)} of ${fmtNumber(pages)}`),
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', class: 'btn btn-sm', disabled: page <= 1, 'data-testid': 'audit-prev', onclick: () => go(page - 1) }, 'Previous'),
      h('button', { type: 'button', class: 'btn btn-sm', disabled: page >= pages, 'data-testid': 'audit-next', onclick: () => go(page + 1) }, 'Next')));
}

// reasonSelect offers the configured reasons: a deletion's, and those a
// legal hold is placed or lifted for, whose entries are in the log too. A
// code from the URL that is no longer configured is still offered, so the
// filter in force is always the one shown.
function reasonSelect(config, current) {
  const groups = [
    ['Deletion', (config && config.reasons) || []],
    ['Legal hold placed', (config && config.hold_reasons) || []],
    ['Legal hold lifted', (config && config.hold_lift_reasons) || []],
  ].filter(([, rs]) => rs.length);
  const known = groups.some(([, rs]) => rs.some((r) => r.code === current));
  return h('select', { id: 'a-reason', 'data-testid': 'audit-reason' },
    h('option', { value: '' }, 'Any reason'),
    current && !known ? h('option', { value: current, selected: true }, current) : null,
    groups.map(([label, rs]) => h('optgroup', { label },
      rs.map((r) => h('option', { value: r.code, selected: r.code === current }, r.label)))));
}

function sameDay(a, b) {
  return fmtDate(a) === fmtDate(b);
}

// actorCell shows who asked, marked SSO or local. The log holds principals
// only; an SSO user's display name is known for the signed-in user alone
// (from their session), so others' SSO entries show the principal. The
// principal is always in the title and data-principal.
function actorCell(actor, session) {
  const mine = session && session.display_name && actor === session.user;
  return h('td', { class: 'wrap-any', 'data-testid': 'audit-user-cell', 'data-principal': actor, title: actor },
    mine ? session.display_name : actor, ' ', accountBadge(actor));
}

// receiptLink downloads the signed receipt of a request (every entry of it,
// checkable with the published public key). It sits under the outcome it
// proves, so the table keeps its columns.
function receiptLink(requestID) {
  return h('div', { class: 'sub' }, h('a', {
    class: 'btn btn-ghost btn-sm', href: `/api/v1/audit/${encodeURIComponent(requestID)}/receipt`,
    download: `deletion-receipt-${requestID}.json`, 'data-testid': 'audit-receipt',
    'aria-label': `Receipt: download the signed receipt of request ${requestID}`,
  }, icon('download'), 'Receipt'));
}

function contactList(ids) {
  const list = ids || [];
  if (list.length <= 2) return list.map((id) => h('div', {}, id));
  return [h('div', {}, list[0]), h('div', { class: 'sub' }, `and ${fmtNumber(list.length - 1)} more`)];
}

// entryFacts: what identifies the entry in the chain and in its receipt.
function entryFacts(e) {
  const item = (label, value, testid) => [h('dt', {}, label), h('dd', { class: 'mono wrap-any', 'data-testid': testid }, value)];
  return h('dl', { class: 'facts', 'data-testid': 'audit-facts' },
    item('Request ID', e.request_id, 'audit-fact-request'),
    item('Entry', `#${e.seq}`, 'audit-fact-seq'),
    e.contact_ids && e.contact_ids.length > 2 ? item('Contact IDs', e.contact_ids.join(', '), 'audit-fact-contacts') : null,
    item('Hash', e.hash || '—', 'audit-fact-hash'),
    e.producer ? [h('dt', {}, 'Submitted by'), h('dd', { class: 'mono', 'data-testid': 'audit-fact-producer' }, producerText(e.producer))] : null);
}

// producerText says who published the request, as its signature proves.
function producerText(p) {
  if (p === 'unsigned') return 'an unsigned event (not verified)';
  const [kind, key] = p.split(':');
  return kind === 'upstream' ? `upstream system, key ${key}` : `erasure (web, CLI or replay), key ${key}`;
}

function purgeText(a) {
  if (a.purged_at) return `Purged ${fmtDateTime(a.purged_at, true)}`;
  if (a.purge_by) return `Purged by ${fmtDateTime(a.purge_by, true)}`;
  return '—';
}

function channelTable(e) {
  const chans = e.channels || [];
  if (!chans.length) return h('p', { class: 'card-note' }, 'No channel results were recorded.');
  const cols = ['Channel', 'Status', 'Artefact', 'Store', 'Before', 'Deleted', 'After', 'Physically removed'];
  return h('div', { class: 'table-wrap' }, h('table', { class: 'fit', 'data-testid': 'audit-channel-table' },
    h('caption', { class: 'visually-hidden' }, `Items of entry ${e.seq} per channel and artefact: before, deleted and after`),
    h('thead', {}, h('tr', {}, cols.map((t, i) => h('th', { scope: 'col', class: i >= 4 && i <= 6 ? 'num' : undefined }, t)))),
    h('tbody', {}, chans.flatMap((c) => {
      const arts = c.artefacts && c.artefacts.length ? c.artefacts : [null];
      return arts.map((a, i) => h('tr', { 'data-testid': `audit-channel-${c.channel}`, 'data-artefact': a ? a.artefact : undefined },
        h('td', {}, i === 0 ? channelLabel(c.channel) : ''),
        h('td', {}, i === 0 ? [statusBadge(c.status), c.error_code ? h('div', { class: 'sub' }, c.error_code) : null,
          c.interrupted ? h('div', { class: 'sub', 'data-testid': 'audit-interrupted' },
            'An earlier run was interrupted; what it deleted is gone but not counted here') : null] : ''),
        h('td', {}, a ? artefactLabel(a.artefact) : '—'),
        h('td', {}, a && a.store ? a.store : '—'),
        h('td', { class: 'num', 'data-testid': 'audit-before' }, a ? fmtNumber(a.before) : ''),
        h('td', { class: 'num', 'data-testid': 'audit-deleted' }, a ? fmtNumber(a.deleted) : ''),
        h('td', { class: 'num', 'data-testid': 'audit-after' }, a ? fmtNumber(a.after) : ''),
        h('td', { class: 'sub' }, a ? purgeText(a) : '')));
    }))));
}
