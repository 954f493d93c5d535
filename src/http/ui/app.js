// hopper's dashboard. It reads the daemon's JSON routes with fetch() and puts
// every value into the page as text (textContent, attributes), never as HTML:
// a recipe name, a param, an error or a log line may be hostile.

const POLL_MS = 2000;
/** Statistics and failures change slowly and cost more on a big table: every fifth poll. */
const SLOW_EVERY = 5;
const TOKEN_KEY = 'hopper.token';
const JOBS_SHOWN = 25;
const FAILURES_SHOWN = 8;
const ENDED = new Set(['succeeded', 'failed', 'canceled']);

/** What an error code means, in a few plain words; the message says the rest. */
const PLAIN = {
  E_CANCELED: 'canceled',
  E_TIMEOUT: 'took longer than its timeout',
  E_RUN_TIMEOUT: 'a command took too long',
  E_IDLE: 'stopped printing and was stopped',
  E_RUN_EXIT: 'a command failed',
  E_RUN_FAILED: 'a command could not run',
  E_RUN_NOT_FOUND: 'a command was not found',
  E_CONTAINER_EXIT: 'a container failed',
  E_CONTAINER_OOM: 'a container ran out of memory',
  E_CONTAINER_CREATE: 'a container could not be created',
  E_IMAGE_MISSING: 'a container image is missing',
  E_IMAGE_PULL: 'a container image could not be pulled',
  E_DOCKER_DOWN: 'Docker was unavailable',
  E_SWARM_TASK: 'the Swarm task failed',
  E_SWARM_NODE: 'no Swarm node could take it',
  E_FETCH_STATUS: 'a download was refused',
  E_FETCH_CLIENT: 'a download was refused as a bad request',
  E_FETCH_NETWORK: 'a server could not be reached',
  E_FETCH_TIMEOUT: 'a download took too long',
  E_FETCH_TOO_LARGE: 'a download was too large',
  E_FETCH_NO_HOST: 'a host name does not exist',
  E_FETCH_URL: 'a URL is not valid',
  E_FETCH_REDIRECTS: 'too many redirects',
  E_OUTBOUND: 'a URL points to a blocked address',
  E_PAGES_URL: 'a data API URL is not valid',
  E_PAGES_CLIENT: 'a data API refused the request',
  E_PAGES_NO_HOST: 'a host name does not exist',
  E_PAGES_LIMIT: 'a data API answer was too large',
  E_PAGES_SIZE: 'a data API answer was too large',
  E_PAGES_SHAPE: 'a data API answered in an unexpected shape',
  E_NO_OUTPUT: 'produced no output',
  E_OUTPUT_NAME: 'an output has a bad name',
  E_OUTPUT_LOST: 'an output was lost',
  E_DISK: 'wrote more than its disk reservation',
  E_OUTPUTS_DISK: 'the disk for outputs is full',
  E_RESOURCES: 'needs more than this host has',
  E_DELIVERY: 'the output could not be delivered',
  E_PATH: 'a path leaves the work folder',
  E_TEMPLATE: 'a placeholder could not be filled',
  E_ZIP: 'zipping failed',
  E_ZIP_EMPTY: 'nothing to zip',
  E_SHUTDOWN: 'hopper stopped while it ran',
  E_INTERRUPTED: 'hopper stopped while it ran',
  E_INTERNAL: 'an internal error',
};

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

// ---- small DOM helpers: text only --------------------------------------------------------

/** An element with a class and children (strings become text nodes). */
function el(tag, className, ...children) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function badge(state) {
  return el('span', `badge ${/^[a-z]+$/.test(state) ? state : ''}`, state);
}

