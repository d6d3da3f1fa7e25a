// Placing and lifting a legal hold on a contact: a dialog asking for the
// reason (the configured list) and an optional ticket. The change is applied
// and audited by the pipeline; the dialog waits for it, then the record
// shows the hold.

import { api } from './api.js';
import { h, icon, clear, uid } from './dom.js';
import { openModal } from './modal.js';
import { toast } from './toast.js';
import { ticketProblem } from './confirm.js';

/**
 * changeHold({contact, lift, returnFocus, onDone})
 * contact: the /api/v1/contacts/{id} response. onDone runs after a change
 * was applied (or accepted), to reload the record.
 */
export async function changeHold({ contact, lift, returnFocus, onDone }) {
  const id = contact.contact_id;
  let cfg;
  try { cfg = await api('/api/v1/config'); } catch (err) { toast({ kind: 'error', title: 'Legal hold', message: err.message }); return; }
  const reasons = (lift ? cfg.hold_lift_reasons : cfg.hold_reasons) || [];
  const rid = uid('hold-reason');
  const tid = uid('hold-ticket');
  const reason = h('select', { id: rid, 'data-testid': 'hold-reason', required: true },
    h('option', { value: '' }, 'Choose a reason…'), reasons.map((r) => h('option', { value: r.code }, r.label)));
  const ticket = h('input', { id: tid, type: 'text', 'data-testid': 'hold-ticket', maxlength: '64', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. LEGAL-2026-114', 'aria-describedby': `${tid}-hint` });
  const error = h('p', { class: 'error-text', role: 'alert', 'data-testid': 'hold-error', hidden: true });
  const cancel = h('button', { type: 'button', class: 'btn', 'data-testid': 'hold-cancel-button', onclick: () => modal.close('button') }, 'Cancel');
  const ok = h('button', { type: 'button', class: lift ? 'btn btn-primary' : 'btn btn-danger', 'data-testid': 'hold-confirm-button', onclick: () => submit() },
    icon('shield'), lift ? 'Lift legal hold' : 'Place legal hold');
  const modal = openModal({
    testid: 'hold-modal',
    title: lift ? 'Lift the legal hold?' : 'Place a legal hold?',
    subtitle: lift
      ? `Contact ${id} can be deleted again once the hold is lifted.`
      : `While contact ${id} is held, nothing of it is deleted: not from this console, the bulk script, upstream systems or replays.`,
    icon: h('span', { class: 'modal-icon info' }, icon('shield')),
    returnFocus,
    body: [
      h('div', { class: 'filters' },
        h('div', { class: 'field' }, h('label', { for: rid }, 'Reason'), reason),
        h('div', { class: 'field' }, h('label', { for: tid }, 'Ticket reference (optional)'), ticket,
          h('p', { class: 'hint', id: `${tid}-hint` }, 'The matter or case number. No names, phone numbers or email addresses.'))),
      error,
    ],
    actions: [cancel, ok],
  });
  reason.focus();

  async function submit() {
    const problem = !reason.value ? 'Choose a reason.' : ticketProblem(ticket.value.trim());
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      (reason.value ? ticket : reason).focus();
      return;
    }
    ok.disabled = true;
    cancel.disabled = true;
    clear(ok).append(h('span', { class: 'spinner', 'aria-hidden': 'true' }), lift ? 'Lifting…' : 'Placing…');
    error.hidden = true;
    try {
      const body = { reason_code: reason.value };
      if (ticket.value.trim()) body.ticket = ticket.value.trim();
      const res = await api(`/api/v1/contacts/${encodeURIComponent(id)}/hold${lift ? '/lift' : ''}`, { method: 'POST', body });
      modal.close('program');
      toast(res.status === 'pending'
        ? { kind: 'info', title: 'Legal hold requested', message: `The change for contact ${id} is being applied; refresh the record in a moment.` }
        : { kind: 'success', title: lift ? 'Legal hold lifted' : 'Legal hold placed', message: lift ? `Contact ${id} can be deleted again.` : `Contact ${id} cannot be deleted while the hold is in place.` });
      if (onDone) onDone();
    } catch (err) {
      error.textContent = `${lift ? 'The hold was not lifted' : 'The hold was not placed'}: ${err.message}`;
      error.hidden = false;
      ok.disabled = false;
      cancel.disabled = false;
      clear(ok).append(icon('shield'), lift ? 'Lift legal hold' : 'Place legal hold');
      ok.focus();
    }
  }
}
