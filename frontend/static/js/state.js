// The shared state every panel reads: the latest data of the attached run, kept small, plus
// version counters so the render loop redraws only panels whose inputs changed.

import { stagesOf } from './layers.js';

const ARRIVAL_KEEP = 512; // arrival times kept for latency measurement

export function createState() {
  const state = {
    settings: {},          // field name → value (the URL's content)
    fields: [],            // completed field table (fields.js)
    schema: {}, groups: [], presets: [],
    run: null,             // {id, status, queue_position, error, summary}
    started: null,         // the `started` message: group, p_crit, prediction, ...
    metrics: emptyMetrics(),
    snapshot: null,        // {step, seq, arrays: {name: {shape, data}}}
    gfHistory: [],         // [{step, values: Float32Array}] from every snapshot seen
    gfLayers: {},          // layer ℓ ≥ 2 → the same for `gf_spectrum@ℓ` (deeper runs)
    stages: [],            // stage events in order
    summary: null,
    scrub: null,           // {step, snapshot, error} while pinned to an earlier step (scrub.js)
    connection: { state: 'idle', retryAt: 0 },
    hellos: 0,             // hello messages received (one per (re)connection)
    versions: { metrics: 0, snapshot: 0, stages: 0, run: 0, view: 0, settings: 0 },
    epoch: 0,              // bumped when another run is attached: panels drop what they drew
    arrivals: new Map(),   // step → performance.now() when its row arrived
    produced: new Map(),   // step → Unix ms when the worker produced its row (wall_time)
    bump(kind) { this.versions[kind] += 1; },
  };
  return state;
}

export function emptyMetrics() {
  return { length: 0, columns: { step: [] } };
}

/** Clears everything that belongs to one run (a new run is about to be attached). */
export function resetRunData(state) {
  state.started = null;
  state.metrics = emptyMetrics();
  state.snapshot = null;
  state.gfHistory = [];
  state.gfLayers = {};
  state.stages = [];
  state.summary = null;
  state.scrub = null;
  state.recordedSnapshots = null; // known once the stored run's snapshot list is read
  state.arrivals.clear();
  state.produced.clear();
  state.epoch += 1;
  for (const k of Object.keys(state.versions)) state.bump(k);
}

/** Appends metric rows as columns (absent keys → null, which Plotly draws as a gap). */
export function appendRows(state, rows) {
  const m = state.metrics;
  const cols = m.columns;
  const now = performance.now();
  let added = 0;
  for (const row of rows) {
    const last = m.length ? cols.step[m.length - 1] : -Infinity;
    if (!(row.step > last)) continue; // replay after a reconnect: already have it
    for (const key of Object.keys(row)) {
      if (!(key in cols)) cols[key] = new Array(m.length).fill(null);
    }
    for (const key of Object.keys(cols)) cols[key].push(key in row ? row[key] : null);
    m.length += 1;
    added += 1;
    state.arrivals.set(row.step, now);
    if (typeof row.wall_time === 'number') state.produced.set(row.step, row.wall_time * 1000);
  }
  if (state.arrivals.size > ARRIVAL_KEEP) {
    const drop = state.arrivals.size - ARRIVAL_KEEP;
    let i = 0;
    for (const key of state.arrivals.keys()) {
      if (i++ >= drop) break;
      state.arrivals.delete(key);
      state.produced.delete(key);
    }
  }
  if (added) state.bump('metrics');
  return added;
}

/** A metric column, or an all-null column when the run does not report it. */
export function column(state, name) {
  return state.metrics.columns[name] ?? new Array(state.metrics.length).fill(null);
}

export function lastValue(state, name) {
  const col = state.metrics.columns[name];
  if (!col) return undefined;
  for (let i = col.length - 1; i >= 0; i--) if (col[i] !== null) return col[i];
  return undefined;
}

export function setSnapshot(state, snap) {
  if (state.snapshot && snap.step < state.snapshot.step) return; // stale, keep the newer one
  state.snapshot = snap;
  addGfColumn(state, snap);
  state.bump('snapshot');
}

/** Keeps G_F's spectrum of every snapshot seen, in step order (live, or backfilled): layer 1's
 *  in gfHistory, a deeper run's layer ℓ's (`gf_spectrum@ℓ`) in gfLayers[ℓ]. */
export function addGfColumn(state, snap) {
  for (const name of Object.keys(snap.arrays)) {
    const at = /^gf_spectrum(?:@(\d+))?$/.exec(name);
    if (!at) continue;
    const layer = at[1] ? Number(at[1]) : 1;
    if (layer > 1 && !state.gfLayers[layer]) state.gfLayers[layer] = [];
    insertColumn(layer > 1 ? state.gfLayers[layer] : state.gfHistory, snap.step,
      snap.arrays[name].data);
  }
}

function insertColumn(hist, step, values) {
  let i = hist.length;
  while (i > 0 && hist[i - 1].step > step) i -= 1;
  if (i > 0 && hist[i - 1].step === step) return;
  hist.splice(i, 0, { step, values });
}

export function addStage(state, event) {
  const layer = event.layer ?? 1; // a deeper run's layers may change stage at the same step
  if (state.stages.some((s) => s.step === event.step && s.stage === event.stage &&
    (s.layer ?? 1) === layer)) return;
  state.stages.push(event);
  state.stages.sort((a, b) => a.step - b.step);
  state.bump('stages');
}

/** The stage the page shows now: the last of the bottom layer's stages and the network's
 *  outcomes (a depth-1 run: its last stage). */
export function currentStage(state) {
  const shown = stagesOf(state.stages, 1);
  return shown.length ? shown[shown.length - 1] : null;
}
