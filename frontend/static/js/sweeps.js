// The sweeps page: pick or edit a sweep spec, start/stop it, watch its progress over
// /ws/sweeps/{id}, and read the phase diagram. State lives in the URL hash (#sweep=ID).
// Exposes window.__sweeps for tests.

import { rememberToken, request, tokenHeaders } from './api.js';
import { escapeHtml } from './html.js';
import { hashParams, setHashParams } from './url-state.js';
import { OUTCOME_COLOURS, OUTCOME_LABELS, drawPhase, liveByIndex } from './sweeps-phase.js';

const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(['queued', 'running']);
const page = { presets: [], view: null, socket: null, dirty: false, debug: { ready: false } };

/** request() → JSON; a 422's details become "grid.lr: message" lines naming the field. */
async function call(method, path, body) {
  try {
    return await request(method, path, { body, headers: tokenHeaders() });
  } catch (exc) {
    const detail = exc.detail;
    if (!Array.isArray(detail)) throw exc;
    const err = new Error(detail.map((d) => `${(d.loc ?? []).filter((p) => p !== 'body')
      .join('.') || 'spec'}: ${String(d.msg).replace(/^Value error, /, '')}`).join('\n'));
    err.status = exc.status;
    throw err;
  }
}

function runCount(spec) {
  const grid = Object.values(spec.grid ?? {}).reduce((n, v) => n * v.length, 1);
  const zipped = Object.values(spec.zipped ?? {});
  return grid * (zipped.length ? zipped[0].length : 1);
}

function showSpec(spec) {
  $('sweep-spec').value = JSON.stringify(spec, null, 1);
  checkSpec();
}

function checkSpec() {
  try {
    const spec = JSON.parse($('sweep-spec').value);
    $('spec-count').textContent = `${runCount(spec)} runs`;
    $('spec-error').textContent = '';
    return spec;
  } catch (exc) {
    $('spec-count').textContent = '';
    $('spec-error').textContent = `not JSON: ${exc.message}`;
    return null;
  }
}

function choosePreset(name) {
  const preset = page.presets.find((p) => p.name === name);
  $('sweep-preset-description').textContent = preset?.description ?? '';
  if (preset) showSpec(preset.spec);
  setHashParams({ preset: name });
}

async function start() {
  const spec = checkSpec();
  if (!spec) return;
  $('sweep-start').disabled = true;
  try {
    const view = await call('POST', '/api/sweeps', spec);
    rememberToken();
    select(view.id, view);
    refreshList();
  } catch (exc) {
    if (exc.status === 401 || exc.status === 403) $('token-block').hidden = false;
    $('spec-error').textContent = exc.message;
  } finally {
    updateButtons();
  }
}

async function stop() {
  if (!page.view) return;
  try {
    await call('POST', `/api/sweeps/${page.view.id}/cancel`);
  } catch (exc) {
    $('spec-error').textContent = exc.message;
  }
}

function updateButtons() {
  const active = page.view && ACTIVE.has(page.view.status);
  $('sweep-stop').disabled = !active;
  $('sweep-start').disabled = false;
}

function applyMessage(msg) {
  const view = page.view;
  if (!view || msg.sweep_id !== view.id) return;
  if (msg.type === 'hello' || msg.type === 'finished') {
    page.view = msg.sweep;
    page.view.live = liveByIndex(msg.sweep);
  } else if (msg.type === 'live') {
    // running cells' latest step and test accuracy: the diagram fills cell by cell
    view.live = liveByIndex(view);
    for (const c of msg.cells) view.live[c.index] = c;
    page.liveMessages = (page.liveMessages ?? 0) + 1;
  } else if (msg.type === 'cell') {
    view.cells[msg.cell.index] = msg.cell;
    if (msg.cell.status !== 'running' && view.live) delete view.live[msg.cell.index];
    if (msg.cell.status === 'completed' && msg.cell.outcome) {
      view.counts[msg.cell.outcome] = (view.counts[msg.cell.outcome] ?? 0) + 1;
    }
  } else if (msg.type === 'progress') view.steps_done = msg.steps_done;
  else if (msg.type === 'status') {
    view.status = msg.status;
    view.queue_position = msg.queue_position ?? null;
  }
  if (msg.type === 'finished') refreshList();
  page.dirty = true;
}

function connect(id) {
  page.socket?.close();
  const proto = window.location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${proto}://${window.location.host}/ws/sweeps/${id}`);
  ws.onmessage = (ev) => applyMessage(JSON.parse(ev.data));
  ws.onclose = () => {
    if (page.socket !== ws) return;
    page.socket = null;
    // dropped while still active: catch up from the REST view, then listen again
    if (page.view?.id === id && ACTIVE.has(page.view.status)) {
      setTimeout(() => select(id), 1000);
    }
  };
  page.socket = ws;
}

