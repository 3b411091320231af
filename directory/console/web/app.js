// The Doorman web console: hash-routed views over the JSON API. Every piece
// of text from the user or the directory is put into the page with
// textContent (dom.js el()), never as HTML.
import { el, field, checkbox, setStatus, confirmDialog } from './dom.js';
import * as api from './api.js';

const MODES = { DOMAIN_MODE_LIST: 'list', DOMAIN_MODE_CALLOUT: 'callout', DOMAIN_MODE_ACCEPT_ALL: 'accept-all' };
const PAGE = 25;
const view = () => document.getElementById('view');

function fail(e) {
  if (e instanceof api.ApiError && e.status === 401) { showLogin('Your session ended; log in again.'); return; }
  setStatus('Error: ' + e.message, true);
}

async function domains() { return (await api.rpc('ListDomains')).domains || []; }

function domainSelect(list, selected, labelText = 'Domain') {
  const s = el('select', {}, list.map((d) => el('option', { value: d.name, selected: d.name === selected }, d.name)));
  return [field(labelText, s), s];
}

function verdictCell(d) {
  const v = d.rejecting_unknown || {};
  return el('td', {},
    el('span', { class: v.rejecting ? 'yes' : 'no' }, v.rejecting ? 'yes' : 'no'),
    v.reason ? el('div', { class: 'hint' }, v.reason) : null);
}

// The last hour's figures of the whole deployment (every directory replica's own counters, summed in Redis).
function statsCard(st) {
  const figure = (label, value, hint) => el('div', { class: 'figure' },
    el('div', { class: 'figure-value' }, String(value ?? 0)), el('div', { class: 'figure-label' }, label),
    hint ? el('div', { class: 'hint' }, hint) : null);
  return el('section', { class: 'card', 'aria-label': 'Last hour', id: 'last-hour' },
    el('h2', {}, 'Last ' + (st.minutes || 60) + ' minutes'),
    el('div', { class: 'figures' },
      figure('Recipients accepted', st.accepted),
      figure('Rejected', st.rejected, 'unknown recipients refused with 5xx'),
      figure('Deferred', st.deferred, '4xx: our own trouble, greylisting back-ends, harvest blocks'),
      figure('Would be rejected', st.would_reject, 'shadow-mode domains'),
      figure('Harvest: slowed / blocked', (st.harvest_tarpit ?? 0) + ' / ' + (st.harvest_defer ?? 0)),
      figure('Callout probes', st.callout_probes)));
}