/** A link only for an http(s) URL; anything else (javascript:, data:) stays text. */
function safeLink(url, text) {
  let parsed;
  try {
    parsed = new URL(url, location.href);
  } catch {
    return document.createTextNode(text);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return document.createTextNode(text);
  const a = el('a', '', text);
  a.href = parsed.href;
  a.rel = 'noopener noreferrer';
  a.target = '_blank';
  return a;
}

function plain(error) {
  if (!error) return '';
  return PLAIN[error.code] ?? 'failed';
}

/** A failure in a few words: the plain meaning of its code, else the message's first line. */
function headline(error) {
  return PLAIN[error.code] ?? error.message.split('\n')[0];
}

// ---- formatting ---------------------------------------------------------------------------

const number = new Intl.NumberFormat('en');

function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** "3m ago", from the server's clock (skew between the browser and the daemon is taken out). */
function ago(isoTime) {
  if (!isoTime) return '–';
  return `${duration((serverNow() - Date.parse(isoTime)) / 1000)} ago`;
}

function when(isoTime) {
  if (!isoTime) return '–';
  const d = new Date(isoTime);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function took(job) {
  if (!job.startedAt) return '–';
  const end = job.finishedAt ? Date.parse(job.finishedAt) : serverNow();
  return duration((end - Date.parse(job.startedAt)) / 1000);
}

// ---- talking to the daemon ------------------------------------------------------------------

class AuthNeeded extends Error {}

let skewMs = 0;
const serverNow = () => Date.now() + skewMs;

function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** GETs a JSON route with the token in a header (never in the URL). */
async function api(path) {
  const headers = { accept: 'application/json' };
  const token = storedToken();
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, { headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' });
  if (res.status === 401) throw new AuthNeeded('the token was not accepted');
  let body = null;
  try {
    body = await res.json();
  } catch {
    /* not JSON: said below */
  }
  if (!res.ok) throw new Error(body && typeof body.error === 'string' ? `${path}: ${body.error}` : `${path}: HTTP ${res.status}`);
  return body;
}

// ---- state and the poll loop -----------------------------------------------------------------

const view = {
  tick: 0,
  timer: 0,
  /** Each poll's number: an answer to an older poll (a filter changed meanwhile) is dropped. */
  seq: 0,
  /** The job shown in the detail panel, if any. */
  detailId: null,
  lastOk: 0,
  knownRecipes: new Set(),
};

function filters() {
  const q = new URLSearchParams({ limit: String(JOBS_SHOWN) });
  const state = /** @type {HTMLSelectElement} */ ($('filter-state')).value;
  const recipe = /** @type {HTMLSelectElement} */ ($('filter-recipe')).value;
  if (state) q.set('state', state);
  if (recipe) q.set('recipe', recipe);
  return q.toString();
}

async function poll() {
  clearTimeout(view.timer);
  if (document.visibilityState === 'hidden') return;
  const mine = ++view.seq;
  try {
    const slow = view.tick % SLOW_EVERY === 0;
    const [status, dash, jobs, stats, errors] = await Promise.all([
      api('/status'),
      api('/dashboard'),
      api(`/jobs?${filters()}`),
      slow ? api('/statistics') : null,
      slow ? api(`/statistics/errors?limit=${FAILURES_SHOWN}`) : null,
    ]);
    if (mine !== view.seq) return;
    skewMs = Date.parse(dash.now) - Date.now();
    renderStatus(status, dash);
    renderResources(dash.resources);
    renderRunning(dash.running);
    renderJobs(jobs);
    if (stats) renderRecipes(stats, dash.activity);
    else updateCharts(dash.activity);
    if (errors) renderFailures(errors);
    if (view.detailId) await refreshDetail(false);
    view.tick++;
    view.lastOk = Date.now();
    showProblem(null);
    setLive(true);
  } catch (err) {
    if (mine !== view.seq) return;
    if (err instanceof AuthNeeded) {
      askToken(storedToken() ? 'That token was not accepted.' : null);
      return;
    }
    showProblem(`Cannot read from hopper: ${err.message}`);
    setLive(false);
  }
  schedule();
}

function schedule() {
  clearTimeout(view.timer);
  if (document.visibilityState !== 'hidden') view.timer = setTimeout(poll, POLL_MS);
}

function setLive(ok) {
  $('live-dot').className = `dot ${ok ? 'on' : 'off'}`;
  $('live').textContent = ok ? 'live' : 'reconnecting…';
}

function showProblem(text) {
  const p = $('problem');
  p.hidden = !text;
  p.textContent = text ?? '';
}

// ---- rendering ------------------------------------------------------------------------------

function setCount(name, value) {
  for (const e of document.querySelectorAll(`[data-count="${name}"]`)) e.textContent = number.format(value);
}

function renderStatus(s, dash) {
  $('version').textContent = s.version;
  $('uptime').textContent = duration(s.uptimeSeconds);
  const c = s.containers ?? {};
  const docker = $('docker');
  const where = c.runOn === 'swarm' ? `Swarm${c.nodes !== undefined ? ` ${c.nodesReady}/${c.nodes} nodes` : ''}` : 'Docker';
  docker.textContent = `${where} ${c.engine === 'up' ? 'up' : 'down'}`;
  docker.className = `badge ${c.engine === 'up' ? 'up' : 'down'}`;
  docker.title = c.problem ?? '';
  setCount('running', dash.running.total);
  setCount('queueLength', s.queueLength);
  setCount('delivering', s.delivering ?? 0);
  setCount('processed', s.processed);
  setCount('failed', s.failed);
  const lanes = $('lanes');
  lanes.replaceChildren(
    ...Object.entries(s.lanes).map(([name, l]) => {
      const row = barRow(name, l.running, l.concurrency, `${l.running} of ${l.concurrency} running · ${l.queued} queued`);
      row.dataset.lane = name;
      return row;
    }),
  );
}

function barRow(name, used, total, text) {
  const fill = el('span');
  const share = total > 0 ? Math.min(used / total, 1) : 0;
  fill.style.width = `${(share * 100).toFixed(1)}%`;
  const bar = el('div', `bar${share >= 1 ? ' full' : share >= 0.8 ? ' high' : ''}`, fill);
  bar.setAttribute('role', 'meter');
  bar.setAttribute('aria-label', name);
  bar.setAttribute('aria-valuemin', '0');
  bar.setAttribute('aria-valuemax', String(total));
  bar.setAttribute('aria-valuenow', String(used));
  return el('div', 'bar-row', el('span', 'name', name), bar, el('span', 'value', text));
}

function renderResources(r) {
  const cpus = (n) => `${Number(n.toFixed(2))}`;
  const rows = [
    barRow('cpus', r.reserved.cpus, r.budget.cpus, `${cpus(r.reserved.cpus)} of ${cpus(r.budget.cpus)}`),
    barRow('memory', r.reserved.memory, r.budget.memory, `${bytes(r.reserved.memory)} of ${bytes(r.budget.memory)}`),
  ];
  if (r.budget.disk !== null) rows.push(barRow('disk', r.reserved.disk, r.budget.disk, `${bytes(r.reserved.disk)} of ${bytes(r.budget.disk)}`));
  else rows.push(barRow('disk', 0, 0, `${bytes(r.reserved.disk)} · no budget`));
  $('resources').replaceChildren(...rows);
  const h = r.host;
  $('host').textContent =
    `This host: ${h.cpus} cpus (load ${h.load1.toFixed(2)}), ${bytes(h.memory - h.freeMemory)} of ${bytes(h.memory)} memory in use` +
    (h.freeDisk !== null ? `, ${bytes(h.freeDisk)} free disk for state/` : '');
}

function openable(node, id) {
  node.dataset.job = id;
  node.tabIndex = 0;
  node.addEventListener('click', () => openDetail(id));
  node.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      openDetail(id);
    }
  });
  return node;
}

