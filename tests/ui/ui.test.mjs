// tests/ui/ui.test.mjs - the web UI (issue 13) in real headless Chromium against three real nodes
// (payments, growth, listening): static file headers, search -> facet -> product -> schema filter,
// deep links and the back button, sample records, the restricted product, hostile content published
// on a peer, the keyboard-only path, the mesh view, 360 px and dark mode; and the sign-in/access
// flows, written against the brief's API contract and skipped while the node answers 404 for them.
// Every browser test asserts zero page errors, console errors and CSP violations (lib.mjs withPage).
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {seedMesh, HOSTILE_FIELD, stopAll, call, adminToken, withPage, closeBrowser, waitFor, waitCatalog, publish, manifest, startNode, stopNode, append} from './lib.mjs';

let A, B, C; // payments (owner of the restricted product), growth (consumer), listening (hostile publisher)

before(async () => {
  ({A, B, C} = await seedMesh());
});

after(async () => {
  await closeBrowser();
  await stopAll();
});

// ------------------------------------------------------------------ static files

test('static files: types, ETag and 304, CSP, nosniff, 404 for unknown files', async () => {
  for (const [p, type] of [['/', 'text/html'], ['/index.html', 'text/html'], ['/app.js', 'text/javascript'], ['/app.css', 'text/css'], ['/favicon.png', 'image/png']]) {
    const r = await fetch(A.url + p);
    assert.equal(r.status, 200, p);
    assert.ok(r.headers.get('content-type').startsWith(type), `${p}: ${r.headers.get('content-type')}`);
    const csp = r.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(r.headers.get('cache-control'));
    const etag = r.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{32}"$/);
    await r.arrayBuffer();
    const again = await fetch(A.url + p, {headers: {'If-None-Match': etag}});
    assert.equal(again.status, 304, p);
    assert.equal(again.headers.get('etag'), etag);
    const other = await fetch(A.url + p, {headers: {'If-None-Match': '"0000"'}});
    assert.equal(other.status, 200);
    await other.arrayBuffer();
  }
  const nf = await fetch(A.url + '/nope.js');
  assert.equal(nf.status, 404);
  assert.equal((await nf.json()).error, 'not_found');
});

// ------------------------------------------------------------------ search and product

