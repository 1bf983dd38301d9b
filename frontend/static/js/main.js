// Bootstraps the page: settings from the URL, controls from the server's schema, panels from
// the registry, Start/Stop, and the render loop. Exposes window.__li2 for tests.

import { ApiError, api, rememberToken, tokenHeaders } from './api.js';
import { applyHidden, bindSettings, buildControls, clearErrors, configBody, copyLink, fillGroups, fillPresetPills,
  fillPresets, fitHero, showErrors, showGroupFacts, showPreset, showSettings } from './controls.js';
import { completeFields } from './fields.js';
import { PANELS } from './panels/registry.js';
import { mountPanels, startRenderLoop } from './render.js';
import { pinStep } from './scrub.js';
import { ACTIVE, attachRun, lastSeq } from './session.js';
import { createState, currentStage, lastValue } from './state.js';
import { mountRunsOverTime } from './runs-over-time.js';
import { readUrl } from './url-state.js';

const $ = (id) => document.getElementById(id);
const state = createState();
const debug = {};
let inputs = {};

function configFields() {
  return state.fields.filter((f) => f.scope === 'config');
}

const saveUrl = bindSettings(state);

function applyPreset(name) {
  const preset = state.presets.find((p) => p.name === name);
  state.settings.preset = preset ? name : '';
  if (preset) {
    for (const f of configFields()) state.settings[f.name] = preset.config[f.name] ?? f.default;
  }
  afterSettingsChange();
}

function presetStillMatches() {
  const preset = state.presets.find((p) => p.name === state.settings.preset);
  if (!preset) return false;
  return configFields().every((f) => JSON.stringify(state.settings[f.name] ?? null) ===
    JSON.stringify(preset.config[f.name] ?? f.default ?? null));
}

function afterSettingsChange() {
  if (state.settings.preset && !presetStillMatches()) state.settings.preset = '';
  showSettings(state, inputs);
  showPreset(state);
  state.bump('settings'); // the theory card's prediction follows the controls
  showGroupFacts(state);
  saveUrl();
}

async function start() {
  clearErrors();
  const body = configBody(state);
  const query = { max_steps_per_s: state.settings.max_steps_per_s };
  const known = new Set(state.fields.map((f) => f.name));
  $('start').disabled = true;
  try {
    const run = await api.start(body, query, tokenHeaders(), known);
    rememberToken();
    state.settings.run = run.id;
    state.settings.at = undefined;
    saveUrl();
    attachRun(state, run.id);
    state.run = { ...state.run, ...run };
    window.scrollTo({ top: 0 }); // the run is watched on the curves and cards up top
  } catch (exc) {
    if (exc instanceof ApiError && (exc.status === 401 || exc.status === 403)) {
      $('token-block').hidden = false;
    }
    showErrors(exc.fieldErrors?.length ? exc.fieldErrors : [{ field: null, msg: exc.message }]);
  } finally {
    updateButtons();
  }
}

async function stop() {
  if (!state.run?.id) return;
  try {
    await api.cancel(state.run.id, tokenHeaders());
  } catch (exc) {
    showErrors([{ field: null, msg: exc.message }]);
  }
}

function updateButtons() {
  const active = state.run && (ACTIVE.has(state.run.status) || state.run.status === 'connecting');
  $('start').disabled = !!active;
  $('stop').disabled = !active;
}

let statusSig = '';
function updateStatus() {
  const sig = `${state.versions.run},${state.versions.metrics},${state.versions.stages}`;
  if (sig === statusSig && state.connection.state !== 'retrying') return;
  statusSig = sig;
  const run = state.run;
  const runEl = $('status-run');
  if (!run) {
    runEl.textContent = 'no run';
  } else {
    const queued = run.status === 'queued'
      ? ` · position ${run.queue_position ?? '?'} in the queue` : '';
    // between Start and the first metrics row the worker is still loading torch
    const starting = state.metrics.length === 0 &&
      (run.status === 'running' || run.status === 'connecting');
    const shown = starting ? 'starting…' : run.status;
    runEl.textContent = `run ${run.id} · ${shown}${queued}`;
    runEl.className = `status-${starting ? 'starting' : run.status}`;
    if (run.error) runEl.textContent += ` · ${run.error}`;
  }
  const step = lastValue(state, 'step');
  // a fork counts its steps from its parent's step: it runs from..from+steps
  const from = state.run?.parent?.step ?? 0;
  const total = state.started?.config?.steps && from + state.started.config.steps;
  const rate = lastValue(state, 'steps_per_s');
  $('status-progress').textContent = step === undefined ? '' :
    `step ${step}${total ? ` / ${total}` : ''}${from ? ` (forked at ${from})` : ''}` +
    `${rate ? ` · ${rate.toFixed(0)} steps/s` : ''}`;
  const conn = state.connection;
  const connEl = $('status-conn');
  const wait = Math.max(0, (conn.retryAt - performance.now()) / 1000);
  connEl.textContent = conn.state === 'open' ? (state.metrics.length ? 'live' : '')
    : conn.state === 'retrying' ? `connection lost · retrying in ${wait.toFixed(1)} s`
      : conn.state === 'connecting' ? 'connecting…' : '';
  connEl.className = `conn${conn.state === 'retrying' ? ' bad' : ''}`;
  updateButtons();
}