function renderRunning(running) {
  $('running-total').textContent = running.total > running.jobs.length ? `${running.jobs.length} of ${running.total} shown` : '';
  $('running-empty').hidden = running.total > 0;
  $('running').replaceChildren(
    ...running.jobs.map((j) => {
      const elapsed = el('span', 'elapsed', '–');
      if (j.startedAt) elapsed.dataset.since = j.startedAt;
      const who = el('span', 'who', el('span', 'mono', j.id), el('span', '', j.recipe), el('span', 'muted small', `${j.lane} lane · attempt ${j.attempt}`));
      const line = el('span', 'line', j.lastLine ?? '(nothing printed yet)');
      line.title = j.lastLine ?? '';
      return openable(el('li', '', who, elapsed, line), j.id);
    }),
  );
  tickElapsed();
}

/** The running jobs' elapsed times, each second between polls. */
function tickElapsed() {
  for (const e of document.querySelectorAll('[data-since]')) e.textContent = duration((serverNow() - Date.parse(e.dataset.since)) / 1000);
  if (view.lastOk) $('live').textContent = Date.now() - view.lastOk > POLL_MS * 3 ? `last update ${duration((Date.now() - view.lastOk) / 1000)} ago` : 'live';
}

function renderJobs(list) {
  $('jobs-total').textContent = `${number.format(list.total)} in all${list.total > list.jobs.length ? `, newest ${list.jobs.length} shown` : ''}`;
  $('jobs-empty').hidden = list.jobs.length > 0;
  $('jobs').replaceChildren(
    ...list.jobs.map((j) => {
      const err = el('td', 'err', j.error ? headline(j.error) : '');
      if (j.error) err.title = j.error.message;
      const requested = el('td', 'when', ago(j.createdAt));
      requested.title = j.createdAt;
      const row = el('tr', '', el('td', '', j.id), el('td', '', j.recipe), el('td', '', badge(j.state)), el('td', '', j.lane), requested, el('td', 'when', took(j)), err);
      row.dataset.state = j.state;
      return openable(row, j.id);
    }),
  );
}

