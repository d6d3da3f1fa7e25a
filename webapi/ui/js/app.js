// Erasure console: sign-in, Contact Search, View Contact Record with the
// delete flow, and the Audit Log. Plain ES modules, no build step; routes
// live in the URL hash (#/search, #/contacts/{id}, #/audit, #/login).
//
// Stable hooks for browser tests (data-testid unless noted):
//
// Sign in
//   login-form, login-name, login-password, login-submit, login-error, login-sso
// Shell
//   nav-search, nav-audit (rendered only when permitted), user-name, account-kind (data-kind sso|local),
//   user-roles, logout-all-button, logout-button
// Contact Search
//   search-form, search-contact-id, search-customer, search-channel, search-agent, search-queue,
//   search-from, search-to, search-submit, search-clear, search-results, search-table,
//   search-total, search-empty, search-error, search-page, search-prev, search-next,
//   search-past-end (a page past the last), search-past-end-last, search-past-end-first,
//   search-agent-suggestions, search-queue-suggestions (datalists), <input testid>-error (a
//   message at a filter the server or the form refused; the input has aria-invalid),
//   contact-row (one per result; attribute data-contact-id), contact-link
// Data Subject (contacts.delete)
//   nav-subject, subject-form, subject-kind, subject-value, subject-find, subject-results,
//   subject-table, subject-row (attribute data-contact-id), subject-check, subject-select-all,
//   subject-count, subject-delete-button, subject-empty, subject-error, subject-truncated
// View Contact Record
//   contact-hold-badge, hold-banner, delete-disabled-reason (a held contact), place-hold-button,
//   lift-hold-button (contacts.hold), contact-deleted-by, contact-deleted-audit-link (a deleted contact),
// Legal hold dialog
//   hold-modal, hold-reason, hold-ticket, hold-error, hold-confirm-button, hold-cancel-button
// Confirmation (also) confirm-loading, confirm-reason, confirm-ticket, confirm-ticket-error,
//   confirm-already-deleted, confirm-audit-link, confirm-not-found, confirm-held, confirm-pending,
//   confirm-summary, confirm-contacts-table, confirm-contact-row (attribute data-contact-id)
// View Contact Record
//   contact-title, contact-id, contact-deletion-status, contact-details, detail-<field>,
//   artefacts-table, artefacts-<channel> (attribute data-total), artefact-<artefact>, inventory-error,
//   delete-contact-button (only for contacts.delete), back-to-search,
//   deletion-failed-banner, retry-delete-button, deletion-pending-banner, refresh-contact-button,
//   deletion-history, deletion-row (attributes data-request-id, data-status), history-retry-button,
//   deletion-history-empty, contact-not-found, contact-error
// Confirmation modal
//   confirm-delete-modal, confirm-delete-modal-title, confirm-contact-id, confirm-contact-name,
//   confirm-removal-table, confirm-channel-<channel>, confirm-channel-total,
//   confirm-delete-button, confirm-cancel-button, confirm-error
// 'Deleting Contact' modal
//   deleting-modal (attributes data-request-id, data-outcome once finished: succeeded | not_found |
//   failed | refused, and data-timed-out once past the deadline without one),
//   deleting-modal-title, deleting-progress-table,
//   progress-row-<channel> (attribute data-status: pending | succeeded | failed | skipped),
//   progress-status-<channel>, deleting-summary, deleting-elapsed, live-status (attribute data-state),
//   deleting-progress-bar (full only once the outcome is shown),
//   deleting-close-button, deleting-timeout, deleting-audit-link (the Audit Log filtered to the
//   request: with the outcome, and when none came in time)
// Toasts (top-right below the header, in toast-region; data-paused while hovered or focused)
//   toast-success (role=status), toast-info (role=status; contact not found), toast-error (role=alert),
//   toast-title, toast-message, toast-dismiss
// Audit Log
//   audit-form, audit-setting (Setting name, read-only), audit-setting-badge, audit-user, audit-from,
//   audit-user-own (read-only, for whoever sees only its own entries), audit-user-suggestions,
//   audit-range-today, audit-range-7, audit-range-30 (aria-pressed), audit-scope, audit-total,
//   audit-timezone, audit-past-end, audit-past-end-last, audit-facts, audit-before, audit-deleted,
//   audit-after, audit-receipt,
//   audit-to, audit-functionality, audit-contact-id, audit-reason, audit-ticket, audit-request-id,
//   audit-apply, audit-clear, audit-export,
//   audit-results, audit-table, audit-row (attributes data-request-id, data-seq, data-status, and
//   data-amends on a late entry), audit-late, audit-user-cell (data-principal; holds an account-kind),
//   audit-contacts, audit-status, audit-expand, audit-detail, audit-channel-table,
//   audit-channel-<channel>, audit-empty, audit-error, audit-page, audit-prev, audit-next

