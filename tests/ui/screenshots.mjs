// tests/ui/screenshots.mjs - writes the README's pictures of the UI (docs/ui-*.png) from the test
// mesh (seedMesh): search, product overview, schema, access request, mesh, and a phone-sized dark
// view; with the auth and grants endpoints also My access and the owner's pending requests.
// Run by hand after a UI change: node tests/ui/screenshots.mjs (after make and tests/ui/setup.sh).
import path from 'node:path';
import {ROOT, seedMesh, stopAll, closeBrowser, withPage, call, adminToken, waitFor} from './lib.mjs';

const out = (name) => path.join(ROOT, 'docs', `ui-${name}.png`);
try {
  const {A, B} = await seedMesh();
  const signIn = async (page, n, tok) => {
    await page.goto(n.url + '/#/signin');
    await page.getByLabel('Access token').fill(tok);
    await page.getByRole('button', {name: 'Sign in'}).click();
    await page.getByTestId('whoami').waitFor();
  };
  const t = await call(B, 'POST', '/v1/tokens', {sub: 'alice@growth', kind: 'read', ttl_s: 3600});
  const alice = t.status === 200 || t.status === 201 ? t.json.token : '';
  const shot = (name, hash, ready, opts = {}) => withPage({name: 'shot-' + name}, opts, async (page) => {
    const n = opts.node || A;
    if (opts.token) await signIn(page, n, opts.token);
    await page.goto(n.url + '/' + hash);
    await page.locator(ready).first().waitFor();
    await page.waitForLoadState('networkidle');
    await page.screenshot({path: out(name), fullPage: !!opts.full});
  });
  await shot('search', '#/search?q=card+amount', '[data-testid=card] .matched mark');
  await shot('product', '#/p/payments/settled-transactions?q=amount', '[data-testid=panel-overview]');
  await shot('schema', '#/p/payments/settled-transactions/schema?q=amount', 'tr.hit');
  if (alice) await shot('access', '#/p/payments/cardholder-pii/access', 'form.request', {token: alice, node: B});
  await shot('mesh', '#/mesh', '[data-testid=domain]');
  await shot('phone-dark', '#/search?domain=payments', '[data-testid=card]', {viewport: {width: 360, height: 760}, colorScheme: 'dark'});
  console.log('wrote docs/ui-{search,product,schema,access,mesh,phone-dark}.png');
  // With tokens and access requests (auth and grants): a consumer's "My access" and the owner's
  // pending requests.
  if (!alice) {
    console.log(`not drawn: ui-access.png, ui-my-access.png, ui-access-owner.png (POST /v1/tokens answered ${t.status})`);
  } else {
    await call(B, 'POST', '/v1/access/requests', {product: 'payments/cardholder-pii', purpose: 'Fraud model features for Q1', fields: ['holder_id'], days: 14}, alice);
    await withPage({name: 'shot-access-owner'}, async (page) => {
      await signIn(page, A, adminToken(A));
      await waitFor('the request at the owner', async () => {
        await page.goto(A.url + '/#/access');
        await page.waitForLoadState('networkidle');
        return (await page.locator('[data-testid=pending] li').count()) >= 1;
      }, 30000);
      await page.screenshot({path: out('access-owner')});
    });
    await withPage({name: 'shot-my-access'}, async (page) => {
      await signIn(page, B, alice);
      await page.goto(B.url + '/#/access');
      await page.getByTestId('access-list').waitFor();
      await page.screenshot({path: out('my-access')});
    });
    console.log('wrote docs/ui-{access-owner,my-access}.png');
  }
} finally {
  await closeBrowser();
  await stopAll();
}