function syncRecipeFilter(names) {
  const select = /** @type {HTMLSelectElement} */ ($('filter-recipe'));
  for (const name of names) {
    if (view.knownRecipes.has(name)) continue;
    view.knownRecipes.add(name);
    const o = el('option', '', name);
    o.value = name;
    select.append(o);
  }
}

function renderRecipes(stats, activity) {
  const names = Object.keys(stats.totals).filter((n) => n !== '*');
  syncRecipeFilter(names);
  $('recipes').replaceChildren(
    ...names.map((name) => {
      const t = stats.totals[name];
      const a = activity.recipes[name];
      const chart = el('td', 'chart');
      chart.dataset.recipe = name;
      chart.append(sparkline(name, a));
      const row = el(
        'tr',
        '',
        el('td', '', name),
        el('td', 'num', number.format(t.requests)),
        el('td', 'num', number.format(t.emails)),
        el('td', 'num', number.format(t.errors)),
        el('td', 'num', bytes(t.bytes)),
        el('td', 'num', duration(a?.medianRunSeconds ?? null)),
        chart,
      );
      row.dataset.recipe = name;
      return row;
    }),
  );
}

function updateCharts(activity) {
  for (const cell of document.querySelectorAll('td.chart[data-recipe]')) {
    const name = cell.dataset.recipe;
    cell.replaceChildren(sparkline(name, activity.recipes[name]));
  }
}

const SVG = 'http://www.w3.org/2000/svg';

/** Bars of jobs ended per minute over the last hour, failed ones in red on top; drawn here, no library. */
function sparkline(name, a) {
  const w = 150;
  const h = 30;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  const finished = a?.finishedPerMinute ?? [];
  const failed = a?.failedPerMinute ?? [];
  const total = finished.reduce((s, n) => s + n, 0);
  const failedTotal = failed.reduce((s, n) => s + n, 0);
  const label = `${name}: ${total} ended in the last hour${failedTotal ? `, ${failedTotal} failed` : ''}`;
  svg.setAttribute('aria-label', label);
  const title = document.createElementNS(SVG, 'title');
  title.textContent = label;
  svg.append(title);
  const base = document.createElementNS(SVG, 'line');
  for (const [k, v] of [['x1', 0], ['x2', w], ['y1', h - 0.5], ['y2', h - 0.5]]) base.setAttribute(k, String(v));
  svg.append(base);
  const max = Math.max(1, ...finished);
  const slot = w / Math.max(finished.length, 1);
  finished.forEach((n, i) => {
    if (n === 0) return;
    const bar = (cls, count, offset) => {
      const r = document.createElementNS(SVG, 'rect');
      const height = Math.max(1.5, (count / max) * (h - 2));
      r.setAttribute('class', cls);
      r.setAttribute('x', (i * slot + 0.3).toFixed(2));
      r.setAttribute('width', Math.max(slot - 0.6, 0.8).toFixed(2));
      r.setAttribute('y', (h - 1 - offset - height).toFixed(2));
      r.setAttribute('height', height.toFixed(2));
      return r;
    };
    const ok = n - (failed[i] ?? 0);
    const okHeight = ok > 0 ? Math.max(1.5, (ok / max) * (h - 2)) : 0;
    if (ok > 0) svg.append(bar('ok', ok, 0));
    if (failed[i]) svg.append(bar('failed', failed[i], okHeight));
  });
  return svg;
}