import { api, setCsrf, setUnauthorizedHandler } from './api.js';
import { h, icon, accountBadge } from './dom.js';
import { live } from './live.js';
import { closeAnyModal } from './modal.js';
import { renderLogin } from './views/login.js';
import { renderSearch } from './views/search.js';
import { renderContact } from './views/contact.js';
import { renderSubject } from './views/subject.js';
import { renderAudit } from './views/audit.js';

const app = document.getElementById('app');
let config = null;
let session = null;
let lastSearch = '';
let main = null;
let crumbs = null;
let firstRender = true;

const can = (perm) => !!session && session.permissions.includes(perm);
// The Audit Log: all of it, or the entries of one's own requests.
const canAudit = () => can('audit.read') || can('audit.read_own');

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  const params = Object.fromEntries(new URLSearchParams(qs || ''));
  const parts = path.split('/').filter(Boolean);
  return { parts, params, raw };
}

function hashFor(name, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== '')).toString();
  switch (name) {
    case 'contact': return `#/contacts/${encodeURIComponent(params.id)}`;
    case 'audit': return `#/audit${q ? `?${q}` : ''}`;
    case 'login': return `#/login${q ? `?${q}` : ''}`;
    default: return `#/search${q ? `?${q}` : ''}`;
  }
}

function navigate(name, params) {
  const target = name === 'search-back' ? (lastSearch || '#/search') : hashFor(name, params);
  if (location.hash === target) route();
  else location.hash = target;
}

function homeHash() {
  if (can('contacts.read')) return '#/search';
  if (canAudit()) return '#/audit';
  return '#/forbidden';
}

function setTitle(title, sub) {
  document.title = `${title} · Erasure`;
  if (!crumbs) return;
  const items = [];
  if (sub !== undefined) {
    items.push(h('a', { href: lastSearch || '#/search' }, 'Contact Search'), h('span', { class: 'sep', 'aria-hidden': 'true' }, '/'));
  }
  items.push(h('span', { 'aria-current': 'page' }, title));
  crumbs.replaceChildren(...items);
}

function shell(active) {
  const link = (href, key, label, iconName, testid) => h('a', {
    href, 'data-testid': testid, 'aria-current': active === key ? 'page' : undefined,
  }, icon(iconName), label);
  const nav = h('nav', { class: 'nav', 'aria-label': 'Main' },
    h('span', { class: 'nav-label' }, 'Data deletion'),
    can('contacts.read') ? link(lastSearch || '#/search', 'search', 'Contact Search', 'search', 'nav-search') : null,
    can('contacts.read') && can('contacts.delete') ? link('#/subject', 'subject', 'Data Subject', 'trash', 'nav-subject') : null,
    canAudit() ? link('#/audit', 'audit', 'Audit Log', 'audit', 'nav-audit') : null);
  crumbs = h('div', { class: 'crumbs' });
  main = h('main', { id: 'main', tabindex: '-1' });
  app.replaceChildren(h('div', { class: 'shell' },
    h('aside', { class: 'sidebar' },
      h('div', { class: 'brand' },
        h('span', { class: 'brand-mark' }, icon('trash')),
        h('div', {}, h('div', { class: 'brand-name' }, 'Erasure'), h('div', { class: 'brand-sub' }, 'Contact data deletion'))),
      nav,
      h('p', { class: 'sidebar-foot' }, 'GDPR Art. 17 erasure')),
    h('div', { class: 'main-col' },
      h('header', { class: 'topbar' },
        crumbs,
        h('div', { class: 'topbar-right' },
          h('div', { class: 'user-chip' },
            h('span', { class: 'avatar', 'aria-hidden': 'true' }, (session.display_name || session.user).slice(0, 2)),
            h('div', {},
              h('div', { class: 'user-name', title: session.user },
                h('span', { 'data-testid': 'user-name' }, session.display_name || session.user), ' ', accountBadge(session.user)),
              h('div', { class: 'user-roles', 'data-testid': 'user-roles' }, session.roles.join(', ')))),
          h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'logout-all-button', onclick: logoutAll,
            title: 'End every session of this account' }, 'Sign out everywhere'),
          h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'logout-button', onclick: logout }, icon('logout'), 'Sign out'))),
      main)));
}

