// tests/ui/lib.mjs - what the UI tests share: real `trib agent` processes (ports from a free-port
// picker below 32768, temp data dirs, every process stopped at the end), API calls to seed them,
// polling with deadlines, and a Chromium page (Debian's chromium through playwright-core, never a
// downloaded browser) that records page errors, console errors and CSP violations and saves a
// screenshot when a test fails.
// Must not: sleep as synchronisation (poll a condition with a deadline), leave a process running.
import {spawn} from 'node:child_process';
import {createRequire} from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
export const TRIB = process.env.TRIB || path.join(ROOT, 'build', 'trib');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = process.env.UI_ARTIFACTS || path.join(ROOT, 'build', 'ui-artifacts');

// ------------------------------------------------------------------ time

export const now = () => Number(process.hrtime.bigint() / 1000000n);

// Polls fn (async, truthy = done) every 25 ms until it holds or deadline ms pass; returns its value.
export async function waitFor(what, fn, deadline = 20000) {
  const end = now() + deadline;
  let last;
  for (;;) {
    try { last = await fn(); } catch (e) { last = undefined; }
    if (last) return last;
    if (now() > end) throw new Error(`timed out after ${deadline} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// ------------------------------------------------------------------ ports

// Ports 10000-19999 (the tests' range, below the kernel's ephemeral 32768+ and apart from the demo's
// and benchmarks' 20000-31999), from a block chosen by PID; a port is returned only when it binds.
let nextPort = (process.pid % 100) * 100;
export async function freePort() {
  for (let tried = 0; tried < 10000; tried++) {
    const port = 10000 + nextPort;
    nextPort = (nextPort + 1) % 10000;
    const ok = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port in 10000-19999');
}

// ------------------------------------------------------------------ nodes

const started = [];

// Starts `trib agent` for domain (seeded to the given peer addresses); resolves once /v1/status
// answers. Retries on new ports when one was taken between the check and the bind.
export async function startNode(domain, seeds = [], extra = []) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trib-ui-'));
    const http = await freePort(), peer = await freePort();
    const args = ['agent', '--data', dir, '--domain', domain, '--http', `127.0.0.1:${http}`, '--listen', `127.0.0.1:${peer}`];
    for (const s of seeds) args.push('--seed', s);
    args.push(...extra);
    const log = fs.openSync(dir + '.log', 'a');
    const proc = spawn(TRIB, args, {stdio: ['ignore', log, log]});
    fs.closeSync(log);
    const n = {domain, dir, log: dir + '.log', url: `http://127.0.0.1:${http}`, peer: `127.0.0.1:${peer}`, proc, exited: false};
    proc.on('exit', () => { n.exited = true; });
    started.push(n);
    try {
      await waitFor(`${domain} node to answer`, async () => {
        if (n.exited) throw new Error('exited');
        const r = await fetch(n.url + '/v1/status');
        return r.status === 200;
      }, 20000);
      return n;
    } catch (e) {
      await stopNode(n);
      if (attempt === 4) throw new Error(`node ${domain} did not start: ${fs.readFileSync(n.log, 'utf8').slice(-2000)}`);
    }
  }
}

export async function stopNode(n) {
  if (!n.exited) {
    n.proc.kill('SIGTERM');
    try { await waitFor('node to stop', () => n.exited, 20000); } catch (e) { n.proc.kill('SIGKILL'); await waitFor('node to die', () => n.exited, 5000); }
  }
  fs.rmSync(n.dir, {recursive: true, force: true});
  fs.rmSync(n.log, {force: true});
}

export async function stopAll() {
  while (started.length) await stopNode(started.pop());
}
process.on('exit', () => { for (const n of started) if (!n.exited) n.proc.kill('SIGKILL'); });

// The node's admin token (DATA/admin.token, DESIGN §13), once nodes write one; '' before.
export function adminToken(n) {
  try { return fs.readFileSync(path.join(n.dir, 'admin.token'), 'utf8').trim(); } catch (e) { return ''; }
}

export async function call(n, method, p, body, tok) {
  const headers = {};
  const t = tok === undefined ? adminToken(n) : tok;
  if (t) headers.Authorization = 'Bearer ' + t;
  if (body !== undefined && typeof body !== 'string') { headers['Content-Type'] = 'application/json'; body = JSON.stringify(body); }
  const r = await fetch(n.url + p, {method, headers, body});
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch (e) { /* NDJSON or text */ }
  return {status: r.status, text, json, headers: r.headers};
}

export async function publish(n, m) {
  const r = await call(n, 'PUT', `/v1/products/${m.domain}/${m.name}`, m);
  if (r.status !== 200 && r.status !== 201) throw new Error(`publish ${m.domain}/${m.name}: ${r.status} ${r.text}`);
  return r.json;
}

export async function append(n, id, records) {
  const r = await call(n, 'POST', `/v1/products/${id}/records`, records.map((x) => JSON.stringify(x)).join('\n') + '\n');
  if (r.status !== 201) throw new Error(`append ${id}: ${r.status} ${r.text}`);
}

// Resolves when node n's catalog holds every id.
export async function waitCatalog(n, ids, deadline = 30000) {
  await waitFor(`${n.domain} to hold ${ids.join(', ')}`, async () => {
    for (const id of ids) if ((await call(n, 'GET', '/v1/products/' + id, undefined, '')).status !== 200) return false;
    return true;
  }, deadline);
}

export function manifest(domain, name, over = {}) {
  return Object.assign({
    name, domain, version: '1.0.0', status: 'active', title: name, classification: 'internal',
    description: {purpose: `Test product ${name}.`},
    owners: {business: `owner@${domain}.example.com`, technical: `${domain}-eng`},
    tags: [domain], schema: [{name: 'id', logicalType: 'string', required: true, primaryKey: true}],
    outputPorts: [{name: 'main', type: 'stream'}],
  }, over);
}

// ------------------------------------------------------------------ browser

// Every fresh context is a new headless browser window, and Chromium preloads that window's omnibox
// popup (a WebUI page, chrome://omnibox-popup.top-chrome/, ~150 module requests in a renderer of
// its own) while the page under test loads: 200-500 ms of CPU beside the page's ~250 ms on this
// 2-core machine (Chromium trace, tests/ui/bench.mjs), on every fresh page of every test. A user's
// browser has its window long before a page loads, so the tests turn it off. Chromium keeps only
// the last --disable-features, so ours repeats Playwright's own list (read from the installed
// playwright-core, whose version package-lock.json pins) and adds the popup's features.
const BROWSER_UI_OFF = ['WebUIOmniboxPopup', 'WebUIOmniboxFullPopup', 'WebUIOmniboxAimPopup'];
function disabledFeatures() {
  const file = createRequire(import.meta.url).resolve('playwright-core/lib/coreBundle');
  const m = /\bdisabledFeatures = \[([^\]]*)\]/.exec(fs.readFileSync(file, 'utf8'));
  if (!m) throw new Error(`${file}: Playwright's list of disabled Chromium features not found (a new playwright-core?): update lib.mjs`);
  return [...m[1].matchAll(/"([A-Za-z0-9]+)"/g)].map((x) => x[1]).concat(BROWSER_UI_OFF);
}