function renderFailures(list) {
  $('failures-total').textContent = list.total > 0 ? `${number.format(list.total)} in all` : '';
  $('failures-empty').hidden = list.errors.length > 0;
  $('failures').replaceChildren(
    ...list.errors.map((e) => {
      const item = el(
        'li',
        '',
        el('div', 'what', `${e.recipe}: ${PLAIN[e.code] ?? 'failed'}`),
        el('div', 'why', e.message),
        el('div', 'meta', `${e.id} · ${ago(e.timestamp)}${e.email ? ` · for ${e.email}` : ''}`),
      );
      return openable(item, e.id);
    }),
  );
}

// ---- the job detail -------------------------------------------------------------------------

async function openDetail(id) {
  view.detailId = id;
  $('detail-title').textContent = id;
  delete $('detail-body').dataset.state;
  $('detail-body').replaceChildren(el('p', 'muted', 'loading…'));
  const dialog = /** @type {HTMLDialogElement} */ ($('detail'));
  if (!dialog.open) dialog.showModal();
  await refreshDetail(true);
}

async function refreshDetail(first) {
  const id = view.detailId;
  if (!id) return;
  // An ended job does not change: it is not asked for again (and the reader's scroll position stays).
  if (!first && ENDED.has($('detail-body').dataset.state ?? '')) return;
  try {
    const [job, log] = await Promise.all([api(`/jobs/${encodeURIComponent(id)}`), api(`/jobs/${encodeURIComponent(id)}/log?tail=40`)]);
    if (view.detailId !== id) return;
    renderDetail(job, log.lines);
  } catch (err) {
    if (err instanceof AuthNeeded) throw err;
    $('detail-body').replaceChildren(el('p', 'error', err.message));
  }
}

function section(title, ...content) {
  return el('section', '', el('h3', '', title), ...content);
}

function kv(pairs) {
  const dl = el('dl', 'kv');
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === '') continue;
    dl.append(el('dt', '', k), el('dd', '', v));
  }
  return dl;
}

function renderDetail(job, lines) {
  const body = $('detail-body');
  body.dataset.state = job.state;
  $('detail-title').textContent = job.id;
  const parts = [];
  parts.push(
    kv([
      ['state', badge(job.state)],
      ['recipe', `${job.recipe} (version ${job.recipeVersion.slice(0, 12)})`],
      ['request id', job.requestId],
      ['lane', `${job.lane}, priority ${job.priority}`],
      ['requested', when(job.createdAt)],
      ['not before', job.notBefore ? when(job.notBefore) : null],
      ['started', job.startedAt ? when(job.startedAt) : null],
      ['finished', job.finishedAt ? when(job.finishedAt) : null],
      ['took', job.startedAt ? took(job) : null],
      ['from the cache of', job.cachedFrom],
    ]),
  );
  if (job.waiting) {
    const pos = job.waiting.position === null ? '' : ` It is number ${job.waiting.position} in the ${job.lane} lane.`;
    parts.push(section('Why it waits', el('p', 'waiting', `${job.waiting.reason}.${pos}`)));
  }
  if (job.error) parts.push(section('Why it failed', el('div', 'failure', el('div', 'what', plain(job.error)), el('div', '', job.error.message), el('div', 'muted small', job.error.code))));
  parts.push(section('Params', paramsList(job.params)));
  const timeline = el('ol', 'timeline');
  for (const e of job.events) {
    const li = el('li', /^[a-z]+$/.test(e.event) ? e.event : '', e.event, el('span', 'at', when(e.at)));
    timeline.append(li);
  }
  parts.push(section('Events', timeline));
  if (job.attempts.length) {
    const rows = job.attempts.map((a) =>
      el('tr', '', el('td', '', String(a.n)), el('td', 'when', when(a.startedAt)), el('td', 'when', a.finishedAt ? when(a.finishedAt) : '–'), el('td', '', a.outcome ?? 'running'), el('td', '', a.error ? `${plain(a.error)}: ${a.error.message}` : '')),
    );
    const table = el('table', '', el('thead', '', el('tr', '', ...['#', 'started', 'finished', 'outcome', 'error'].map((h) => el('th', '', h)))), el('tbody', '', ...rows));
    parts.push(section('Attempts', el('div', 'scroll', table)));
  }
  if (job.outputs.length) {
    const rows = job.outputs.map((o) =>
      el('tr', '', el('td', '', o.link ? safeLink(o.link, o.name) : o.name), el('td', 'num', bytes(o.bytes)), el('td', 'mono', o.sha256.slice(0, 12)), el('td', 'when', o.link ? `until ${when(o.expiresAt)}` : 'no link')),
    );
    const table = el('table', '', el('thead', '', el('tr', '', ...['file', 'size', 'sha256', 'link'].map((h) => el('th', '', h)))), el('tbody', '', ...rows));
    parts.push(section('Outputs', el('div', 'scroll', table)));
  }
  const pre = el('pre', 'log', lines.length ? lines.join('\n') : '(no log yet)');
  parts.push(section('Log (last lines)', pre));
  body.replaceChildren(...parts);
  pre.scrollTop = pre.scrollHeight;
}