test('search -> facet -> product -> schema filter', async (t) => {
  await withPage(t, async (page) => {
    await page.goto(A.url + '/');
    const box = page.getByLabel('Search data products');
    await waitFor('search box focused', () => page.evaluate(() => document.activeElement && document.activeElement.id === 'q'), 5000);
    await box.fill('amount');
    const card = page.getByTestId('card').filter({hasText: 'Settled card transactions'});
    await page.waitForFunction(() => location.hash === '#/search?q=amount');
    // the search is debounced: the cards on screen until it answers are the whole catalog's
    await waitFor('the results of "amount"', async () => /^1 product/.test(await page.locator('#count').textContent()), 10000);
    await card.waitFor();
    assert.equal(await page.locator('#count').getAttribute('aria-live'), 'polite');
    // the field that matched comes from the manifest: the card names it
    await card.locator('.matched mark', {hasText: 'amount_minor'}).waitFor();
    for (const s of ['payments/settled-transactions', 'maria.lopez@example.com', 'public', 'active', '1.0.0']) {
      assert.ok((await card.textContent()).includes(s), `card shows ${s}`);
    }
    // facet chips with the API's counts
    await box.fill('');
    await page.waitForFunction(() => location.hash === '#/search');
    const chip = page.getByRole('link', {name: /^Domain growth, 2 products/});
    await chip.click();
    await page.waitForFunction(() => location.hash.includes('domain=growth'));
    await waitFor('only growth cards', async () => {
      const ids = await page.locator('[data-testid=card] .pid').allTextContents();
      return ids.length === 2 && ids.every((x) => x.startsWith('growth/'));
    }, 10000);
    assert.equal(await page.getByRole('link', {name: /^Domain growth, 2 products, selected/}).getAttribute('aria-current'), 'true');
    await page.goBack();
    await page.waitForFunction(() => !location.hash.includes('domain='));
    await waitFor('every card back', async () => (await page.getByTestId('card').count()) >= 5, 10000);
    // classification chips count as the API does (the restricted product as its stub: it shows its classification)
    const facets = (await (await fetch(A.url + '/v1/products?limit=0')).json()).facets;
    assert.deepEqual(facets.classification, {internal: 4, public: 1, restricted: 1});
    await page.getByRole('link', {name: /^Classification restricted, 1 product$/}).waitFor();
    await page.getByRole('link', {name: /^Classification internal, 4 products$/}).waitFor();
    await page.getByRole('link', {name: /^Classification public, 1 product$/}).click();
    await page.waitForFunction(() => location.hash === '#/search?classification=public');
    await waitFor('only the public card', async () => {
      const ids = await page.locator('[data-testid=card] .pid').allTextContents();
      return ids.length === 1 && ids[0] === 'payments/settled-transactions';
    }, 10000);
    assert.match(await page.locator('#count').textContent(), /^1 product/);
    assert.equal(await page.getByRole('link', {name: /^Classification public, 1 product, selected/}).getAttribute('aria-current'), 'true');
    await page.reload();   // the URL carries the filter
    await waitFor('the public card after a reload', async () => {
      const ids = await page.locator('[data-testid=card] .pid').allTextContents();
      return ids.length === 1 && ids[0] === 'payments/settled-transactions';
    }, 10000);
    await page.goBack();
    await page.waitForFunction(() => !location.hash.includes('classification='));
    await waitFor('every card back', async () => (await page.getByTestId('card').count()) >= 5, 10000);
    // open the product, then its schema, and filter
    await box.fill('settled');
    await page.waitForFunction(() => location.hash === '#/search?q=settled');
    await waitFor('the results of "settled"', async () => {   /* not the cards from before the debounce */
      const texts = await page.locator('[data-testid=card]').allTextContents();
      return texts.length > 0 && texts.every((x) => /settled/i.test(x));
    }, 10000);
    await page.getByRole('link', {name: 'Settled card transactions'}).click();
    await page.getByRole('heading', {level: 1, name: 'Settled card transactions'}).waitFor();
    assert.equal(await page.title(), 'Settled card transactions – Tributary'); // the tab names the product
    assert.ok(await page.getByRole('link', {name: 'maria.lopez@example.com'}).getAttribute('href') === 'mailto:maria.lopez@example.com');
    assert.ok((await page.getByTestId('panel-overview').textContent()).includes('trib get payments/settled-transactions'));
    assert.equal(await page.getByTestId('panel-overview').getByRole('link', {name: 'Sample records'}).getAttribute('href'), '#/p/payments/settled-transactions/sample');
    // the service level in words (the manifest says freshness: 15m, availability: 99.9%)
    assert.ok((await page.getByTestId('panel-overview').textContent()).includes('Freshnessnew data arrives within 15 minutes'));
    assert.ok((await page.getByTestId('panel-overview').textContent()).includes('Availabilityit can be read 99.9% of the time'));
    await page.getByRole('link', {name: 'Schema'}).click();
    await page.getByTestId('schema').waitFor();
    assert.equal(await page.locator('[data-testid=schema] tbody tr').count(), 4);
    await page.getByLabel('Filter fields').fill('curr');
    await waitFor('one field left', async () => (await page.locator('[data-testid=schema] tbody tr').count()) === 1, 5000);
    assert.equal(await page.locator('[data-testid=schema] tbody tr').getAttribute('data-field'), 'currency');
    assert.match(await page.evaluate(() => location.hash), /^#\/p\/payments\/settled-transactions\/schema\?.*f=curr/);
  });
});

test('an open mesh flags no product unverified; the provenance says why nothing was checked', async (t) => {
  assert.equal((await call(A, 'GET', '/v1/federation', undefined, '')).json.mode, 'open');
  await withPage(t, async (page) => {
    await page.goto(A.url + '/#/p/payments/settled-transactions/provenance');
    await page.getByTestId('signature').waitFor();
    assert.match(await page.getByTestId('signature').textContent(), /^not checked This mesh runs without a federation charter/);
    assert.equal(await page.locator('main .meta .badge').filter({hasText: /verified/}).count(), 0);
  });
});

// A chartered node judges a product's owner key now (owner_node.trust, docs/http-api.md): one revoked
// is said so on the provenance tab, with the federation's words, apart from the signature (judged as
// of when it signed). This mesh is open, so the node's answer is given the fields a chartered node
// adds for a revoked owner, as the page would get them.
test('the provenance tab says the owner node is revoked when the node says so', async (t) => {
  const detail = 'certificate 535ebe7986637273 of payments: its key is revoked from 2026-12-05T10:00:00.000Z by the federation\'s roots (reason: laptop lost)';
  await withPage(t, async (page) => {
    await page.route('**/v1/products/payments/settled-transactions', async (route) => {
      const r = await route.fetch();
      const j = await r.json();
      j.owner_node = Object.assign({}, j.owner_node, {state: 'dead', trust: 'revoked', detail});
      j.verified = true;
      await route.fulfill({response: r, json: j});
    });
    await page.goto(A.url + '/#/p/payments/settled-transactions/provenance');
    const ot = page.getByTestId('owner-trust');
    await ot.waitFor();
    const text = await ot.textContent();
    assert.match(text, /^revoked This node's certificate for the domain does not hold now: certificate 535ebe7986637273 of payments: its key is revoked from 2026-12-05T10:00:00.000Z by the federation's roots \(reason: laptop lost\)\. Its records cannot be read/);
    assert.equal(await ot.locator('.badge.trust-revoked').count(), 1);
    assert.match(await page.getByTestId('signature').textContent(), /^verified The signer was certified for this domain when it signed/);
  });
  // the node's own answer (open mode) has no trust judgement: nothing is said
  await withPage(t, async (page) => {
    await page.goto(A.url + '/#/p/payments/settled-transactions/provenance');
    await page.getByTestId('signature').waitFor();
    assert.equal(await page.getByTestId('owner-trust').count(), 0);
  });
});

test('a search that finds nothing says what to try, with a way back to the whole catalog', async (t) => {
  await withPage(t, async (page) => {
    await page.goto(A.url + '/#/search?q=zzzqqq&domain=payments');
    const none = page.getByTestId('no-results');
    await none.waitFor();
    assert.match(await none.textContent(), /^No product matches “zzzqqq” with these filters\. Try fewer or other words/);
    await none.getByRole('link', {name: 'start again with the whole catalog'}).click();
    await waitFor('the whole catalog', async () => (await page.getByTestId('card').count()) >= 5, 10000);
    assert.equal(await page.getByLabel('Search data products').inputValue(), '');
  });
});

// Leaving the search page within the search's debounce (150 ms after the last key): the search
// that then runs must not write its address over the page the reader went to.
test('a search typed just before leaving the page leaves the new page\'s address alone', async (t) => {
  await withPage(t, async (page) => {
    await page.goto(A.url + '/#/search');
    await waitFor('search box focused', () => page.evaluate(() => document.activeElement && document.activeElement.id === 'q'), 5000);
    await page.getByLabel('Search data products').fill('amount');   // one input event: its search is 150 ms away
    await page.evaluate(() => { location.hash = '#/p/payments/settled-transactions'; });
    await page.locator('#tab-access').waitFor();
    // a timer set now fires after the search's (set before it, shorter): the search has run by then
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 400)));
    assert.equal(await page.evaluate(() => location.hash), '#/p/payments/settled-transactions');
  });
});

