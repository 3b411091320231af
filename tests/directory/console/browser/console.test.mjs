// End-to-end test of the web console (issue #13) in a real headless Chromium
// (Debian's, driven by puppeteer-core; no browser download), against real
// redis-server, doorman-directory and doorman-edge processes started here on
// free loopback ports and stopped by PID. The edge's RCPT verdict is checked
// with a small SMTP client after each change; two fake SMTP back-ends (a
// normal one whose reply text carries markup, and a catch-all) answer the
// callout probes. Screenshots of each page go to --screenshots.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

const require = createRequire(process.env.CONSOLE_NODE_MODULES + '/');
const puppeteer = require('puppeteer-core');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const TOKEN = 'console-test-token-' + Math.random().toString(16).slice(2);
const started = Date.now();
const children = [];
let currentPage = null;  // for the failure report
const servers = [];
let failures = 0;

function log(...m) { console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...m); }
function check(cond, what) {
  if (cond) { log('ok   ', what); return; }
  failures++;
  log('FAIL ', what);
}
function must(cond, what) { if (!cond) throw new Error('FAILED: ' + what); log('ok   ', what); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function poll(fn, what, ms = 10000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error('timed out: ' + what + ' (last: ' + last + ')');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

function start(name, cmd, argv) {
  const out = fs.openSync(path.join(args.work, name + '.log'), 'w');
  const child = spawn(cmd, argv, { stdio: ['ignore', out, out] });
  child.name = name;
  child.exited = new Promise((r) => child.on('exit', r));
  children.push(child);
  log('started', name, 'pid', child.pid);
  return child;
}
const readLog = (name) => fs.readFileSync(path.join(args.work, name + '.log'), 'utf8');

// A fake SMTP back-end: `rcpt(address)` gives the reply line.
function fakeBackend(rcpt) {
  const server = net.createServer((sock) => {
    let buf = '';
    let inData = false;
    sock.write('220 backend.test ESMTP fake\r\n');
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (inData) { if (line === '.') { inData = false; sock.write('250 2.0.0 queued\r\n'); } continue; }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') sock.write('250-backend.test\r\n250 PIPELINING\r\n');
        else if (verb === 'RCPT') sock.write(rcpt(line.replace(/^RCPT TO:\s*<?/i, '').replace(/>.*$/, '')) + '\r\n');
        else if (verb === 'DATA') { inData = true; sock.write('354 go ahead\r\n'); }
        else if (verb === 'QUIT') { sock.end('221 bye\r\n'); return; }
        else if (verb === 'STAR') sock.write('454 4.7.0 TLS not available\r\n');
        else sock.write('250 OK\r\n');
      }
    });
    sock.on('error', () => {});
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

// The edge's reply to RCPT TO:<address> in a fresh session.
function rcpt(port, address) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const steps = ['EHLO client.test', 'MAIL FROM:<sender@remote.test>', `RCPT TO:<${address}>`];
    let buf = '';
    let step = -1;
    sock.setTimeout(10000, () => { sock.destroy(); reject(new Error('smtp timeout')); });
    sock.on('error', reject);
    sock.on('data', (d) => {
      buf += d.toString();
      let m;
      while ((m = buf.match(/^(\d{3}) ([^\r\n]*)\r?\n/m))) {
        const lineEnd = buf.indexOf(m[0]) + m[0].length;
        buf = buf.slice(lineEnd);
        step++;
        if (step < steps.length) { sock.write(steps[step] + '\r\n'); continue; }
        sock.end('QUIT\r\n');
        resolve(m[1] + ' ' + m[2]);
        return;
      }
    });
  });
}

function httpRequest(port, pathname, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathname, method, headers }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

