// The delete flow of the specification: a confirmation modal naming the
// contact and what will be removed per channel; on confirm the request is
// submitted and a 'Deleting Contact' modal shows live per-channel progress;
// on completion a success, not-found or failure toast appears top-right —
// unless the user closed the 'Deleting Contact' modal first, in which case
// nothing is shown for that request. The modal waits as long as the product
// promises (the request's deadline) plus a short grace, then says so and
// where the outcome will be recorded; an outcome that still arrives while it
// is open is shown, with its toast.

import { api } from './api.js';
import {
  h, icon, channelLabel, artefactLabel, orderChannels, fmtNumber, statusBadge, sumDeleted,
  failureReason, clear,
} from './dom.js';
import { openModal } from './modal.js';
import { toast } from './toast.js';
import { live, belongsTo } from './live.js';

// Seconds the modal waits past the promised deadline before it stops: the
// aggregator applies the deadline on a one-second sweep, and the outcome
// then still has to travel to the browser.
const GRACE_SECONDS = 5;

/**
 * confirmDelete({contact, returnFocus, onFinished})
 * contact: the /api/v1/contacts/{id} response.
 * onFinished({outcome, closedEarly, reason}) runs when the flow ends; reason
 * is how the progress modal closed ('link' when the user followed its link).
 */