test('deep links reload to the same state and the back button works', async (t) => {
  await withPage(t, async (page) => {
    await page.goto(A.url + '/#/search?q=experiments&domain=growth');
    await page.getByTestId('card').filter({hasText: 'growth/growth-experiments'}).waitFor();
    assert.equal(await page.getByLabel('Search data products').inputValue(), 'experiments');
    await page.reload();
    await page.getByTestId('card').filter({hasText: 'growth/growth-experiments'}).waitFor();
    assert.equal(await page.getByLabel('Search data products').inputValue(), 'experiments');
    assert.equal(await page.getByRole('link', {name: /^Domain growth, 1 product, selected/}).getAttribute('aria-current'), 'true');
    await page.goto(A.url + '/#/p/payments/settled-transactions/schema?q=amount');
    await page.locator('tr.hit[data-field="amount_minor"] mark').waitFor();
    await page.reload();
    await page.locator('tr.hit[data-field="amount_minor"] mark').waitFor();
    await page.getByRole('link', {name: 'Overview'}).click();
    await page.getByTestId('panel-overview').waitFor();
    await page.goBack();
    await page.getByTestId('schema').waitFor();
    await page.goBack();
    await page.getByTestId('card').filter({hasText: 'growth/growth-experiments'}).waitFor();
  });
});

test('sample records: the first 20 when the product may be read', async (t) => {
  await withPage(t, async (page) => {
    await page.goto(B.url + '/#/p/payments/settled-transactions/sample'); // routed through growth's node to the owner
    await page.getByTestId('records').waitFor();
    assert.equal(await page.locator('[data-testid=records] tbody tr').count(), 20);
    assert.equal(await page.locator('[data-testid=records] tbody tr').first().locator('td').first().textContent(), 't1');
  });
});

test('restricted product: a stub or not found, and no records for others', async (t) => {
  const r = await call(A, 'GET', '/v1/products/payments/cardholder-pii/records?limit=1', undefined, '');
  if (r.status === 200) {
    t.skip('classification is not enforced on this branch yet (records of a restricted product answered 200 without a token; auth helper)');
    return;
  }
  await withPage(t, async (page) => {
    await page.goto(A.url + '/#/p/payments/cardholder-pii/sample');
    const denied = page.getByTestId('no-access');
    const notFound = page.getByText(/Not found\./);
    await waitFor('a refusal on the page', async () => (await denied.count()) + (await notFound.count()) > 0, 10000);
    if (await denied.count()) assert.match(await denied.textContent(), /You do not have access/);
    assert.equal(await page.getByTestId('records').count(), 0);
    assert.ok(!(await page.content()).includes('a@example.com'));
    // the refusal in words, with the way on (sign in); the node's code only under Technical details
    const box = page.locator('main [role=alert]').first();
    assert.doesNotMatch(await box.innerText(), /token_required|not_found|HTTP \d/);
    await box.getByRole('link', {name: 'Sign in'}).waitFor();
    await box.getByText('Technical details').click();
    assert.match(await box.innerText(), /(token_required|not_found) \(HTTP 40[14]\)/);
  });
});

// A restricted product is a stub to whoever may not read it (DESIGN §13: id, title, status,
// classification, owners): its description, schema, versions and provenance are hidden, not
// missing, and no tab may say otherwise ("not described", "no schema", version "?", "undefined").
// Each says it is restricted, who owns it, and the way to access: sign in, then the Access tab,
// whose request form takes a request for the stub.
test('restricted product seen without a grant: every tab says what is hidden and how to ask for access', async (t) => {
  const stub = await call(A, 'GET', '/v1/products/payments/cardholder-pii', undefined, '');
  assert.equal(stub.json.stub, true, 'the product is a stub without a token: ' + stub.text);
  const tabs = [['overview', 'description, schema, version and records are'], ['schema', 'schema (its fields) is'],
    ['versions', 'versions and their history are'], ['provenance', 'provenance (owner node, signer, signature) and compliance state are']];
  const check = async (page, n, way) => {
    for (const [tab, what] of tabs) {
      await page.goto(`${n.url}/#/p/payments/cardholder-pii${tab === 'overview' ? '' : '/' + tab}`);
      const panel = page.getByTestId('panel-' + tab);
      const note = panel.getByTestId('hidden');
      await note.waitFor();
      const text = await note.innerText();
      assert.ok(text.startsWith(`Restricted. Its ${what} shown only to people its owner has granted access to.`), `${tab}: ${text}`);
      assert.match(text, way, tab);
      assert.match(text, /Its owner decides: owner@payments\.example\.com\./, tab);
      assert.equal(await note.getByRole('link', {name: 'Access tab'}).getAttribute('href'), '#/p/payments/cardholder-pii/access');
      const main = await page.locator('main').innerText();
      assert.doesNotMatch(main, /not described|has no schema|Current version|catalog entry|undefined|\bnull\b|\?\)/, tab);
      assert.equal(await page.locator('main .meta .ver').count(), 0, 'no version in the heading');
    }
    await page.goto(`${n.url}/#/p/payments/cardholder-pii`);
    await page.getByTestId('hidden').waitFor();
    const owners = page.getByTestId('panel-overview').locator('section').filter({hasText: 'Owners'});
    assert.equal(await owners.getByRole('link', {name: 'owner@payments.example.com'}).getAttribute('href'), 'mailto:owner@payments.example.com');
    assert.match(await owners.innerText(), /payments-eng/);
    assert.equal(await page.getByText('How to read it').count(), 0, 'no read commands that would be refused');
  };
  await withPage(t, async (page) => {   // signed out
    await check(page, A, /^[^]*Sign in with your token, then ask for access on the Access tab\./);
    assert.equal(await page.getByTestId('hidden').getByRole('link', {name: 'Sign in'}).getAttribute('href'), '#/signin');
  });
  if (!await needs(t, [[B, 'GET', '/v1/whoami'], [B, 'POST', '/v1/tokens', {}], [B, 'GET', '/v1/access/mine']])) return;
  const carol = await issue(B, 'carol@growth', 'read');
  await withPage(t, async (page) => {   // signed in on growth, without a grant: the request form takes a request for the stub
    await signIn(page, B, carol);
    await check(page, B, /\nAsk for access on the Access tab\./);
    await page.getByTestId('hidden').getByRole('link', {name: 'Access tab'}).click();
    await page.locator('form.request').waitFor();
    assert.match(await page.getByTestId('fields-hidden').textContent(), /^Its fields are hidden until you have access: the request is for all of them\.$/);
    await page.getByLabel('Purpose').fill('Chargeback disputes');
    await page.getByRole('button', {name: 'Request access'}).click();
    await page.getByTestId('request-state').filter({hasText: 'Request sent.'}).waitFor();
    await page.goto(B.url + '/#/p/payments/cardholder-pii/sample');
    const denied = page.getByTestId('no-access');
    await denied.waitFor();
    assert.match(await denied.innerText(), /^You do not have access to these records\. This product is restricted: reading it needs an access grant from its owner\. Request access/);
  });
});

