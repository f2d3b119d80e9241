// web/app.js - the Tributary web UI (DESIGN §15): search, product pages, the mesh, sign-in and
// access requests, all from the node's public HTTP API (/v1/...), with every view's state in the
// URL hash (#/search?q=..., #/p/{domain}/{name}[/tab]).
// Must not: put API data into the page as HTML (everything goes through text nodes; links only
// http(s) and mailto), keep state outside the URL and sessionStorage, or load anything from
// another origin. No framework, no build step.

'use strict';

// ------------------------------------------------------------------ DOM helpers (data stays text)

// Bidirectional controls (U+202A-E, U+2066-9, U+200E/F) and other controls in data are shown as
// visible escapes, so a title cannot reorder what the reader sees ("Trojan Source").
const CONTROL_RE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
function inert(s) {
  if (s === null || s === undefined) return '';
  return String(s).replace(CONTROL_RE, (c) => '[U+' + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0') + ']');
}

// h('a', {href: ..., class: ...}, child...): children that are strings become text nodes.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'href') {
      const safe = safeHref(v);
      if (safe) el.setAttribute('href', safe);
    } else if (k.startsWith('on')) {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'text') {
      el.textContent = inert(v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false || c === '') continue;
    el.append(c instanceof Node ? c : document.createTextNode(inert(c)));
  }
  return el;
}

// Only in-app hash links, http(s) and mailto are ever put in an href.
function safeHref(v) {
  const s = String(v);
  if (s.startsWith('#/')) return s;
  try {
    const u = new URL(s, location.href);
    if (u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'mailto:') return u.href;
  } catch (e) { /* not a URL */ }
  return null;
}

