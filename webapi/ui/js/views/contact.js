// View Contact Record: details, artefacts by channel with counts, and the
// deletion history. A failed deletion is shown as such, with Retry. The
// 'Delete Contact' button is rendered only for users who may delete.

import { api, ApiError } from '../api.js';
import {
  h, icon, fmtDateTime, fmtNumber, channelLabel, artefactLabel, statusBadge, failureReason, sumDeleted,
} from '../dom.js';
import { confirmDelete } from '../deleteflow.js';
import { changeHold } from '../holdflow.js';
import { live } from '../live.js';

// The record page follows its contact over the websocket, so a deletion
// decided elsewhere (another tab, another user) or a hold placed or lifted
// shows at once; stopWatching ends the current page's watch.
let stopWatching = () => {};

// Fields shown first, in this order; any others follow.
const DETAIL_FIELDS = [
  ['initiation_timestamp', 'Initiated', 'time'],
  ['disconnect_timestamp', 'Disconnected', 'time'],
  ['channel', 'Channel'],
  ['subtype', 'Subtype'],
  ['customer_name', 'Customer'],
  ['customer_phone', 'Phone'],
  ['customer_email', 'Email'],
  ['agent', 'Agent'],
  ['queue', 'Queue'],
  ['instance', 'Instance'],
];

