// tests/ui/bench.mjs - `make bench`'s web UI figures (issue 13): one node with 10,000 products
// (UI_PRODUCTS), the search API alone, and UI_RUNS (12) fresh page loads in headless Chromium with
// where the time to the first results goes (ms from navigation start, p50 and p90): app.js
// received, the first search sent and answered (and the node's own time in it, from its
// Server-Timing header), the first result cards in the page (the app's mark), the first card
// painted (the Element Timing renderTime of its title: the presentation time of the first frame
// that shows it); then a typed query to its results. The fresh pages are opened without the
// headless window's own omnibox popup WebUI (lib.mjs launch: it is browser UI, not the page, and
// its renderer competed with every fresh page for the 2 cores). The 300 ms target is checked
// here, printed, never asserted (a timed assertion would fail only because the machine is busy).
import os from 'node:os';
import {startNode, stopAll, closeBrowser, bulkPublish, firstResults, now} from './lib.mjs';

const COUNT = Number(process.env.UI_PRODUCTS || 10000);
const RUNS = Math.max(10, Number(process.env.UI_RUNS || 12));
const TARGET = 300;
const pct = (xs, p) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(s.length * p) - 1)] : NaN;
};
const fmt = (x) => (Number.isFinite(x) ? (x < 10 ? x.toFixed(1) : String(Math.round(x))) : '?');
const line = (label, xs, extra = '') =>
  console.log(`    ${label.padEnd(34)} p50 ${fmt(pct(xs, 0.5)).padStart(5)}  p90 ${fmt(pct(xs, 0.9)).padStart(5)}${extra}`);
const verdict = (xs) => {
  const p50 = pct(xs, 0.5), p90 = pct(xs, 0.9);
  return `   target ${TARGET}: p50 ${p50 <= TARGET ? 'met' : 'NOT met'}, p90 ${p90 <= TARGET ? 'met' : 'NOT met'}`;
};
const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');

try {
  const loadBefore = load();
  const n = await startNode('bulk');
  const pub = await bulkPublish(n, COUNT);
  console.log(`  ${COUNT} products published in ${pub} ms (64 PUTs at once)`);

  const api = [], apiServer = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const r = await fetch(n.url + '/v1/products?limit=25');
    await r.json();
    api.push(performance.now() - t0);
    apiServer.push(Number((/app;dur=([0-9.]+)/.exec(r.headers.get('server-timing') || '') || [])[1]));
  }
  console.log(`  the UI's first search alone (GET /v1/products?limit=25 with facets, from Node, ${RUNS} calls):`);
  line('round trip', api);
  line('of which the node (Server-Timing)', apiServer);

  const i = Math.floor(COUNT * 0.43) - (Math.floor(COUNT * 0.43) % 8) + 4; // a 'refunds' product
  const runs = [];
  for (let k = 0; k < RUNS; k++) runs.push(await firstResults({name: 'bench-first-results'}, n.url, `refunds ${i}`));
  const col = (f) => runs.map(f);
  console.log(`  page load -> first results, ${RUNS} fresh pages in headless Chromium (ms from navigation start):`);
  line('app.js received', col((r) => r.app));
  line('first search sent', col((r) => r.sent),
    `   (from index.html's preload in ${runs.filter((r) => r.preloaded).length} of ${RUNS})`);
  line('first search answered', col((r) => r.answered));
  line('  of which the node (Server-Timing)', col((r) => r.server));
  line('first result cards in the page', col((r) => r.load), verdict(col((r) => r.load)));
  line('first card painted', col((r) => r.painted), verdict(col((r) => r.painted)));
  line('typed query -> its results', col((r) => r.query));
  console.log(`  all first results: ${col((r) => Math.round(r.load)).join(' ')}`);
  console.log(`  load average before ${loadBefore}, after ${load()} on ${os.cpus().length} cores ` +
    '(the browser\'s share of a busy machine decides these figures; the node\'s part is the Server-Timing line)');
} finally {
  await closeBrowser();
  await stopAll();
}