const EMAIL_RE = /^[^\s@<>"'()[\]\\,;:]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/;
function owner(o) {
  if (!o) return h('span', {class: 'muted'}, 'none');
  return EMAIL_RE.test(o) ? h('a', {href: 'mailto:' + o}, o) : h('span', {}, o);
}

function badge(kind, value) {
  if (!value) return null;
  const v = String(value).toLowerCase().replace(/[^a-z0-9_-]/g, '');
  return h('span', {class: `badge ${kind} ${kind}-${v}`}, value);
}

function ago(iso) {
  const t = Date.parse(iso);
  if (!isFinite(t)) return '';
  const s = Math.max(0, (Date.now() - t) / 1000);
  const [n, u] = s < 60 ? [s, 'second'] : s < 3600 ? [s / 60, 'minute'] : s < 86400 ? [s / 3600, 'hour']
    : [s / 86400, 'day'];
  const k = Math.floor(n);
  return `${k} ${u}${k === 1 ? '' : 's'} ago`;
}

function shortId(hex) { return hex ? String(hex).slice(0, 12) : ''; }

function announce(el, text) { el.textContent = inert(text); }

// "Loading…" at the end of el until the data is in (a slow node must not look like an empty page);
// returns the function that takes it away.
function loading(el, text) {
  const l = h('p', {class: 'muted loading', role: 'status', 'data-testid': 'loading'}, text || 'Loading…');
  el.append(l);
  return () => l.remove();
}

// ------------------------------------------------------------------ API

const TOKEN_KEY = 'trib.token';
function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

// index.html preloads the first page of the catalog (<link rel="preload" as="fetch">), so the
// node answers while app.js and app.css load. Only a request like the preload's takes its answer:
// no token, credentials 'same-origin', the HTTP cache's default mode. Every other call omits
// credentials and bypasses the cache, so it never gets a preloaded (possibly old) answer.
const PRELOADED = '/v1/products?limit=25';

// One call to the node's API: {status, ok, json, text, error, detail}. Never throws for HTTP errors.
// opts.preloaded: this is the page's first search, which may take the preloaded answer.
async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  const t = token();
  if (t) headers['Authorization'] = 'Bearer ' + t;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const preload = !!opts.preloaded && !t && path === PRELOADED;
  let res;
  try {
    res = await fetch(path, {
      method: opts.method || 'GET', headers, signal: opts.signal,
      credentials: preload ? 'same-origin' : 'omit', cache: preload ? 'default' : 'no-store',
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return {status: 0, ok: false, error: 'network', detail: 'the node did not answer: ' + e.message};
  }
  const text = await res.text();
  const out = {status: res.status, ok: res.ok, text, headers: res.headers};
  if ((res.headers.get('Content-Type') || '').startsWith('application/json')) {
    try { out.json = JSON.parse(text); } catch (e) { /* leave it as text */ }
  }
  if (!res.ok) {
    out.error = (out.json && out.json.error) || 'http_' + res.status;
    out.detail = (out.json && out.json.detail) || text.slice(0, 200);
  }
  return out;
}

// A 404 that is "no such route" (the node does not have this endpoint yet), not "no such thing".
function noRoute(r) { return r.status === 404 && /no route/.test(r.detail || ''); }

// What went wrong, in words: the access refusals by their code, a failure of the node or the
// network by its status, else the node's own detail (written for people: "days: expected ...").
const STATUS_TEXT = {
  0: 'The node did not answer: check your network, or try again in a moment.',
  429: 'Too many requests: wait a moment and try again.',
  500: 'The node could not answer: try again later, or tell its operator.',
  503: 'The node is busy or still starting: try again in a moment.',
};
// Refusals that are about the owner of the data, not this node: "busy or still starting" would
// send the reader to wait on a node that is fine.
const OWNER_TEXT = {
  owner_unreachable: 'The node that owns this product cannot be reached now (stopped, cut off, or no longer trusted by this mesh), so its records cannot be read: try again later; Provenance shows the owner node and its state.',
  owner_lost: 'The node that owns this product stopped answering during the read: try again later.',
  node_revoked: 'This node\'s own certificate has been revoked, so the other nodes refuse it: open this product on another node.',
};
function plainError(r) {
  return OWNER_TEXT[r.error] || ACCESS_TEXT[r.error] || STATUS_TEXT[r.status] || (r.status >= 500 ? STATUS_TEXT[500] : r.detail || 'The node refused this.');
}

// The node's code and detail, for whoever helps: folded away.
function techDetails(r) {
  return h('details', {class: 'tech'}, h('summary', {}, 'Technical details'),
    h('p', {}, h('code', {}, r.error || 'error'), r.status === undefined ? '' : ` (HTTP ${r.status})`, r.detail ? ': ' + r.detail : ''));
}

function errorBox(r, what) {
  return h('div', {class: 'error', role: 'alert'}, h('p', {}, h('strong', {}, what), ' ', plainError(r)), techDetails(r));
}

const ACCESS_TEXT = {
  token_required: 'Sign in with a token to read this product.',
  token_invalid: 'Your token is not valid here: sign in again.',
  token_expired: 'Your token has expired: sign in with a new one.',
  token_revoked: 'Your token has been revoked.',
  wrong_domain: 'Your token belongs to another domain.',
  kind_insufficient: 'Your token does not allow this.',
  out_of_scope: 'Your token does not cover this product.',
  grant_required: 'Reading this product needs an access grant from its owner.',
  no_grant_needed: 'You can already read this product: no access request is needed.',
  not_found: 'This product is restricted or does not exist.',
};

// Who may read a product's records, by its classification (DESIGN §13), in words. Only
// confidential and restricted products need an access grant.
const CLASS_TEXT = {
  public: 'Public: anyone may read its records, without signing in.',
  internal: 'Internal: anyone signed in with a token of this mesh may read its records.',
  confidential: 'Confidential: reading its records needs an access grant from its owner (ask on the Access tab).',
  restricted: 'Restricted: only people its owner has granted access may read it; others see only its name and owners.',
};
const classOf = (p) => p.classification || 'internal';
const needsGrant = (p) => classOf(p) === 'confidential' || classOf(p) === 'restricted';

function who() {
  try { return JSON.parse(sessionStorage.getItem('trib.whoami') || 'null'); } catch (e) { return null; }
}

// ------------------------------------------------------------------ routing

// #/search?q=..  #/p/{domain}/{name}[/tab][?f=..]  #/mesh  #/access  #/signin
function parseRoute() {
  const raw = location.hash.replace(/^#/, '') || '/search';
  const qi = raw.indexOf('?');
  const path = qi < 0 ? raw : raw.slice(0, qi);
  const params = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
  const parts = path.split('/').filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch (e) { return p; } });
  return {view: parts[0] || 'search', parts, params};
}

function searchHash(params) {
  const s = params.toString();
  return '#/search' + (s ? '?' + s : '');
}

const main = () => document.getElementById('main');

// Runs fn once the frame after this task has been produced (the first results on screen).
function afterFirstPaint(fn) {
  requestAnimationFrame(() => setTimeout(fn, 0));
}
let current = null; // {view, update?}
let firstRender = true; // the page's first view (autofocus instead of focus(), see searchView)
let views = 0; // counts views made: a held first search view enters the page only while it is current

// The tab's title names the view (a browser's tabs and history, a screen reader's first words).
const TITLES = {search: 'Search', mesh: 'Domains and nodes', access: 'My access', signin: 'Sign in'};
function setTitle(what) { document.title = inert(what ? what + ' – Tributary' : 'Tributary'); }

async function render() {
  const r = parseRoute();
  setTitle(r.view === 'p' ? r.parts.slice(1, 3).join('/') : TITLES[r.view] || 'Page not found');
  const first = firstRender;
  firstRender = false;
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === r.view || (r.view === 'p' && a.dataset.nav === 'search')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (r.view === 'search') {
    if (current && current.view === 'search') return current.update(r.params);
    views++;
    current = searchView(r.params, first);
    return;
  }
  views++;
  current = {view: r.view};
  const m = main();
  m.replaceChildren();
  if (r.view === 'p' && r.parts.length >= 3) return productView(m, r.parts[1], r.parts[2], r.parts[3] || 'overview', r.params);
  if (r.view === 'mesh') return meshView(m);
  if (r.view === 'access') return accessView(m);
  if (r.view === 'signin') return signinView(m);
  m.append(h('h1', {}, 'Page not found'), h('p', {}, 'Nothing lives at this address. ', h('a', {href: '#/search'}, 'Search the catalog')));
}

// ------------------------------------------------------------------ search

const PAGE = 25; // cards per page (PRELOADED asks for as many): more on demand
const FACET_LABEL = {domain: 'Domain', tag: 'Tag', owner: 'Owner', status: 'Status', classification: 'Classification', compliance: 'Compliance'};

function words(s) {
  return String(s || '').replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
}

// Which fields of a product the query's words hit (the API ranks but does not say why).
function matchedFields(p, q, manifest) {
  const qs = words(q);
  if (!qs.length) return [];
  const last = qs[qs.length - 1];
  const hit = (text) => {
    const ws = words(text);
    return qs.some((w) => ws.includes(w)) || (last.length >= 3 && ws.some((w) => w.startsWith(last)));
  };
  const out = [];
  if (hit(p.name)) out.push('name');
  if (hit(p.title)) out.push('title');
  if ((p.tags || []).some(hit)) out.push('tags');
  if (p.owners && (hit(p.owners.business) || hit(p.owners.technical))) out.push('owners');
  if (hit(p.domain)) out.push('domain');
  if (manifest) {
    const d = manifest.description || {};
    if (['purpose', 'usage', 'limitations'].some((k) => hit(d[k]))) out.push('description');
    for (const f of Array.isArray(manifest.schema) ? manifest.schema : []) {
      if (f && (hit(f.name) || hit(f.description))) out.push('field ' + f.name);
    }
  }
  return out;
}

const HOLD_MS = 400;
function searchView(params, first) {
  const m = main();
  m.replaceChildren();
  const input = h('input', {id: 'q', type: 'search', name: 'q', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'Search by name, field, owner, tag…', 'aria-describedby': 'q-hint'});
  const count = h('p', {id: 'count', role: 'status', 'aria-live': 'polite', class: 'count'});
  const facets = h('div', {class: 'facets'});
  // Filters are open on a wide screen; on a phone they fold, so the results come first.
  const filters = h('details', {class: 'filters', open: matchMedia('(min-width: 700px)').matches ||
    Object.keys(FACET_LABEL).some((k) => params.has(k))}, h('summary', {}, 'Filters'), facets);
  const results = h('ol', {class: 'results', 'aria-label': 'Results', 'data-testid': 'results'});
  const more = h('div', {class: 'more'});
  const view = [
    h('h1', {class: 'sr-only'}, 'Search data products'),
    h('form', {role: 'search', class: 'searchbar', onsubmit: (e) => { e.preventDefault(); run(true); }},
      h('label', {for: 'q'}, 'Search data products'), input,
      h('p', {id: 'q-hint', class: 'hint'}, 'Press / to come back here. Results update as you type.')),
    count, filters, results, more];
  // The page's first view enters the page with its first results (one layout and paint instead of
  // one of an empty view and then one more), or after HOLD_MS when they are slow.
  let held = !!first;
  const mine = views;
  const show = () => {
    if (!held || mine !== views) return;   // the user went elsewhere before the first results
    held = false;
    m.append(...view);
    afterFirstPaint(() => {
      const a = document.activeElement;
      if (!a || a === document.body || a === m) input.focus();
    });
  };
  if (held) setTimeout(show, HOLD_MS); else m.append(...view);
  let state = new URLSearchParams(params);
  input.value = state.get('q') || '';
  // On the page's first view the box is focused right after the first results are painted
  // (afterFirstPaint): focus() or autofocus before would lay out the page once more on the way to
  // that first frame. Not when the user has already put the focus somewhere.
  if (!first) input.focus();
  let timer = null, ctrl = null, gen = 0, firstLoad = !!first;
  const manifests = new Map();

  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => run(false), 150);
  });

  async function run(push) {
    if (mine !== views) return;   // a search typed just before the user left: not in the address bar now
    const q = input.value.trim();
    if (q) state.set('q', q); else state.delete('q');
    state.delete('offset');
    const hash = searchHash(state);
    if (hash !== location.hash) {
      if (push) history.pushState(null, '', hash); else history.replaceState(null, '', hash);
    }
    await load(0);
  }

  async function load(offset) {
    const my = ++gen;
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const qp = new URLSearchParams();
    for (const k of ['q', ...Object.keys(FACET_LABEL)]) if (state.get(k)) qp.set(k, state.get(k));
    qp.set('limit', String(PAGE));
    if (offset) qp.set('offset', String(offset));
    const preloaded = firstLoad;
    firstLoad = false;
    let r;
    try { r = await api('/v1/products?' + qp.toString(), {signal: ctrl.signal, preloaded}); } catch (e) { return; }
    if (my !== gen) return;
    show();
    if (!r.ok || !r.json) {
      announce(count, 'Search failed');
      results.replaceChildren(h('li', {}, errorBox(r, 'Search failed.')));
      return;
    }
    const body = r.json;
    const list = body.products || [];
    if (!offset) results.replaceChildren();
    for (const p of list) results.append(card(p));
    if (!offset && list.length) {
      // For tests/ui/bench.mjs: the first results are in the page (a mark), and when the first
      // card's title is painted (an Element Timing entry).
      performance.mark('trib:first-results');
      results.firstChild.querySelector('h2').setAttribute('elementtiming', 'trib:first-card');
    }

    announce(count, `${body.total} product${body.total === 1 ? '' : 's'}` + (state.get('q') ? ` for “${state.get('q')}”` : ''));
    if (!offset) renderFacets(body.facets || {});
    more.replaceChildren();
    const shown = offset + list.length;
    if (shown < body.total) {
      more.append(h('button', {type: 'button', onclick: () => load(shown)}, `Show more (${body.total - shown} left)`));
    }
    if (!offset && body.total === 0) {
      results.append(h('li', {class: 'empty', 'data-testid': 'no-results'}, state.get('q') || [...state.keys()].length
        ? ['No product matches', state.get('q') ? ` “${state.get('q')}”` : '', [...state.keys()].some((k) => k !== 'q') ? ' with these filters' : '',
          '. Try fewer or other words (a field name, an owner, a tag), or ', h('a', {href: '#/search'}, 'start again with the whole catalog'), '.']
        : 'Nothing has been published in this mesh yet. Products appear here as soon as their owners publish them (trib publish FILE.yaml).'));
    }
    explain(list, my);
  }

  // Fields behind a hit that the summary does not show (description, schema): the first few
  // cards fetch their manifest once (cached by catalog seq).
  async function explain(list, my) {
    const q = state.get('q');
    if (!q) return;
    for (const p of list.slice(0, 10)) {
      const key = p.id + '@' + p.catalog_seq;
      let man = manifests.get(key);
      if (man === undefined) {
        const r = await api('/v1/products/' + p.id);
        if (my !== gen) return;
        man = r.ok && r.json ? r.json.manifest || null : null;
        manifests.set(key, man);
      }
      const li = results.querySelector(`[data-id="${CSS.escape(p.id)}"] .matched`);
      if (li) fillMatched(li, p, q, man);
    }
  }

  function fillMatched(el, p, q, man) {
    const fs = matchedFields(p, q, man);
    el.replaceChildren();
    if (!fs.length) return;
    el.append(h('span', {class: 'muted'}, 'Matched: '));
    fs.forEach((f, i) => {
      if (i) el.append(', ');
      if (f.startsWith('field ')) {
        const name = f.slice(6);
        el.append(h('a', {href: `#/p/${p.id}/schema?f=${encodeURIComponent(name)}`}, h('mark', {}, name)));
      } else el.append(h('mark', {}, f));
    });
  }

  function card(p) {
    const [d, n] = String(p.id).split('/');
    const href = `#/p/${encodeURIComponent(d)}/${encodeURIComponent(n)}` + (state.get('q') ? '?q=' + encodeURIComponent(state.get('q')) : '');
    const matched = h('p', {class: 'matched'});
    fillMatched(matched, p, state.get('q'), null);
    return h('li', {class: 'card', 'data-id': p.id, 'data-testid': 'card'},
      h('h2', {}, h('a', {href}, p.title || p.id)),
      h('p', {class: 'meta'},
        h('code', {class: 'pid'}, p.id), ' ',
        badge('status', p.status), ' ', badge('class', p.classification),
        p.compliance && p.compliance.state ? badge('compliance', p.compliance.state) : null),
      h('dl', {class: 'facts'},
        h('div', {}, h('dt', {}, 'Domain'), h('dd', {}, p.domain || d)),
        h('div', {}, h('dt', {}, 'Business owner'), h('dd', {}, owner(p.owners && p.owners.business))),
        p.version ? h('div', {}, h('dt', {}, 'Version'), h('dd', {}, p.version)) : null,
        p.updated ? h('div', {}, h('dt', {}, 'Updated'), h('dd', {}, h('time', {datetime: p.updated, title: p.updated}, ago(p.updated)))) : null),
      (p.tags || []).length ? h('p', {class: 'tags'}, (p.tags || []).map((t) => h('span', {class: 'tag'}, t))) : null,
      matched);
  }

  function renderFacets(f) {
    facets.replaceChildren();
    // FACET_LABEL's order (the API's facets, classification among them), then any the UI does not know
    const names = [...Object.keys(FACET_LABEL), ...Object.keys(f).filter((k) => !(k in FACET_LABEL))];
    for (const name of names) {
      const values = f[name];
      if (!values || typeof values !== 'object') continue;
      const entries = Object.entries(values);
      const sel = state.get(name);
      if (!entries.length && !sel) continue;
      const gid = 'facet-' + name;
      const group = h('div', {class: 'facet', role: 'group', 'aria-labelledby': gid},
        h('span', {id: gid, class: 'facet-name'}, FACET_LABEL[name] || name));
      const shown = entries.slice(0, 12);
      if (sel && !shown.some(([v]) => v === sel)) shown.unshift([sel, 0]);
      for (const [v, c] of shown) {
        const on = sel === v;
        const next = new URLSearchParams(state);
        if (on) next.delete(name); else next.set(name, v);
        group.append(h('a', {class: 'chip' + (on ? ' on' : ''), href: searchHash(next), 'aria-current': on ? 'true' : null,
          'aria-label': `${FACET_LABEL[name] || name} ${v}, ${c} product${c === 1 ? '' : 's'}${on ? ', selected: remove filter' : ''}`},
        v, ' ', h('span', {class: 'n'}, String(c))));
      }
      facets.append(group);
    }
  }

  load(0);
  return {
    view: 'search',
    update(p) {
      const next = new URLSearchParams(p);
      if (next.toString() === state.toString()) return;
      state = next;
      if ((state.get('q') || '') !== input.value.trim()) input.value = state.get('q') || '';
      load(0);
    },
  };
}

