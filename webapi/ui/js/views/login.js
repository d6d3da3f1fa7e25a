// Sign-in page.

import { api } from '../api.js';
import { h, icon } from '../dom.js';

export function renderLogin(root, { config, onSignedIn, ssoFailed }) {
  const error = h('p', { class: 'error-text', role: 'alert', 'data-testid': 'login-error', hidden: !ssoFailed },
    ssoFailed ? 'Single sign-on did not complete. Try again or sign in with a password.' : '');
  const name = h('input', { type: 'text', id: 'login-name', name: 'username', autocomplete: 'username', required: true, 'data-testid': 'login-name', autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { type: 'password', id: 'login-password', name: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'login-password' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'login-submit' }, 'Sign in');

  const form = h('form', {
    'data-testid': 'login-form', novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      error.hidden = true;
      if (!name.value || !password.value) {
        error.textContent = 'Enter your user name and password.';
        error.hidden = false;
        (name.value ? password : name).focus();
        return;
      }
      submit.disabled = true;
      submit.textContent = 'Signing in…';
      try {
        const me = await api('/api/v1/login', { method: 'POST', body: { name: name.value, password: password.value }, quiet401: true });
        onSignedIn(me);
      } catch (err) {
        error.textContent = err.status === 401 ? 'Wrong user name or password.' : err.message;
        error.hidden = false;
        password.value = '';
        password.focus();
      } finally {
        submit.disabled = false;
        submit.textContent = 'Sign in';
      }
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'login-name' }, 'User name'), name),
  h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), password),
  error,
  submit);

  const sso = config && config.oidc
    ? [h('div', { class: 'divider' }, 'or'),
      h('a', { class: 'btn', href: '/api/v1/oidc/login', 'data-testid': 'login-sso' }, icon('shield'), 'Sign in with single sign-on')]
    : null;

  root.replaceChildren(h('div', { class: 'login-page' },
    h('main', { id: 'main', class: 'card login-card', tabindex: '-1' },
      h('div', { class: 'brand' },
        h('span', { class: 'brand-mark' }, icon('trash')),
        h('div', {}, h('div', { class: 'brand-name' }, 'Erasure'), h('div', { class: 'brand-sub' }, 'Contact data deletion'))),
      h('h1', {}, 'Sign in'),
      h('p', { class: 'page-sub' }, 'Use your contact-centre account.'),
      form,
      sso && h('div', { class: 'stack' }, sso))));
  name.focus();
}
