// The confirmation of a deletion, of one contact or of several (a data
// subject's). It reads every contact again when it opens, because another
// tab or another user may have deleted one or placed it under legal hold
// since the page was drawn; lists each contact with what every channel
// holds of it; says which are already deleted (by whom, when, with a link
// to the audit entry), held or being deleted; asks for the reason and an
// optional ticket; and submits one request for the contacts that can go,
// then hands over to the 'Deleting Contact' modal.

import { api, ApiError } from './api.js';
import { h, icon, channelLabel, artefactLabel, fmtNumber, fmtDateTime, clear, uid } from './dom.js';
import { openModal } from './modal.js';
import { showProgress } from './deleteflow.js';

let configPromise = null;
function config() {
  if (!configPromise) configPromise = api('/api/v1/config').catch((err) => { configPromise = null; throw err; });
  return configPromise;
}

// The ticket rule of the event schema: a case reference, never personal
// data (no spaces, '@' or '+', no run of 9 digits that could be a phone
// number).
const TICKET_RE = /^[A-Za-z0-9._:/-]{1,64}$/;
const TICKET_DIGITS_RE = /[0-9](?:[._:/-]*[0-9]){8}/;

/** Why a ticket is refused, or '' when it is fine (or empty). */
export function ticketProblem(v) {
  if (!v) return '';
  if (!TICKET_RE.test(v)) return 'Use up to 64 letters, digits and . _ : / - only (no spaces).';
  if (TICKET_DIGITS_RE.test(v)) return 'This looks like a phone number. Enter the case reference, not personal data.';
  return '';
}

/** A field with a label, an input and a message slot, wired for screen readers. */
function field(label, input, hint) {
  const id = uid('f');
  const hintId = `${id}-hint`;
  const errId = `${id}-err`;
  input.id = id;
  input.setAttribute('aria-describedby', `${hintId} ${errId}`);
  const err = h('p', { class: 'error-text', id: errId, role: 'alert', hidden: true, 'data-testid': `${input.dataset.testid}-error` });
  return {
    el: h('div', { class: 'field' }, h('label', { for: id }, label), input, h('p', { class: 'hint', id: hintId }, hint), err),
    setError(msg) {
      err.textContent = msg;
      err.hidden = !msg;
      if (msg) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
    },
  };
}

/**
 * confirmDeletion({contactIds, returnFocus, onFinished})
 * onFinished gets what showProgress gives, or {outcome: null, stale: true,
 * reason} when the confirmation found a contact gone and closed without a
 * request.
 */