function route() {
  const { parts, params, raw } = parseHash();
  // A dialog of the page being left closes as left: its flow must not take
  // the user back to that page.
  closeAnyModal('navigation');
  if (!session) {
    const back = parts[0] === 'login' ? params.next : raw;
    renderLogin(app, {
      config,
      ssoFailed: params.sso === 'failed',
      onSignedIn: (me) => {
        signedIn(me);
        const target = back && back !== '/' && !back.startsWith('/login') ? `#${back}` : homeHash();
        if (location.hash === target) route();
        else location.hash = target;
      },
    });
    document.title = 'Sign in · Erasure';
    return;
  }
  const page = parts[0] || '';
  if (page === 'login' || page === '') { location.replace(homeHash()); return; }

  if (page === 'search' && can('contacts.read')) {
    lastSearch = location.hash;
    shell('search');
    renderSearch(main, { params, navigate, setTitle });
  } else if (page === 'subject' && can('contacts.read') && can('contacts.delete')) {
    shell('subject');
    renderSubject(main, { navigate, setTitle, session });
  } else if (page === 'contacts' && parts[1] && can('contacts.read')) {
    shell('search');
    renderContact(main, { id: decodeURIComponent(parts[1]), navigate, setTitle, session, lastSearch });
  } else if (page === 'audit' && canAudit()) {
    shell('audit');
    renderAudit(main, { params, navigate, setTitle, config, session });
  } else {
    shell('');
    setTitle('Not available');
    main.replaceChildren(h('div', { class: 'card' }, h('div', { class: 'empty', 'data-testid': 'forbidden' },
      h('strong', {}, 'This page is not available to you'),
      'Your roles do not include access to it. Use the navigation to pick a page you can use.')));
  }
  // Move focus to the new page for keyboard and screen reader users, but
  // not on the first load, where the browser's own start point is fine.
  if (!firstRender) main.focus({ preventScroll: true });
  firstRender = false;
}

function signedIn(me) {
  session = me;
  setCsrf(me.csrf_token);
  if (can('contacts.delete')) live.start();
}

function signedOut() {
  session = null;
  setCsrf('');
  live.stop();
  closeAnyModal('navigation');
}

async function logout() {
  try { await api('/api/v1/logout', { method: 'POST' }); } catch { /* signed out either way */ }
  signedOut();
  location.hash = '#/login';
  route();
}

// logoutAll ends every session of this account (a lost laptop, a shared
// browser), this one included.
async function logoutAll() {
  try { await api('/api/v1/sessions/logout-all', { method: 'POST' }); } catch { /* signed out either way */ }
  signedOut();
  location.hash = '#/login';
  route();
}

async function boot() {
  setUnauthorizedHandler(() => {
    if (!session) return;
    signedOut();
    const next = location.hash.replace(/^#/, '');
    location.hash = hashFor('login', { next });
  });
  live.onConnectFailed = () => { if (session) api('/api/v1/me').catch(() => {}); };
  try { config = await api('/api/v1/config'); } catch { config = null; }
  try {
    const me = await api('/api/v1/me', { quiet401: true });
    signedIn(me);
  } catch { session = null; }
  window.addEventListener('hashchange', route);
  route();
}

boot();
