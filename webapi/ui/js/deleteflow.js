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
import { confirmDeletion } from './confirm.js';

// Seconds the modal waits past the promised deadline before it stops: the
// aggregator applies the deadline on a one-second sweep, and the outcome
// then still has to travel to the browser.
const GRACE_SECONDS = 5;

// Pacing. On fast stores every channel and the outcome arrive within a
// fraction of a second, too fast to read. The modal shows each channel's
// report as one tick, at most one per TICK_MS, and the outcome only after
// the ticks and no sooner than MIN_VISIBLE_MS after it opened; a success
// then stays DONE_VISIBLE_MS before the modal closes itself. The clock runs
// while the modal shows progress; the outcome then states how long the
// deletion itself took.
const TICK_MS = 300;
const MIN_VISIBLE_MS = 1500;
const DONE_VISIBLE_MS = 1500;

/**
 * confirmDelete({contact, returnFocus, onFinished})
 * contact: the /api/v1/contacts/{id} response.
 * onFinished({outcome, closedEarly, reason}) runs when the flow ends; reason
 * is how the progress modal closed: 'link' when the user followed its link
 * and 'navigation' when they went to another page; either way the page that
 * started the flow is no longer the one to show.
 */
export function confirmDelete({ contact, returnFocus, onFinished }) {
  // The confirmation reads the contact again, asks for the reason and a
  // ticket, and hands over to showProgress (confirm.js).
  return confirmDeletion({ contactIds: [contact.contact_id], returnFocus, onFinished });
}