function exposeDebug() {
  Object.defineProperties(debug, {
    lastSeq: { get: lastSeq },
    lastStep: { get: () => lastValue(state, 'step') ?? -1 },
    stage: { get: () => currentStage(state)?.stage ?? null },
    status: { get: () => state.run?.status ?? null },
    runId: { get: () => state.run?.id ?? null },
    connection: { get: () => state.connection.state },
    snapshotStep: { get: () => state.snapshot?.step ?? -1 },
    hellos: { get: () => state.hellos },
    stepsPerS: { get: () => lastValue(state, 'steps_per_s') ?? null },
    pinned: { get: () => (state.scrub ? { step: state.scrub.step,
      snapshotStep: state.scrub.snapshot?.step ?? null } : null) },
    settings: { get: () => ({ ...state.settings }) },
    prediction: { get: () => state.prediction ?? null },
  });
  window.__li2 = debug;
}

/** The controls take a run's own settings (a link naming only a run, an opened fork). */
function adoptRunConfig(run) {
  for (const f of configFields()) {
    if (run.config && f.name in run.config) state.settings[f.name] = run.config[f.name];
  }
  state.settings.max_steps_per_s = run.max_steps_per_s ?? undefined;
  afterSettingsChange();
}

async function fetchRun(runId) {
  try {
    return await api.run(runId);
  } catch (exc) {
    showErrors([{ field: null, msg: `run ${runId}: ${exc.message}` }]);
    return null;
  }
}

async function boot() {
  exposeDebug();
  const [schema, groups, presets] = await Promise.all([api.schema(), api.groups(),
    api.presets()]);
  Object.assign(state, { schema, groups, presets, fields: completeFields(schema) });
  for (const f of state.fields) state.settings[f.name] = f.default;
  const fromUrl = readUrl(state.fields);
  const urlHasConfig = configFields().some((f) => f.name in fromUrl);
  Object.assign(state.settings, fromUrl);
  if (!urlHasConfig && state.settings.preset) applyPreset(state.settings.preset);

  inputs = buildControls(state, (name) => {
    $(`field-${name}`)?.classList.remove('invalid');
    const err = $(`error-${name}`);
    if (err) err.textContent = '';
    afterSettingsChange();
  });
  fillPresets(state, applyPreset);
  fillPresetPills(state, applyPreset);
  fitHero();
  $('copy-link').addEventListener('click', () => copyLink($('copy-link')));
  fillGroups(state, (spec) => { state.settings.group = spec; afterSettingsChange(); });
  const hosts = mountPanels(state, PANELS, $('panels'));
  // replay, forks, inspector, exports, classroom; an opened run's settings fill the controls
  mountRunsOverTime(state, debug, async (id, run) => {
    const full = run?.config ? run : await fetchRun(id);
    if (full && state.run?.id === id) {
      adoptRunConfig(full);
      state.run = { ...state.run, parent: full.parent ?? null, sweep: full.sweep ?? null };
    }
  });
  applyHidden(state.settings.hide);
  afterSettingsChange();
  $('start').addEventListener('click', start);
  $('stop').addEventListener('click', stop);
  if (state.settings.run) {
    const run = await fetchRun(state.settings.run);
    if (run && !urlHasConfig) adoptRunConfig(run);
    attachRun(state, state.settings.run);
    if (run) state.run = { ...state.run, parent: run.parent ?? null, sweep: run.sweep ?? null };
    if (Number.isFinite(state.settings.at)) pinStep(state, state.settings.at);
  }
  startRenderLoop(state, hosts, debug, updateStatus);
  debug.ready = true;
}

boot().catch((exc) => {
  $('form-error').textContent = `The page could not start: ${exc.message}`;
  console.error(exc);
});