async function main() {
  const [redisPort, dirPort, consolePort, metricsPort, edgePort, dir2Port, console2Port] = await Promise.all(
    [freePort(), freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const closedPort = await freePort();  // nothing listens there: an unreachable back-end
  const normalPort = await fakeBackend((a) => a.startsWith('doorman-random-') ? '550 5.1.1 no such user'
    : a.startsWith('markup@') ? '550 5.1.1 <img src=x onerror="window.__pwned=1"><b id="injected">no such user</b>'
      : '250 2.1.5 OK');
  const catchAllPort = await fakeBackend(() => '250 2.1.5 OK');
  fs.writeFileSync(path.join(args.work, 'admin-token'), TOKEN + '\n');

  start('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await poll(() => new Promise((resolve) => {
    const s = net.connect(redisPort, '127.0.0.1', () => s.write('PING\r\n'));
    s.on('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')); });
    s.on('error', () => resolve(false));
  }), 'redis up');
  start('directory', args.directory, ['--listen', `127.0.0.1:${dirPort}`, '--redis-port', String(redisPort),
    '--http-listen', `127.0.0.1:${metricsPort}`, '--admin-token-file', path.join(args.work, 'admin-token'),
    '--console-listen', `127.0.0.1:${consolePort}`, '--shutdown-grace-seconds', '1', '--callout-wait', '5s',
    '--stats-interval', '200ms']);
  await poll(async () => (await httpRequest(consolePort, '/api/session')).status === 401, 'console up');
  // A second replica on the same Redis with the same token: sessions work on either.
  start('directory2', args.directory, ['--listen', `127.0.0.1:${dir2Port}`, '--redis-port', String(redisPort),
    '--http-listen=', '--admin-token-file', path.join(args.work, 'admin-token'),
    '--console-listen', `127.0.0.1:${console2Port}`, '--shutdown-grace-seconds', '1', '--stats-interval', '200ms']);
  await poll(async () => (await httpRequest(console2Port, '/api/session')).status === 401, 'second console up');
  start('edge', args.edge, ['--listen', `127.0.0.1:${edgePort}`, '--directory', `127.0.0.1:${dirPort}`,
    '--hostname', 'mx.test', '--threads', '2', '--http-listen=', '--greet-pause-ms', '0', '--shutdown-grace-seconds', '1']);
  await poll(() => rcpt(edgePort, 'x@example.test').then(() => true, () => false), 'edge up');

  const base = `http://127.0.0.1:${consolePort}`;
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    currentPage = page;
    await page.setViewport({ width: 1280, height: 860 });
    const cspViolations = [];
    const pageErrors = [];
    page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text()); });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('dialog', (d) => { pageErrors.push('unexpected native dialog: ' + d.message()); d.dismiss(); });
    const shot = (name) => page.screenshot({ path: path.join(args.screenshots, name + '.png'), fullPage: true });
    const statusText = () => page.$eval('#status', (e) => e.textContent);
    const waitStatus = (re, what) => poll(async () => re.test(await statusText()), what);
    const unlabelled = () => page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
      .filter((e) => e.offsetParent !== null && e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))
      .map((e) => e.outerHTML));
    // Clicks what matches `selector` as soon as it is there (lists re-render).
    const clickWhen = (selector) => poll(() => page.evaluate((sel) => {
      const b = document.querySelector(sel);
      if (b) b.click();
      return !!b;
    }, selector), 'click ' + selector);
    const go = async (hash, readySelector) => {
      await page.evaluate((h) => { location.hash = h; }, hash);
      await page.waitForSelector(readySelector, { visible: true });
      check((await unlabelled()).length === 0, `every form field on ${hash} has a label`);
    };

    // --- headers
    const res = await page.goto(base + '/', { waitUntil: 'load' });
    await page.waitForSelector('body[data-ready]');
    const h = res.headers();
    must(/script-src 'self'/.test(h['content-security-policy'] || '') && !/unsafe-inline/.test(h['content-security-policy']), 'strict CSP without unsafe-inline');
    check(h['x-content-type-options'] === 'nosniff' && h['x-frame-options'] === 'DENY', 'nosniff and X-Frame-Options: DENY');
    const apiRes = await httpRequest(consolePort, '/api/session');
    check(apiRes.headers['cache-control'] === 'no-store', 'API responses are not cached');

    // --- login: wrong token, then keyboard only
    await page.waitForSelector('#login-view:not([hidden])');
    must(await page.evaluate(() => document.activeElement.id) === 'token', 'the token field has the focus');
    await page.keyboard.type('wrong-token');
    await page.keyboard.press('Enter');
    await waitStatus(/Login failed: wrong token/, 'wrong token refused');
    check(await page.$eval('#nav', (e) => e.hidden), 'still logged out after a wrong token');
    const metrics = await httpRequest(metricsPort, '/metrics');
    check(/doorman_directory_console_login_failures_total\{reason="wrong_token"\} 1\b/.test(metrics.body), 'the failed login is counted');
    await shot('login');
    await page.$eval('#token', (e) => { e.value = ''; e.focus(); });
    await page.keyboard.type(TOKEN);
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.textContent) === 'Log in', 'Tab reaches the Log in button');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#nav:not([hidden])');
    must(true, 'logged in with the keyboard only');
    const cookie = (await page.cookies()).find((c) => c.name === 'doorman_console');
    must(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', 'session cookie is HttpOnly and SameSite=Strict');

    // --- CSRF: a change without the token is refused and changes nothing
    const noCsrf = await page.evaluate(async () => {
      const r = await fetch('/api/rpc/CreateDomain', { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ domain: { name: 'csrf.test', mode: 'DOMAIN_MODE_ACCEPT_ALL', routes: ['127.0.0.1:25'] } }) });
      return r.status;
    });
    check(noCsrf === 403, 'a change without the CSRF token is refused (403)');

    // --- domain admin: add example.test (list) and callout domains
    await go('#domains', 'form[aria-label="Add domain"]');
    const addDomain = async (name, mode, port) => {
      await page.$eval('form[aria-label="Add domain"] input[type=text]', (e, v) => { e.value = v; }, name);
      await page.select('form[aria-label="Add domain"] select', mode);
      await page.$eval('form[aria-label="Add domain"] textarea', (e, v) => { e.value = v; }, `127.0.0.1:${port}`);
      await page.click('form[aria-label="Add domain"] button[type=submit]');
      await waitStatus(new RegExp('Added ' + name.replace('.', '\\.')), 'domain ' + name + ' added');
      await page.waitForFunction((n) => [...document.querySelectorAll('#main tbody td')].some((td) => td.textContent === n)
        && document.querySelector('form[aria-label="Add domain"] input[type=text]').value === '', {}, name);
    };
    await addDomain('example.test', 'DOMAIN_MODE_LIST', normalPort);
    check(!(await page.evaluate(() => document.body.innerText)).includes('csrf.test'), 'the refused CSRF change did not happen');
    await addDomain('callout.test', 'DOMAIN_MODE_CALLOUT', normalPort);
    await addDomain('catchall.test', 'DOMAIN_MODE_CALLOUT', catchAllPort);
    await addDomain('down.test', 'DOMAIN_MODE_CALLOUT', closedPort);
    // A domain name with markup: refused by the API, its echo inert.
    await page.$eval('form[aria-label="Add domain"] input[type=text]', (e) => { e.value = '<img src=x onerror="window.__pwned=1">.test'; });
    await page.click('form[aria-label="Add domain"] button[type=submit]');
    await waitStatus(/^Error:/, 'domain with markup refused');
    check(await page.evaluate(() => document.querySelectorAll('img').length === 0 && window.__pwned === undefined), 'a domain label with markup renders inert');
    await page.waitForSelector('#main table tbody tr');
    await shot('domains');

    check((await rcpt(edgePort, 'alice@example.test')).startsWith('550'), 'edge: 550 for alice before the add');
    // The callout domains: the edge's RCPTs make the directory probe.
    check((await rcpt(edgePort, 'markup@callout.test')).startsWith('550'), 'edge: 550 from the callout back-end');
    check((await rcpt(edgePort, 'anyone@catchall.test')).startsWith('250'), 'edge: 250 from the catch-all back-end');
    check((await rcpt(edgePort, 'anyone@down.test')).startsWith('4'), 'edge: 4xx when the callout back-end is unreachable');

    // --- overview verdicts
    await go('#overview', '#main table');
    const verdicts = await poll(async () => {
      await page.reload({ waitUntil: 'networkidle0' });
      await page.waitForSelector('#main tbody tr');
      const v = await page.$$eval('#main tbody tr', (rows) => Object.fromEntries(rows.map((r) => [r.cells[0].textContent, r.cells[4].textContent])));
      return /catch-all/.test(v['catchall.test'] || '') && /^yes$/.test(v['callout.test'] || '') && /unreachable/.test(v['down.test'] || '') ? v : null;
    }, 'overview verdicts');
    check(/^no.*address list is empty/.test(verdicts['example.test']), 'overview: example.test not rejecting (list empty)');
    check(/^no.*catch-all/.test(verdicts['catchall.test']), 'overview: catchall.test not rejecting (catch-all back-end)');
    check(verdicts['callout.test'] === 'yes', 'overview: callout.test rejecting');
    check(/^no.*callout back-end unreachable/.test(verdicts['down.test']), 'overview: down.test not rejecting (back-end unreachable)');
    // The last hour's figures: the directories' own counters, summed in Redis (so far: alice and markup refused,
    // anyone@catchall accepted, anyone@down deferred, and the probes behind the callout domains).
    const figures = await poll(async () => {
      await page.reload({ waitUntil: 'networkidle0' });
      await page.waitForSelector('#last-hour .figure');
      const f = await page.$$eval('#last-hour .figure', (els) => Object.fromEntries(els.map((e) =>
        [e.querySelector('.figure-label').textContent, e.querySelector('.figure-value').textContent])));
      return Number(f['Rejected']) >= 2 && Number(f['Recipients accepted']) >= 1 && Number(f['Deferred']) >= 1 &&
        Number(f['Callout probes']) >= 2 ? f : null;
    }, 'overview: last hour figures');
    check(Number(figures['Rejected']) >= 2 && Number(figures['Callout probes']) >= 2, 'overview: the last hour\'s figures');
    await shot('overview');

    // --- address maintenance: add and remove, the edge follows
    await go('#addresses/example.test', '#main form[role=search]');
    await page.type('#new-address', 'alice@example.test');
    await page.keyboard.press('Enter');
    await waitStatus(/Added alice@example\.test/, 'alice added');
    await poll(async () => (await rcpt(edgePort, 'alice@example.test')).startsWith('250'), 'edge: 250 after the add');
    must(true, 'edge: 550 became 250 after the add in the browser');
    await page.type('#prefix', 'alice');
    await page.keyboard.press('Enter');
    await clickWhen('button[aria-label="Remove alice@example.test"]');
    await waitStatus(/Removed alice@example\.test/, 'alice removed');
    await poll(async () => (await rcpt(edgePort, 'alice@example.test')).startsWith('550'), 'edge: 550 after the remove');
    must(true, 'edge: 250 became 550 after the remove');

    // --- import 10,000 addresses (plus two malformed lines)
    const lines = ['# test import'];
    for (let i = 0; i < 10000; i++) lines.push(`user${String(i).padStart(5, '0')}@example.test`);
    lines.push('not an address', 'bad@@example.test');
    const importFile = path.join(args.work, 'import.txt');
    fs.writeFileSync(importFile, lines.join('\n') + '\n');
    const input = await page.$('#main input[type=file]');
    await input.uploadFile(importFile);
    const t0 = Date.now();
    await page.click('#import');
    await page.waitForFunction(() => /Imported:/.test(document.body.innerText), { timeout: 30000 });
    log('import of 10,000 addresses took', Date.now() - t0, 'ms');
    const importText = await page.evaluate(() => document.body.innerText);
    check(/10002 received, 10000 added/.test(importText), 'import: 10,000 added');
    check(/2 malformed/.test(importText) && importText.includes('bad@@example.test'), 'import: malformed lines listed');
    check((await rcpt(edgePort, 'user04242@example.test')).startsWith('250'), 'edge: 250 for an imported address');
    // Search by prefix, across pages.
    await page.$eval('#prefix', (e) => { e.value = 'user0999'; e.focus(); });
    await page.keyboard.press('Enter');
    const found = new Set();
    for (let i = 0; i < 20; i++) {
      await sleep(200);
      for (const a of await page.$$eval('#main tbody td.mono', (tds) => tds.map((t) => t.textContent))) found.add(a);
      const more = await page.$eval('#next-page', (b) => !b.disabled);
      if (!more) break;
      await page.click('#next-page');
    }
    check(found.size === 10 && [...found].every((a) => a.startsWith('user0999')), `prefix search finds the 10 addresses (${found.size})`);
    await page.$eval('#prefix', (e) => { e.value = ''; e.focus(); });
    await page.keyboard.press('Enter');
    // SSCAN pages hold about page_size (25) addresses; the next page holds others.
    const firstPage = await poll(() => page.evaluate(() => {
      const rows = [...document.querySelectorAll('#main tbody td.mono')].map((t) => t.textContent);
      // The search showed only user0999* rows; the whole list shows others
      // (a random SSCAN page may still hold one of the ten user0999x).
      return rows.length >= 5 && rows.length < 200 && !document.getElementById('next-page').disabled && rows.some((r) => !r.startsWith('user0999')) ? rows : null;
    }), 'first page of the whole list');
    await page.click('#next-page');
    const secondPage = await poll(() => page.evaluate((first) => {
      const rows = [...document.querySelectorAll('#main tbody td.mono')].map((t) => t.textContent);
      return rows.length > 0 && !rows.some((r) => first.includes(r)) ? rows : null;
    }, firstPage), 'second page');
    check(secondPage.length > 0 && firstPage.length < 10002, `the list pages (${firstPage.length}, then ${secondPage.length} addresses)`);
    await page.click('#prev-page');
    await poll(() => page.evaluate((first) => document.querySelector('#main tbody td.mono')?.textContent === first[0], firstPage), 'back to page 1');
    await shot('addresses');

    // --- explain
    await go('#explain', '#view form');
    await page.type('#view form input', 'user00042@example.test');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#explain-verdict');
    const explainText = await page.$eval('#main', (e) => e.innerText);
    check(/250/.test(explainText) && /in the list of example\.test/.test(explainText), 'explain shows the verdict and its steps');
    await shot('explain');

    // --- callout cache: the back-end's markup stays text; forget
    await go('#callout', '#view form');
    await page.type('#view form input', 'markup@callout.test');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#callout-reply');
    const reply = await page.$eval('#callout-reply', (e) => ({ text: e.textContent, children: e.children.length }));
    check(reply.text.includes('<img src=x') && reply.children === 0, 'the back-end reply with markup renders as text');
    check(await page.evaluate(() => !document.getElementById('injected') && window.__pwned === undefined), 'no element injected, no script ran');
    check((await page.$eval('#main', (e) => e.innerText)).includes('catch-all'), 'callout page shows the catch-all status');
    await shot('callout');
    await page.click('#main button.danger');
    await waitStatus(/Forgot markup@callout\.test/, 'callout entry forgotten');

    // --- the session works on the other replica: read, and a change with the CSRF token
    const cookieHeader = { Cookie: `doorman_console=${cookie.value}` };
    const other = await httpRequest(console2Port, '/api/session', { headers: cookieHeader });
    check(other.status === 200, 'the session is accepted by the second replica');
    const csrf = JSON.parse(other.body).csrf_token;
    const add2 = await httpRequest(console2Port, '/api/rpc/AddAddresses', {
      method: 'POST', headers: { ...cookieHeader, 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify({ addresses: ['bob@example.test'] }) });
    check(add2.status === 200 && JSON.parse(add2.body).changed === '1', 'a change through the second replica');
    check((await rcpt(edgePort, 'bob@example.test')).startsWith('250'), 'edge: 250 after the change on the second replica');

    // --- replace all, after a confirmation with the exact counts of a dry run
    await go('#addresses/example.test', '#main form[role=search]');
    const replaceFile = path.join(args.work, 'replace.txt');
    const replaceLines = ['carol@example.test', 'dave@example.test', 'erin@example.test', 'user00001@example.test', 'bob@example.test'];
    fs.writeFileSync(replaceFile, '# the new list\n' + replaceLines.join('\n') + '\n');
    await (await page.$('#main input[type=file]')).uploadFile(replaceFile);
    // 10,001 listed (10,000 imported and bob): 3 added, 9,999 removed, 2 unchanged.
    const confirmText = 'Replace the whole list of example.test: 3 added, 9999 removed, 2 unchanged.';
    await page.click('#replace');
    await page.waitForSelector('#confirm[open]');
    check(await page.$eval('#confirm-text', (e) => e.textContent) === confirmText, 'replace-all asks with the dry run\'s counts');
    await page.click('#confirm-cancel');  // the dry run wrote nothing
    const session1 = JSON.parse((await httpRequest(consolePort, '/api/session', { headers: { Cookie: `doorman_console=${cookie.value}` } })).body);
    const countAfterCancel = await httpRequest(consolePort, '/api/rpc/CountAddresses', {
      method: 'POST', headers: { Cookie: `doorman_console=${cookie.value}`, 'Content-Type': 'application/json', 'X-CSRF-Token': session1.csrf_token },
      body: JSON.stringify({ domain: 'example.test' }) });
    check(countAfterCancel.status === 200 && JSON.parse(countAfterCancel.body).count === '10001', 'the dry run and the cancel changed nothing (10001 listed)');
    check((await rcpt(edgePort, 'user04242@example.test')).startsWith('250'), 'edge: the dry run and the cancel left the list as it was');
    await page.click('#replace');
    await page.waitForSelector('#confirm[open]');
    check(await page.$eval('#confirm-text', (e) => e.textContent) === confirmText, 'the second dry run gives the same counts');
    await page.click('#confirm-ok');
    await page.waitForFunction(() => /Replaced: 5 received, 3 added, 9999 removed, 2 unchanged/.test(document.body.innerText), { timeout: 30000 });
    must(true, 'replace-all: 3 added, 9999 removed, 2 unchanged');
    const exported = await httpRequest(consolePort, '/api/export?domain=example.test', { headers: { Cookie: `doorman_console=${cookie.value}` } });
    check(exported.status === 200 && JSON.stringify(exported.body.split('\n').filter(Boolean).sort()) === JSON.stringify([...replaceLines].sort()),
      'the list is exactly the file after the replace');
    check((await rcpt(edgePort, 'user04242@example.test')).startsWith('550') && (await rcpt(edgePort, 'erin@example.test')).startsWith('250'),
      'edge: the replaced list is in force');

    // --- delete with a confirmation saying how many addresses go
    await go('#domains', 'form[aria-label="Add domain"]');
    await page.evaluate(() => [...document.querySelectorAll('button')].find((b) => b.textContent === 'Delete catchall.test').click());
    await page.waitForSelector('#confirm[open]');
    check(/Its 0 addresses go/.test(await page.$eval('#confirm-text', (e) => e.textContent)), 'delete asks with the address count');
    await page.click('#confirm-ok');
    await waitStatus(/Deleted catchall\.test/, 'domain deleted');

    // --- audit log
    const dirLog = readLog('directory');
    check(/console_audit .*method=AddAddresses target=alice@example\.test result=OK/.test(dirLog), 'audit line for the add');
    check(/console_audit .*method=DeleteDomain target=catchall\.test/.test(dirLog), 'audit line for the delete');

    // --- logout ends the session (also for a copy of the cookie)
    await page.click('#logout');
    await page.waitForSelector('#login-view:not([hidden])');
    const replay = await httpRequest(consolePort, '/api/session', { headers: { Cookie: `doorman_console=${cookie.value}` } });
    check(replay.status === 401, 'the old cookie is refused after logout');
    const replay2 = await httpRequest(console2Port, '/api/session', { headers: { Cookie: `doorman_console=${cookie.value}` } });
    check(replay2.status === 401, 'the old cookie is refused by the second replica too (logout in Redis)');
    check(cspViolations.length === 0, 'no CSP violations: ' + cspViolations.join(' | '));
    check(pageErrors.length === 0, 'no page errors: ' + pageErrors.join(' | '));
  } catch (e) {
    try {
      log('page at failure:', currentPage.url(), await currentPage.evaluate(() => document.getElementById('status').textContent + '\n' + document.body.innerText.slice(0, 1500)));
      await currentPage.screenshot({ path: path.join(args.work, 'failure.png'), fullPage: true });
    } catch { /* no page */ }
    throw e;
  } finally {
    await browser.close();
  }
}

async function stopAll() {
  for (const c of children.reverse()) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.race([c.exited, sleep(5000)]);
    if (c.exitCode === null && c.signalCode === null) { c.kill('SIGKILL'); await c.exited; }
  }
  for (const s of servers) s.close();
}

const guard = setTimeout(() => { log('FAIL  the test ran over 150 s'); stopAll().then(() => process.exit(1)); }, 150000);
main().then(async () => {
  await stopAll();
  clearTimeout(guard);
  log(failures === 0 ? 'PASSED' : `${failures} check(s) FAILED`);
  process.exit(failures === 0 ? 0 : 1);
}, async (e) => {
  log('FAIL ', e.stack || e);
  for (const name of ['directory', 'edge']) {
    try { log(`--- ${name} log (tail)\n` + readLog(name).split('\n').slice(-40).join('\n')); } catch { /* not started */ }
  }
  await stopAll();
  clearTimeout(guard);
  process.exit(1);
});