// ------------------------------------------------------------------ product page

const TABS = [['overview', 'Overview'], ['schema', 'Schema'], ['sample', 'Sample records'], ['versions', 'Versions'],
  ['access', 'Access'], ['provenance', 'Provenance']];

// The mesh's trust mode ('open' or 'chartered'; '' when unknown), asked once: in an open mesh no
// signer is certified, so 'unverified' says nothing about one product and is not shown as a warning.
let meshMode = null;
async function federationMode() {
  if (meshMode === null) {
    const r = await api('/v1/federation');
    meshMode = (r.ok && r.json && r.json.mode) || '';
  }
  return meshMode;
}

async function productView(m, domain, name, tab, params) {
  const id = `${domain}/${name}`;
  const path = `/v1/products/${encodeURIComponent(domain)}/${encodeURIComponent(name)}`;
  const title = h('h1', {tabindex: '-1'}, id);
  m.append(h('p', {class: 'crumbs'}, h('a', {href: params.get('q') ? '#/search?q=' + encodeURIComponent(params.get('q')) : '#/search'}, '← Search')), title);
  const loaded = loading(m, 'Loading the product…');
  const [r, mode] = await Promise.all([api(path), federationMode()]);
  loaded();
  if (!r.ok || !r.json) {
    title.textContent = inert(id);
    m.append(r.status === 404
      ? h('div', {class: 'notice', role: 'alert'}, h('p', {}, h('strong', {}, 'Not found. '),
        'This node has no product ', h('code', {}, id), ', or it is restricted and you do not have access. ',
        token() ? 'Check the address, or ask its owner.' : ['Check the address, or ', h('a', {href: '#/signin'}, 'sign in'), ' if you were given access.']),
        techDetails(r))
      : errorBox(r, 'Could not load the product.'));
    title.focus();
    return;
  }
  const p = r.json;
  const man = p.manifest || {};
  title.textContent = inert(p.title || id);
  setTitle(p.title || id);
  m.append(...[
    h('p', {class: 'meta'}, h('code', {class: 'pid'}, p.id), ' ', badge('status', p.status), ' ', badge('class', p.classification),
      p.version ? h('span', {class: 'ver'}, ' v', p.version) : null,
      p.verified === true ? badge('verified', 'verified') : p.verified === false && mode !== 'open' ? badge('verified', 'unverified') : null,
      p.compliance && p.compliance.state ? badge('compliance', p.compliance.state) : null),
    CLASS_TEXT[classOf(p)] ? h('p', {class: 'who-reads', 'data-testid': 'who-reads'}, CLASS_TEXT[classOf(p)]) : null].filter(Boolean));
  if (man.deprecation || p.status === 'deprecated') {
    const dep = man.deprecation || {};
    m.append(h('div', {class: 'notice warn', role: 'note'}, 'Deprecated.',
      dep.replacedBy ? [' Use ', h('a', {href: '#/p/' + String(dep.replacedBy)}, dep.replacedBy), ' instead.'] : null,
      dep.sunset ? ' Sunset: ' + dep.sunset + '.' : null));
  }
  const base = `#/p/${encodeURIComponent(domain)}/${encodeURIComponent(name)}`;
  const qs = params.get('q') ? '?q=' + encodeURIComponent(params.get('q')) : '';
  const known = TABS.some(([t]) => t === tab) ? tab : 'overview';
  m.append(h('nav', {class: 'tabs', 'aria-label': 'Product sections'},
    h('ul', {}, TABS.map(([t, label]) => h('li', {},
      h('a', {href: base + (t === 'overview' ? '' : '/' + t) + qs, 'aria-current': t === known ? 'page' : null, id: 'tab-' + t}, label))))));
  const panel = h('section', {class: 'panel', 'aria-labelledby': 'tab-' + known, 'data-testid': 'panel-' + known});
  m.append(panel);
  const views = {overview: overviewTab, schema: schemaTab, sample: sampleTab, versions: versionsTab, access: accessTab, provenance: provenanceTab};
  await views[known](panel, p, man, path, params, base, mode);
  if (!document.activeElement || document.activeElement === document.body || document.activeElement === m) title.focus();
}