let browser = null;
export async function launch() {
  if (!browser) {
    browser = await chromium.launch({executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      '--disable-features=' + disabledFeatures().join(',')]});
  }
  return browser;
}
export async function closeBrowser() { if (browser) await browser.close(); browser = null; }

// axe-core (pinned in package-lock.json) run on the page as it is: its violations, each
// {id, impact, help, nodes: [target selectors]}. The script is evaluated through the DevTools
// protocol, which the page's CSP (script-src 'self') does not apply to, so nothing is relaxed.
let axeSource = null;
export async function axe(page) {
  if (!axeSource) axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  if (!await page.evaluate(() => !!window.axe)) await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const r = await window.axe.run(document, {resultTypes: ['violations']});
    return r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' '))}));
  });
}

// Runs body(page, problems) in a fresh context and page; problems collects page errors, console
// errors and CSP violations, and must be empty at the end. A failure leaves a screenshot and the
// page's HTML in ARTIFACTS.
export async function withPage(t, opts, body) {
  if (typeof opts === 'function') { body = opts; opts = {}; }
  const b = await launch();
  const ctx = await b.newContext(Object.assign({viewport: {width: 1100, height: 800}}, opts));
  const page = await ctx.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
  // Chromium logs every non-2xx fetch as a console error; an API refusal (/v1/..., 4xx/503) is an
  // answer the UI shows to the user (no access, no such endpoint yet), so it is not a problem. Any
  // other console error is, and so is a failed static file.
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const url = (m.location() && m.location().url) || '';
    if (/^Failed to load resource: the server responded with a status of (40[0-9]|503)\b/.test(m.text()) && new URL(url, 'http://x').pathname.startsWith('/v1/')) return;
    problems.push('console error: ' + m.text() + (url ? ' (' + url + ')' : ''));
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      (window.__csp = window.__csp || []).push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const csp = async () => { try { return await page.evaluate(() => window.__csp || []); } catch (e) { return []; } };
  try {
    await body(page, problems);
    for (const v of await csp()) problems.push('CSP violation: ' + v);
    if (problems.length) throw new Error('the page reported problems:\n  ' + problems.join('\n  '));
  } catch (e) {
    fs.mkdirSync(ARTIFACTS, {recursive: true});
    const base = path.join(ARTIFACTS, String(t.name).replace(/[^A-Za-z0-9_-]+/g, '_'));
    try { await page.screenshot({path: base + '.png', fullPage: true}); } catch (e2) { /* page gone */ }
    try { fs.writeFileSync(base + '.html', await page.content()); } catch (e2) { /* page gone */ }
    e.message += `\n(screenshot: ${base}.png)`;
    throw e;
  } finally {
    await ctx.close();
  }
}

