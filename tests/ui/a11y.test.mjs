// tests/ui/a11y.test.mjs - accessibility of the web UI against the three-node test mesh (lib.mjs
// seedMesh), signed out, as a consumer (alice@growth, through growth's node) and as the owner
// (payments' admin): axe-core on every main view in light mode, dark mode and dark at 360 px,
// failing on any "serious" or "critical" violation (every violation is printed, by rule); every
// control of a view is reached by Tab and shows a focus indicator when it is; and an owner grants
// and denies requests with the keyboard alone.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {seedMesh, stopAll, call, adminToken, withPage, closeBrowser, waitFor, waitCatalog, axe} from './lib.mjs';

let A, B, owner, alice;

async function issue(n, sub, kind) {
  const r = await call(n, 'POST', '/v1/tokens', {sub, kind, ttl_s: 3600});
  assert.ok(r.status === 200 || r.status === 201, r.text);
  return r.json.token;
}

// subject asks (through node `via`) for product; resolves when the owner's node lists the request.
async function request(via, tok, subject, product, purpose, days) {
  const r = await call(via, 'POST', '/v1/access/requests', {product, purpose, days}, tok);
  assert.ok(r.status === 200 || r.status === 201 || r.status === 202, r.text);
  await waitFor(`${subject}'s request at the owner`, async () => {
    const l = await call(A, 'GET', '/v1/access/requests?state=requested', undefined, owner);
    const all = Array.isArray(l.json) ? l.json : (l.json && l.json.requests) || [];
    return all.some((a) => a.subject === subject && a.product === product);
  }, 60000);
}

before(async () => {
  ({A, B} = await seedMesh());
  owner = adminToken(A);
  alice = await issue(B, 'alice@growth', 'read');
  // seedMesh waits for payments' catalog only: growth's node must know the product before it
  // takes a request for it (else 404 not_found)
  await waitCatalog(B, ['payments/cardholder-pii']);
  await request(B, alice, 'alice@growth', 'payments/cardholder-pii', 'Fraud model features', 14);
});

after(async () => {
  await closeBrowser();
  await stopAll();
});

async function signIn(page, n, tok) {
  await page.goto(n.url + '/#/signin');
  await page.getByLabel('Access token').fill(tok);
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.getByTestId('whoami').waitFor();
}

// [name, node, who ('' signed out, 'alice', 'owner'), hash, a selector present once the view is drawn]
const VIEWS = () => [
  ['search', A, '', '#/search?q=card+amount', '[data-testid=card] .matched a mark'],
  ['search, no match', A, '', '#/search?q=zzzzqqq', '.empty'],
  ['product overview', A, '', '#/p/payments/settled-transactions', '[data-testid=panel-overview] .ports'],
  ['product schema', A, '', '#/p/payments/settled-transactions/schema?q=amount', 'tr.hit'],
  ['product sample', A, '', '#/p/payments/settled-transactions/sample', '[data-testid=records]'],
  ['product versions', A, '', '#/p/payments/settled-transactions/versions', '[data-testid=panel-versions] :is(table, .notice)'],
  ['product provenance', A, '', '#/p/payments/settled-transactions/provenance', '[data-testid=panel-provenance] dl'],
  ['restricted, signed out', A, '', '#/p/payments/cardholder-pii/sample', '[data-testid=panel-sample] :is(.notice, .error)'],
  ['mesh', A, '', '#/mesh', '[data-testid=domain]'],
  ['sign in', A, '', '#/signin', '#token'],
  ['request access', B, 'alice', '#/p/payments/cardholder-pii/access', 'form.request'],
  ['my access', B, 'alice', '#/access', '[data-testid=access-list]'],
  ['owner: requests', A, 'owner', '#/access', '[data-testid=pending]'],
  ['owner: product access', A, 'owner', '#/p/payments/cardholder-pii/access', '[data-testid=pending]'],
];

// Opens every view in one tab (signing in on a node the first time a view needs it) and calls
// fn(name, page) on each once it is drawn.
async function eachView(page, fn, only) {
  const signed = new Set();
  for (const [name, n, who, hash, ready] of VIEWS()) {
    if (only && !only.includes(name)) continue;
    if (who && !signed.has(n.url)) {
      await signIn(page, n, who === 'alice' ? alice : owner);
      signed.add(n.url);
    }
    await page.goto(n.url + '/' + hash);
    await page.locator(ready).first().waitFor({timeout: 15000});
    await page.waitForLoadState('networkidle');
    await fn(name, page);
  }
}

for (const [label, opts] of [
  ['light', {colorScheme: 'light'}],
  ['dark', {colorScheme: 'dark'}],
  ['dark at 360 px', {colorScheme: 'dark', viewport: {width: 360, height: 740}}],
]) {
  test(`axe: no serious or critical violation on any view (${label})`, async (t) => {
    await withPage(t, opts, async (page) => {
      const found = [];
      await eachView(page, async (name) => {
        for (const v of await axe(page)) found.push({view: name, ...v});
      });
      const byRule = {};
      for (const v of found) byRule[`${v.id} (${v.impact})`] = (byRule[`${v.id} (${v.impact})`] || 0) + v.nodes.length;
      console.log(`a11y ${label}: ${found.length ? JSON.stringify(byRule) : 'no violation'}`);
      const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      assert.deepEqual(bad.map((v) => `${v.view}: ${v.id} (${v.impact}) ${v.help}: ${v.nodes.slice(0, 5).join(' | ')}`), []);
    });
  });
}