export function renderContact(main, { id, navigate, setTitle, session, lastSearch }) {
  setTitle('Contact record', id);
  main.replaceChildren(h('div', { class: 'empty', 'aria-busy': 'true' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' Loading contact…'));
  load(main, { id, navigate, session, lastSearch });
}

async function load(main, ctx, focusSel) {
  let c;
  stopWatching();
  stopWatching = () => {};
  try {
    c = await api(`/api/v1/contacts/${encodeURIComponent(ctx.id)}`);
  } catch (err) {
    const gone = err instanceof ApiError && err.status === 404;
    const deleted = gone && err.data && err.data.deleted;
    main.replaceChildren(h('div', { class: 'card' }, h('div', { class: 'empty', 'data-testid': gone ? 'contact-not-found' : 'contact-error', role: gone ? undefined : 'alert' },
      h('strong', {}, deleted ? 'Contact deleted' : gone ? 'Contact not found' : 'The contact could not be loaded'),
      deleted
        ? h('span', { 'data-testid': 'contact-deleted-by' },
          `This contact was deleted by ${deleted.requested_by} on ${fmtDateTime(deleted.completed_at || deleted.requested_at)}. `,
          h('a', { href: `#/audit?contact_id=${encodeURIComponent(ctx.id)}&request_id=${encodeURIComponent(deleted.request_id)}`, 'data-testid': 'contact-deleted-audit-link' },
            `View audit entry${deleted.audit_seq ? ` #${deleted.audit_seq}` : ''}`))
        : gone ? 'There is no contact with this ID. It may have been deleted.' : err.message,
      h('p', { class: 'form-actions' }, h('a', { class: 'btn', href: backHref(ctx) }, 'Back to Contact Search')))));
    return;
  }
  if (!main.isConnected) return;
  render(main, c, ctx);
  // A deletion decided or a hold changed elsewhere re-reads the record,
  // unless a modal of this page is open (the flow there re-reads it itself).
  const stop = live.watchContacts([c.contact_id], () => {
    if (!main.isConnected || main.dataset.contactId !== c.contact_id) { stop(); return; }
    if (document.querySelector('#modal-root .modal')) return;
    load(main, ctx, '[data-testid=delete-contact-button],[data-testid=place-hold-button],[data-testid=lift-hold-button]');
  });
  stopWatching = stop;
  // A reload replaces the button that had focus: put focus back on its
  // successor rather than letting it fall to the page body.
  if (focusSel) {
    const el = focusSel.split(',').map((sel) => main.querySelector(sel)).find(Boolean);
    (el || main).focus();
  }
}

function backHref(ctx) { return ctx.lastSearch || '#/search'; }

function render(main, c, ctx) {
  const latest = c.deletions[0];
  const reload = (focusSel) => load(main, ctx, focusSel);

  const startDelete = (btn) => confirmDelete({
    contact: c,
    returnFocus: btn,
    onFinished: ({ outcome, reason, stale }) => {
      // Left for the Audit Log or another page: that page is being shown,
      // not this one, and the user stays there.
      if (reason === 'link' || reason === 'navigation') return;
      if (stale) { reload('[data-testid=back-to-search]'); return; }
      if (outcome && (outcome.status === 'succeeded' || outcome.status === 'not_found')) {
        ctx.navigate('search-back');
      } else {
        reload('[data-testid=retry-delete-button],[data-testid=delete-contact-button]');
      }
    },
  });

  // A held contact cannot be deleted: the button stays, disabled, and says
  // why (for screen readers too, through aria-describedby).
  const held = c.hold;
  const deleteBtn = c.can_delete
    ? h('button', {
      type: 'button', class: 'btn btn-danger', 'data-testid': 'delete-contact-button', disabled: !!held,
      'aria-describedby': held ? 'delete-disabled-reason' : undefined,
      title: held ? 'Under legal hold: it cannot be deleted until the hold is lifted' : undefined,
      onclick: (e) => startDelete(e.currentTarget),
    }, icon('trash'), 'Delete Contact')
    : null;
  const holdBtn = c.can_hold
    ? h('button', {
      type: 'button', class: 'btn', 'data-testid': held ? 'lift-hold-button' : 'place-hold-button',
      onclick: (e) => changeHold({ contact: c, lift: !!held, returnFocus: e.currentTarget, onDone: () => reload('[data-testid=lift-hold-button],[data-testid=place-hold-button]') }),
    }, icon('shield'), held ? 'Lift legal hold' : 'Place legal hold')
    : null;

  const banners = [];
  if (held) {
    banners.push(h('div', { class: 'banner banner-warn', 'data-testid': 'hold-banner' }, icon('shield'),
      h('div', { class: 'grow' },
        h('p', { class: 'banner-title' }, 'Under legal hold'),
        h('p', { id: 'delete-disabled-reason', 'data-testid': 'delete-disabled-reason' },
          `${held.reason_label}${held.ticket ? ` (${held.ticket})` : ''}. Placed by ${held.placed_by} on ${fmtDateTime(held.placed_at)}. `,
          'Nothing of this contact can be deleted until the hold is lifted.'))));
  }
  if (latest && latest.status === 'failed') {
    banners.push(h('div', { class: 'banner banner-error', 'data-testid': 'deletion-failed-banner' }, icon('alert'),
      h('div', { class: 'grow' },
        h('p', { class: 'banner-title' }, 'The last deletion of this contact failed'),
        h('p', {}, `${fmtDateTime(latest.completed_at || latest.requested_at)}, requested by ${latest.requested_by}: ${failureReason(latest)}. The contact is still stored and searchable.`)),
      c.can_delete ? h('button', { type: 'button', class: 'btn btn-danger btn-sm', 'data-testid': 'retry-delete-button', disabled: !!held, 'aria-describedby': held ? 'delete-disabled-reason' : undefined, onclick: (e) => startDelete(e.currentTarget) }, icon('retry'), 'Retry deletion') : null));
  } else if (latest && latest.status === 'pending') {
    banners.push(h('div', { class: 'banner banner-info', 'data-testid': 'deletion-pending-banner' }, icon('info'),
      h('div', { class: 'grow' },
        h('p', { class: 'banner-title' }, 'A deletion of this contact is in progress'),
        h('p', {}, `Requested ${fmtDateTime(latest.requested_at)} by ${latest.requested_by}.`)),
      h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'refresh-contact-button', onclick: () => reload('[data-testid=refresh-contact-button]') }, 'Refresh')));
  }

  const f = c.fields || {};
  const shown = new Set(['contact_id']);
  const detailItems = [h('dt', {}, 'Contact ID'), h('dd', { class: 'mono', 'data-testid': 'detail-contact_id' }, c.contact_id)];
  for (const [k, label, kind] of DETAIL_FIELDS) {
    shown.add(k);
    if (f[k] === undefined || f[k] === '') continue;
    detailItems.push(h('dt', {}, label), h('dd', { 'data-testid': `detail-${k}` }, kind === 'time' ? fmtDateTime(f[k], true) : String(f[k])));
  }
  for (const k of Object.keys(f).sort()) {
    if (shown.has(k) || f[k] === '' || f[k] === null || typeof f[k] === 'object') continue;
    detailItems.push(h('dt', {}, artefactLabel(k)), h('dd', { 'data-testid': `detail-${k}` }, String(f[k])));
  }

  main.dataset.contactId = c.contact_id;
  main.replaceChildren(
    h('div', { class: 'page-head' },
      h('div', { class: 'grow' },
        h('h1', { 'data-testid': 'contact-title' }, f.customer_name ? `Contact · ${f.customer_name}` : 'Contact record'),
        h('div', { class: 'record-id' }, h('span', { 'data-testid': 'contact-id' }, c.contact_id),
          // A request that deleted others but left this contact under hold is not its success.
          latest ? statusBadge((latest.held_contact_ids || []).includes(c.contact_id) ? 'held' : latest.status, 'contact-deletion-status') : null,
          held ? h('span', { class: 'badge badge-held nodot', 'data-testid': 'contact-hold-badge' }, icon('shield'), 'Legal hold') : null)),
      h('div', { class: 'page-actions' },
        h('a', { class: 'btn', href: backHref(ctx), 'data-testid': 'back-to-search' }, 'Back to results'),
        holdBtn,
        deleteBtn)),
    ...banners,
    h('div', { class: 'grid-2' },
      h('section', { class: 'card', 'aria-labelledby': 'details-title' },
        h('div', { class: 'card-head' }, h('h2', { id: 'details-title' }, 'Details')),
        h('div', { class: 'card-body' }, h('dl', { class: 'details', 'data-testid': 'contact-details' }, detailItems))),
      artefactsCard(c)),
    historyCard(c, startDelete));
}

function artefactsCard(c) {
  const body = c.artefacts
    ? h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'artefacts-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Channel'), h('th', { scope: 'col' }, 'Artefacts'), h('th', { scope: 'col', class: 'num' }, 'Total'))),
      h('tbody', {}, c.artefacts.map((ch) => h('tr', { 'data-testid': `artefacts-${ch.channel}`, 'data-total': String(ch.total) },
        h('td', { class: 'nowrap' }, h('span', { class: 'channel-name' }, channelLabel(ch.channel)),
          ch.last ? h('div', {}, h('span', { class: 'badge badge-last nodot', title: 'Deleted only after every other channel succeeded' }, 'Deleted last')) : null),
        h('td', {}, h('div', { class: 'artefact-list' }, ch.artefacts.map((a) => h('span', { 'data-testid': `artefact-${a.artefact}` }, `${artefactLabel(a.artefact)} `, h('b', {}, fmtNumber(a.count)))))),
        h('td', { class: 'num' }, fmtNumber(ch.total)))))))
    : h('div', { class: 'card-body' }, h('div', { class: 'banner banner-warn', 'data-testid': 'inventory-error' }, icon('alert'),
      h('div', { class: 'grow' }, c.inventory_error || 'Artefact counts are unavailable.')));
  const total = (c.artefacts || []).reduce((n, ch) => n + ch.total, 0);
  return h('section', { class: 'card', 'aria-labelledby': 'artefacts-title' },
    h('div', { class: 'card-head' }, h('h2', { id: 'artefacts-title', class: 'grow' }, 'Artefacts by channel'),
      c.artefacts ? h('span', { class: 'card-note' }, `${fmtNumber(total)} items stored`) : null),
    body);
}