async function select(id, view = null) {
  setHashParams({ sweep: id });
  try {
    page.view = view ?? await call('GET', `/api/sweeps/${id}`);
  } catch (exc) {
    $('phase-error').textContent = exc.message;
    return;
  }
  page.dirty = true;
  if (ACTIVE.has(page.view.status)) connect(id);
  updateButtons();
}

function render() {
  const view = page.view;
  if (!view) return;
  $('phase-error').textContent = '';
  try {
    drawPhase($('phase'), view);
  } catch (exc) {
    $('phase-error').textContent = `phase diagram failed: ${exc.message}`;
  }
  const done = view.cells.filter((c) => !ACTIVE.has(c.status)).length;
  const pct = view.steps_total ? (100 * view.steps_done) / view.steps_total : 0;
  $('sweep-status').textContent = `sweep ${view.id} · ${view.status}` +
    (view.queue_position ? ` · position ${view.queue_position} in the queue` : '') +
    ` · ${done}/${view.run_count} runs` + (view.error ? ` · ${view.error}` : '');
  $('sweep-status').className = `status-${view.status}`;
  $('progress-bar').style.width = `${Math.min(100, pct).toFixed(1)}%`;
  $('counts').innerHTML = Object.entries(OUTCOME_LABELS).map(([k, label]) =>
    `<span class="count"><i style="background:${OUTCOME_COLOURS[k]}"></i>${label}: ` +
    `${view.counts?.[k] ?? 0}</span>`).join(' ');
  $('phase-legend').innerHTML = Object.entries(OUTCOME_LABELS).map(([k, label]) =>
    `<span><i style="background:${OUTCOME_COLOURS[k]}"></i>${label}</span>`).join('') +
    '<span><i class="live"></i>running (filled to its test accuracy now)</span>' +
    '<span><i style="background:#f2f2f2;border:1px solid #ccc"></i>queued</span>' +
    '<span><i style="background:#bbbbbb"></i>cancelled</span>';
  const rows = (view.boundaries ?? []).map((b) => `<tr><td>${escapeHtml(b.group)}</td>` +
    `<td>${b.p_star === null ? 'outside the range' : b.p_star.toFixed(4)}</td>` +
    `<td>${b.p_crit.toFixed(4)}</td></tr>`).join('');
  $('boundaries').innerHTML = rows ? `<table class="evidence"><tr><th>group</th>` +
    `<th>measured p*</th><th>theory p_crit</th></tr>${rows}</table>` : '';
  $('fit').textContent = typeof view.fit_c === 'number'
    ? `fit p* = c·ln M / M: c = ${view.fit_c.toFixed(3)} (theory ${view.theory_c})` : '';
  $('csv-link').href = `/api/sweeps/${view.id}/outcomes.csv`;
  $('csv-link').hidden = false;
  page.debug.cellsDone = done;
  updateButtons();
}

async function refreshList() {
  let sweeps = [];
  try {
    sweeps = await call('GET', '/api/sweeps?limit=20');
  } catch {
    return;
  }
  $('sweep-list').innerHTML = sweeps.map((s) => `<li><a href="#sweep=${s.id}" ` +
    `data-id="${s.id}">${escapeHtml(s.name)}</a> <span class="status-${s.status}">` +
    `${s.status}</span> · ${s.run_count} runs</li>`).join('');
}

function loop() {
  if (page.dirty) {
    page.dirty = false;
    render();
  }
  requestAnimationFrame(loop);
}

async function boot() {
  Object.defineProperties(page.debug, {
    sweepId: { get: () => page.view?.id ?? null },
    status: { get: () => page.view?.status ?? null },
  });
  window.__sweeps = page.debug;
  page.presets = await call('GET', '/api/sweeps/presets');
  $('sweep-preset').innerHTML = page.presets.map((p) =>
    `<option value="${escapeHtml(p.name)}">${escapeHtml(p.name)} (${p.run_count} runs)</option>`)
    .join('');
  const params = hashParams();
  const preset = params.get('preset') ?? 'smoke';
  $('sweep-preset').value = preset;
  choosePreset(preset);
  $('sweep-preset').addEventListener('change', (e) => choosePreset(e.target.value));
  $('sweep-spec').addEventListener('input', checkSpec);
  $('sweep-start').addEventListener('click', start);
  $('sweep-stop').addEventListener('click', stop);
  // the diagram sizes its columns to the panel: redraw when the window changes width
  window.addEventListener('resize', () => { page.dirty = true; });
  $('sweep-list').addEventListener('click', (e) => {
    const id = e.target.closest('a[data-id]')?.dataset.id;
    if (id) {
      e.preventDefault();
      select(id);
    }
  });
  await refreshList();
  if (params.get('sweep')) await select(params.get('sweep'));
  updateButtons();
  requestAnimationFrame(loop);
  page.debug.ready = true;
}

boot().catch((exc) => {
  $('spec-error').textContent = `The page could not start: ${exc.message}`;
  console.error(exc);
});
