// The console's JSON API (directory/console/console.h): AdminService calls
// with the session cookie and the CSRF header.
let csrf = '';

export class ApiError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

async function send(path, body, type) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': type, 'X-CSRF-Token': csrf },
    body,
    credentials: 'same-origin',
  });
  let data = {};
  try { data = await res.json(); } catch { /* empty or not JSON */ }
  if (!res.ok) throw new ApiError(res.status, data.error || res.statusText, data.code || '');
  return data;
}

export async function rpc(method, request = {}) {
  return send('/api/rpc/' + method, JSON.stringify(request), 'application/json');
}

// replace: make the list of `domain` exactly `text`; dryRun: only count
// what that would change (nothing is written).
export async function importText(text, domain, replace, dryRun = false) {
  const q = new URLSearchParams();
  if (domain) q.set('domain', domain);
  if (replace) q.set('replace', '1');
  if (dryRun) q.set('dry_run', '1');
  return send('/api/import?' + q.toString(), text, 'text/plain; charset=utf-8');
}

export async function login(token) {
  const data = await send('/api/login', JSON.stringify({ token }), 'application/json');
  csrf = data.csrf_token;
  return data;
}

// Logs in with the client certificate of this TLS connection.
export async function loginWithCertificate() {
  const data = await send('/api/login', JSON.stringify({ certificate: true }), 'application/json');
  csrf = data.csrf_token;
  return data;
}

// {token: true, certificate: "<subject>" or ""}: what this connection can log in with.
export async function loginMethods() {
  const res = await fetch('/api/login-methods', { credentials: 'same-origin' });
  if (!res.ok) return { token: true, certificate: '' };
  return res.json();
}

export async function logout() {
  await send('/api/logout', '{}', 'application/json');
  csrf = '';
}

// The current session, or null when not logged in.
export async function session() {
  const res = await fetch('/api/session', { credentials: 'same-origin' });
  if (!res.ok) return null;
  const data = await res.json();
  csrf = data.csrf_token;
  return data;
}
