// Data Subject: every contact of one person, found by their exact phone
// number (however written) or email address, to delete them in one request.
// Every contact is selected; untick any to keep. The phone number or
// address is sent in a request body only: it stays out of the URL and the
// browser history, and the server logs and audits contact IDs only.

import { api } from '../api.js';
import { h, icon, fmtDateTime, fmtNumber, uid } from '../dom.js';
import { confirmDeletion } from '../confirm.js';

// The last lookup, so that Back from a record shows it again; kept in
// memory only.
let last = null;

export function renderSubject(main, { navigate, setTitle, session }) {
  setTitle('Data Subject');
  const canDelete = session.permissions.includes('contacts.delete');
  const kindId = uid('subject-kind');
  const valueId = uid('subject-value');
  const kind = h('select', { id: kindId, 'data-testid': 'subject-kind' },
    h('option', { value: 'phone', selected: !last || last.kind === 'phone' }, 'Phone number'),
    h('option', { value: 'email', selected: !!last && last.kind === 'email' }, 'Email address'));
  const value = h('input', { id: valueId, type: 'text', 'data-testid': 'subject-value', autocomplete: 'off', spellcheck: 'false',
    value: last ? last.value : '', placeholder: '+44 7700 900304 or 07700 900304', 'aria-describedby': `${valueId}-hint` });
  const placeholder = () => { value.placeholder = kind.value === 'phone' ? '+44 7700 900304 or 07700 900304' : 'name@example.com'; };
  kind.addEventListener('change', placeholder);
  placeholder();
  const results = h('section', { class: 'card', 'aria-labelledby': 'subject-results-title', 'data-testid': 'subject-results' });
  const form = h('form', {
    class: 'card-body', role: 'search', 'aria-label': 'Find a data subject\u2019s contacts', 'data-testid': 'subject-form',
    onsubmit: (e) => {
      e.preventDefault();
      last = { kind: kind.value, value: value.value.trim() };
      find(results, last, canDelete);
    },
  },
  h('div', { class: 'filters' },
    h('div', { class: 'field' }, h('label', { for: kindId }, 'Find by'), kind),
    h('div', { class: 'field field-wide' }, h('label', { for: valueId }, 'Phone number or email address'), value,
      h('p', { class: 'hint', id: `${valueId}-hint` }, 'The exact number (in any format) or address of one person. Nothing else matches.'))),
  h('div', { class: 'form-actions' },
    h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'subject-find' }, icon('search'), 'Find contacts')));

  main.replaceChildren(
    h('div', { class: 'page-head' }, h('div', { class: 'grow' },
      h('h1', {}, 'Data Subject'),
      h('p', { class: 'page-sub' }, 'Find every contact of one person and delete them together, in one request with one audit entry.'))),
    h('section', { class: 'card', 'aria-label': 'Find a person' }, form),
    results);
  if (last && last.value) find(results, last, canDelete);
  else results.hidden = true;
}

async function find(box, q, canDelete) {
  box.hidden = false;
  const head = h('div', { class: 'card-head' }, h('h2', { id: 'subject-results-title', class: 'grow' }, 'Contacts of this person'));
  box.replaceChildren(head, h('div', { class: 'empty', 'aria-busy': 'true' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' Searching…'));
  let res;
  try {
    res = await api('/api/v1/subjects/contacts', { method: 'POST', body: { [q.kind]: q.value } });
  } catch (err) {
    box.replaceChildren(head, h('div', { class: 'empty', role: 'alert', 'data-testid': 'subject-error' }, h('strong', {}, 'The search failed'), err.message));
    return;
  }
  if (!res.contacts.length) {
    box.replaceChildren(head, h('div', { class: 'empty', 'data-testid': 'subject-empty' },
      h('strong', {}, 'No contacts of this person'), 'No contact holds exactly this phone number or email address.'));
    return;
  }
  const selected = new Set(res.contact_ids);
  const count = h('span', { class: 'card-note', 'data-testid': 'subject-count', 'aria-live': 'polite' });
  const del = canDelete ? h('button', {
    type: 'button', class: 'btn btn-danger', 'data-testid': 'subject-delete-button',
    onclick: (e) => confirmDeletion({
      contactIds: res.contact_ids.filter((id) => selected.has(id)),
      returnFocus: e.currentTarget,
      onFinished: ({ outcome, reason }) => { if (reason !== 'link' && reason !== 'navigation' && (outcome || reason)) find(box, q, canDelete); },
    }),
  }, icon('trash'), 'Delete selected') : null;
  const boxes = [];
  const all = h('input', { type: 'checkbox', checked: true, 'data-testid': 'subject-select-all', 'aria-label': 'Select every contact' });
  const update = () => {
    count.textContent = `${fmtNumber(selected.size)} of ${fmtNumber(res.contacts.length)} selected`;
    all.checked = selected.size === res.contacts.length;
    all.indeterminate = selected.size > 0 && selected.size < res.contacts.length;
    if (del) {
      del.disabled = selected.size === 0;
      del.lastChild.textContent = selected.size === 1 ? 'Delete 1 selected contact' : `Delete ${fmtNumber(selected.size)} selected contacts`;
    }
  };
  all.addEventListener('change', () => {
    for (const b of boxes) { b.checked = all.checked; if (all.checked) selected.add(b.value); else selected.delete(b.value); }
    update();
  });
  const rows = res.contacts.map((c) => {
    const f = c.fields || {};
    const cb = h('input', { type: 'checkbox', value: c.contact_id, checked: true, 'data-testid': 'subject-check', 'aria-label': `Select contact ${c.contact_id}` });
    cb.addEventListener('change', () => { if (cb.checked) selected.add(c.contact_id); else selected.delete(c.contact_id); update(); });
    boxes.push(cb);
    return h('tr', { 'data-testid': 'subject-row', 'data-contact-id': c.contact_id },
      h('td', {}, cb),
      h('td', { class: 'id-cell' }, h('a', { href: `#/contacts/${encodeURIComponent(c.contact_id)}` }, c.contact_id),
        c.held ? [' ', h('span', { class: 'badge badge-held nodot', 'data-testid': 'subject-held-badge', title: 'Under legal hold: it will not be deleted' }, 'Legal hold')] : null),
      h('td', { class: 'nowrap' }, fmtDateTime(f.initiation_timestamp)),
      h('td', {}, f.channel || '—'),
      h('td', {}, f.customer_name || '—'));
  });
  update();
  head.append(count);
  box.replaceChildren(...[head,
    res.truncated ? h('div', { class: 'banner banner-warn', 'data-testid': 'subject-truncated' }, icon('alert'),
      h('div', { class: 'grow' }, 'This person has more than 1,000 contacts; the newest 1,000 are listed. Delete these, then search again for the rest.')) : null,
    h('div', { class: 'table-wrap' }, h('table', { class: 'dense', 'data-testid': 'subject-table' },
      h('caption', { class: 'visually-hidden' }, 'Contacts of this person'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, all), ...['Contact ID', 'Initiated', 'Channel', 'Customer'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows))),
    del ? h('div', { class: 'table-foot' }, h('span', { class: 'spacer' }), del) : null].filter(Boolean));
}