// index.html preloads the first search anonymously; a signed-in tab must not show that answer.
test('the first search of a signed-in tab is made with its token, not the anonymous preload', async (t) => {
  await withPage(t, async (page) => {
    const card = page.getByTestId('card').filter({hasText: 'Cardholder personal data'});
    await page.goto(A.url + '/');
    await card.waitFor();
    assert.equal(await card.getByText('Version').count(), 0, 'anonymous: the restricted product is a stub');
    await page.evaluate((tok) => sessionStorage.setItem('trib.token', tok), adminToken(A));
    await page.reload();
    await card.waitFor();
    await waitFor('the signed-in search', async () => (await card.getByText('Version').count()) === 1, 10000);
    assert.ok(await page.evaluate(() => performance.getEntriesByType('resource')
      .filter((e) => new URL(e.name).pathname === '/v1/products').length >= 2), 'the preload and the search with the token');
  });
});

test('hostile manifest from a peer node renders as inert text', async (t) => {
  await withPage(t, async (page) => {
    await page.goto(A.url + '/#/search?q=hostile');
    const card = page.getByTestId('card').filter({hasText: 'listening/hostile'});
    await card.waitFor();
    const title = await card.locator('h2').textContent();
    assert.ok(title.includes('<script>window.__pwned=1</script>'), title);
    assert.ok(title.includes('[U+202E]'), 'the RTL override is shown as an escape: ' + title);
    await card.locator('h2 a').click();
    await page.getByTestId('panel-overview').waitFor();
    const text = await page.locator('main').textContent();
    for (const s of ['javascript:window.__pwned=4', '<iframe src="javascript:window.__pwned=6"></iframe>', '<svg/onload=window.__pwned=8>']) {
      assert.ok(text.includes(s), 'shown as text: ' + s);
    }
    await page.getByRole('link', {name: 'Schema'}).click();
    await page.getByTestId('schema').waitFor();
    assert.equal(await page.locator('[data-testid=schema] tbody th').first().textContent(), HOSTILE_FIELD);
    const dom = await page.evaluate(() => ({
      pwned: window.__pwned,
      scripts: document.scripts.length,
      bad: [...document.querySelectorAll('[href],[src]')].map((e) => e.getAttribute('href') || e.getAttribute('src'))
        .filter((u) => !/^(#\/|\/|https?:|mailto:)/.test(u)),
      injected: document.querySelectorAll('main img, main svg, main iframe, main script, main b').length,
    }));
    assert.deepEqual(dom, {pwned: undefined, scripts: 1, bad: [], injected: 0});
  });
});

test('keyboard only: search, open a product, reach the access section', async (t) => {
  await withPage(t, async (page) => {
    await page.goto(A.url + '/#/p/payments/payment-disputes');
    await page.getByRole('heading', {level: 1}).waitFor();
    await page.keyboard.press('/'); // back to search, box focused
    await waitFor('search box focused', () => page.evaluate(() => document.activeElement && document.activeElement.id === 'q'), 5000);
    await page.keyboard.type('cardholder');
    await page.getByTestId('card').filter({hasText: 'payments/cardholder-pii'}).waitFor();
    await page.waitForFunction(() => location.hash === '#/search?q=cardholder');
    const tabTo = async (pred, what, max = 40) => {
      for (let i = 0; i < max; i++) {
        await page.keyboard.press('Tab');
        if (await page.evaluate(pred)) return;
      }
      throw new Error('Tab never reached ' + what);
    };
    await tabTo(() => document.activeElement.textContent === 'Cardholder personal data', 'the result link');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', {level: 1, name: 'Cardholder personal data'}).waitFor();
    await tabTo(() => document.activeElement.id === 'tab-access', 'the Access tab');
    await page.keyboard.press('Enter');
    await page.getByTestId('panel-access').waitFor();
    await tabTo(() => /Sign in/.test(document.activeElement.textContent) && document.activeElement.closest('.panel'), 'the sign-in link');
    await page.keyboard.press('Enter');
    await waitFor('sign-in form', () => page.evaluate(() => document.activeElement && document.activeElement.id === 'token'), 5000);
  });
});

test('mesh view: three domains, their nodes alive, product counts', async (t) => {
  await withPage(t, async (page) => {
    await page.goto(A.url + '/#/mesh');
    await waitFor('three domains with alive nodes', async () => {
      await page.reload();
      await page.getByTestId('domain').first().waitFor();
      const txt = await page.locator('main').textContent();
      return (await page.getByTestId('domain').count()) === 3 && (txt.match(/alive/g) || []).length >= 3;
    }, 20000);
    assert.equal(await page.title(), 'Domains and nodes – Tributary');
    const pay = page.getByTestId('domain').filter({hasText: 'payments'});
    assert.match(await pay.locator('h2').textContent(), /3 products/);
    assert.match(await page.getByTestId('this-node').textContent(), /in domain payments/);
    // in words: how long it has run, what the states mean
    assert.match(await page.getByTestId('this-node').textContent(), /running for \d+ (second|minute)s?, with \d+ products in its catalog/);
    assert.match(await page.getByTestId('mesh-legend').textContent(), /suspect when it has just stopped answering/);
  });
});

test('leaving the first search view before its results arrive leaves no search box in the next view', async (t) => {
  await withPage(t, async (page) => {
    let release;
    const held = new Promise((r) => { release = r; });
    await page.route(/\/v1\/products\?limit=25$/, async (route) => { await held; await route.continue(); });
    await page.goto(A.url + '/#/search');
    await page.evaluate(() => { location.hash = '#/mesh'; });
    await page.getByTestId('domain').first().waitFor();
    // the held view's own timer (HOLD_MS = 400, scheduled before this one) has fired by then
    await page.evaluate(() => new Promise((r) => setTimeout(r, 401)));
    release();
    await page.waitForFunction(() => performance.getEntriesByName('trib:first-results').length > 0);
    assert.equal(await page.locator('#q').count(), 0, 'the search view was appended into the mesh view');
    assert.ok(await page.getByTestId('domain').count() >= 1);
  });
});

test('a slow node: the product page and the mesh say they are loading, then show their data', async (t) => {
  await withPage(t, async (page) => {
    for (const [hash, api, text, ready] of [
      ['#/p/payments/settled-transactions', /\/v1\/products\/payments\/settled-transactions$/, 'Loading the product', '[data-testid=panel-overview]'],
      ['#/mesh', /\/v1\/members$/, 'Loading the domains', '[data-testid=domain]']]) {
      let release;
      const held = new Promise((r) => { release = r; });
      await page.route(api, async (route) => { await held; await route.continue(); });
      await page.goto(A.url + '/' + hash);
      await page.getByTestId('loading').filter({hasText: text}).waitFor();
      assert.equal(await page.locator(ready).count(), 0);
      release();
      await page.locator(ready).first().waitFor();
      assert.equal(await page.getByTestId('loading').count(), 0, hash + ': the loading line is gone');
      await page.unroute(api);
    }
  });
});

test('readable at 360 px and dark by preference', async (t) => {
  await withPage(t, {viewport: {width: 360, height: 740}, colorScheme: 'dark'}, async (page) => {
    for (const hash of ['#/search?q=settled', '#/p/payments/settled-transactions', '#/p/payments/settled-transactions/schema', '#/mesh']) {
      await page.goto(A.url + '/' + hash);
      await page.locator('main h1, main .card').first().waitFor();
      await page.waitForLoadState('networkidle');
      const w = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(w <= 360, `${hash}: page is ${w} px wide at a 360 px viewport`);
    }
    // the mesh's tables stack on a phone: a cell takes the row's width, its column's name before it
    const cell = page.locator('[data-testid=domain] tbody td').first();
    const box = await cell.boundingBox();
    assert.ok(box.width > 250, `a mesh table cell is ${box.width} px wide at 360 px`);
    assert.equal(await cell.evaluate((e) => getComputedStyle(e, '::before').content), '"State"');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const [r, g, b] = bg.match(/\d+/g).map(Number);
    assert.ok(r + g + b < 150, 'dark background: ' + bg);
  });
});

test('versions: the history with change class, or the current version where the node keeps none', async (t) => {
  await publish(A, manifest('payments', 'payment-disputes', {title: 'Payment disputes', tags: ['finance', 'disputes'], version: '1.1.0',
    schema: [{name: 'id', logicalType: 'string', required: true, primaryKey: true}, {name: 'reason_code', logicalType: 'string'}]}));
  const hist = await call(A, 'GET', '/v1/products/payments/payment-disputes/history', undefined, '');
  await withPage(t, async (page) => {
    await page.goto(A.url + '/#/p/payments/payment-disputes/versions');
    await page.getByTestId('panel-versions').locator('table, .notice').first().waitFor();
    if (hist.status === 404 && /no route/.test(hist.text)) { // a node without GET .../history: the page says what it knows
      assert.match(await page.getByTestId('panel-versions').textContent(), /Current version: 1\.1\.0.*no route/s);
      return;
    }
    assert.equal(hist.status, 200, hist.text);
    const rows = page.locator('[data-testid=versions] tbody tr');
    await waitFor('two versions', async () => (await rows.count()) === 2, 5000);
    assert.equal(await rows.first().locator('th').textContent(), '1.1.0'); // newest first
    const cls = hist.json.versions.find((v) => v.version === '1.1.0').change_class;
    assert.ok((await rows.first().textContent()).includes(cls), `the change class ${cls} is shown`);
    assert.equal(await page.locator('[data-testid=versions] .breaking-breaking').count(), 0);
  });
});

// ------------------------------------------------------------------ sign-in and access (contract; skipped while 404)

// Skips t unless every endpoint answers something other than "no route" 404.
async function needs(t, checks) {
  for (const [n, method, p, body] of checks) {
    const r = await call(n, method, p, body);
    if (r.status === 404 && /no route/.test(r.text)) {
      t.skip(`${method} ${p} answers 404 on this branch (the auth/grants helpers' endpoint, enabled at merge)`);
      return false;
    }
  }
  return true;
}

async function issue(n, sub, kind) {
  const r = await call(n, 'POST', '/v1/tokens', {sub, kind, ttl_s: 3600});
  assert.ok(r.status === 200 || r.status === 201, r.text);
  return r.json.token;
}

async function signIn(page, n, tok) {
  await page.goto(n.url + '/#/signin');
  await page.getByLabel('Access token').fill(tok);
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.getByTestId('whoami').waitFor();
}

test('sign in by pasting a token shows who you are', async (t) => {
  if (!await needs(t, [[B, 'GET', '/v1/whoami'], [B, 'POST', '/v1/tokens', {}]])) return;
  const tok = await issue(B, 'alice@growth', 'read');
  await withPage(t, async (page) => {
    await signIn(page, B, tok);
    assert.match(await page.getByTestId('whoami').textContent(), /alice@growth/);
    assert.match(await page.getByTestId('whoami').textContent(), /You mayread products/); // the kind in words, not "read"
    assert.match(await page.getByTestId('whoami').textContent(), /Productsall/); // the scope */* in words
    assert.equal(await page.evaluate(() => document.cookie), '');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('trib.token')), tok);
    assert.equal(await page.locator('label[for=token]').textContent(), 'Another access token (to sign in as someone else)');
    // Sign out is there at once (not only after coming back to the page), and does what it says
    await page.getByRole('button', {name: 'Sign out'}).click();
    await page.getByText('Signed out').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('trib.token')), null);
    assert.equal(await page.locator('#who').textContent(), 'Sign in');
    assert.equal(await page.getByRole('heading', {level: 1}).textContent(), 'Sign in');
    assert.equal(await page.locator('label[for=token]').textContent(), 'Access token');
  });
});