export function confirmDelete({ contact, returnFocus, onFinished }) {
  const id = contact.contact_id;
  const name = contact.fields && contact.fields.customer_name;
  const error = h('p', { class: 'error-text', role: 'alert', 'data-testid': 'confirm-error', hidden: true });
  const cancel = h('button', {
    type: 'button', class: 'btn', 'data-testid': 'confirm-cancel-button', 'data-autofocus': true,
    onclick: () => modal.close('button'),
  }, 'Cancel');
  const confirm = h('button', {
    type: 'button', class: 'btn btn-danger', 'data-testid': 'confirm-delete-button',
    onclick: () => submit(),
  }, icon('trash'), 'Delete permanently');

  const modal = openModal({
    testid: 'confirm-delete-modal',
    title: 'Delete contact?',
    subtitle: 'This permanently removes the contact and all of its data from every channel. It cannot be undone.',
    icon: h('span', { class: 'modal-icon danger' }, icon('alert')),
    returnFocus,
    body: [
      h('p', {},
        'Contact ',
        h('code', { 'data-testid': 'confirm-contact-id' }, id),
        name ? [' (', h('strong', { 'data-testid': 'confirm-contact-name' }, name), ')'] : null,
        ' and everything below will be deleted:'),
      removalTable(contact),
      error,
    ],
    actions: [cancel, confirm],
  });

  async function submit() {
    confirm.disabled = true;
    cancel.disabled = true;
    clear(confirm).append(h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Requesting…');
    error.hidden = true;
    try {
      const accepted = await api('/api/v1/deletions', { method: 'POST', body: { contact_ids: [id] } });
      modal.close('program');
      showProgress({ accepted, contact, returnFocus, onFinished });
    } catch (err) {
      error.textContent = `The deletion was not started: ${err.message}`;
      error.hidden = false;
      confirm.disabled = false;
      cancel.disabled = false;
      clear(confirm).append(icon('trash'), 'Delete permanently');
      confirm.focus();
    }
  }
}

/** What will be removed, per channel, with counts; contact search last. */
function removalTable(contact) {
  const rows = (contact.artefacts || []).map((ch) => h('tr', { 'data-testid': `confirm-channel-${ch.channel}` },
    h('td', {}, h('span', { class: 'channel-name' }, channelLabel(ch.channel)),
      ch.last ? [' ', h('span', { class: 'badge badge-last nodot' }, 'Deleted last')] : null),
    h('td', {}, h('div', { class: 'artefact-list' },
      ch.artefacts.map((a) => h('span', {}, `${artefactLabel(a.artefact)} `, h('b', {}, fmtNumber(a.count)))))),
    h('td', { class: 'num', 'data-testid': 'confirm-channel-total' }, fmtNumber(ch.total))));
  if (!rows.length) {
    return h('div', { class: 'banner banner-warn' }, icon('alert'),
      h('div', { class: 'grow' }, contact.inventory_error
        ? 'The artefact counts could not be read right now. Deletion still covers every channel and artefact type.'
        : 'No artefact counts are available. Deletion still covers every channel.'));
  }
  return h('div', { class: 'table-box' }, h('table', { 'data-testid': 'confirm-removal-table' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Channel'), h('th', { scope: 'col' }, 'What is removed'), h('th', { scope: 'col', class: 'num' }, 'Items'))),
    h('tbody', {}, rows)));
}

/** The 'Deleting Contact' modal with live per-channel progress. */
function showProgress({ accepted, contact, returnFocus, onFinished }) {
  const rid = accepted.request_id;
  const channels = orderChannels(accepted.channels || []);
  const status = new Map(channels.map((c) => [c, { status: 'pending', deleted: 0 }]));
  let outcome = null;
  let timedOut = false;
  const started = Date.now();
  const deadline = accepted.deadline_seconds || 30;
  const expect = { digest: accepted.request_digest, contactIds: accepted.contact_ids };

  const rowEls = new Map();
  const tbody = h('tbody', {}, channels.map((ch) => {
    const badgeCell = h('td', { class: 'nowrap' });
    const countCell = h('td', { class: 'num' });
    const row = h('tr', { 'data-testid': `progress-row-${ch}`, 'data-channel': ch, 'data-status': 'pending' },
      h('td', {}, h('span', { class: 'channel-name' }, channelLabel(ch)),
        ch === 'contact-search' ? h('div', { class: 'sub card-note' }, 'Deleted last, once every other channel succeeded') : null),
      badgeCell, countCell);
    rowEls.set(ch, { row, badgeCell, countCell });
    return row;
  }));
  const bar = h('div', { class: 'progress-bar', role: 'progressbar', 'aria-label': 'Channels finished', 'aria-valuemin': '0', 'aria-valuemax': String(channels.length), 'aria-valuenow': '0' }, h('span'));
  const elapsed = h('span', { 'data-testid': 'deleting-elapsed' }, '0 s');
  const liveStatus = h('span', { class: 'live-status', 'data-testid': 'live-status' });
  const summary = h('p', { 'data-testid': 'deleting-summary', 'aria-live': 'polite' }, `Up to ${deadline} seconds. Channels are deleted in parallel; contact search goes last.`);
  const closeBtn = h('button', {
    type: 'button', class: 'btn', 'data-testid': 'deleting-close-button', 'data-autofocus': true,
    onclick: () => modal.close('button'),
  }, 'Close');

  const modal = openModal({
    testid: 'deleting-modal',
    title: 'Deleting Contact',
    subtitle: `Contact ${contact.contact_id}`,
    icon: h('span', { class: 'modal-icon info' }, h('span', { class: 'spinner', 'aria-hidden': 'true' })),
    returnFocus,
    body: [
      summary,
      h('div', { class: 'progress-meta' }, bar, elapsed, liveStatus),
      h('div', { class: 'table-box' }, h('table', { 'data-testid': 'deleting-progress-table' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Channel'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col', class: 'num' }, 'Deleted'))),
        tbody)),
    ],
    hint: 'Closing this window does not stop the deletion, but no result will be shown here. The Audit Log records it.',
    actions: [closeBtn],
    onClose: (reason) => {
      clearInterval(tick);
      unlisten();
      live.untrack(rid);
      // Closed before completion: no toast for this request, as specified.
      onFinished && onFinished({ outcome, closedEarly: !outcome, reason });
    },
  });
  modal.dialog.dataset.requestId = rid;
  const iconBox = modal.dialog.querySelector('.modal-icon');

  // Until a channel reports, say what it is doing: artefact channels run at
  // once; contact search waits for all of them.
  const pendingLabel = (ch) => (outcome ? 'Not run' : ch === 'contact-search' ? 'Waiting' : 'Deleting…');

  function render() {
    let finished = 0;
    for (const ch of channels) {
      const s = status.get(ch);
      const el = rowEls.get(ch);
      el.row.dataset.status = s.status;
      clear(el.badgeCell).append(statusBadge(s.status, `progress-status-${ch}`, pendingLabel(ch)));
      el.countCell.textContent = s.status === 'pending' || s.status === 'skipped' ? '—' : fmtNumber(s.deleted);
      if (s.status !== 'pending') finished += 1;
    }
    bar.setAttribute('aria-valuenow', String(finished));
    bar.firstChild.style.width = `${channels.length ? (finished / channels.length) * 100 : 0}%`;
  }

  const terminal = (st) => st === 'succeeded' || st === 'failed';

  // Progress: a channel shows the first result it reports; a redelivered
  // request's rerun (zero counts) or an older snapshot does not change it.
  function apply(ch, st, artefacts) {
    if (!status.has(ch)) { status.set(ch, { status: 'pending', deleted: 0 }); channels.push(ch); }
    const cur = status.get(ch);
    if (st === 'pending' || terminal(cur.status)) return;
    cur.status = st;
    cur.deleted = sumDeleted(artefacts);
  }

  // The outcome settles every channel, except that a channel already shown
  // as finished stays so when the deadline overtook its result: it did
  // finish, and the Audit Log records it as a late result.
  function settle(ch, st, artefacts, code) {
    if (!status.has(ch)) { status.set(ch, { status: 'pending', deleted: 0 }); channels.push(ch); }
    const cur = status.get(ch);
    if (terminal(cur.status) && (st === 'skipped' || (st === 'failed' && code === 'deadline_exceeded'))) return;
    cur.status = st;
    cur.deleted = sumDeleted(artefacts);
  }

  const OUTCOMES = {
    succeeded: {
      ok: true, title: 'Contact deleted', icon: 'check', cls: 'info',
      summary: () => 'Every channel confirmed the contact\u2019s data is gone.',
      toast: () => ({ kind: 'success', title: 'Contact deleted', message: `Contact ${contact.contact_id} and all of its data were permanently deleted.` }),
    },
    not_found: {
      ok: true, title: 'Contact not found', icon: 'info', cls: 'info',
      summary: () => 'No channel held any data of this contact: it does not exist or was already deleted.',
      toast: () => ({ kind: 'info', title: 'Contact not found', message: `Contact ${contact.contact_id} was not found in any store: it was already deleted or never existed. Nothing was deleted.` }),
    },
    refused: {
      ok: false, title: 'Deletion refused', icon: 'alert', cls: 'danger',
      summary: (out) => `The deletion was refused: ${failureReason(out)}. Try again.`,
      toast: (out) => ({ kind: 'error', title: 'Deletion refused', message: `Contact ${contact.contact_id}: ${failureReason(out)}.` }),
    },
    failed: {
      ok: false, title: 'Deletion failed', icon: 'alert', cls: 'danger',
      summary: (out) => `The deletion did not complete: ${failureReason(out)}. The contact stays searchable so it can be retried.`,
      toast: (out) => ({ kind: 'error', title: 'Deletion failed', message: `Contact ${contact.contact_id}: ${failureReason(out)}.` }),
    },
  };

  function finish(out) {
    if (outcome) return;
    outcome = out;
    for (const c of out.channels || []) settle(c.channel, c.status, c.artefacts, c.error_code);
    render();
    clearInterval(tick);
    const o = OUTCOMES[out.status] || OUTCOMES.failed;
    modal.dialog.dataset.outcome = out.status;
    bar.classList.add(o.ok ? 'succeeded' : 'failed');
    clear(iconBox).append(icon(o.icon));
    iconBox.className = `modal-icon ${o.cls}`;
    modal.setTitle(o.title);
    summary.textContent = o.summary(out);
    closeBtn.textContent = 'Done';
    const hint = modal.foot.querySelector('.hint');
    if (hint) hint.textContent = o.ok ? '' : 'The contact record shows this failure and lets you retry.';
    toast(o.toast(out));
    // The contact is gone: nothing left to look at in this modal.
    if (o.ok) setTimeout(() => modal.close('program'), 600);
  }

  // Past the promised deadline and the grace: stop presenting the deletion
  // as under way and say where its outcome will be. The modal still listens,
  // so a late outcome is shown here (with its toast) while it is open.
  function timeOut() {
    if (timedOut || outcome) return;
    timedOut = true;
    modal.dialog.dataset.timedOut = 'true';
    clear(iconBox).append(icon('info'));
    iconBox.className = 'modal-icon danger';
    modal.setTitle('No result yet');
    const link = h('a', {
      href: `#/audit?contact_id=${encodeURIComponent(contact.contact_id)}`, 'data-testid': 'deleting-audit-link',
      onclick: () => modal.close('link'),
    }, 'Audit Log');
    clear(summary).append(
      h('span', { 'data-testid': 'deleting-timeout' },
        `The deletion did not report back within its ${deadline} seconds. It may still finish: its outcome will be recorded in the `,
        link, ' and in this contact\u2019s deletion history.'));
    closeBtn.textContent = 'Close';
  }

  function onMessage(msg) {
    // Once decided, the modal stays as decided: later progress (a late or
    // rerun channel) is the Audit Log's to show.
    if (modal.closed || outcome) return;
    if (!belongsTo(msg, expect)) return;
    if (msg.type === 'progress') {
      apply(msg.channel, msg.status, msg.artefacts);
      render();
    } else if (msg.type === 'state') {
      if (msg.outcome) { finish(msg.outcome); return; }
      for (const r of msg.results || []) apply(r.channel, r.status, r.artefacts);
      render();
    } else if (msg.type === 'outcome') {
      finish(msg);
    }
  }

  // When the socket is down, poll instead, so a blocked websocket cannot
  // leave the modal waiting forever.
  let polling = false;
  async function poll() {
    if (polling || live.connected || modal.closed || outcome) return;
    polling = true;
    try {
      const st = await api(`/api/v1/deletions/${encodeURIComponent(rid)}`);
      onMessage({ type: 'state', ...st });
    } catch { /* next tick */ } finally { polling = false; }
  }

  const tick = setInterval(() => {
    const secs = Math.round((Date.now() - started) / 1000);
    if (!timedOut) elapsed.textContent = `${secs} s`;
    if (secs >= deadline + GRACE_SECONDS && !outcome) timeOut();
    if (secs % 3 === 0) poll();
  }, 1000);

  const showLive = (s) => {
    liveStatus.dataset.state = s;
    liveStatus.textContent = s === 'open' ? 'Live' : s === 'reconnecting' ? 'Reconnecting…' : 'Connecting…';
  };
  showLive(live.state);
  const unlisten = live.onChange(showLive);

  render();
  live.track(rid, onMessage, expect);
}
