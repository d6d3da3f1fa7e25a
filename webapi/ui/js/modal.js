// Accessible modal dialog: focus moves in and is trapped, Escape closes,
// the page behind is inert, and focus returns to where it came from.

import { h, uid } from './dom.js';

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

let current = null;

/**
 * openModal({title, subtitle, icon, testid, body, actions, hint, onClose, returnFocus, dismissible})
 * Returns {root, dialog, body, foot, title, close(reason), setTitle, setSubtitle, setBusy}.
 * onClose(reason) runs once: 'escape', 'backdrop', 'button', 'program', or
 * 'navigation' when the user went to another page while it was open.
 */
export function openModal(opts) {
  if (current) current.close('program');
  const returnTo = opts.returnFocus || document.activeElement;
  const titleId = uid('modal-title');
  const descId = uid('modal-desc');

  const title = h('h2', { class: 'modal-title', id: titleId, 'data-testid': opts.testid ? `${opts.testid}-title` : undefined }, opts.title);
  const sub = opts.subtitle ? h('p', { class: 'modal-sub', id: descId }, opts.subtitle) : null;
  const body = h('div', { class: 'modal-body' }, opts.body);
  const foot = h('div', { class: 'modal-foot' }, opts.hint ? h('p', { class: 'hint' }, opts.hint) : null, opts.actions);
  const dialog = h('div', {
    class: 'modal', role: opts.alert ? 'alertdialog' : 'dialog', 'aria-modal': 'true',
    'aria-labelledby': titleId, 'aria-describedby': sub ? descId : undefined,
    tabindex: '-1', 'data-testid': opts.testid,
  },
  h('div', { class: 'modal-head' }, opts.icon || null, h('div', { class: 'grow' }, title, sub)),
  body, foot);
  const root = h('div', { class: 'modal-backdrop' }, dialog);

  const app = document.getElementById('app');
  const toasts = document.getElementById('toasts');
  let closed = false;

  function onKey(e) {
    if (e.key === 'Escape' && opts.dismissible !== false) {
      e.preventDefault();
      e.stopPropagation();
      api.close('escape');
      return;
    }
    if (e.key !== 'Tab') return;
    const items = [...dialog.querySelectorAll(FOCUSABLE)].filter((el) => el.offsetParent !== null || el === document.activeElement);
    if (!items.length) { e.preventDefault(); dialog.focus(); return; }
    const first = items[0];
    const last = items[items.length - 1];
    if (e.shiftKey && (document.activeElement === first || document.activeElement === dialog)) {
      e.preventDefault(); last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault(); first.focus();
    }
  }
  // Focus that escapes (a click on the backdrop, a screen reader jump) is
  // pulled back into the dialog.
  function onFocusIn(e) {
    if (!dialog.contains(e.target) && !(toasts && toasts.contains(e.target))) dialog.focus();
  }

  const api = {
    root, dialog, body, foot, title,
    get closed() { return closed; },
    close(reason = 'program') {
      if (closed) return;
      closed = true;
      document.removeEventListener('keydown', onKey, true);
      document.removeEventListener('focusin', onFocusIn);
      root.remove();
      if (app) app.inert = false;
      if (current === api) current = null;
      if (returnTo && returnTo.isConnected && typeof returnTo.focus === 'function') returnTo.focus();
      else { const main = document.getElementById('main'); if (main) main.focus(); }
      if (opts.onClose) opts.onClose(reason);
    },
    setTitle(text) { title.textContent = text; },
    setSubtitle(text) { if (sub) sub.textContent = text; },
  };

  if (opts.dismissible !== false) {
    root.addEventListener('mousedown', (e) => { if (e.target === root) api.close('backdrop'); });
  }
  document.addEventListener('keydown', onKey, true);
  document.addEventListener('focusin', onFocusIn);
  document.getElementById('modal-root').appendChild(root);
  if (app) app.inert = true;
  current = api;
  const first = dialog.querySelector('[data-autofocus]') || dialog.querySelector(FOCUSABLE) || dialog;
  first.focus();
  return api;
}

/** Closes the open modal, if any; reason is what onClose is told. */
export function closeAnyModal(reason = 'program') {
  if (current) current.close(reason);
}