test('request -> grant on the owner\'s UI -> sample visible through the consumer\'s node -> revoke', async (t) => {
  if (!await needs(t, [[B, 'GET', '/v1/whoami'], [B, 'POST', '/v1/tokens', {}], [B, 'GET', '/v1/access/mine'],
    [A, 'GET', '/v1/access/requests?state=requested']])) return;
  const alice = await issue(B, 'alice@growth', 'read');
  const owner = adminToken(A);
  await withPage(t, async (page) => {
    await signIn(page, B, alice);
    // a public product needs no request: the page says so, and offers no form
    await page.goto(B.url + '/#/p/payments/settled-transactions/access');
    await page.getByTestId('no-request-needed').waitFor();
    assert.match(await page.getByTestId('no-request-needed').textContent(), /^Public: anyone may read its records.*No access request is needed\.$/);
    assert.equal(await page.locator('form.request').count(), 0);
    await page.goto(B.url + '/#/p/payments/cardholder-pii/access');
    await page.locator('form.request').waitFor();
    assert.doesNotMatch(await page.getByTestId('panel-access').innerText(), /\bnull\b/);
    assert.match(await page.getByTestId('who-reads').textContent(), /^Restricted: only people its owner has granted access may read it/);
    await page.getByLabel('Purpose').fill('Fraud model features');
    await page.getByLabel('For how many days').fill('7');
    await page.getByRole('button', {name: 'Request access'}).click();
    await page.getByTestId('request-state').waitFor();
    assert.match(await page.getByTestId('request-state').textContent(), /requested/);
    // the page's own "Your access" shows the request at once
    await page.getByTestId('access-list').filter({hasText: 'Fraud model features'}).waitFor();
    // the same request again (a second click, the page kept open): the node answers with the first,
    // the page says so, and the owner gets one request to decide, not two
    await page.getByLabel('Purpose').fill('Fraud model features');
    await page.getByLabel('For how many days').fill('7');
    await page.getByRole('button', {name: 'Request access'}).click();
    await page.getByTestId('request-state').filter({hasText: 'You asked for this already'}).waitFor();
    const mine = await call(B, 'GET', '/v1/access/mine', undefined, alice);
    assert.equal(mine.json.filter((a) => a.product === 'payments/cardholder-pii' && a.kind === 'request').length, 1);
  });
  await withPage(t, async (page) => {
    await signIn(page, A, owner);
    await waitFor('the request on the owner\'s node', async () => {
      await page.goto(A.url + '/#/access');
      await page.getByRole('heading', {level: 1, name: 'My access'}).waitFor();
      await page.waitForLoadState('networkidle');
      return (await page.getByTestId('pending').count()) > 0;
    }, 30000);
    const req = page.getByTestId('pending').locator('li').filter({hasText: 'alice@growth'}).filter({hasText: 'payments/cardholder-pii'});
    assert.equal(await req.locator('label').allTextContents().then((l) => l.join('|')), 'Days|Reason to deny'); // labelled on screen
    await req.getByRole('button', {name: 'Grant'}).click();
    await req.locator('.state-granted').waitFor();
    assert.match(await req.textContent(), /alice@growth may read payments\/cardholder-pii for 7 days\./);
    assert.equal(await req.getByRole('button').count(), 0, 'once decided, no Grant or Deny to press again');
    // the owner's own domain reads its restricted product without a grant: no form to ask for one
    await page.goto(A.url + '/#/p/payments/cardholder-pii/access');
    await page.getByTestId('own-domain').waitFor();
    assert.match(await page.getByTestId('own-domain').textContent(), /of your own domain \(payments\): your token reads it without an access grant/);
    assert.equal(await page.locator('form.request').count(), 0);
  });
  await withPage(t, async (page) => {
    await signIn(page, B, alice);
    await waitFor('the sample through growth\'s node', async () => {
      await page.goto(B.url + '/#/p/payments/cardholder-pii/sample');
      await page.locator('[data-testid=records], [data-testid=no-access]').first().waitFor();
      return (await page.getByTestId('records').count()) > 0;
    }, 30000);
    await page.goto(B.url + '/#/access');
    await page.getByTestId('access-list').waitFor();
    assert.match(await page.getByTestId('access-list').textContent(), /granted/);
    assert.equal(await page.locator('[data-testid=access-list] tbody tr').filter({hasText: 'payments/cardholder-pii'}).count(), 1,
      'the request and the grant it led to are one line');
  });
  await withPage(t, async (page) => { // the owner revokes on its own node's UI
    await signIn(page, A, owner);
    await page.goto(A.url + '/#/access');
    await page.getByTestId('granted').waitFor();
    await page.getByRole('button', {name: /^Revoke alice@growth on payments\/cardholder-pii/}).click();
    await page.locator('[data-testid=granted] .state-revoked').waitFor();
  });
  await withPage(t, async (page) => {
    await signIn(page, B, alice);
    await waitFor('access gone', async () => {
      await page.goto(B.url + '/#/p/payments/cardholder-pii/sample');
      await page.locator('[data-testid=records], [data-testid=no-access], .notice').first().waitFor();
      return (await page.getByTestId('records').count()) === 0;
    }, 30000);
  });
});