// On a phone (app.css, max-width 520px) a table of few rows stacks: each row a block, each cell
// a line led by its column's name (data-label, copied here from the header row).
function stacked(table) {
  const names = [...table.querySelectorAll('thead th')].map((th) => th.textContent);
  for (const tr of table.querySelectorAll('tbody tr')) [...tr.children].forEach((c, i) => c.setAttribute('data-label', names[i] || ''));
  table.classList.add('stack');
  return table;
}

// A table that may be wider than the screen scrolls sideways in its own box: a named region that
// takes the focus, so the keyboard scrolls it too (axe: scrollable-region-focusable).
function scroller(label, table) {
  return h('div', {class: 'tablewrap', role: 'region', 'aria-label': label, tabindex: '0'}, table);
}

function section(title, ...body) { return h('section', {class: 'block'}, h('h2', {}, title), ...body); }

function copyLine(label, text) {
  const code = h('code', {class: 'cmd'}, text);
  const status = h('span', {class: 'copied', role: 'status'});
  return h('div', {class: 'copyline'}, h('span', {class: 'muted'}, label), code,
    h('button', {type: 'button', 'aria-label': 'Copy ' + label + ' command', onclick: async () => {
      try { await navigator.clipboard.writeText(text); status.textContent = 'Copied'; } catch (e) {
        const sel = getSelection(); const rg = document.createRange(); rg.selectNodeContents(code); sel.removeAllRanges(); sel.addRange(rg);
        status.textContent = 'Selected: press Ctrl+C';
      }
    }}, 'Copy'), status);
}

// '15m' -> '15 minutes' (the manifest's durations: a number and s, m, h, d, w or y); else as written.
function spanText(v) {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d|w|y)$/.exec(String(v).trim());
  if (!m) return String(v);
  const unit = {s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week', y: 'year'}[m[2]];
  return `${m[1]} ${unit}${m[1] === '1' ? '' : 's'}`;
}

// The service levels a manifest usually states, in words; any other is shown as written.
const SLA_TEXT = {
  freshness: ['Freshness', (v) => `new data arrives within ${spanText(v)}`],
  availability: ['Availability', (v) => `it can be read ${v} of the time`],
  latency: ['Latency', (v) => `answers within ${spanText(v)}`],
  retention: ['Retention', (v) => `records are kept for ${spanText(v)}`],
};

// A restricted product is a stub to whoever may not read it (DESIGN §13: id, title, status,
// classification, owners, "stub": true): its description, schema, versions and provenance are
// hidden, not missing. hidden(p, base, what) says so, and how to ask for access: on the Access tab
// (POST /v1/access/requests takes a request for a stub; its owner decides), after signing in.
function hidden(p, base, what) {
  const o = p.owners && (p.owners.business || p.owners.technical);
  const me = who();
  const own = !!token() && !!me && me.domain === p.domain;   // sees a stub only when its token's scope leaves the product out
  const way = !token()
    ? [h('a', {href: '#/signin'}, 'Sign in'), ' with your token, then ask for access on the ', h('a', {href: base + '/access'}, 'Access tab'), '.']
    : own ? [`It is of your own domain (${p.domain}), but your token's scope does not cover it: ask your domain's administrator for a token that does.`]
      : ['Ask for access on the ', h('a', {href: base + '/access'}, 'Access tab'), '.'];
  return h('div', {class: 'notice', role: 'note', 'data-testid': 'hidden'},
    h('p', {}, h('strong', {}, 'Restricted. '), `Its ${what} shown only to people its owner has granted access to.`),
    h('p', {}, way, o && !own ? [' Its owner decides: ', owner(o), '.'] : null));
}

function overviewTab(panel, p, man, path, params, base) {
  if (p.stub) {
    panel.append(section('About', hidden(p, base, 'description, schema, version and records are')));
    const o = p.owners || {};
    panel.append(section('Owners', h('dl', {class: 'kv'},
      h('dt', {}, 'Business owner'), h('dd', {}, owner(o.business)),
      h('dt', {}, 'Technical owner'), h('dd', {}, owner(o.technical)))));
    return;
  }
  const d = man.description || {};
  const desc = typeof d === 'string' ? {purpose: d} : d;
  const dl = h('dl', {class: 'kv'});
  for (const [k, label] of [['purpose', 'Purpose'], ['usage', 'Usage'], ['limitations', 'Limitations'], ['audience', 'Audience']]) {
    if (desc[k]) dl.append(h('dt', {}, label), h('dd', {}, String(desc[k])));
  }
  if (!dl.childNodes.length) dl.append(h('dt', {}, 'Description'), h('dd', {class: 'muted'}, 'The owner has not described this product.'));
  panel.append(section('About', dl));
  const owners = p.owners || man.owners || {};
  panel.append(section('Owners', h('dl', {class: 'kv'},
    h('dt', {}, 'Business owner'), h('dd', {}, owner(owners.business)),
    h('dt', {}, 'Technical owner'), h('dd', {}, owner(owners.technical)))));
  const sla = man.sla && typeof man.sla === 'object' ? man.sla : null;
  if (sla) {
    const s = h('dl', {class: 'kv'});
    for (const [k, v] of Object.entries(sla)) {
      const text = typeof v === 'object' ? JSON.stringify(v) : String(v);
      const say = SLA_TEXT[k];
      s.append(h('dt', {}, say ? say[0] : k), h('dd', {}, say ? say[1](text) : text));
    }
    panel.append(section('Service level (what its owner promises)', s));
  }
  if ((p.tags || []).length) panel.append(section('Tags', h('p', {class: 'tags'}, p.tags.map((t) => h('a', {class: 'tag', href: '#/search?tag=' + encodeURIComponent(t)}, t)))));
  const ports = Array.isArray(man.outputPorts) ? man.outputPorts : [];
  const origin = location.origin;
  const auth = p.classification && p.classification !== 'public' ? ' -H "Authorization: Bearer $TRIB_TOKEN"' : '';
  const list = h('ul', {class: 'ports'});
  for (const port of ports.length ? ports : [{name: 'records', type: 'records'}]) {
    list.append(h('li', {}, h('h3', {}, port.name || 'port', ' ', h('span', {class: 'badge'}, port.type || '')),
      copyLine('trib', `trib get ${p.id} --from 1 --limit 20 --node ${origin}`),
      copyLine('curl', `curl -s${auth} '${origin}/v1/products/${p.id}/records?from=1&limit=20'`)));
  }
  // A read starts at seq 1, the oldest records, which may be of an older schema version than the
  // one this page shows; it returns one version's records and stops where the next one's begin
  // (docs/http-api.md, "Records and their schema version"). No route tells where the current
  // version's records begin, so the page says how a read goes on rather than promise them.
  panel.append(section('How to read it',
    h('p', {}, 'See its first records on the ', h('a', {href: `#/p/${p.id}/sample`}, 'Sample records'), ' tab. ',
      'A program, or your data team, reads it from an output port with one of these lines',
      auth ? ' (with a token: see Access)' : '', '. ',
      'Each reads its 20 oldest records, from seq 1: leave out the limit to read them all, or give another seq to start from.'),
    list,
    h('p', {'data-testid': 'read-versions'}, 'A read returns the records of one schema version at a time, and the oldest may be of an earlier version than ',
      p.version ? `this page's ${p.version}` : 'the schema on this page',
      '. Where the next record is of another version, the read stops with the line ', h('code', {}, '{"error": "schema_changed", …}'),
      ', which names the seq that version begins at (trib get says ', h('code', {}, 'resume with --from N'),
      '): read again from that seq to go on under the next version.')));
}