function paramsList(params) {
  const dl = el('dl', 'kv');
  const entries = Object.entries(params ?? {});
  if (entries.length === 0) return el('p', 'muted', 'none');
  for (const [k, v] of entries) {
    const value = typeof v === 'string' ? v : JSON.stringify(v);
    const dd = el('dd', 'mono', value);
    // The daemon masks writeOnly params as "***": say what that is.
    if (v === '***') dd.append(el('span', 'badge secret', 'secret'));
    dl.append(el('dt', '', k), dd);
  }
  return dl;
}

function closeDetail() {
  view.detailId = null;
  const dialog = /** @type {HTMLDialogElement} */ ($('detail'));
  if (dialog.open) dialog.close();
}

// ---- the token ------------------------------------------------------------------------------

function askToken(message) {
  clearTimeout(view.timer);
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage refused: the form asks each time */
  }
  closeDetail();
  $('main').hidden = true;
  $('signout').hidden = true;
  $('login').hidden = false;
  const error = $('login-error');
  error.hidden = !message;
  error.textContent = message ?? '';
  setLive(false);
  $('live').textContent = 'token needed';
  $('token').focus();
}

function start() {
  $('login').hidden = true;
  $('main').hidden = false;
  $('signout').hidden = !storedToken();
  view.tick = 0;
  void poll();
}

async function boot() {
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = /** @type {HTMLInputElement} */ ($('token'));
    const token = input.value.trim();
    if (!token) return;
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      $('login-error').textContent = 'This browser refuses to keep the token for the tab (session storage is off).';
      $('login-error').hidden = false;
      return;
    }
    input.value = '';
    start();
  });
  $('signout').addEventListener('click', () => askToken(null));
  $('detail-close').addEventListener('click', closeDetail);
  $('detail').addEventListener('close', () => (view.detailId = null));
  // A click on the backdrop (outside the panel) closes it.
  $('detail').addEventListener('click', (e) => {
    if (e.target === e.currentTarget) closeDetail();
  });
  for (const id of ['filter-state', 'filter-recipe']) $(id).addEventListener('change', () => void poll());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && !$('main').hidden) void poll();
    else clearTimeout(view.timer);
  });
  setInterval(tickElapsed, 1000);

  // Whether this daemon wants a token (public, holds nothing secret): asking only then spares a 401.
  let needsToken = true;
  try {
    const res = await fetch('/ui/auth', { cache: 'no-store', credentials: 'omit' });
    needsToken = (await res.json()).token === true;
  } catch {
    /* unknown: try, and ask on a 401 */
  }
  if (needsToken && !storedToken()) askToken(null);
  else start();
}

void boot();
