// Toasts, top-right. Success toasts are polite status messages and fade
// after a while; failure toasts are alerts and stay until dismissed.

import { h, icon } from './dom.js';

export function toast({ kind, title, message, timeout }) {
  const region = document.getElementById('toasts');
  const success = kind === 'success';
  const el = h('div', {
    class: `toast ${success ? 'success' : 'error'}`,
    role: success ? 'status' : 'alert',
    'data-testid': success ? 'toast-success' : 'toast-error',
  },
  h('span', { class: 'toast-icon' }, icon(success ? 'checkCircle' : 'alert')),
  h('div', { class: 'grow' },
    h('p', { class: 'toast-title', 'data-testid': 'toast-title' }, title),
    message ? h('p', { class: 'toast-msg', 'data-testid': 'toast-message' }, message) : null),
  h('button', {
    type: 'button', class: 'btn btn-ghost', 'aria-label': 'Dismiss notification', 'data-testid': 'toast-dismiss',
    onclick: () => el.remove(),
  }, icon('x')));
  region.appendChild(el);
  const ms = timeout ?? (success ? 8000 : 0);
  if (ms > 0) setTimeout(() => el.remove(), ms);
  return el;
}
