// Toasts, top-right. Success and info toasts are polite status messages and
// fade after a while; failure toasts are alerts and stay until dismissed.

import { h, icon } from './dom.js';

export function toast({ kind, title, message, timeout }) {
  const region = document.getElementById('toasts');
  const k = kind === 'success' || kind === 'info' ? kind : 'error';
  const success = k !== 'error';
  const el = h('div', {
    class: `toast ${k}`,
    role: success ? 'status' : 'alert',
    'data-testid': `toast-${k}`,
  },
  h('span', { class: 'toast-icon' }, icon(k === 'success' ? 'checkCircle' : k === 'info' ? 'info' : 'alert')),
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