test('keyboard only: sign in, then request access from the product page', async (t) => {
  if (!await needs(t, [[B, 'GET', '/v1/whoami'], [B, 'POST', '/v1/tokens', {}], [B, 'GET', '/v1/access/mine']])) return;
  const bob = await issue(B, 'bob@growth', 'read');
  await withPage(t, async (page) => {
    const tabTo = async (pred, what, max = 60) => {
      for (let i = 0; i < max; i++) {
        await page.keyboard.press('Tab');
        if (await page.evaluate(pred)) return;
      }
      throw new Error('Tab never reached ' + what);
    };
    await page.goto(B.url + '/#/signin');
    await waitFor('token box focused', () => page.evaluate(() => document.activeElement.id === 'token'), 5000);
    await page.keyboard.type(bob);
    await page.keyboard.press('Enter');
    await page.getByTestId('whoami').waitFor();
    await page.keyboard.press('/');
    await waitFor('search box focused', () => page.evaluate(() => document.activeElement.id === 'q'), 5000);
    await page.keyboard.type('cardholder');
    // the results of the whole word, not of a prefix typed before (slow keystrokes under load each
    // ran a search; the last one's answer replaced the list, and the focused link with it)
    await page.getByText('for “cardholder”').waitFor();
    await page.getByTestId('card').filter({hasText: 'payments/cardholder-pii'}).waitFor();
    await tabTo(() => document.activeElement.textContent === 'Cardholder personal data', 'the result link');
    await page.keyboard.press('Enter');
    // the product page first: tabbing while it still renders ran past it on a loaded machine
    await page.locator('#tab-access').waitFor();
    await tabTo(() => document.activeElement.id === 'tab-access', 'the Access tab');
    await page.keyboard.press('Enter');
    await page.locator('form.request').waitFor();
    await tabTo(() => document.activeElement.id === 'req-purpose', 'the purpose box');
    await page.keyboard.type('Chargeback investigations');
    await tabTo(() => document.activeElement.id === 'req-days', 'the days box');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('10');
    await page.keyboard.press('Enter'); // submits the form
    await page.getByTestId('request-state').waitFor();
    assert.match(await page.getByTestId('request-state').textContent(), /requested/);
  });
});