export function confirmDeletion({ contactIds, returnFocus, onFinished }) {
  const single = contactIds.length === 1;
  const content = h('div', { 'aria-busy': 'true', 'data-testid': 'confirm-loading' },
    h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' Checking what is stored now…');
  const error = h('p', { class: 'error-text', role: 'alert', 'data-testid': 'confirm-error', hidden: true });
  const cancel = h('button', {
    type: 'button', class: 'btn', 'data-testid': 'confirm-cancel-button', 'data-autofocus': true,
    onclick: () => modal.close('button'),
  }, 'Cancel');
  const confirm = h('button', {
    type: 'button', class: 'btn btn-danger', 'data-testid': 'confirm-delete-button', disabled: true,
    onclick: () => submit(),
  }, icon('trash'), 'Delete permanently');
  let submitted = false;
  // stale: a contact was found gone since the page was drawn; the page is
  // told when the confirmation closes, so it can show that too.
  let stale = false;
  let deletable = [];
  let reasonSel = null;
  let ticketIn = null;
  let ticketField = null;

  const modal = openModal({
    testid: 'confirm-delete-modal',
    title: single ? 'Delete contact?' : `Delete ${fmtNumber(contactIds.length)} contacts?`,
    subtitle: 'This permanently removes the data from every channel. It cannot be undone.',
    icon: h('span', { class: 'modal-icon danger' }, icon('alert')),
    returnFocus,
    body: [content, error],
    actions: [cancel, confirm],
    onClose: (reason) => { if (!submitted && stale && onFinished) onFinished({ outcome: null, stale: true, reason }); },
  });

  load();

  async function load() {
    let inv;
    let cfg;
    try {
      [inv, cfg] = await Promise.all([
        api('/api/v1/contacts/inventory', { method: 'POST', body: { contact_ids: contactIds } }),
        config(),
      ]);
    } catch (err) {
      if (modal.closed) return;
      content.removeAttribute('aria-busy');
      clear(content).append(h('p', { class: 'error-text', role: 'alert' }, `The contacts could not be read: ${err.message}`));
      return;
    }
    if (!modal.closed) render(inv.contacts, cfg);
  }

  function render(contacts, cfg) {
    content.removeAttribute('aria-busy');
    content.removeAttribute('data-testid');
    deletable = contacts.filter((c) => c.found && !c.hold && !c.pending);
    stale = contacts.some((c) => !c.found);
    const notices = [];
    for (const c of contacts) {
      if (!c.found && c.deleted) {
        const d = c.deleted;
        notices.push(h('div', { class: 'banner banner-info', 'data-testid': 'confirm-already-deleted', 'data-contact-id': c.contact_id }, icon('info'),
          h('div', { class: 'grow' },
            h('p', { class: 'banner-title' }, single ? 'This contact was already deleted' : `Contact ${c.contact_id} was already deleted`),
            h('p', {}, `Deleted by ${d.requested_by} on ${fmtDateTime(d.completed_at || d.requested_at)}. Nothing of it is left to delete. `,
              h('a', { href: `#/audit?contact_id=${encodeURIComponent(c.contact_id)}&request_id=${encodeURIComponent(d.request_id)}`, 'data-testid': 'confirm-audit-link', onclick: () => modal.close('link') },
                `View audit entry${d.audit_seq ? ` #${d.audit_seq}` : ''}`)))));
      } else if (!c.found) {
        notices.push(h('div', { class: 'banner banner-info', 'data-testid': 'confirm-not-found', 'data-contact-id': c.contact_id }, icon('info'),
          h('div', { class: 'grow' }, h('p', {}, `Contact ${c.contact_id} is no longer in Contact Search: it was deleted or never existed.`))));
      } else if (c.hold) {
        notices.push(h('div', { class: 'banner banner-warn', 'data-testid': 'confirm-held', 'data-contact-id': c.contact_id }, icon('shield'),
          h('div', { class: 'grow' },
            h('p', { class: 'banner-title' }, single ? 'This contact is under legal hold' : `Contact ${c.contact_id} is under legal hold`),
            h('p', {}, `${c.hold.reason_label}${c.hold.ticket ? ` (${c.hold.ticket})` : ''}, placed by ${c.hold.placed_by} on ${fmtDateTime(c.hold.placed_at)}. It cannot be deleted until the hold is lifted${single ? '.' : ', and is left out of this deletion.'}`))));
      } else if (c.pending) {
        notices.push(h('div', { class: 'banner banner-info', 'data-testid': 'confirm-pending', 'data-contact-id': c.contact_id }, icon('info'),
          h('div', { class: 'grow' }, h('p', {}, `A deletion of contact ${c.contact_id} is already under way (requested by ${c.pending.requested_by} at ${fmtDateTime(c.pending.requested_at)}). It is left out.`))));
      }
    }
    const parts = [...notices];
    if (single && deletable.length === 1) {
      const c = deletable[0];
      const name = c.fields && c.fields.customer_name;
      parts.push(h('p', {},
        'Contact ', h('code', { 'data-testid': 'confirm-contact-id' }, c.contact_id),
        name ? [' (', h('strong', { 'data-testid': 'confirm-contact-name' }, name), ')'] : null,
        ' and everything below will be deleted:'), removalTable(c));
    } else if (deletable.length) {
      parts.push(h('p', { 'data-testid': 'confirm-summary' },
        `${fmtNumber(deletable.length)} contact${deletable.length === 1 ? '' : 's'} and everything below will be deleted in one request:`),
      contactsTable(deletable));
    }
    if (deletable.length) {
      reasonSel = h('select', { 'data-testid': 'confirm-reason', required: true },
        (cfg.reasons || []).map((r, i) => h('option', { value: r.code, selected: i === 0 }, r.label)));
      ticketIn = h('input', { type: 'text', 'data-testid': 'confirm-ticket', maxlength: '64', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. INC-20431' });
      ticketField = field('Ticket reference (optional)', ticketIn, 'The case this deletion answers. No names, phone numbers or email addresses.');
      ticketIn.addEventListener('input', () => ticketField.setError(''));
      parts.push(h('div', { class: 'filters confirm-why' },
        field('Reason', reasonSel, 'Recorded in the audit log with the deletion.').el, ticketField.el));
      if (!confirm.isConnected) modal.foot.append(confirm);
      cancel.textContent = 'Cancel';
      confirm.disabled = false;
      confirm.textContent = '';
      confirm.append(icon('trash'), deletable.length === 1 ? 'Delete permanently' : `Delete ${fmtNumber(deletable.length)} contacts permanently`);
    } else {
      const held = contacts.some((c) => c.hold) && contacts.every((c) => c.hold || !c.found);
      modal.setTitle(held ? 'Deletion not possible' : 'Nothing to delete');
      modal.setSubtitle(held ? 'Nothing was deleted.' : 'There is nothing of this data left to delete.');
      // Nothing can go: no button offers to delete anything.
      confirm.remove();
      cancel.textContent = 'Close';
      cancel.disabled = false;
    }
    clear(content).append(...parts);
  }

  async function submit() {
    const problem = ticketProblem(ticketIn.value.trim());
    ticketField.setError(problem);
    if (problem) { ticketIn.focus(); return; }
    confirm.disabled = true;
    cancel.disabled = true;
    clear(confirm).append(h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Requesting…');
    error.hidden = true;
    const ids = deletable.map((c) => c.contact_id);
    try {
      const body = { contact_ids: ids, reason_code: reasonSel.value };
      if (ticketIn.value.trim()) body.ticket = ticketIn.value.trim();
      const accepted = await api('/api/v1/deletions', { method: 'POST', body });
      submitted = true;
      modal.close('program');
      const c = deletable[0];
      showProgress({
        accepted,
        contact: ids.length === 1 ? c : { contact_id: ids[0], label: `${fmtNumber(ids.length)} contacts`, contact_ids: ids },
        returnFocus,
        onFinished,
      });
    } catch (err) {
      cancel.disabled = false;
      if (err instanceof ApiError && (err.code === 'legal_hold' || err.code === 'deletion_in_progress')) {
        // Something changed since the confirmation opened: show it as it is now.
        error.textContent = `Not started: ${err.message}.`;
        error.hidden = false;
        load();
        return;
      }
      error.textContent = `The deletion was not started: ${err.message}`;
      error.hidden = false;
      confirm.disabled = false;
      clear(confirm).append(icon('trash'), 'Delete permanently');
      confirm.focus();
    }
  }
}

/** What will be removed of one contact, per channel, with counts; contact search last. */
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
    h('caption', { class: 'visually-hidden' }, 'What is removed, per channel'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Channel'), h('th', { scope: 'col' }, 'What is removed'), h('th', { scope: 'col', class: 'num' }, 'Items'))),
    h('tbody', {}, rows)));
}

/** Several contacts, one row each, with per-channel item counts. */
function contactsTable(contacts) {
  return h('div', { class: 'table-box confirm-contacts' }, h('table', { class: 'dense', 'data-testid': 'confirm-contacts-table' },
    h('caption', { class: 'visually-hidden' }, 'Contacts to delete, with the items each channel holds'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Contact'), h('th', { scope: 'col' }, 'Items per channel'), h('th', { scope: 'col', class: 'num' }, 'Total'))),
    h('tbody', {}, contacts.map((c) => {
      const f = c.fields || {};
      return h('tr', { 'data-testid': 'confirm-contact-row', 'data-contact-id': c.contact_id },
        h('td', {}, h('code', {}, c.contact_id),
          h('div', { class: 'sub' }, [f.channel, fmtDateTime(f.initiation_timestamp)].filter((v) => v && v !== '—').join(' · '))),
        h('td', {}, c.artefacts
          ? h('div', { class: 'artefact-list' }, c.artefacts.filter((ch) => ch.total > 0).map((ch) => h('span', { 'data-channel': ch.channel }, `${channelLabel(ch.channel)} `, h('b', {}, fmtNumber(ch.total)))))
          : h('span', { class: 'sub' }, c.inventory_error || 'Counts unavailable')),
        h('td', { class: 'num' }, fmtNumber(c.total)));
    }))));
}