// ---- overview
async function overview() {
  const [list, st] = await Promise.all([domains(), api.rpc('GetStats', { minutes: 60 })]);
  const rows = list.map((d) => el('tr', {},
    el('td', {}, el('a', { href: '#addresses/' + encodeURIComponent(d.name) }, d.name)),
    el('td', {}, MODES[d.mode] || d.mode, d.callout_fallback ? ' + callout fallback' : ''),
    el('td', {}, el('ol', { class: 'plain' }, (d.routes || []).map((r) => el('li', { class: 'mono' }, r)))),
    el('td', {}, String(d.address_count)),
    verdictCell(d),
    el('td', {}, d.catch_all && d.catch_all.state === 'STATE_CATCH_ALL'
      ? el('span', { class: 'warning' }, d.catch_all.warning || 'catch-all') : '')));
  view().replaceChildren(
    el('h1', {}, 'Overview'),
    statsCard(st),
    list.length === 0 ? el('p', {}, 'No guarded domains yet. Add one under Domain admin.') :
      el('table', {},
        el('caption', { class: 'hint' }, 'Guarded domains and whether unknown recipients are rejected (550)'),
        el('thead', {}, el('tr', {}, ['Domain', 'Mode', 'Routes (priority order)', 'Addresses',
          'Rejecting unknown recipients', 'Catch-all'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, rows)));
}

// ---- domain admin
function domainForm(d, onSaved) {
  const isNew = !d;
  d = d || { mode: 'DOMAIN_MODE_LIST', routes: [] };
  const name = el('input', { type: 'text', value: d.name || '', required: true, readonly: !isNew });
  const mode = el('select', {}, Object.entries(MODES).map(([k, v]) => el('option', { value: k, selected: d.mode === k }, v)));
  const routes = el('textarea', { placeholder: 'mail.example.com:25 (one per line, in priority order)' });
  routes.value = (d.routes || []).join('\n');
  const [csLabel, cs] = checkbox('Local parts are case-sensitive', d.local_part_case_sensitive);
  const sep = el('input', { type: 'text', value: d.subaddress_separator ?? '+', maxlength: 1 });
  const sender = el('input', { type: 'text', value: d.callout_sender || '', placeholder: 'empty = <>' });
  const policy = el('select', {},
    el('option', { value: 'CATCH_ALL_POLICY_ACCEPT', selected: d.catch_all_policy !== 'CATCH_ALL_POLICY_DEFER' }, 'accept (back-end bounces later)'),
    el('option', { value: 'CATCH_ALL_POLICY_DEFER', selected: d.catch_all_policy === 'CATCH_ALL_POLICY_DEFER' }, 'defer (451)'));
  const [fbLabel, fb] = checkbox('Callout fallback for unlisted addresses (list mode)', d.callout_fallback);
  const [rtLabel, rt] = checkbox('Allow routing local parts (%, !)', d.allow_routing_local_parts);
  const [shLabel, sh] = checkbox('Shadow mode: log unknown recipients instead of rejecting them', d.enforce === false);
  const form = el('form', { class: 'card', 'aria-label': isNew ? 'Add domain' : 'Edit domain ' + d.name },
    el('h2', {}, isNew ? 'Add domain' : 'Edit ' + d.name),
    el('div', { class: 'row' }, field('Domain name', name), field('Mode', mode)),
    field('Routes (host:port, one per line, priority order)', routes),
    el('div', {}, csLabel, fbLabel, rtLabel, shLabel),
    el('div', { class: 'row' }, field('Sub-address separator (empty = off)', sep),
      field('Callout sender', sender), field('Catch-all policy', policy)),
    el('p', {}, el('button', { type: 'submit' }, isNew ? 'Add domain' : 'Save')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const domain = {
      name: name.value.trim(), mode: mode.value,
      routes: routes.value.split('\n').map((s) => s.trim()).filter(Boolean),
      local_part_case_sensitive: cs.checked, subaddress_separator: sep.value,
      callout_sender: sender.value.trim(), catch_all_policy: policy.value,
      callout_fallback: fb.checked, allow_routing_local_parts: rt.checked, enforce: !sh.checked,
    };
    try {
      const saved = await api.rpc(isNew ? 'CreateDomain' : 'UpdateDomain', { domain });
      setStatus((isNew ? 'Added ' : 'Saved ') + saved.name);
      onSaved();
    } catch (e) { fail(e); }
  });
  return form;
}

async function domainAdmin(editName) {
  const list = await domains();
  const editing = list.find((d) => d.name === editName);
  const rows = list.map((d) => el('tr', {},
    el('td', {}, d.name), el('td', {}, MODES[d.mode] || d.mode), el('td', {}, String(d.address_count)),
    el('td', {},
      el('button', { type: 'button', class: 'secondary', onclick: () => { location.hash = '#domains/' + encodeURIComponent(d.name); } }, 'Edit ' + d.name),
      ' ',
      el('button', {
        type: 'button', class: 'danger', onclick: async () => {
          const n = (await api.rpc('CountAddresses', { domain: d.name })).count;
          if (!await confirmDialog(`Delete the domain ${d.name}? Its ${n} addresses go with it.`, 'Delete')) return;
          try {
            const r = await api.rpc('DeleteDomain', { name: d.name });
            setStatus(`Deleted ${d.name} (${r.addresses_removed} addresses removed)`);
            domainAdmin();
          } catch (e) { fail(e); }
        },
      }, 'Delete ' + d.name))));
  view().replaceChildren(
    el('h1', {}, 'Domain admin'),
    el('table', {}, el('thead', {}, el('tr', {}, ['Domain', 'Mode', 'Addresses', 'Actions'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)),
    domainForm(editing, () => { location.hash = '#domains'; domainAdmin(); }));
}

// ---- address maintenance
async function addresses(selected) {
  const list = await domains();
  if (list.length === 0) { view().replaceChildren(el('h1', {}, 'Address maintenance'), el('p', {}, 'No domains yet.')); return; }
  selected = selected && list.some((d) => d.name === selected) ? selected : list[0].name;
  const [domField, dom] = domainSelect(list, selected);
  const count = el('span', {});
  const prefix = el('input', { type: 'search', placeholder: 'prefix of the local part' });
  const results = el('tbody', {});
  const pager = el('span', { class: 'hint' });
  const prev = el('button', { type: 'button', class: 'secondary', id: 'prev-page', disabled: true }, 'Previous page');
  const next = el('button', { type: 'button', class: 'secondary', id: 'next-page', disabled: true }, 'Next page');
  let tokens = [''];  // page tokens seen, for Previous
  let page = 0;
  let nextToken = '';

  async function refreshCount() {
    try { count.textContent = (await api.rpc('CountAddresses', { domain: dom.value })).count + ' addresses'; } catch (e) { fail(e); }
  }
  let loads = 0;  // only the newest load renders
  async function load() {
    const mine = ++loads;
    try {
      const r = await api.rpc('ListAddresses', { domain: dom.value, page_size: PAGE, page_token: tokens[page], prefix: prefix.value.trim() });
      if (mine !== loads) return;
      nextToken = r.next_page_token || '';
      results.replaceChildren(...(r.addresses || []).map((a) => el('tr', {},
        el('td', { class: 'mono' }, a),
        el('td', {}, el('button', {
          type: 'button', class: 'secondary', 'aria-label': 'Remove ' + a, onclick: async () => {
            try { await api.rpc('RemoveAddresses', { addresses: [a] }); setStatus('Removed ' + a); refreshCount(); load(); } catch (e) { fail(e); }
          },
        }, 'Remove')))));
      pager.textContent = `Page ${page + 1}` + ((r.addresses || []).length === 0 ? ' (no addresses on this page)' : '');
      prev.disabled = page === 0;
      next.disabled = !nextToken;
    } catch (e) { fail(e); }
  }
  prev.addEventListener('click', () => { if (page > 0) { page--; load(); } });
  next.addEventListener('click', () => { if (nextToken) { tokens[page + 1] = nextToken; page++; load(); } });
  const search = el('form', { class: 'row', role: 'search' }, el('div', {}, el('label', { for: 'prefix' }, 'Search by prefix'), prefix),
    el('button', { type: 'submit' }, 'Search'));
  prefix.id = 'prefix';
  search.addEventListener('submit', (ev) => { ev.preventDefault(); tokens = ['']; page = 0; load(); });
  dom.addEventListener('change', () => { location.hash = '#addresses/' + encodeURIComponent(dom.value); });

  const newAddr = el('input', { type: 'text', id: 'new-address', placeholder: 'user@' + selected });
  const addForm = el('form', { class: 'row' }, field('Add an address', newAddr), el('button', { type: 'submit' }, 'Add'));
  addForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await api.rpc('AddAddresses', { addresses: [newAddr.value.trim()] });
      if ((r.errors || []).length) { setStatus('Not added: ' + r.errors[0].address + ': ' + r.errors[0].error, true); return; }
      setStatus(r.changed > 0 ? 'Added ' + newAddr.value.trim() : 'Already listed: ' + newAddr.value.trim());
      newAddr.value = '';
      refreshCount(); load();
    } catch (e) { fail(e); }
  });

  // Import: the file is read in the browser and sent in chunks (progress);
  // replace-all sends it in one request (one atomic ReplaceAddresses).
  const file = el('input', { type: 'file', accept: '.txt,.csv,text/plain' });
  const progress = el('progress', { max: 1, value: 0, hidden: true });
  const importOut = el('div', { 'aria-live': 'polite' });
  const lines = (text) => text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  function report(r, errors, verb) {
    importOut.replaceChildren(
      el('p', {}, `${verb}: ${r.received} received, ${r.added} added, ${r.removed || 0} removed, ${r.unchanged} unchanged, ${r.error_count} malformed`),
      errors.length ? el('div', {}, el('h3', {}, 'Malformed lines (not written)'),
        el('ul', { class: 'plain' }, errors.map((e) => el('li', {}, el('span', { class: 'mono' }, e.address), ': ', e.error)))) : null);
  }
  const importBtn = el('button', {
    type: 'button', id: 'import', onclick: async () => {
      if (!file.files[0]) { setStatus('Choose a file first', true); return; }
      const all = lines(await file.files[0].text());
      const total = { received: 0, added: 0, removed: 0, unchanged: 0, error_count: 0 };
      const errors = [];
      progress.hidden = false; progress.max = all.length || 1; progress.value = 0;
      try {
        for (let i = 0; i < all.length; i += 2000) {
          const r = await api.importText(all.slice(i, i + 2000).join('\n'), '', false);
          for (const k of Object.keys(total)) total[k] += Number(r[k] || 0);
          errors.push(...(r.errors || []));
          progress.value = Math.min(all.length, i + 2000);
          importOut.textContent = `Importing: ${progress.value} of ${all.length} lines`;
        }
        report(total, errors.slice(0, 100), 'Imported');
        setStatus('Import finished');
        refreshCount(); load();
      } catch (e) { fail(e); }
    },
  }, 'Import (add to the list)');
  const replaceBtn = el('button', {
    type: 'button', class: 'danger', id: 'replace', onclick: async () => {
      if (!file.files[0]) { setStatus('Choose a file first', true); return; }
      const text = await file.files[0].text();
      // First a dry run through the same ReplaceAddresses path: the exact
      // counts for the confirmation, nothing written.
      progress.hidden = false; progress.removeAttribute('value');
      let d;
      try {
        d = await api.importText(text, dom.value, true, true);
      } catch (e) { progress.hidden = true; fail(e); return; }
      progress.hidden = true;
      if (Number(d.error_count) > 0) {
        report(d, d.errors || [], 'Not replaced (dry run)');
        setStatus(`The file has ${d.error_count} malformed lines: fix them first (nothing was changed)`, true);
        return;
      }
      if (!await confirmDialog(`Replace the whole list of ${dom.value}: ${d.added} added, ${d.removed} removed, ${d.unchanged} unchanged.`, 'Replace all')) return;
      progress.hidden = false; progress.removeAttribute('value');
      try {
        const r = await api.importText(text, dom.value, true);
        progress.max = 1; progress.value = 1;
        report(r, r.errors || [], 'Replaced');
        setStatus('Replace finished');
        refreshCount(); load();
      } catch (e) { fail(e); }
    },
  }, 'Replace all…');
  const exportLink = el('a', { href: '/api/export?domain=' + encodeURIComponent(selected), download: selected + '-addresses.txt' }, 'Export the list as a text file');

  view().replaceChildren(
    el('h1', {}, 'Address maintenance'),
    el('div', { class: 'row' }, domField, el('div', {}, count)),
    el('section', { class: 'card' }, search,
      el('table', {}, el('caption', { class: 'hint' }, 'Addresses (unordered; paged without loading the whole list)'),
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Address'), el('th', { scope: 'col' }, 'Action'))), results),
      el('p', { class: 'row' }, prev, next, pager)),
    el('section', { class: 'card' }, addForm),
    el('section', { class: 'card' }, el('h2', {}, 'Import a file'),
      el('p', { class: 'hint' }, 'One address per line; blank lines and lines starting with # are skipped.'),
      field('Address file', file), el('p', { class: 'row' }, importBtn, replaceBtn, progress), importOut),
    el('p', {}, exportLink));
  refreshCount();
  load();
}

// ---- callout cache
async function callout() {
  const list = await domains();
  const addr = el('input', { type: 'text', placeholder: 'user@example.com' });
  const out = el('div', { 'aria-live': 'polite' });
  const form = el('form', { class: 'row card' }, field('Address', addr), el('button', { type: 'submit' }, 'Look up'));
  const age = (ms) => ms === undefined ? '-' : (Number(ms) / 1000).toFixed(0) + ' s';
  async function lookup() {
    const e = await api.rpc('GetCalloutEntry', { address: addr.value.trim() });
    if (!e.found) { out.replaceChildren(el('p', {}, 'Nothing cached for ' + e.address)); return; }
    out.replaceChildren(el('dl', { class: 'kv card' },
      el('dt', {}, 'Address'), el('dd', { class: 'mono' }, e.address),
      el('dt', {}, 'Result'), el('dd', {}, e.result),
      el('dt', {}, 'Age'), el('dd', {}, age(e.age_ms)),
      el('dt', {}, 'Expires in'), el('dd', {}, age(e.expires_in_ms)),
      el('dt', {}, 'Source'), el('dd', { class: 'mono' }, e.source),
      el('dt', {}, 'Back-end reply'), el('dd', { class: 'mono', id: 'callout-reply' }, e.reply)),
    el('button', {
      type: 'button', class: 'danger', onclick: async () => {
        try { const r = await api.rpc('ForgetCalloutEntry', { address: e.address }); setStatus(r.removed ? 'Forgot ' + e.address : 'Nothing to forget'); out.replaceChildren(); } catch (x) { fail(x); }
      },
    }, 'Forget this entry'));
  }
  form.addEventListener('submit', async (ev) => { ev.preventDefault(); try { await lookup(); } catch (e) { fail(e); } });
  const calloutDomains = list.filter((d) => d.mode === 'DOMAIN_MODE_CALLOUT' || d.callout_fallback);
  const status = calloutDomains.map((d) => el('tr', {},
    el('td', {}, d.name),
    el('td', {}, { STATE_CATCH_ALL: 'catch-all', STATE_NORMAL: 'normal (rejects unknown addresses)' }[d.catch_all?.state] || 'not probed yet'),
    el('td', {}, d.catch_all?.state === 'STATE_CATCH_ALL' ? el('span', { class: 'warning' }, d.catch_all.warning) : ''),
    el('td', {}, el('button', {
      type: 'button', class: 'secondary', onclick: async () => {
        if (!await confirmDialog(`Flush every cached callout result of ${d.name} and its catch-all status?`, 'Flush')) return;
        try { const r = await api.rpc('FlushCalloutCache', { domain: d.name }); setStatus(`Flushed ${d.name}: ${r.removed} entries removed`); } catch (e) { fail(e); }
      },
    }, 'Flush ' + d.name))));
  view().replaceChildren(el('h1', {}, 'Callout cache'), form, out,
    el('h2', {}, 'Catch-all status'),
    calloutDomains.length === 0 ? el('p', {}, 'No callout domains.') :
      el('table', {}, el('thead', {}, el('tr', {}, ['Domain', 'Status', 'Warning', 'Action'].map((h) => el('th', { scope: 'col' }, h)))), el('tbody', {}, status)));
}

// ---- explain
function explain() {
  const addr = el('input', { type: 'text', placeholder: 'user@example.com' });
  const out = el('div', { 'aria-live': 'polite' });
  const form = el('form', { class: 'row card' }, field('Recipient address', addr), el('button', { type: 'submit' }, 'Explain'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await api.rpc('Explain', { address: addr.value.trim() });
      const v = r.verdict || {};
      out.replaceChildren(el('section', { class: 'card' },
        el('h2', {}, 'Verdict'),
        el('p', { class: 'mono', id: 'explain-verdict' }, `${v.code || ''} ${v.enhanced_code || ''} ${v.text || ''}`),
        el('h2', {}, 'Reasoning'),
        el('ol', { class: 'steps' }, (r.steps || []).map((s) => el('li', {}, s)))));
    } catch (e) { fail(e); }
  });
  view().replaceChildren(el('h1', {}, 'Explain'), form, out);
}

// ---- shell
const routes = { overview, domains: domainAdmin, addresses, callout, explain };

let shown = '';
// One page render at a time, in order: a slow page (the overview waiting for
// its figures) must not finish after, and over, the page chosen next.
let rendering = Promise.resolve();
function render() {
  rendering = rendering.then(renderNow, renderNow);
  return rendering;
}
async function renderNow() {
  const [name, arg] = (location.hash.slice(1) || 'overview').split('/');
  if (name !== shown) setStatus('');  // a message belongs to the page it was said on
  shown = name;
  const fn = routes[name] || overview;
  for (const a of document.querySelectorAll('#nav a'))
    if (a.getAttribute('href') === '#' + (routes[name] ? name : 'overview')) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  try { await fn(arg ? decodeURIComponent(arg) : undefined); } catch (e) { fail(e); }
  document.body.dataset.view = name;
}

function showLogin(message) {
  document.getElementById('nav').hidden = true;
  view().hidden = true;
  document.getElementById('login-view').hidden = false;
  setStatus(message || '', !!message);
  document.getElementById('token').focus();
  // A verified client certificate (HTTPS with --console-tls-client-ca-file)
  // is a login of its own.
  api.loginMethods().then((m) => {
    const box = document.getElementById('cert-login');
    box.hidden = !m.certificate;
    document.getElementById('cert-subject').textContent = m.certificate ? 'Certificate: ' + m.certificate : '';
    if (m.certificate) document.getElementById('cert-login-button').focus();
  }).catch(() => { /* token login stays */ });
}

document.getElementById('cert-login-button').addEventListener('click', async () => {
  try {
    await api.loginWithCertificate();
    setStatus('Logged in');
    showApp();
  } catch (e) {
    setStatus(e.status === 429 ? 'Too many failed logins: wait a minute.' : 'Login failed: ' + e.message, true);
  }
});

function showApp() {
  document.getElementById('login-view').hidden = true;
  document.getElementById('nav').hidden = false;
  view().hidden = false;
  render();
}

document.getElementById('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const token = document.getElementById('token');
  try {
    await api.login(token.value);
    token.value = '';
    setStatus('Logged in');
    showApp();
  } catch (e) {
    setStatus(e.status === 429 ? 'Too many failed logins: wait a minute.' : 'Login failed: ' + e.message, true);
  }
});
document.getElementById('logout').addEventListener('click', async () => {
  try { await api.logout(); } catch (e) { /* the cookie is cleared either way */ }
  showLogin('Logged out.');
});
window.addEventListener('hashchange', () => { if (!document.getElementById('nav').hidden) render(); });

(async () => {
  if (await api.session()) showApp(); else showLogin();
  document.body.dataset.ready = '1';
})();