// ------------------------------------------------------------------ a large catalog

// Publishes count small products of n's domain, conc at a time; returns the time it took (ms).
export async function bulkPublish(n, count, conc = 64) {
  const t0 = now();
  let next = 0;
  const words = ['orders', 'invoices', 'sessions', 'plays', 'refunds', 'signups', 'events', 'ledgers'];
  async function worker() {
    while (next < count) {
      const i = next++;
      const name = `p${String(i).padStart(5, "0")}`;
      await publish(n, manifest(n.domain, name, {
        title: `${words[i % words.length]} ${i}`, tags: [words[i % words.length], `t${i % 50}`],
        owners: {business: `owner${i % 40}@example.com`, technical: `team-${i % 12}`},
        schema: [{name: 'id', logicalType: 'string', required: true, primaryKey: true}, {name: `${words[(i + 3) % words.length]}_amount`, logicalType: 'number'}],
      }));
    }
  }
  await Promise.all(Array.from({length: conc}, worker));
  return now() - t0;
}

// Opens the UI on url in a fresh page and returns, in ms from navigation start: load (the first
// result cards are in the page: the app's mark 'trib:first-results'), painted (the first card's
// title on screen: its Element Timing entry), and of the first search request (Resource Timing):
// sent, answered (its last byte), server (the handler's own time: the Server-Timing header);
// app (app.js's last byte), preloaded (the search came from index.html's preload: one request).
// Then query: the time from typing a query to its results. The page is not touched until the
// first results are painted: Playwright's waiting helpers (waitForFunction, locators) would run
// its injected script on the page's main thread while the page loads, and be measured with it.
export async function firstResults(t, url, query) {
  let out = null;
  await withPage(t, async (page) => {
    await page.goto(url + '/');
    const d = await page.evaluate(() => new Promise((resolve, reject) => {
      let load = null, painted = null;
      const done = () => {
        if (load === null || painted === null) return;
        const res = performance.getEntriesByType('resource');
        const s = res.filter((e) => new URL(e.name).pathname === '/v1/products');
        const app = res.find((e) => new URL(e.name).pathname === '/app.js');
        const st = s.length && s[0].serverTiming.find((x) => x.name === 'app');
        resolve({load, painted, searches: s.length, sent: s.length ? s[0].startTime : NaN, answered: s.length ? s[0].responseEnd : NaN,
          server: st ? st.duration : NaN, app: app ? app.responseEnd : NaN});
      };
      new PerformanceObserver((l, o) => {
        const e = l.getEntries().find((x) => x.name === 'trib:first-results');
        if (e) { load = e.startTime; o.disconnect(); done(); }
      }).observe({type: 'mark', buffered: true});
      new PerformanceObserver((l, o) => {
        const e = l.getEntries().find((x) => x.identifier === 'trib:first-card');
        if (e) { painted = e.renderTime || e.loadTime; o.disconnect(); done(); }
      }).observe({type: 'element', buffered: true});
      setTimeout(() => reject(new Error(`no first results after 30 s (mark ${load}, paint ${painted})`)), 30000);
    }));
    const cards = await page.getByTestId('card').count();
    const t0 = now();
    await page.getByLabel('Search data products').fill(query);
    await page.getByTestId('card').first().filter({hasText: query}).waitFor({timeout: 30000});
    const r = (x) => Math.round(x * 10) / 10;
    out = {load: r(d.load), painted: r(d.painted), sent: r(d.sent), answered: r(d.answered), server: r(d.server), app: r(d.app),
      preloaded: d.searches === 1, cards, query: now() - t0};
  });
  return out;
}

