// The read-only watch page, /watch/<code>: the run the instructor broadcasts, live, with the
// same panels as the dashboard and no controls. The page follows the code, so when the
// instructor switches the class to another run, every viewer switches with it.

import { api } from './api.js';
import { watchSocket } from './classroom.js';
import { applyHidden, bindSettings, fitHero } from './controls.js';
import { addPngButtons } from './export.js';
import { FIELDS } from './fields.js';
import { escapeHtml } from './html.js';
import { bindNodePicking } from './node-pick.js';
import { PANELS } from './panels/registry.js';
import { mountPanels, startRenderLoop } from './render.js';
import { attachRun, lastSeq } from './session.js';
import { createState, lastValue } from './state.js';
import { readUrl } from './url-state.js';
import { applyPresentation, settingsFromQuery } from './view-flags.js';

const $ = (id) => document.getElementById(id);
// shown above the panels; each item hides with hide=<name> like a dashboard control (its id
// is field-<name>, as applyHidden expects)
const SUMMARY = ['group', 'train_fraction', 'hidden', 'optimizer', 'lr', 'weight_decay', 'loss',
  'activation', 'steps'];
let schema = {}; // the config schema: each setting's symbol and label (li2core/config.py)

const code = decodeURIComponent(window.location.pathname.split('/').filter(Boolean).pop() ?? '')
  .toUpperCase();
const state = createState();
const debug = { code };
window.__li2 = debug;

bindSettings(state);

function banner(text) {
  $('watch-banner').textContent = text;
  $('watch-banner').hidden = !text;
}

let summarySig = '';
function showSummary() {
  const cfg = state.started?.config ?? state.run?.config;
  const sig = JSON.stringify(cfg ?? null);
  if (sig === summarySig) return;
  summarySig = sig;
  const short = (name) => schema[name]?.symbol || schema[name]?.label || name;
  $('config-summary').innerHTML = cfg ? SUMMARY.filter((name) => name in cfg)
    .map((name) => `<span class="item field" id="field-${name}" data-name="${name}" ` +
      `title="${escapeHtml(schema[name]?.label ?? name)}">${escapeHtml(short(name))} ` +
      `<b>${escapeHtml(cfg[name])}</b></span>`).join('') : '';
  applyHidden(state.settings.hide);
}

function updateStatus() {
  const run = state.run;
  $('status-run').textContent = run ? `run ${run.id} · ${run.status}` : 'connecting…';
  $('status-run').className = run ? `status-${run.status}` : '';
  const step = lastValue(state, 'step');
  const total = state.started?.config?.steps;
  $('status-progress').textContent = step === undefined ? '' :
    `step ${step}${total ? ` / ${total}` : ''}`;
  showSummary();
}

function follow() {
  const socket = watchSocket(code, {
    counted: true,
    onMessage: (msg) => {
      if (msg.type === 'watch') {
        $('viewer-count').textContent = `${msg.viewers} watching`;
        debug.viewers = msg.viewers;
        if (msg.run_id !== state.run?.id) attachRun(state, msg.run_id);
        banner('');
      } else if (msg.type === 'ended') {
        socket.close();
        banner('The instructor ended this broadcast; the last run stays on screen.');
      } else if (msg.type === 'error') {
        socket.close();
        banner(msg.message);
      }
    },
    onClose: () => { debug.viewers = null; },
  });
}

function boot() {
  $('watch-code').textContent = code;
  api.schema().then((s) => { schema = s; summarySig = ''; }).catch(() => {});
  state.fields = FIELDS.filter((f) => f.scope === 'view' && f.name !== 'run' &&
    f.name !== 'preset');
  for (const f of state.fields) state.settings[f.name] = f.default;
  Object.assign(state.settings, settingsFromQuery(state.fields), readUrl(state.fields));
  applyPresentation(state.settings.present);
  const hosts = mountPanels(state, PANELS, $('panels'));
  fitHero();
  applyHidden(state.settings.hide);
  addPngButtons(state);
  Object.defineProperties(debug, {
    runId: { get: () => state.run?.id ?? null },
    status: { get: () => state.run?.status ?? null },
    lastStep: { get: () => lastValue(state, 'step') ?? -1 },
    lastSeq: { get: lastSeq },
    settings: { get: () => ({ ...state.settings }) },
  });
  follow();
  let picking = false;
  startRenderLoop(state, hosts, debug, () => {
    updateStatus();
    if (!picking) picking = bindNodePicking(state);
  });
  debug.ready = true;
}

boot();