// A read returns the records of one schema version: where the next record was validated against
// another, it ends with {"error": "schema_changed", ...} instead (docs/http-api.md). The sample tab
// shows the records before it as records and that line as what it is, with the way to read on;
// the same through growth's node, which relays the owner's read.
test('records of two schema versions: the overview says a read stops at the change; the sample shows the records, then a notice and the way to the next version\'s', async (t) => {
  const id = 'payments/ledger-entries';
  const schema = [{name: 'entry_id', logicalType: 'string', required: true, primaryKey: true}];
  await publish(A, manifest('payments', 'ledger-entries', {title: 'Ledger entries', classification: 'public', schema}));
  await append(A, id, [{entry_id: 'e1'}, {entry_id: 'e2'}, {entry_id: 'e3'}]);
  await publish(A, manifest('payments', 'ledger-entries', {title: 'Ledger entries', classification: 'public', version: '1.1.0',
    schema: [...schema, {name: 'memo', logicalType: 'string'}]}));
  await append(A, id, [{entry_id: 'e4', memo: 'refund'}, {entry_id: 'e5'}]);
  const raw = await call(A, 'GET', `/v1/products/${id}/records?limit=20`, undefined, '');
  assert.match(raw.text.trim().split('\n').pop(), /^\{"error":"schema_changed"/, 'the read ends with the schema_changed line: ' + raw.text);
  await waitCatalog(B, [id]);
  for (const n of [A, B]) {
    await withPage(t, async (page) => {
      // the overview's read commands say where a read starts, and that it stops at a schema change
      await page.goto(n.url + '/#/p/payments/ledger-entries');
      const ov = page.getByTestId('panel-overview');
      await ov.locator('.ports').waitFor();
      const how = await ov.innerText();
      assert.ok(how.includes(`trib get ${id} --from 1 --limit 20 --node ${n.url}`), how);
      assert.ok(how.includes(`curl -s '${n.url}/v1/products/${id}/records?from=1&limit=20'`), how);
      assert.match(how, /Each reads its 20 oldest records, from seq 1: leave out the limit to read them all, or give another seq to start from\./);
      assert.equal(await ov.getByTestId('read-versions').innerText(), 'A read returns the records of one schema version at a time, and the oldest may be of ' +
        'an earlier version than this page\'s 1.1.0. Where the next record is of another version, the read stops with the line ' +
        '{"error": "schema_changed", …}, which names the seq that version begins at (trib get says resume with --from N): read again from that seq to go on under the next version.');
      await page.goto(n.url + '/#/p/payments/ledger-entries/sample');
      const table = page.getByTestId('records');
      await table.waitFor();
      assert.deepEqual(await table.locator('thead th').allTextContents(), ['entry_id'], 'no error or detail column');
      assert.deepEqual(await table.locator('tbody td').allTextContents(), ['e1', 'e2', 'e3']);
      assert.equal(await page.getByTestId('records-count').textContent(),
        'The first 3 records of 5. They were validated against version 1.0.0; the product\'s current version, on the Schema tab, is 1.1.0.');
      const ended = page.getByTestId('read-ended');
      assert.equal(await ended.getAttribute('data-kind'), 'schema_changed');
      assert.match(await ended.innerText(), /^The next records have another schema version\. From seq 4 on they were validated against version 1\.1\.0, not 1\.0\.0 as those above\. A read returns the records of one schema version at a time/);
      assert.match(await ended.innerText(), new RegExp(`trib get ${id} --from 4 --node ${n.url.replace(/\./g, '\\.')}`));
      await ended.getByText('Technical details').click();
      assert.match(await ended.innerText(), /schema_changed: records of payments\/ledger-entries from seq 4 on were validated against version 1\.1\.0/);
      // the way on: the next version's records, with their own columns
      await ended.getByRole('link', {name: 'Show the records from seq 4'}).click();
      await page.waitForFunction(() => location.hash === '#/p/payments/ledger-entries/sample?from=4');
      await page.getByTestId('records-count').filter({hasText: 'Records 4 to 5 of 5.'}).waitFor();
      assert.deepEqual(await table.locator('thead th').allTextContents(), ['entry_id', 'memo']);
      assert.deepEqual(await table.locator('tbody td').allTextContents(), ['e4', 'refund', 'e5', '']);
      assert.match(await page.getByTestId('records-count').textContent(), /validated against version 1\.1\.0\.$/);
      assert.equal(await page.getByTestId('read-ended').count(), 0);
    });
  }
});

// Any other end line (the owner lost mid-read, a storage failure ...) is no record either: the
// records before it are shown, counted alone, with what happened and where to read on from.
test('sample records that end with an error line: the records, then what happened', async (t) => {
  await withPage(t, async (page) => {
    await page.route('**/v1/products/payments/settled-transactions/records?*', (route) => route.fulfill({
      status: 200, contentType: 'application/x-ndjson', headers: {'Trib-First-Seq': '1', 'Trib-Last-Seq': '30'},
      body: '{"txn_id":"t1"}\n{"txn_id":"t2"}\n{"error":"owner_lost","detail":"owner node 74760ff6c85c (domain payments) at 10.0.0.5:7470 is unreachable: its member state is dead"}\n',
    }));
    await page.goto(A.url + '/#/p/payments/settled-transactions/sample');
    await page.getByTestId('records').waitFor();
    assert.deepEqual(await page.locator('[data-testid=records] thead th').allTextContents(), ['txn_id']);
    assert.equal(await page.locator('[data-testid=records] tbody tr').count(), 2);
    assert.equal(await page.getByTestId('records-count').textContent(), 'The first 2 records of 30.');
    const ended = page.getByTestId('read-ended');
    assert.match(await ended.innerText(), /^Only part of the records came\. The node that owns this product stopped answering during the read/);
    assert.equal(await ended.getByRole('link', {name: 'Show the records from seq 3'}).getAttribute('href'), '#/p/payments/settled-transactions/sample?from=3');
  });
});

// The owner stopped: the records cannot be read through growth's node (503 owner_unreachable), and
// the page says the owner cannot be reached, not "the node is busy or still starting" (which sent
// the reader to wait on growth's node, which is fine). Last in the file: the stopped node stays
// listed (left) in the mesh the tests before it count.
test('sample records of a product whose owner is stopped: the page says the owner cannot be reached', async (t) => {
  const D = await startNode('ops', [A.peer]);
  await waitFor('ops to publish (not_synced right after its start)', async () => {
    try { await publish(D, manifest('ops', 'runbook', {title: 'Runbook', classification: 'public'})); return true; } catch (e) { return false; }
  });
  await append(D, 'ops/runbook', [{id: 'r1'}]);
  await waitFor('growth to know ops/runbook', async () => (await call(B, 'GET', '/v1/products/ops/runbook')).status === 200);
  await stopNode(D); // SIGTERM: left at once
  await withPage(t, async (page) => {
    await page.goto(B.url + '/#/p/ops/runbook/sample');
    const box = page.locator('.error[role=alert]');
    await box.waitFor();
    const text = await box.textContent();
    assert.match(text, /owns this product cannot be reached/, text);
    assert.doesNotMatch(text, /busy or still starting/, text);
    assert.match(text, /owner_unreachable/, 'the node\'s code under Technical details: ' + text);
  });
});
