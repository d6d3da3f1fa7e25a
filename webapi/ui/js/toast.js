// Toasts, top-right below the header, so the user menu and Sign out stay
// reachable. Success and info toasts are polite status messages; failure
// toasts are alerts. Every toast fades after a while (a failure after
// longer: the contact record and the Audit Log keep it too), and its timer
// stops while the pointer is over it, while it holds focus, and while the
// page is hidden, so nobody misses one by looking away. Escape dismisses
// the toast that has focus.

import { h, icon } from './dom.js';

const SUCCESS_MS = 8000;
const ERROR_MS = 20000;
const GAP_PX = 12;

// placeRegion puts the stack just below where the header ends now: the
// header's height differs by width (the navigation sits above it on narrow
// screens) and by scrolling (it sticks to the top).
function placeRegion() {
  const region = document.getElementById('toasts');
  const bar = document.querySelector('.topbar');
  const bottom = bar ? Math.max(bar.getBoundingClientRect().bottom, 0) : 0;
  region.style.top = `${bottom + GAP_PX}px`;
  if (!region.childElementCount) {
    window.removeEventListener('scroll', placeRegion);
    window.removeEventListener('resize', placeRegion);
  }
}

export function toast({ kind, title, message, timeout }) {
  const region = document.getElementById('toasts');
  const k = kind === 'success' || kind === 'info' ? kind : 'error';
  const success = k !== 'error';
  let remaining = timeout ?? (success ? SUCCESS_MS : ERROR_MS);
  const stays = remaining <= 0; // a timeout of 0: until dismissed
  let timer = null;
  let startedAt = 0;
  let hovered = false;
  let focused = false;

  const dismiss = () => {
    clearTimeout(timer);
    document.removeEventListener('visibilitychange', sync);
    // Focus inside a toast that goes would fall to the page body.
    const hadFocus = el.contains(document.activeElement);
    el.remove();
    placeRegion();
    if (hadFocus) {
      const main = document.getElementById('main');
      if (main) main.focus({ preventScroll: true });
    }
  };
  const el = h('div', {
    class: `toast ${k}`,
    role: success ? 'status' : 'alert',
    'data-testid': `toast-${k}`,
    onmouseenter: () => { hovered = true; sync(); },
    onmouseleave: () => { hovered = false; sync(); },
    onfocusin: () => { focused = true; sync(); },
    onfocusout: (e) => { if (!el.contains(e.relatedTarget)) { focused = false; sync(); } },
    onkeydown: (e) => { if (e.key === 'Escape') { e.stopPropagation(); dismiss(); } },
  },
  h('span', { class: 'toast-icon' }, icon(k === 'success' ? 'checkCircle' : k === 'info' ? 'info' : 'alert')),
  h('div', { class: 'grow' },
    h('p', { class: 'toast-title', 'data-testid': 'toast-title' }, title),
    message ? h('p', { class: 'toast-msg', 'data-testid': 'toast-message' }, message) : null),
  h('button', {
    type: 'button', class: 'btn btn-ghost', 'aria-label': 'Dismiss notification', 'data-testid': 'toast-dismiss',
    onclick: dismiss,
  }, icon('x')));

  // Runs the timer only while nothing holds the toast open; the time it
  // already ran is kept, so a pause does not restart it.
  function sync() {
    const hold = hovered || focused || document.hidden;
    el.dataset.paused = String(hold);
    if (stays) return;
    if (hold && timer) {
      clearTimeout(timer);
      timer = null;
      remaining -= Date.now() - startedAt;
    } else if (!hold && !timer) {
      startedAt = Date.now();
      timer = setTimeout(dismiss, Math.max(remaining, 1000));
    }
  }
  el.dataset.timeout = String(stays ? 0 : remaining);
  document.addEventListener('visibilitychange', sync);
  region.appendChild(el);
  placeRegion();
  window.addEventListener('scroll', placeRegion, { passive: true });
  window.addEventListener('resize', placeRegion);
  sync();
  return el;
}