function schemaTab(panel, p, man, path, params, base) {
  if (p.stub) { panel.append(hidden(p, base, 'schema (its fields) is')); return; }
  const fields = Array.isArray(man.schema) ? man.schema : [];
  const f0 = params.get('f') || '';
  const hl = new Set(words(f0 || params.get('q') || ''));
  const filter = h('input', {id: 'field-filter', type: 'search', value: f0, autocomplete: 'off'});
  const tbody = h('tbody');
  const count = h('p', {role: 'status', 'aria-live': 'polite', class: 'count'});
  const table = h('table', {class: 'schema', 'data-testid': 'schema'},
    h('caption', {class: 'sr-only'}, 'Fields of ' + p.id),
    h('thead', {}, h('tr', {}, ['Field', 'Type', 'Required', 'Key', 'Classification', 'Description'].map((c) => h('th', {scope: 'col'}, c)))),
    tbody);
  panel.append(h('div', {class: 'filterbar'}, h('label', {for: 'field-filter'}, 'Filter fields'), filter), count, scroller('Fields of ' + p.id, table));
  function draw() {
    const f = filter.value.trim().toLowerCase();
    tbody.replaceChildren();
    let n = 0;
    for (const fl of fields) {
      if (!fl || typeof fl !== 'object') continue;
      const hay = `${fl.name || ''} ${fl.description || ''} ${fl.logicalType || ''}`.toLowerCase();
      if (f && !hay.includes(f)) continue;
      n++;
      const hit = words(fl.name).some((w) => hl.has(w)) || (f && String(fl.name || '').toLowerCase().includes(f));
      tbody.append(h('tr', {class: hit ? 'hit' : null, 'data-field': String(fl.name || '')},
        h('th', {scope: 'row'}, hit ? h('mark', {}, fl.name || '') : fl.name || ''),
        h('td', {}, fl.logicalType || fl.type || ''),
        h('td', {}, fl.required ? 'yes' : 'no'),
        h('td', {}, fl.primaryKey ? 'primary' : ''),
        h('td', {}, fl.classification || ''),
        h('td', {}, fl.description || '')));
    }
    announce(count, `${n} of ${fields.length} field${fields.length === 1 ? '' : 's'}`);
    if (!n) tbody.append(h('tr', {}, h('td', {colspan: '6', class: 'muted'}, fields.length ? 'No field matches the filter.' : 'The manifest has no schema.')));
  }
  filter.addEventListener('input', () => {
    const hp = new URLSearchParams(params);
    if (filter.value.trim()) hp.set('f', filter.value.trim()); else hp.delete('f');
    const s = hp.toString();
    history.replaceState(null, '', base + '/schema' + (s ? '?' + s : ''));
    draw();
  });
  draw();
}

// A records read that stops early ends, after its last whole record, with a line that is no
// record: {"error": KIND, "detail": "..."} and nothing else (docs/http-api.md), as `trib get` tells
// it (node/cli_stream.c): only the last line can be one.
function endLine(row) {
  return !!row && typeof row === 'object' && !Array.isArray(row) && typeof row.error === 'string' &&
    Object.entries(row).every(([k, v]) => k === 'error' || (k === 'detail' && typeof v === 'string'));
}

// What an end line means to the reader, by its kind (schema_changed is said apart, below).
const END_TEXT = {
  owner_lost: 'The node that owns this product stopped answering during the read: the records above came before it stopped. Try again later.',
  storage: 'The node could not read the rest of the records from its storage: try again later, or tell its operator.',
  shutting_down: 'The node shut down during the read: read the rest through another node.',
  retired: 'This product was retired: it takes no new records, and every record was sent.',
  internal: 'The node failed during the read: try again later, or tell its operator.',
};

// The notice for a read's end line: what happened, how to read on (the next seq, when known), and
// the node's kind and detail. next: the seq after the last record shown (0: not known).
function readEnded(end, p, base, next, shownVersion) {
  const d = String(end.detail || '');
  const at = Number((/\bfrom seq (\d+)/.exec(d) || [])[1]) || next;
  const onward = at ? h('a', {href: `${base}/sample?from=${at}`, 'data-testid': 'read-on'}, `Show the records from seq ${at}`) : null;
  const cli = at ? ['With the command line: ', h('code', {}, `trib get ${p.id} --from ${at} --node ${location.origin}`), '.'] : null;
  let body;
  if (end.error === 'schema_changed') {
    const v = (/validated against version (\S+?),? not\b/.exec(d) || [])[1];
    body = [h('p', {}, h('strong', {}, 'The next records have another schema version. '),
      at ? `From seq ${at} on they were validated against ` : 'The records after these were validated against ',
      v ? `version ${v}` : 'another version', shownVersion ? `, not ${shownVersion} as those above` : '',
      '. A read returns the records of one schema version at a time, so it stopped there: read again from that seq to get them with their own schema.'),
    at ? h('p', {}, onward, '. ', cli) : null];
  } else {
    const words = END_TEXT[end.error] || (ACCESS_TEXT[end.error] ? 'The read stopped: ' + ACCESS_TEXT[end.error]
      : `The read stopped before its end: the node reported ${end.error}${d ? ': ' + d : ''}.`);
    body = [h('p', {}, h('strong', {}, 'Only part of the records came. '), words),
      at && end.error !== 'retired' ? h('p', {}, onward, ' to read on. ', cli) : null];
  }
  return h('div', {class: 'notice warn', role: 'note', 'data-testid': 'read-ended', 'data-kind': end.error}, body,
    techDetails({error: end.error, detail: end.detail}));
}

async function sampleTab(panel, p, man, path, params, base) {
  // ?from=N: the records from seq N (a read stopped at a schema change, and the reader read on).
  const from = /^[1-9][0-9]{0,14}$/.test(params.get('from') || '') ? Number(params.get('from')) : 0;
  const note = h('p', {class: 'muted'}, from ? `Loading 20 records from seq ${from}…` : 'Loading the first 20 records…');
  panel.append(note);
  const r = await api(path + '/records?limit=20' + (from ? '&from=' + from : ''));
  note.remove();
  if (!r.ok) {
    const text = ACCESS_TEXT[r.error];
    if ([401, 403, 404].includes(r.status) && !OWNER_TEXT[r.error]) {
      const signIn = /^token_/.test(r.error || '') || (!token() && r.status === 404);
      panel.append(h('div', {class: 'notice denied', role: 'alert', 'data-testid': 'no-access'},
        h('p', {}, h('strong', {}, 'You do not have access to these records. '),
          p.stub && r.error === 'not_found' ? 'This product is restricted: reading it needs an access grant from its owner.' : text || '', ' ',
          signIn ? h('a', {href: '#/signin'}, 'Sign in') : h('a', {href: `#/p/${p.id}/access`}, 'Request access')),
        techDetails(r)));
    } else panel.append(errorBox(r, 'The records could not be read.'));
    return;
  }
  const rows = [];
  for (const line of r.text.split('\n')) {
    if (!line.trim()) continue;
    try { rows.push(JSON.parse(line)); } catch (e) { rows.push({_line: line}); }
  }
  const end = rows.length && endLine(rows[rows.length - 1]) ? rows.pop() : null;
  const last = r.headers && r.headers.get('Trib-Last-Seq');
  const first = Number(r.headers && r.headers.get('Trib-First-Seq')) || from || 1;
  const ver = r.headers && r.headers.get('X-Trib-Schema-Version');
  const shownVersion = ver && ver !== 'unknown' ? ver : '';
  const ended = end ? readEnded(end, p, base, first + rows.length, rows.length ? shownVersion : '') : null;
  if (!rows.length) {
    panel.append(ended || h('p', {class: 'notice', 'data-testid': 'no-records'}, from
      ? `There is no record from seq ${from} on` + (last ? `: the last is seq ${last}.` : '.')
      : 'You may read this product, and it has no records yet.'));
    return;
  }
  const n = rows.length;
  const cols = [];
  for (const row of rows) for (const k of Object.keys(row && typeof row === 'object' ? row : {})) if (!cols.includes(k) && cols.length < 20) cols.push(k);
  const cell = (v) => v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  const which = from ? `Records ${first} to ${first + n - 1}` : `The first ${n} record${n === 1 ? '' : 's'}`;
  panel.append(h('p', {class: 'muted', 'data-testid': 'records-count'}, which + (last ? ` of ${last}` : '') + '.',
    shownVersion ? ` ${n === 1 ? 'It was' : 'They were'} validated against version ${shownVersion}` +
      (p.version && p.version !== shownVersion ? `; the product's current version, on the Schema tab, is ${p.version}.` : '.') : ''),
  scroller('Sample records of ' + p.id, h('table', {class: 'records', 'data-testid': 'records'},
    h('caption', {class: 'sr-only'}, 'Sample records of ' + p.id),
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, rows.map((row) => h('tr', {}, cols.map((c) => h('td', {}, cell(row[c])))))))));
  if (ended) panel.append(ended);
}