/** The 'Deleting Contact' modal with live per-channel progress. */
export function showProgress({ accepted, contact, returnFocus, onFinished }) {
  // contact.label names what is deleted: a contact, or a subject's contacts.
  const who = contact.label || `Contact ${contact.contact_id}`;
  const heldNote = () => {
    const n = (accepted.held_contact_ids || []).length;
    return n ? ` ${n === 1 ? '1 contact is' : `${n} contacts are`} under legal hold and ${n === 1 ? 'was' : 'were'} not deleted.` : '';
  };
  const rid = accepted.request_id;
  const channels = orderChannels(accepted.channels || []);
  const status = new Map(channels.map((c) => [c, { status: 'pending', deleted: 0 }]));
  let outcome = null; // the outcome shown
  let decided = null; // the outcome received, shown once its ticks are
  let tookMs = 0;
  let timedOut = false;
  const started = Date.now();
  const deadline = accepted.deadline_seconds || 30;
  const expect = { digest: accepted.request_digest, contactIds: accepted.contact_ids };
  // The Audit Log filtered to this request (and to the contact, when it is
  // one): its decision, any late result, nobody else's entries.
  const auditHref = `#/audit?${new URLSearchParams(contact.label ? { request_id: rid } : { contact_id: contact.contact_id, request_id: rid })}`;
  const auditLink = (text) => h('a', {
    href: auditHref, 'data-testid': 'deleting-audit-link', onclick: () => modal.close('link'),
  }, text);

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
  const bar = h('div', { class: 'progress-bar', role: 'progressbar', 'aria-label': 'Deletion progress', 'aria-valuemin': '0', 'data-testid': 'deleting-progress-bar' }, h('span'));
  const elapsed = h('span', { class: 'elapsed', 'data-testid': 'deleting-elapsed' }, fmtSeconds(0));
  const liveStatus = h('span', { class: 'live-status', 'data-testid': 'live-status' });
  const summary = h('p', { 'data-testid': 'deleting-summary', 'aria-live': 'polite' }, `Up to ${deadline} seconds. Channels are deleted in parallel; contact search goes last.`);
  const closeBtn = h('button', {
    type: 'button', class: 'btn', 'data-testid': 'deleting-close-button', 'data-autofocus': true,
    onclick: () => modal.close('button'),
  }, 'Close');

  const modal = openModal({
    testid: 'deleting-modal',
    title: 'Deleting Contact',
    subtitle: who,
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
      clearTimeout(pump);
      unlisten();
      live.untrack(rid);
      // Closed before completion was shown: no toast for this request, as
      // specified; the caller still learns an outcome that had arrived.
      onFinished && onFinished({ outcome: outcome || decided, closedEarly: !outcome, reason });
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
    // The last step is the decision and its audit entry: the bar is full
    // only when the outcome is shown, never while it is still awaited.
    const steps = channels.length + 1;
    const done = outcome ? steps : Math.min(finished, channels.length);
    bar.setAttribute('aria-valuemax', String(steps));
    bar.setAttribute('aria-valuenow', String(done));
    bar.setAttribute('aria-valuetext', outcome ? 'Finished' : `${finished} of ${channels.length} channels finished`);
    bar.firstChild.style.width = `${(done / steps) * 100}%`;
  }

  // Ticks: queued display steps, at least TICK_MS after the last one that
  // changed anything; a step that changes nothing takes no time of its own.
  // The outcome also waits for MIN_VISIBLE_MS.
  const queue = [];
  let pump = null;
  let lastTick = -Infinity;
  function enqueue(step) {
    queue.push(step);
    if (!pump) runQueue();
  }
  function runQueue() {
    pump = null;
    while (queue.length && !modal.closed) {
      const next = queue[0];
      const now = Date.now();
      const wait = Math.max(lastTick + TICK_MS - now, next.final ? MIN_VISIBLE_MS - (now - started) : 0);
      if (wait > 0) { pump = setTimeout(runQueue, wait); return; }
      queue.shift();
      if (next.run()) {
        lastTick = Date.now();
        render();
      }
    }
  }

  const terminal = (st) => st === 'succeeded' || st === 'failed';

  // Progress: a channel shows the first result it reports; a redelivered
  // request's rerun (zero counts) or an older snapshot does not change it.
  function apply(ch, st, artefacts) {
    if (!status.has(ch)) { status.set(ch, { status: 'pending', deleted: 0 }); channels.push(ch); }
    const cur = status.get(ch);
    if (st === 'pending' || terminal(cur.status)) return false;
    cur.status = st;
    cur.deleted = sumDeleted(artefacts);
    return true;
  }

  // The outcome settles every channel, except that a channel already shown
  // as finished stays so when the deadline overtook its result: it did
  // finish, and the Audit Log records it as a late result.
  function settle(ch, st, artefacts, code) {
    if (!status.has(ch)) { status.set(ch, { status: 'pending', deleted: 0 }); channels.push(ch); }
    const cur = status.get(ch);
    if (terminal(cur.status) && (st === 'skipped' || (st === 'failed' && code === 'deadline_exceeded'))) return false;
    const deleted = sumDeleted(artefacts);
    if (cur.status === st && cur.deleted === deleted) return false;
    cur.status = st;
    cur.deleted = deleted;
    return true;
  }

  const OUTCOMES = {
    succeeded: {
      ok: true, title: 'Contact deleted', icon: 'check', cls: 'info',
      summary: () => 'Every channel confirmed the contact\u2019s data is gone.',
      toast: (out) => ({ kind: 'success', title: contact.label ? 'Contacts deleted' : 'Contact deleted', message: `${who} and all of ${contact.label ? 'their' : 'its'} data were permanently deleted.${heldNoteOf(out)}` }),
    },
    not_found: {
      ok: true, title: 'Contact not found', icon: 'info', cls: 'info',
      summary: () => 'No channel held any data of this contact: it does not exist or was already deleted.',
      toast: (out) => ({ kind: 'info', title: 'Contact not found', message: `${who} was not found in any store: already deleted or never existed. Nothing was deleted.${heldNoteOf(out)}` }),
    },
    held: {
      ok: false, title: 'Deletion refused: legal hold', icon: 'alert', cls: 'danger',
      summary: () => 'Every contact of this request is under legal hold, so nothing was deleted. It can be deleted once the hold is lifted.',
      toast: () => ({ kind: 'error', title: 'Deletion refused: legal hold', message: `${who} is under legal hold. Nothing was deleted.` }),
    },
    refused: {
      ok: false, title: 'Deletion refused', icon: 'alert', cls: 'danger',
      summary: (out) => `The deletion was refused: ${failureReason(out)}. Try again.`,
      toast: (out) => ({ kind: 'error', title: 'Deletion refused', message: `${who}: ${failureReason(out)}.` }),
    },
    failed: {
      ok: false, title: 'Deletion failed', icon: 'alert', cls: 'danger',
      summary: (out) => `The deletion did not complete: ${failureReason(out)}. The contact stays searchable so it can be retried.`,
      toast: (out) => ({ kind: 'error', title: 'Deletion failed', message: `${who}: ${failureReason(out)}.` }),
    },
  };
  // Held contacts of a request that went ahead are named in its toast.
  function heldNoteOf(out) {
    const n = ((out && out.held_contact_ids) || []).length;
    return n ? ` ${n === 1 ? '1 contact is' : `${n} contacts are`} under legal hold and ${n === 1 ? 'was' : 'were'} not deleted.` : heldNote();
  }

  // An outcome is shown after the ticks of what it settles, channel by
  // channel in deletion order.
  function decide(out) {
    if (decided) return;
    decided = out;
    // The deletion's own duration, from the request to the decision, both
    // stamped by the pipeline: its events can beat the answer that opened
    // this modal.
    const own = Date.parse(out.completed_at) - Date.parse(out.requested_at);
    tookMs = Number.isFinite(own) && own >= 0 ? own : Date.now() - started;
    const byChannel = new Map((out.channels || []).map((c) => [c.channel, c]));
    for (const ch of orderChannels([...byChannel.keys()])) {
      const c = byChannel.get(ch);
      enqueue({ run: () => settle(c.channel, c.status, c.artefacts, c.error_code) });
    }
    enqueue({ final: true, run: () => { finish(out); return true; } });
  }

  function finish(out) {
    if (outcome) return;
    outcome = out;
    for (const c of out.channels || []) settle(c.channel, c.status, c.artefacts, c.error_code);
    render();
    clearInterval(tick);
    elapsed.textContent = `Finished in ${fmtSeconds(tookMs)}`;
    const o = OUTCOMES[out.status] || OUTCOMES.failed;
    modal.dialog.dataset.outcome = out.status;
    bar.classList.add(o.ok ? 'succeeded' : 'failed');
    clear(iconBox).append(icon(o.icon));
    iconBox.className = `modal-icon ${o.cls}`;
    modal.setTitle(o.title);
    clear(summary).append(o.summary(out), ' ', auditLink(`View audit entry${out.audit_seq ? ` #${out.audit_seq}` : ''}`));
    closeBtn.textContent = 'Done';
    const hint = modal.foot.querySelector('.hint');
    if (hint) hint.textContent = o.ok ? '' : 'The contact record shows this failure and lets you retry.';
    toast(o.toast(out));
    // The contact is gone: nothing left to look at in this modal.
    if (o.ok) setTimeout(() => modal.close('program'), DONE_VISIBLE_MS);
  }

  // Past the promised deadline and the grace: stop presenting the deletion
  // as under way and say where its outcome will be. The modal still listens,
  // so a late outcome is shown here (with its toast) while it is open.
  function timeOut() {
    if (timedOut || decided) return;
    timedOut = true;
    modal.dialog.dataset.timedOut = 'true';
    clear(iconBox).append(icon('info'));
    iconBox.className = 'modal-icon danger';
    modal.setTitle('No result yet');
    const link = auditLink('Audit Log');
    clear(summary).append(
      h('span', { 'data-testid': 'deleting-timeout' },
        `The deletion did not report back within its ${deadline} seconds. It may still finish: its outcome will be recorded in the `,
        link, ' and in this contact\u2019s deletion history.'));
    closeBtn.textContent = 'Close';
  }

  function onMessage(msg) {
    // Once decided, the modal stays as decided: later progress (a late or
    // rerun channel) is the Audit Log's to show.
    if (modal.closed || decided) return;
    if (!belongsTo(msg, expect)) return;
    if (msg.type === 'progress') {
      enqueue({ run: () => apply(msg.channel, msg.status, msg.artefacts) });
    } else if (msg.type === 'state') {
      if (msg.outcome) { decide(msg.outcome); return; }
      for (const r of msg.results || []) enqueue({ run: () => apply(r.channel, r.status, r.artefacts) });
    } else if (msg.type === 'outcome') {
      decide(msg);
    }
  }

  // When the socket is down, poll instead, so a blocked websocket cannot
  // leave the modal waiting forever.
  let polling = false;
  async function poll() {
    if (polling || live.connected || modal.closed || decided) return;
    polling = true;
    try {
      const st = await api(`/api/v1/deletions/${encodeURIComponent(rid)}`);
      onMessage({ type: 'state', ...st });
    } catch { /* next tick */ } finally { polling = false; }
  }

  // Tenths of a second while they mean something, then seconds.
  let lastPoll = started;
  const tick = setInterval(() => {
    const ms = Date.now() - started;
    if (!timedOut && !outcome) elapsed.textContent = fmtSeconds(ms);
    if (ms >= (deadline + GRACE_SECONDS) * 1000 && !decided) timeOut();
    if (Date.now() - lastPoll >= 3000) { lastPoll = Date.now(); poll(); }
  }, 100);

  const showLive = (s) => {
    liveStatus.dataset.state = s;
    liveStatus.textContent = s === 'open' ? 'Live' : s === 'reconnecting' ? 'Reconnecting…' : 'Connecting…';
  };
  showLive(live.state);
  const unlisten = live.onChange(showLive);

  render();
  live.track(rid, onMessage, expect);
}

function fmtSeconds(ms) {
  return ms < 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 1000)} s`;
}
