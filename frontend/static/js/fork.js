// Fork: continue the shown run from the snapshot on screen with some settings changed
// (POST /api/runs/{id}/fork). Only the fields that differ from the run's config are sent.

import { fieldLabel } from './fields.js';
import { history } from './history-api.js';
import { formatValue, parseValue } from './url-state.js';
import { el } from './html.js';

// Fields a fork may change (group and width fix the weights' shapes, so they stay).
export const FORK_FIELDS = ['lr', 'weight_decay', 'optimizer', 'loss', 'top_layer',
  'activation', 'train_fraction', 'top_init_scale', 'seed', 'steps', 'eval_every',
  'snapshot_every'];

/** The snapshot step a fork would start from: the pinned one on screen, else the latest. */
export function forkStep(state) {
  return state.scrub ? state.scrub.snapshot?.step ?? null : state.snapshot?.step ?? null;
}

function inputFor(f) {
  if (f.type === 'enum') {
    const sel = el('select');
    for (const opt of f.options) sel.add(new Option(opt, opt));
    return sel;
  }
  return el('input', { type: 'text', inputMode: 'decimal', spellcheck: false });
}

/** `info.run` is the attached run's resource (lineage.js keeps it); `openRun(id, run)`. */
export function mountFork(state, parent, info, openRun) {
  const open = el('button', { type: 'button', id: 'fork-open', textContent: 'Fork…' });
  const form = el('form', { id: 'fork-form', hidden: true, noValidate: true });
  const submit = el('button', { type: 'submit', id: 'fork-submit', className: 'primary',
    textContent: 'Start fork' });
  const cancel = el('button', { type: 'button', textContent: 'cancel' });
  const error = el('p', { className: 'field-error', id: 'fork-error', role: 'alert' });
  const hint = el('p', { className: 'hint', id: 'fork-hint' });
  const box = el('div', { className: 'control-block', id: 'block-fork' },
    el('label', { textContent: 'fork this run' }), open, form);
  parent.append(box);
  const inputs = {};
  let fields = [];
  let step = null;

  function build() {
    const byName = Object.fromEntries(state.fields.map((f) => [f.name, f]));
    fields = FORK_FIELDS.map((n) => byName[n]).filter(Boolean);
    form.replaceChildren(hint);
    for (const f of fields) {
      const input = inputFor(f);
      input.id = `fork-input-${f.name}`;
      input.name = f.name;
      inputs[f.name] = input;
      form.append(el('div', { className: 'field', id: `fork-field-${f.name}` },
        el('label', { htmlFor: input.id, textContent: f.name === 'steps' ? 'further steps'
          : fieldLabel(f) }), input,
        el('p', { className: 'field-error', id: `fork-error-${f.name}` })));
    }
    form.append(el('div', { className: 'run-buttons' }, submit, cancel), error);
  }

  function config() {
    return info.run?.id === state.run?.id ? info.run?.config : state.started?.config;
  }

  function remaining(cfg, from) {
    const end = (info.run?.parent?.step ?? 0) + cfg.steps;
    return end - from >= 1 ? end - from : cfg.steps;
  }

  function show() {
    const cfg = config();
    step = forkStep(state);
    if (!cfg || step === null) return;
    if (!fields.length) build();
    for (const f of fields) {
      inputs[f.name].value = formatValue(f, f.name === 'steps' ? remaining(cfg, step)
        : cfg[f.name]);
    }
    hint.textContent = `A new run starts from run ${state.run.id}'s weights at step ${step}. ` +
      'Change what should differ (optimizer state starts afresh).';
    clearErrors();
    form.hidden = false;
  }

  function clearErrors() {
    error.textContent = '';
    form.querySelectorAll('.field-error').forEach((p) => { p.textContent = ''; });
  }

  async function send(ev) {
    ev.preventDefault();
    const cfg = config();
    const runId = state.run?.id;
    if (!cfg || !runId || step === null) return;
    clearErrors();
    const changes = {};
    for (const f of fields) {
      const value = parseValue(f, inputs[f.name].value);
      const before = f.name === 'steps' ? remaining(cfg, step) : cfg[f.name];
      if (value !== undefined && JSON.stringify(value) !== JSON.stringify(before)) {
        changes[f.name] = value;
      }
    }
    submit.disabled = true;
    try {
      const run = await history.fork(runId, { step, changes }, new Set(FORK_FIELDS));
      form.hidden = true;
      openRun(run.id, run);
    } catch (exc) {
      const loose = [];
      for (const { field, msg } of exc.fieldErrors?.length ? exc.fieldErrors
        : [{ field: null, msg: exc.message }]) {
        const box = field && document.getElementById(`fork-error-${field}`);
        if (box) box.textContent = msg;
        else loose.push(msg);
      }
      error.textContent = loose.join('\n');
      if (exc.status === 401 || exc.status === 403) {
        document.getElementById('token-block')?.removeAttribute('hidden');
      }
    } finally {
      submit.disabled = false;
    }
  }

  open.addEventListener('click', () => (form.hidden ? show() : (form.hidden = true)));
  cancel.addEventListener('click', () => { form.hidden = true; });
  form.addEventListener('submit', send);

  return {
    update() {
      const now = forkStep(state);
      box.hidden = !state.run?.id;
      open.disabled = now === null || !config();
      open.textContent = now === null ? 'Fork… (needs a snapshot)' : `Fork from step ${now}…`;
    },
  };
}
