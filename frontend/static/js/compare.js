// The compare page (/compare.html#runs=a,b&step=N): curves of several runs overlaid with each
// run's stage bands, their spectrum heatmaps side by side at one shared step, and a table of
// only the settings that differ.

import { api } from './api.js';
import { drawCoverageOverlay } from './compare-coverage.js';
import { escapeHtml } from './html.js';
import { fetchSnapshot, history } from './history-api.js';
import { stagesOf } from './layers.js';
import { changeText } from './lineage.js';
import { OKABE_ITO, baseLayout, react } from './panels/plot.js';
import { nodeOrder } from './panels/spectrum.js';
import { hashParams, setHashParams } from './url-state.js';
import { outcomeInfo, stageInfo } from './vocabulary.js';

const $ = (id) => document.getElementById(id);
const FETCH_DELAY_MS = 120;
const loaded = new Map(); // run id → {run, steps, columns, stages, snapshotSteps}
const view = { runs: [], step: null, diffFields: [], spectraSteps: {} };
window.__li2 = { compare: view };

function readHash() {
  const params = hashParams();
  const runs = (params.get('runs') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const step = params.has('step') ? Number(params.get('step')) : null;
  return { runs: [...new Set(runs)], step: Number.isFinite(step) ? step : null };
}

function writeHash() {
  setHashParams({ runs: view.runs.join(','), step: view.step === null ? '' : String(view.step) });
}

const words = { presets: [], schema: {} }; // for run names and setting labels
const names = new Map(); // run id → its name on this page (settings that differ between runs)

/** Names the runs shown by what tells them apart: the settings that differ among them. */
function nameRuns(runs) {
  const differ = differingFields(runs.map(({ d }) => d.run.config));
  for (const { id, d } of runs) {
    names.set(id, runName(d.run, differ.length ? differ.slice(0, 3) : undefined));
  }
}
const nameOf = (id, run) => names.get(id) ?? runName(run);

/** A run's name for a legend: its preset when the config is one, else a short description
 *  ("Z59 · K=512 · p=0.4 · η=2e-4"), with the id's start to tell equal setups apart. */
export function runName(run, fields = ['hidden', 'train_fraction', 'weight_decay']) {
  const cfg = run?.config ?? {};
  const same = (p) => Object.entries(p.config).every(([k, v]) =>
    JSON.stringify(cfg[k] ?? null) === JSON.stringify(v ?? null));
  const preset = words.presets.find(same);
  const sym = (name) => words.schema[name]?.symbol || name;
  const short = preset ? preset.name : [cfg.group, ...fields.filter((n) => n in cfg)
    .map((n) => `${sym(n)}=${JSON.stringify(cfg[n])}`)].join(' · ');
  const fork = run?.parent ? ` · fork@${run.parent.step}` : '';
  return `${short}${fork} (${String(run?.id ?? '').slice(0, 4)})`;
}

function settingLabel(name) {
  const s = words.schema[name];
  return s ? (s.symbol ? `${s.symbol} · ${s.label}` : s.label) : name;
}

const colour = (i) => OKABE_ITO[i % OKABE_ITO.length];
const swatch = (i) => `<span class="swatch" style="background:${colour(i)}"></span>`;

async function load(id) {
  if (loaded.has(id)) return loaded.get(id);
  const [run, metrics, stages, snapshotSteps] = await Promise.all([history.run(id),
    history.metrics(id), history.stages(id), history.snapshotSteps(id)]);
  const columns = {};
  for (const row of metrics.rows) {
    for (const key of Object.keys(row)) columns[key] ??= [];
  }
  for (const row of metrics.rows) {
    for (const key of Object.keys(columns)) columns[key].push(row[key] ?? null);
  }
  // a deeper run's band row is its bottom layer's stages and outcome, like the curves' bands
  const data = { run, columns, stages: stagesOf(stages, 1), snapshotSteps,
    snapshots: new Map() };
  loaded.set(id, data);
  return data;
}

// -- the run picker ----------------------------------------------------------------------------
function fillPicker(runs) {
  const ids = new Set(runs.map((r) => r.id));
  const extra = view.runs.filter((id) => !ids.has(id)); // picked by link, older than the list
  const rows = runs.map((r) => {
    const c = r.config ?? {};
    const checked = view.runs.includes(r.id) ? ' checked' : '';
    const fork = r.parent ? `fork of ${escapeHtml(r.parent.run_id)} @ ${r.parent.step}` : '';
    return `<tr><td><input type="checkbox" value="${escapeHtml(r.id)}"${checked}></td>` +
      `<td>${escapeHtml(runName(r))}</td><td>${escapeHtml(r.status)}</td>` +
      `<td>${r.summary?.outcome ? escapeHtml(outcomeInfo(r.summary.outcome).label) : ''}</td>` +
      `<td>${escapeHtml(c.group)}</td><td>${escapeHtml(c.hidden)}</td>` +
      `<td>${escapeHtml(c.train_fraction)}</td><td>${escapeHtml(c.optimizer)}</td>` +
      `<td>${escapeHtml(c.lr)}</td><td>${escapeHtml(c.weight_decay)}</td>` +
      `<td>${escapeHtml(c.steps)}</td><td>${fork}</td></tr>`;
  });
  rows.push(...extra.map((id) => `<tr><td><input type="checkbox" value="${escapeHtml(id)}" ` +
    `checked></td><td>${escapeHtml(id)}</td><td colspan="10"></td></tr>`));
  const head = ['group', 'hidden', 'train_fraction', 'optimizer', 'lr', 'weight_decay', 'steps']
    .map((n) => `<th title="${escapeHtml(settingLabel(n))}">` +
      `${escapeHtml(words.schema[n]?.symbol || words.schema[n]?.label || n)}</th>`).join('');
  $('run-picker').innerHTML = '<tr><th></th><th>run</th><th>status</th><th>outcome</th>' +
    `${head}<th>lineage</th></tr>${rows.join('')}`;
}

// -- curves ------------------------------------------------------------------------------------
function drawCurves(runs) {
  const data = [];
  const shapes = [];
  runs.forEach(({ id, d }, i) => {
    const x = d.columns.step ?? [];
    const line = (key, yaxis, dash, name) => ({
      type: 'scatter', mode: 'lines', x, y: d.columns[key] ?? [], yaxis, name,
      legendgroup: id, showlegend: yaxis === 'y' && dash === 'solid',
      line: { color: colour(i), width: dash === 'solid' ? 3 : 2, dash },
      hovertemplate: `${id} ${key} %{y:.3g} @ %{x}<extra></extra>`,
    });
    const name = nameOf(id, d.run);
    data.push(line('test_acc', 'y', 'solid', `${name}: test solid, train dotted`),
      line('train_acc', 'y', 'dot', `${name} train`),
      line('test_loss', 'y2', 'solid', `${name} test loss`),
      line('train_loss', 'y2', 'dot', `${name} train loss`));
    const last = x.length ? x[x.length - 1] : 0;
    d.stages.forEach((s, k) => {
      const end = k + 1 < d.stages.length ? d.stages[k + 1].step : Math.max(last, s.step);
      shapes.push({ type: 'rect', xref: 'x', yref: 'y3', x0: s.step, x1: end, y0: i - 0.4,
        y1: i + 0.4, fillcolor: stageInfo(s.stage).colour, line: { width: 0 },
        name: `stage-${id}-${s.stage}` });
    });
    const parent = d.run.parent;
    if (parent && runs.some((r) => r.id === parent.run_id)) {
      shapes.push({ type: 'line', xref: 'x', yref: 'paper', x0: parent.step, x1: parent.step,
        y0: 0, y1: 1, line: { color: colour(i), width: 2, dash: 'dash' }, name: `fork-${id}` });
    }
  });
  // stage names for the strip's hover: an invisible marker per band
  runs.forEach(({ id, d }, i) => {
    data.push({ type: 'scatter', mode: 'markers', x: d.stages.map((s) => s.step),
      y: d.stages.map(() => i), yaxis: 'y3', showlegend: false, marker: { opacity: 0 },
      name: `${id} stages`,
      text: d.stages.map((s) => s.stage), hovertemplate: `${id}: %{text} from %{x}<extra></extra>` });
  });
  // a legend for the stage strip: one swatch per stage that any run reached
  const seen = [...new Set(runs.flatMap(({ d }) => d.stages.map((s) => s.stage)))];
  seen.forEach((stage, k) => data.push({ type: 'scatter', mode: 'markers', x: [null], y: [null],
    yaxis: 'y3', name: k ? stageInfo(stage).label : `stages: ${stageInfo(stage).label}`,
    legendgroup: 'stages',
    marker: { symbol: 'square', size: 14, color: stageInfo(stage).colour } }));
  if (view.step !== null) {
    shapes.push({ type: 'line', xref: 'x', yref: 'paper', x0: view.step, x1: view.step, y0: 0,
      y1: 1, line: { color: '#000', width: 2 }, name: 'shared-step' });
  }
  react($('compare-curves'), data, baseLayout({
    margin: { l: 64, r: 20, t: 40, b: 48 },
    xaxis: { title: { text: 'step', standoff: 4 }, anchor: 'y3', automargin: true },
    yaxis: { title: { text: 'accuracy', standoff: 6 }, domain: [0.55, 1], range: [-0.02, 1.02],
      automargin: true },
    // decades only: minor log labels overlap on a short axis
    yaxis2: { title: { text: 'loss', standoff: 6 }, domain: [0.22, 0.5], type: 'log',
      exponentformat: 'power', dtick: 1, automargin: true },
    yaxis3: { domain: [0, 0.16], range: [-0.6, Math.max(runs.length, 1) - 0.4],
      tickvals: runs.map((_, i) => i), ticktext: runs.map(({ id, d }) => nameOf(id, d.run)),
      autorange: false, showgrid: false, automargin: true },
    legend: { orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom' },
    shapes,
  }));
  drawCoverageOverlay($('compare-coverage'), runs, view.step);
}

// -- spectra at a shared step ------------------------------------------------------------------
function stepBounds(runs) {
  const firsts = runs.map(({ d }) => d.snapshotSteps[0]).filter((s) => s !== undefined);
  const lasts = runs.map(({ d }) => d.snapshotSteps[d.snapshotSteps.length - 1])
    .filter((s) => s !== undefined);
  if (!lasts.length) return null;
  return { min: Math.min(...firsts), max: Math.max(...lasts), common: Math.min(...lasts) };
}

let timer = null;
function scheduleSpectra(runs) {
  clearTimeout(timer);
  timer = setTimeout(() => drawSpectra(runs), FETCH_DELAY_MS);
}

async function drawSpectra(runs) {
  const box = $('compare-spectra');
  const step = view.step;
  for (const [i, { id, d }] of runs.entries()) {
    let div = box.querySelector(`[data-run="${CSS.escape(id)}"]`);
    if (!div) {
      div = document.createElement('div');
      div.dataset.run = id;
      div.className = 'plot';
      box.append(div);
    }
    div.style.order = String(i);
    const at = [...d.snapshotSteps].reverse().find((s) => s <= step);
    if (at === undefined) {
      window.Plotly.purge(div);
      div.textContent = `${id}: no snapshot at or before step ${step}`;
      view.spectraSteps[id] = null;
      continue;
    }
    let snap = d.snapshots.get(at);
    if (!snap) {
      snap = await fetchSnapshot(id, at);
      d.snapshots.set(at, snap);
      if (view.step !== step) return; // the slider moved on meanwhile
    }
    const spec = snap.arrays.spec_u;
    if (!spec) {
      div.textContent = `${id}: this run has no spectra`;
      continue;
    }
    const [, c] = spec.shape;
    const nodes = nodeOrder(snap.arrays, true);
    const z = nodes.map((j) => {
      const row = spec.data.subarray(j * c, (j + 1) * c);
      const sum = row.reduce((s, v) => s + v, 0);
      return Array.from(row, (v) => (sum > 0 ? v / sum : 0));
    });
    const comps = d.run.started?.group?.components;
    const labels = comps?.length === c ? comps.map((x) => x.label)
      : Array.from({ length: c }, (_, k) => `#${k + 1}`);
    if (!div.classList.contains('js-plotly-plot')) div.textContent = '';
    react(div, [{ type: 'heatmap', z, x: labels, y: nodes.map((_, k) => k), colorscale: 'Viridis',
      zmin: 0, zmax: 1, showscale: i === runs.length - 1, customdata: nodes.map((j) =>
        new Array(c).fill(j)), hovertemplate: 'node %{customdata}<br>%{x}: %{z:.2f}<extra></extra>' }],
    baseLayout({ margin: { l: 40, r: 10, t: 36, b: 64 },
      title: { text: `${nameOf(id, d.run)} · step ${snap.step}`, font: { color: colour(i) } },
      xaxis: { type: 'category', tickangle: -45, nticks: 16 },
      yaxis: { showticklabels: false, autorange: 'reversed' } }));
    view.spectraSteps[id] = snap.step;
  }
  for (const div of [...box.children]) {
    if (!runs.some((r) => r.id === div.dataset.run)) div.remove();
  }
}

// -- config diff -------------------------------------------------------------------------------
/** Config fields whose values are not all equal across `configs`. */
export function differingFields(configs) {
  const names = [...new Set(configs.flatMap((c) => Object.keys(c ?? {})))];
  return names.filter((n) => new Set(configs.map((c) => JSON.stringify(c?.[n] ?? null))).size > 1);
}

function drawDiff(runs) {
  const configs = runs.map(({ d }) => d.run.config);
  view.diffFields = differingFields(configs);
  const head = `<tr><th>setting</th>${runs.map(({ id, d }, i) => `<th>${swatch(i)}` +
    `${escapeHtml(nameOf(id, d.run))}</th>`).join('')}</tr>`;
  const rows = view.diffFields.map((n) => `<tr data-field="${escapeHtml(n)}"><td>` +
    `${escapeHtml(settingLabel(n))}</td>${configs.map((c) => `<td>${escapeHtml(JSON.stringify(c[n] ?? null))}` +
    '</td>').join('')}</tr>`);
  // each run's outcome in the vocabulary's words (li2core.vocabulary), differing or not
  const outcomes = '<tr class="outcome-row"><td>outcome</td>' + runs.map(({ d }) => {
    const key = d.run.summary?.outcome;
    return `<td>${key ? escapeHtml(outcomeInfo(key).label) : '—'}</td>`;
  }).join('') + '</tr>';
  const forks = runs.filter(({ d }) => d.run.parent).map(({ id, d }) => `<p>${escapeHtml(id)} ` +
    `forked from ${escapeHtml(d.run.parent.run_id)} at step ${d.run.parent.step}` +
    `${Object.keys(d.run.parent.changes ?? {}).length
      ? ` (${escapeHtml(changeText(d.run.parent.changes))})` : ''}</p>`);
  $('compare-diff').innerHTML = runs.length < 2 ? '<p class="empty-note">pick two or more runs</p>'
    : `<table class="config-diff">${head}${rows.join('')}${outcomes}</table>` +
      (rows.length ? '' : '<p class="empty-note">all settings are equal</p>') + forks.join('');
}

// -- wiring ------------------------------------------------------------------------------------
async function render() {
  $('compare-error').textContent = '';
  const runs = [];
  for (const id of view.runs) {
    try {
      runs.push({ id, d: await load(id) });
    } catch (exc) {
      $('compare-error').textContent += `run ${id}: ${exc.message}\n`;
    }
  }
  nameRuns(runs);
  drawCurves(runs);
  drawDiff(runs);
  const bounds = stepBounds(runs);
  const slider = $('compare-step');
  slider.disabled = !bounds;
  if (bounds) {
    slider.min = String(bounds.min);
    slider.max = String(bounds.max);
    if (view.step === null || view.step < bounds.min || view.step > bounds.max) {
      view.step = bounds.common;
    }
    slider.value = String(view.step);
    $('compare-step-label').textContent = String(view.step);
    drawCurves(runs);
    await drawSpectra(runs);
  } else {
    $('compare-spectra').replaceChildren();
  }
  writeHash();
  view.loadedRuns = runs.map((r) => r.id);
}

async function boot() {
  Object.assign(view, readHash());
  try {
    [words.presets, words.schema] = await Promise.all([api.presets(), api.schema()]);
  } catch {
    // without them runs are named by their settings and fields by their names
  }
  $('compare-step').addEventListener('input', () => {
    view.step = Number($('compare-step').value);
    $('compare-step-label').textContent = String(view.step);
    writeHash();
    const runs = view.runs.filter((id) => loaded.has(id)).map((id) => ({ id, d: loaded.get(id) }));
    drawCurves(runs);
    scheduleSpectra(runs);
  });
  $('run-picker').addEventListener('change', (ev) => {
    if (ev.target.type !== 'checkbox') return;
    const id = ev.target.value;
    view.runs = ev.target.checked ? [...view.runs, id] : view.runs.filter((r) => r !== id);
    render();
  });
  try {
    fillPicker(await history.runs());
  } catch (exc) {
    $('compare-error').textContent = `could not list runs: ${exc.message}`;
  }
  await render();
  window.__li2.ready = true;
}

boot();