// Tabs through the page from its top until the focus leaves it or comes back round; returns the
// number of stops (window.__stops). The walk starts from a focus point put first in the body
// (Chromium goes on from the last focused element, not from the top, after a blur).
async function tabStops(page) {
  await page.evaluate(() => {
    const s = document.createElement('span');
    s.id = '__start';
    s.tabIndex = -1;
    document.body.prepend(s);
    s.focus();
    window.__stops = [];
    window.__unringed = [];
  });
  for (let i = 0; i < 150; i++) {
    await page.keyboard.press('Tab');
    const again = await page.evaluate(() => {
      const a = document.activeElement;
      if (!a || a === document.body) return true;
      if (window.__stops.includes(a)) return true;
      window.__stops.push(a);
      // the focus indicator, read while this element has the focus: an outline or a shadow
      const s = getComputedStyle(a);
      if (!(s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 1) && s.boxShadow === 'none') window.__unringed.push(a);
      return false;
    });
    if (again) break;
  }
  return page.evaluate(() => { document.getElementById('__start').remove(); return window.__stops.length; });
}

test('keyboard: every control of every view is reached by Tab and shows where the focus is', async (t) => {
  await withPage(t, async (page) => {
    const problems = [];
    await eachView(page, async (name) => {
      const n = await tabStops(page);
      const r = await page.evaluate(() => {
        const stops = window.__stops;
        const controls = [...document.querySelectorAll('a[href], button, input, textarea, select, summary, [tabindex]:not([tabindex="-1"])')]
          .filter((e) => !e.disabled && e.checkVisibility({visibilityProperty: true}) && e.getClientRects().length);
        const name = (e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''} "${(e.getAttribute('aria-label') || e.textContent || e.value || '').trim().slice(0, 40)}"`;
        return {missed: controls.filter((e) => !stops.includes(e)).map(name), invisible: window.__unringed.map(name)};
      });
      if (!n) problems.push(`${name}: Tab reaches nothing`);
      for (const m of r.missed) problems.push(`${name}: not reached by Tab: ${m}`);
      for (const m of r.invisible) problems.push(`${name}: no visible focus: ${m}`);
    });
    assert.deepEqual(problems, []);
  });
});

test('keyboard only: the owner signs in, opens the requests, grants one and denies another', async (t) => {
  const bob = await issue(B, 'bob@growth', 'read');
  const carol = await issue(B, 'carol@growth', 'read');
  await request(B, bob, 'bob@growth', 'payments/cardholder-pii', 'Chargeback investigations', 30);
  await request(B, carol, 'carol@growth', 'payments/cardholder-pii', 'Curiosity', 30);
  await withPage(t, async (page) => {
    const tabTo = async (pred, what, key = 'Tab', max = 80) => {
      for (let i = 0; i < max; i++) {
        await page.keyboard.press(key);
        if (await page.evaluate(pred)) return;
      }
      throw new Error(`${key} never reached ${what}`);
    };
    await page.goto(A.url + '/#/signin');
    await waitFor('token box focused', () => page.evaluate(() => document.activeElement.id === 'token'), 5000);
    await page.keyboard.type(owner);
    await page.keyboard.press('Enter');
    await page.getByTestId('whoami').waitFor();
    await tabTo(() => document.activeElement.dataset.nav === 'access', 'the My access link', 'Shift+Tab');
    await page.keyboard.press('Enter');
    await page.getByTestId('pending').waitFor();
    const grantDays = (s) => `document.activeElement.getAttribute('aria-label') === 'Days to grant ${s} on payments/cardholder-pii'`;
    await tabTo(new Function(`return ${grantDays('bob@growth')}`), 'bob\'s days box');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('5');
    await tabTo(() => document.activeElement.textContent === 'Grant', 'bob\'s Grant button');
    await page.keyboard.press('Enter');
    const bobCard = page.getByTestId('pending').locator('li').filter({hasText: 'bob@growth'});
    await bobCard.locator('.state-granted').waitFor();
    await tabTo(() => /^Reason to deny carol@growth/.test(document.activeElement.getAttribute('aria-label') || ''), 'carol\'s reason box');
    await page.keyboard.type('Not for curiosity');
    await tabTo(() => document.activeElement.textContent === 'Deny', 'carol\'s Deny button');
    await page.keyboard.press('Enter');
    await page.getByTestId('pending').locator('li').filter({hasText: 'carol@growth'}).locator('.state-denied').waitFor();
  });
  const l = await call(A, 'GET', '/v1/access/requests', undefined, owner);
  const all = Array.isArray(l.json) ? l.json : (l.json && l.json.requests) || [];
  const bob1 = all.find((a) => a.subject === 'bob@growth');
  const carol1 = all.find((a) => a.subject === 'carol@growth');
  assert.equal(bob1.state, 'granted');
  assert.ok(bob1.expires_ms - Date.now() <= 5 * 86400000 && bob1.expires_ms - Date.now() > 4 * 86400000, 'granted for the 5 days typed');
  assert.equal(carol1.state, 'denied');
  assert.equal(carol1.reason, 'Not for curiosity');
});
