// tests/ui/screenshots.mjs - writes the README's pictures of the UI (docs/ui-*.png) from the test
// mesh (seedMesh): search, product overview, schema, access request, mesh, and a phone-sized dark
// view. Run by hand after a UI change: node tests/ui/screenshots.mjs (after make, setup.sh).
import path from 'node:path';
import {ROOT, seedMesh, stopAll, closeBrowser, withPage} from './lib.mjs';

const out = (name) => path.join(ROOT, 'docs', `ui-${name}.png`);
try {
  const {A} = await seedMesh();
  const shot = (name, hash, ready, opts = {}) => withPage({name: 'shot-' + name}, opts, async (page) => {
    await page.goto(A.url + '/' + hash);
    if (opts.token) {
      await page.evaluate(() => sessionStorage.setItem('trib.token', 'trib1.example-token'));
      await page.reload();
    }
    await page.locator(ready).first().waitFor();
    await page.waitForLoadState('networkidle');
    await page.screenshot({path: out(name), fullPage: !!opts.full});
  });
  await shot('search', '#/search?q=card+amount', '[data-testid=card] .matched mark');
  await shot('product', '#/p/payments/settled-transactions?q=amount', '[data-testid=panel-overview]');
  await shot('schema', '#/p/payments/settled-transactions/schema?q=amount', 'tr.hit');
  await shot('access', '#/p/payments/cardholder-pii/access', 'form.request', {token: true});
  await shot('mesh', '#/mesh', '[data-testid=domain]');
  await shot('phone-dark', '#/search?domain=payments', '[data-testid=card]', {viewport: {width: 360, height: 760}, colorScheme: 'dark'});
  console.log('wrote docs/ui-{search,product,schema,access,mesh,phone-dark}.png');
} finally {
  await closeBrowser();
  await stopAll();
}