// ------------------------------------------------------------------ the three-node mesh of the tests

export const HOSTILE_TITLE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">\u202Egnp.exe';
export const HOSTILE_FIELD = '"><svg onload=window.__pwned=3>';

// Starts payments (owner of a public product with 30 records, and of a restricted one), growth
// (consumer) and listening (publishes a hostile manifest), and waits until payments' catalog holds
// every product.
export async function seedMesh() {
  let A, B, C;
  A = await startNode('payments');
  B = await startNode('growth', [A.peer]);
  C = await startNode('listening', [A.peer]);
  await publish(A, manifest('payments', 'settled-transactions', {
    title: 'Settled card transactions', classification: 'public', tags: ['finance', 'cards'],
    description: {purpose: 'Every card transaction once it has settled.', usage: 'Join on txn_id; amounts are in minor units.',
      limitations: 'Settlement lags authorisation by up to 48 hours.'},
    owners: {business: 'maria.lopez@example.com', technical: 'payments-data@example.com'},
    schema: [{name: 'txn_id', logicalType: 'string', required: true, primaryKey: true},
      {name: 'amount_minor', logicalType: 'integer', required: true, description: 'Amount in minor units.'},
      {name: 'currency', logicalType: 'string', required: true}, {name: 'settled_at', logicalType: 'timestamp', required: true}],
    sla: {freshness: '15m', availability: '99.9%'},
  }));
  await append(A, 'payments/settled-transactions', Array.from({length: 30}, (_, i) =>
    ({txn_id: `t${i + 1}`, amount_minor: 100 * (i + 1), currency: 'EUR', settled_at: '2026-11-24T10:00:00Z'})));
  await publish(A, manifest('payments', 'payment-disputes', {title: 'Payment disputes', tags: ['finance', 'disputes']}));
  await publish(A, manifest('payments', 'cardholder-pii', {
    title: 'Cardholder personal data', classification: 'restricted', tags: ['pii'],
    schema: [{name: 'holder_id', logicalType: 'string', required: true, primaryKey: true}, {name: 'email', logicalType: 'string'}],
  }));
  await append(A, 'payments/cardholder-pii', [{holder_id: 'h1', email: 'a@example.com'}, {holder_id: 'h2', email: 'b@example.com'}]);
  await publish(B, manifest('growth', 'growth-experiments', {title: 'Product experiments and their exposures', tags: ['experiments'],
    owners: {business: 'lena.koch@example.com', technical: 'growth-eng'}}));
  await publish(B, manifest('growth', 'signup-funnel', {title: 'Signup funnel', tags: ['funnel'], status: 'draft'}));
  await publish(C, manifest('listening', 'hostile', {
    title: HOSTILE_TITLE,
    description: {purpose: 'Click javascript:window.__pwned=4 or <a href="javascript:window.__pwned=5">here</a>',
      usage: '<iframe src="javascript:window.__pwned=6"></iframe>', limitations: '\u202Edesrever si siht'},
    owners: {business: 'javascript:window.__pwned=7//@example.com', technical: '<svg/onload=window.__pwned=8>'},
    tags: ['hostile', '<script>window.__pwned=9</script>'],
    schema: [{name: HOSTILE_FIELD, logicalType: 'string', description: '<img src=x onerror=window.__pwned=10>'}],
    deprecation: {replacedBy: 'javascript:window.__pwned=11'},
  }));
  await waitCatalog(A, ['payments/settled-transactions', 'growth/growth-experiments', 'growth/signup-funnel', 'listening/hostile']);
  return {A, B, C};
}