async function versionsTab(panel, p, man, path, params, base) {
  if (p.stub) { panel.append(hidden(p, base, 'versions and their history are')); return; }   // …/history is a 404 to this caller
  const loaded = loading(panel, 'Loading the version history…');
  const r = await api(path + '/history');
  loaded();
  if (!r.ok || !r.json || !Array.isArray(r.json.versions)) {
    panel.append(h('p', {class: 'notice'}, `Current version: ${p.version || '?'} (catalog entry ${p.catalog_seq}, updated ${p.updated || '?'}).`),
      noRoute(r)   // an older node; a 404 of the product itself (retired meanwhile) says so below
        ? h('p', {class: 'muted'}, 'This node does not keep a version history (GET …/history: no route).')
        : errorBox(r, 'The version history could not be read.'));
    return;
  }
  const vs = r.json.versions.slice().reverse();
  panel.append(scroller('Versions of ' + p.id, h('table', {class: 'versions', 'data-testid': 'versions'},
    h('caption', {class: 'sr-only'}, 'Versions of ' + p.id),
    h('thead', {}, h('tr', {}, ['Version', 'Change', 'Published', 'Catalog entry', 'Signer'].map((c) => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, vs.map((v) => h('tr', {},
      h('th', {scope: 'row'}, v.version || ''),
      h('td', {}, badge('change', v.change_class || 'first'), v.breaking ? [' ', badge('breaking', 'breaking')] : null),
      h('td', {}, v.time_ms ? new Date(v.time_ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : ''),
      h('td', {}, String(v.seq ?? '')),
      h('td', {}, h('code', {title: v.signer || ''}, shortId(v.signer)))))))));
}

function provenanceTab(panel, p, man, path, params, base, mode) {
  if (p.stub) { panel.append(hidden(p, base, 'provenance (owner node, signer, signature) and compliance state are')); return; }
  const on = p.owner_node || {};
  const dl = h('dl', {class: 'kv'},
    h('dt', {}, 'Owner node'), h('dd', {}, h('code', {title: on.node_id || ''}, shortId(on.node_id) || 'unknown'), ' ', badge('state', on.state || 'unknown')),
    // chartered: the owner's key as this node judges it now (the signature below is judged as of when it signed)
    on.trust && on.trust !== 'verified' ? [h('dt', {}, 'Owner trust'), h('dd', {'data-testid': 'owner-trust'},
      badge('trust', on.trust), ` This node's certificate for the domain does not hold now${on.detail ? ': ' + on.detail : ''}. Its records cannot be read through this mesh until a node certified for the domain serves them.`)] : null,
    on.addr ? [h('dt', {}, 'Peer address'), h('dd', {}, on.addr)] : null,
    on.http ? [h('dt', {}, 'HTTP address'), h('dd', {}, on.http)] : null,
    h('dt', {}, 'Signer'), h('dd', {}, h('code', {class: 'hex'}, p.signer || '')),
    h('dt', {}, 'Signature'), h('dd', {'data-testid': 'signature'},
      p.verified === true ? [badge('verified', 'verified'), ' The signer was certified for this domain when it signed.']
        : p.verified === false && mode === 'open' ? [badge('verified', 'not checked'), ' This mesh runs without a federation charter: a domain\'s first signer is trusted from then on.']
          : p.verified === false ? [badge('verified', 'unverified'), ' The signer was not certified for this domain when it signed: ask its owners before relying on it.']
            : h('span', {class: 'muted'}, 'unverified: this node does not report certificate verification')),
    h('dt', {}, 'Catalog entry'), h('dd', {}, `seq ${p.catalog_seq} (manifest seq ${p.manifest_seq ?? '?'})`),
    p.records !== undefined ? [h('dt', {}, 'Records'), h('dd', {}, String(p.records))] : null);
  panel.append(section('Where this product comes from', dl));
  const c = p.compliance;
  if (!c) {
    panel.append(section('Compliance', h('p', {class: 'muted'}, 'This node reports no compliance state for this product.')));
    return;
  }
  const vs = Array.isArray(c.violations) ? c.violations : [];
  panel.append(section('Compliance', h('p', {}, badge('compliance', c.state || 'unknown')),
    vs.length ? scroller('Compliance violations', h('table', {},
      h('thead', {}, h('tr', {}, ['Rule', 'Severity', 'Path', 'Message'].map((x) => h('th', {scope: 'col'}, x)))),
      h('tbody', {}, vs.map((v) => h('tr', {}, h('td', {}, v.rule || ''), h('td', {}, v.severity || ''), h('td', {}, v.path || ''), h('td', {}, v.message || ''))))))
      : null));
}

// ------------------------------------------------------------------ access

async function accessTab(panel, p, man, path, params, base) {
  const me = who();
  const ask = needsGrant(p);
  if (!ask) {
    panel.append(h('p', {class: 'notice ok', 'data-testid': 'no-request-needed'}, CLASS_TEXT[classOf(p)] || '', ' No access request is needed',
      classOf(p) !== 'public' && !token() ? [': ', h('a', {href: '#/signin'}, 'sign in'), ' to read it.'] : '.'));
  }
  if (!token()) {
    if (ask) panel.append(h('p', {class: 'notice'}, 'Sign in to request access or to see your grants. ', h('a', {href: '#/signin'}, 'Sign in with a token')));
    return;
  }
  // Your requests and grants for this product; drawn again once a request is sent.
  const yours = h('div');
  const drawMine = async () => {
    const mine = await api('/v1/access/mine');
    if (noRoute(mine) || mine.status === 404) {
      yours.replaceChildren(h('p', {class: 'notice', 'data-testid': 'access-unavailable'}, 'This node does not handle access requests yet (GET /v1/access/mine answered 404).'));
      return;
    }
    const list = mine.ok && Array.isArray(mine.json) ? oneLinePerRequest(mine.json.filter((a) => a.product === p.id)) : [];
    yours.replaceChildren(...[!mine.ok ? errorBox(mine, 'Your access could not be read.') : null,
      ask || list.length ? section('Your access', list.length ? accessTable(list, false) : h('p', {class: 'muted'}, 'You have not asked for access to this product.')) : null]
      .filter(Boolean));
  };
  panel.append(yours);
  const loaded = loading(panel, 'Loading your access…');
  await drawMine();
  loaded();
  if (ask && me && me.domain === p.domain && p.stub)   // its scope leaves it out; its own domain gets no grant (409 no_grant_needed)
    panel.append(hidden(p, base, 'description, schema, version and records are'));
  else if (ask && me && me.domain === p.domain)   // its own domain's tokens read it without a grant
    panel.append(h('p', {class: 'notice ok', 'data-testid': 'own-domain'}, 'This product is of your own domain (',
      p.domain, '): your token reads it without an access grant.'));
  else if (ask) panel.append(section('Request access', requestForm(p, man, drawMine)));
  if (me && me.domain === p.domain && (me.kind === 'admin' || me.kind === 'write')) {
    const box = h('div'), granted = h('div');
    panel.append(section('Pending requests (you own this product)', box), section('Active grants', granted));
    await pendingList(box, p.id);
    await grantedList(granted, p.id);
  }
}

// The owner's active grants, each with a Revoke button.
async function grantedList(box, product) {
  loading(box);
  const r = await api('/v1/access/requests?state=granted');
  if (!r.ok) { box.replaceChildren(noRoute(r) ? h('p', {class: 'muted'}, 'This node does not list grants yet (404).') : errorBox(r, 'Grants could not be read.')); return; }
  const all = Array.isArray(r.json) ? r.json : (r.json && r.json.requests) || [];
  const list = product ? all.filter((a) => a.product === product) : all;
  if (!list.length) { box.replaceChildren(h('p', {class: 'muted'}, 'No active grant.')); return; }
  box.replaceChildren(h('ul', {class: 'pending', 'data-testid': 'granted'}, list.map((a) => {
    const out = h('div', {role: 'status', class: 'outcome', tabindex: '-1'});
    const revoke = h('button', {type: 'button', class: 'secondary', 'aria-label': `Revoke ${a.subject || ''} on ${a.product || ''}`, onclick: async () => {
      revoke.disabled = true;
      const rr = await api(`/v1/access/grants/${encodeURIComponent(a.grant || a.id)}/revoke`, {method: 'POST', body: {}});
      if (rr.ok) {
        revoke.remove();
        out.replaceChildren(h('p', {}, badge('state', 'revoked'), ` ${a.subject || '?'} may no longer read ${a.product || '?'}.`));
      } else {
        revoke.disabled = false;
        out.replaceChildren(errorBox(rr, 'The node did not revoke this grant.'));
      }
      out.focus();
    }}, 'Revoke');
    return h('li', {class: 'card'},
      h('p', {}, h('strong', {}, a.subject || '?'), ' may read ', h('a', {href: '#/p/' + String(a.product || '')}, a.product || ''),
        a.expires_ms ? ' until ' + new Date(a.expires_ms).toISOString().slice(0, 10) : ''),
      revoke, out);
  })));
}

function requestForm(p, man, sent) {
  const fields = Array.isArray(man.schema) ? man.schema.filter((f) => f && f.name) : [];
  const out = h('div', {role: 'status', 'aria-live': 'polite'});
  const purpose = h('textarea', {id: 'req-purpose', name: 'purpose', required: true, rows: '3'});
  const days = h('input', {id: 'req-days', name: 'days', type: 'number', min: '1', max: '365', value: '30', required: true});
  const button = h('button', {type: 'submit'}, 'Request access');
  const boxes = fields.map((f, i) => h('label', {class: 'check'}, h('input', {type: 'checkbox', name: 'fields', value: String(f.name), id: 'req-f' + i}), ' ', f.name));
  const form = h('form', {class: 'request', 'aria-label': 'Request access to ' + p.id, onsubmit: async (e) => {
    e.preventDefault();
    const body = {product: p.id, purpose: purpose.value.trim(), fields: boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value),
      days: Number(days.value)};
    if (!body.purpose) { out.replaceChildren(h('p', {class: 'error'}, 'Say what you need the data for.')); purpose.focus(); return; }
    button.disabled = true;
    const r = await api('/v1/access/requests', {method: 'POST', body});
    button.disabled = false;
    out.replaceChildren(r.ok && r.json
      ? h('p', {class: 'notice ok', 'data-testid': 'request-state'}, badge('state', r.json.state || 'requested'),
        r.json.existing ? ' You asked for this already: request ' + r.json.id + ' still waits; no second request was sent.' : ' Request sent.',
        ' The owner of ', p.id, ' decides; the answer shows above and under ', h('a', {href: '#/access'}, 'My access'), '.')
      : errorBox(r, 'The request was not sent.'));
    if (r.ok) { purpose.value = ''; if (sent) await sent(); }
  }},
  h('label', {for: 'req-purpose'}, 'Purpose'), purpose,
  fields.length ? h('fieldset', {}, h('legend', {}, 'Fields (leave all unchecked for every field)'), boxes)
    : p.stub ? h('p', {class: 'muted', 'data-testid': 'fields-hidden'}, 'Its fields are hidden until you have access: the request is for all of them.') : null,
  h('label', {for: 'req-days'}, 'For how many days'), days,
  button, out);
  return form;
}

// GET /v1/access/mine lists a granted request and also its grant: one line each request, the
// grant's own line only when its request is not listed.
function oneLinePerRequest(list) {
  const granted = new Set(list.filter((a) => a.kind !== 'grant' && a.grant).map((a) => a.grant));
  return list.filter((a) => !(a.kind === 'grant' && granted.has(a.id)));
}

const UNTIL_TEXT = {requested: 'once granted', denied: '', revoked: ''};

function accessTable(list, showProduct) {
  return h('div', {class: 'tablewrap'}, stacked(h('table', {'data-testid': 'access-list'},
    h('thead', {}, h('tr', {}, [showProduct ? 'Product' : null, 'State', 'Purpose', 'Fields', 'Until', 'Reference'].filter(Boolean).map((c) => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, list.map((a) => h('tr', {},
      showProduct ? h('td', {}, h('a', {href: '#/p/' + String(a.product || '')}, a.product || '')) : null,
      h('td', {}, badge('state', a.state || '?'), a.state === 'requested' ? h('span', {class: 'muted small'}, ' waiting for the owner') : null,
        a.state === 'denied' && a.reason ? h('span', {class: 'small'}, ' ', a.reason) : null),
      h('td', {}, a.purpose || ''),
      h('td', {}, Array.isArray(a.fields) && a.fields.length ? a.fields.join(', ') : 'all'),
      h('td', {}, a.state in UNTIL_TEXT ? UNTIL_TEXT[a.state] : a.expires_ms ? new Date(a.expires_ms).toISOString().slice(0, 10) : ''),
      h('td', {}, h('code', {}, a.id || ''))))))));
}

async function pendingList(box, product) {
  loading(box);
  const r = await api('/v1/access/requests?state=requested');
  if (!r.ok) {
    box.replaceChildren(noRoute(r) ? h('p', {class: 'muted'}, 'This node does not list access requests yet (404).') : errorBox(r, 'Pending requests could not be read.'));
    return;
  }
  const all = Array.isArray(r.json) ? r.json : (r.json && r.json.requests) || [];
  const list = product ? all.filter((a) => a.product === product) : all;
  if (!list.length) { box.replaceChildren(h('p', {class: 'muted', 'data-testid': 'pending-none'}, 'No request is waiting for a decision.')); return; }
  // Each request: its days and a reason, labelled on screen; once decided, the outcome in words
  // takes the controls' place (and the focus), so a decision cannot be clicked twice.
  box.replaceChildren(h('ul', {class: 'pending', 'data-testid': 'pending'}, list.map((a) => {
    const whom = `${a.subject || ''} on ${a.product || ''}`;
    const key = 'dec-' + String(a.id || '').replace(/[^A-Za-z0-9_-]/g, '_');
    const out = h('div', {role: 'status', class: 'outcome', tabindex: '-1'});
    const days = h('input', {id: key + '-days', type: 'number', min: '1', max: '365', value: String(a.days || 30), 'aria-label': `Days to grant ${whom}`});
    const reason = h('input', {id: key + '-reason', type: 'text', 'aria-label': `Reason to deny ${whom}`, placeholder: 'optional'});
    const grant = h('button', {type: 'button', onclick: () => decide('grant')}, 'Grant');
    const deny = h('button', {type: 'button', class: 'secondary', onclick: () => decide('deny')}, 'Deny');
    const controls = h('div', {class: 'decide'},
      h('span', {class: 'field'}, h('label', {for: days.id}, 'Days'), days, grant),
      h('span', {class: 'field'}, h('label', {for: reason.id}, 'Reason to deny'), reason, deny));
    const decide = async (how) => {
      grant.disabled = deny.disabled = true;
      const rr = await api(`/v1/access/requests/${encodeURIComponent(a.id)}/${how}`, {method: 'POST', body: how === 'grant' ? {days: Number(days.value)} : {reason: reason.value}});
      if (rr.ok) {
        controls.remove();
        out.replaceChildren(h('p', {}, badge('state', how === 'grant' ? 'granted' : 'denied'), ' ', how === 'grant'
          ? `${a.subject || '?'} may read ${a.product || '?'} for ${days.value} days.` : `The request of ${a.subject || '?'} is denied.`));
      } else {
        grant.disabled = deny.disabled = false;
        out.replaceChildren(errorBox(rr, 'The node did not record this decision.'));
      }
      out.focus();
    };
    return h('li', {class: 'card'},
      h('p', {}, h('strong', {}, a.subject || '?'), ' asks for ', h('a', {href: '#/p/' + String(a.product || '')}, a.product || ''),
        ` for ${a.days || '?'} days`, Array.isArray(a.fields) && a.fields.length ? ' (fields: ' + a.fields.join(', ') + ')' : ''),
      h('p', {}, 'Purpose: ', a.purpose || ''),
      controls, out);
  })));
}

async function accessView(m) {
  const title = h('h1', {tabindex: '-1'}, 'My access');
  m.append(title);
  title.focus();
  if (!token()) {
    m.append(h('p', {class: 'notice'}, 'Sign in to see your requests and grants. ', h('a', {href: '#/signin'}, 'Sign in with a token')));
    return;
  }
  const loaded = loading(m, 'Loading your requests and grants…');
  const r = await api('/v1/access/mine');
  loaded();
  if (noRoute(r) || r.status === 404) {
    m.append(h('p', {class: 'notice', 'data-testid': 'access-unavailable'}, 'This node does not handle access requests yet (GET /v1/access/mine answered 404).'));
    return;
  }
  if (!r.ok) { m.append(errorBox(r, 'Your access could not be read.')); return; }
  const list = Array.isArray(r.json) ? oneLinePerRequest(r.json) : [];
  m.append(section('Requests and grants', list.length ? accessTable(list, true) : h('p', {class: 'muted'}, 'You have not asked for access to anything yet. A product that needs it has a Request access form on its Access tab.')));
  const me = who();
  if (me && (me.kind === 'admin' || me.kind === 'write')) {
    const box = h('div');
    const granted = h('div');
    m.append(section(`Waiting for your decision (domain ${me.domain || '?'})`, box), section('Active grants of your domain', granted));
    await pendingList(box, null);
    await grantedList(granted, null);
  }
}

// ------------------------------------------------------------------ sign in

function refreshWho() {
  const a = document.getElementById('who');
  const me = who();
  a.textContent = token() ? inert(me && me.subject ? me.subject : 'Signed in') : 'Sign in';
}

// What a token's kind lets its holder do (DESIGN §13), in words.
const KIND_TEXT = {
  read: 'read products (and ask for access to restricted ones)',
  write: 'read, publish your domain\'s products and decide its access requests',
  admin: 'everything in your domain, issuing tokens included',
};

async function signinView(m) {
  const title = h('h1', {tabindex: '-1'}, token() ? 'Your session' : 'Sign in');
  const session = h('div', {role: 'status', 'aria-live': 'polite'});
  const input = h('input', {id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', placeholder: 'trib1.…'});
  m.append(title,
    h('p', {}, 'Tributary knows who you are by an access token: a long text that starts with ', h('code', {}, 'trib1.'),
      '. Ask your domain\'s administrator for one (they make it with ', h('code', {}, 'trib token issue'),
      ') and paste it here. It is kept in this browser tab only, and forgotten when you close the tab.'),
    session,
    h('form', {class: 'signin', onsubmit: async (e) => {
      e.preventDefault();
      const t = input.value.trim();
      if (!t) { session.replaceChildren(h('p', {class: 'error'}, 'Paste a token first.')); input.focus(); return; }
      sessionStorage.setItem(TOKEN_KEY, t);
      sessionStorage.removeItem('trib.whoami');
      input.value = '';
      await showWho(session, title, true);
    }}, h('label', {for: 'token', id: 'token-label'}, 'Access token'), input, h('button', {type: 'submit'}, 'Sign in')));
  if (token()) await showWho(session, title, false);
  input.focus();
}

// Who the token says you are, with the ways on and Sign out; or why the token was refused.
async function showWho(box, title, fresh) {
  const r = await api('/v1/whoami');
  if (r.ok && r.json) {
    sessionStorage.setItem('trib.whoami', JSON.stringify(r.json));
    const w = r.json;
    title.textContent = 'Your session';
    document.getElementById('token-label').textContent = 'Another access token (to sign in as someone else)';
    box.replaceChildren(h('dl', {class: 'kv', 'data-testid': 'whoami', tabindex: '-1'},
      h('dt', {}, 'Signed in as'), h('dd', {}, w.subject || ''),
      h('dt', {}, 'Domain'), h('dd', {}, w.domain || ''),
      h('dt', {}, 'You may'), h('dd', {}, KIND_TEXT[w.kind] || w.kind || ''),
      h('dt', {}, 'Products'), h('dd', {}, !w.scope || w.scope === '*' || w.scope === '*/*' ? 'all'
        : /^[^*/]+\/\*$/.test(w.scope) ? `those of domain ${w.scope.slice(0, -2)}` : ['those matching ', h('code', {}, w.scope)]),
      h('dt', {}, 'Until'), h('dd', {}, w.expires_ms ? new Date(w.expires_ms).toLocaleString(undefined, {dateStyle: 'medium', timeStyle: 'short'}) : 'no end')),
    h('p', {class: 'next'}, h('a', {href: '#/search'}, 'Search the catalog'), ' · ', h('a', {href: '#/access'}, 'My access'), ' · ',
      h('button', {type: 'button', class: 'secondary', onclick: () => {
        sessionStorage.removeItem(TOKEN_KEY); sessionStorage.removeItem('trib.whoami'); refreshWho();
        title.textContent = 'Sign in';
        document.getElementById('token-label').textContent = 'Access token';
        box.replaceChildren(h('p', {}, 'Signed out: this tab no longer holds your token.'));
        document.getElementById('token').focus();
      }}, 'Sign out')));
    if (fresh) box.firstChild.focus(); // out of the token box, so '/' and Tab go on from here
  } else if (noRoute(r) || r.status === 404) {
    box.replaceChildren(h('p', {class: 'notice'}, 'This node does not check tokens yet (GET /v1/whoami answered 404); the token is kept and sent.'));
  } else {
    if (fresh) sessionStorage.removeItem(TOKEN_KEY);
    box.replaceChildren(errorBox(r, 'This token was not accepted.'));
  }
  refreshWho();
}

// ------------------------------------------------------------------ mesh

// 52 seconds, 3 minutes, 5 hours, 2 days.
function duration(sec) {
  const s = Math.max(0, Math.floor(Number(sec) || 0));
  const [n, u] = s < 120 ? [s, 'second'] : s < 7200 ? [Math.floor(s / 60), 'minute'] : s < 172800 ? [Math.floor(s / 3600), 'hour'] : [Math.floor(s / 86400), 'day'];
  return `${n} ${u}${n === 1 ? '' : 's'}`;
}

async function meshView(m) {
  const title = h('h1', {tabindex: '-1'}, 'Domains and nodes');
  m.append(title, h('p', {class: 'muted', 'data-testid': 'mesh-legend'}, 'Each domain is a team that publishes data products; its nodes are the computers that serve them. ',
    'A node is alive when it answers, suspect when it has just stopped answering (the others are checking), dead when it has not answered for a while, and left when it was shut down on purpose.'));
  title.focus();
  const loaded = loading(m, 'Loading the domains and their nodes…');
  const [st, mem, pr] = await Promise.all([api('/v1/status'), api('/v1/members'), api('/v1/products?limit=0')]);
  loaded();
  if (st.ok && st.json) {
    const s = st.json;
    const c = s.members || {};
    m.append(h('p', {'data-testid': 'this-node'}, 'You are on node ', h('code', {title: s.node_id}, shortId(s.node_id)),
      ` in domain ${s.domain}, running for ${duration(s.uptime_s)}, with ${s.products} product${s.products === 1 ? '' : 's'} in its catalog. `,
      `Nodes it knows: ${c.alive ?? 0} alive, ${c.suspect ?? 0} suspect, ${c.dead ?? 0} dead.`));
  } else m.append(errorBox(st, 'This node\'s status could not be read.'));
  if (!mem.ok || !mem.json) { m.append(errorBox(mem, 'The list of nodes could not be read.')); return; }
  const counts = (pr.ok && pr.json && pr.json.facets && pr.json.facets.domain) || {};
  const by = new Map();
  for (const x of mem.json.members || []) {
    if (!by.has(x.domain)) by.set(x.domain, []);
    by.get(x.domain).push(x);
  }
  for (const d of Object.keys(counts)) if (!by.has(d)) by.set(d, []);
  for (const [d, nodes] of [...by.entries()].sort()) {
    const n = counts[d] || 0;
    m.append(h('section', {class: 'block domain', 'data-testid': 'domain'},
      h('h2', {}, d, ' ', h('a', {class: 'small', href: '#/search?domain=' + encodeURIComponent(d)}, `${n} product${n === 1 ? '' : 's'}`)),
      nodes.length ? h('div', {class: 'tablewrap'}, stacked(h('table', {},
        h('thead', {}, h('tr', {}, ['Node', 'State', 'Address for nodes', 'Web address', 'Note'].map((c) => h('th', {scope: 'col'}, c)))),
        h('tbody', {}, nodes.map((x) => h('tr', {},
          h('th', {scope: 'row'}, h('code', {title: x.node_id}, shortId(x.node_id))),
          h('td', {}, badge('state', x.state)),
          h('td', {}, x.addr || ''),
          h('td', {}, /^[A-Za-z0-9.:[\]-]+$/.test(x.http || '') ? h('a', {href: 'http://' + x.http + '/'}, x.http) : x.http || ''),
          h('td', {}, x.self ? 'this node' : ''))))))) : h('p', {class: 'muted'}, 'No node of this domain is in the membership view.')));
  }
}

// ------------------------------------------------------------------ start

document.addEventListener('keydown', (e) => {
  if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
  e.preventDefault();
  const q = document.getElementById('q');
  if (q) { q.focus(); q.select(); } else location.hash = '#/search';
});
window.addEventListener('hashchange', render);
refreshWho();
render();