function historyCard(c, startDelete) {
  const rows = c.deletions.map((d, i) => h('tr', { 'data-testid': 'deletion-row', 'data-request-id': d.request_id, 'data-status': d.status },
    h('td', { class: 'nowrap' }, fmtDateTime(d.requested_at), h('div', { class: 'sub mono' }, d.request_id)),
    h('td', {}, d.requested_by, h('div', { class: 'sub' }, d.functionality),
      d.reason_code || d.ticket ? h('div', { class: 'sub', 'data-testid': 'deletion-reason' }, [d.reason_code, d.ticket].filter(Boolean).join(' · ')) : null,
      (d.held_contact_ids || []).includes(c.contact_id) ? h('div', { class: 'sub' }, 'Left alone: under legal hold') : null),
    h('td', {}, statusBadge(d.status), d.status === 'failed' ? h('div', { class: 'sub' }, failureReason(d)) : null),
    h('td', {}, h('div', { class: 'artefact-list' }, (d.channels || []).map((ch) => h('span', {}, `${channelLabel(ch.channel)}: `,
      h('b', {}, ch.status === 'succeeded' ? `${fmtNumber(sumDeleted(ch.artefacts))} deleted` : ch.status)))) ),
    h('td', { class: 'num' }, i === 0 && d.status === 'failed' && c.can_delete && !c.hold
      ? h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'history-retry-button', onclick: (e) => startDelete(e.currentTarget) }, icon('retry'), 'Retry')
      : null)));
  return h('section', { class: 'card', 'aria-labelledby': 'history-title' },
    h('div', { class: 'card-head' }, h('h2', { id: 'history-title', class: 'grow' }, 'Deletion history')),
    rows.length
      ? h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'deletion-history' },
        h('thead', {}, h('tr', {}, ['Requested', 'By', 'Outcome', 'Channels', ''].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows)))
      : h('div', { class: 'empty', 'data-testid': 'deletion-history-empty' }, 'No deletion has been requested for this contact.'));
}
