// The control column: one input per field of the table (bounds from the server's schema),
// the preset and group pickers, and server errors shown next to the control that caused them.

import { api } from './api.js';
import { SECTIONS, fieldLabel } from './fields.js';
import { escapeHtml } from './html.js';
import { formatValue, parseValue, writeUrl } from './url-state.js';

const $ = (id) => document.getElementById(id);

function rangeText(b) {
  if (!b || (b.minimum === undefined && b.exclusiveMinimum === undefined)) return '';
  const lo = b.minimum ?? b.exclusiveMinimum;
  const hi = b.maximum ?? b.exclusiveMaximum;
  const l = b.minimum !== undefined ? '[' : '(';
  const r = b.maximum !== undefined ? ']' : b.exclusiveMaximum !== undefined ? ')' : '';
  return hi === undefined ? `≥ ${lo}` : `${l}${lo}, ${hi}${r}`;
}

function makeInput(f) {
  if (f.type === 'enum') {
    const sel = document.createElement('select');
    for (const opt of f.options) sel.add(new Option(opt, opt));
    return sel;
  }
  if (f.type === 'json') {
    const ta = document.createElement('textarea');
    ta.rows = 4;
    ta.placeholder = '[[0,1],[1,0]]';
    return ta;
  }
  const input = document.createElement('input');
  // text, not type=number: an out-of-bounds or malformed value must reach the server so that
  // its own message is shown; the browser would silently blank it otherwise.
  input.type = 'text';
  input.inputMode = f.type === 'string' ? 'text' : 'decimal';
  input.spellcheck = false;
  return input;
}

export function buildControls(state, onChange) {
  const form = $('config-form');
  form.replaceChildren();
  const inputs = {};
  for (const section of SECTIONS) {
    const fs = document.createElement('fieldset');
    fs.append(Object.assign(document.createElement('legend'), { textContent: section }));
    for (const f of state.fields.filter((x) => x.section === section)) {
      const wrap = document.createElement('div');
      wrap.className = 'field';
      wrap.id = `field-${f.name}`;
      const input = makeInput(f);
      input.id = `input-${f.name}`;
      input.name = f.name;
      const label = document.createElement('label');
      label.htmlFor = input.id;
      const unit = f.unit && !fieldLabel(f).includes(f.unit) ? ` (${f.unit})` : '';
      label.textContent = `${fieldLabel(f)}${unit} `;
      const range = rangeText(f.bounds);
      if (range) label.append(Object.assign(document.createElement('span'),
        { className: 'range', textContent: range }));
      if (f.hint) input.title = f.hint;
      const err = Object.assign(document.createElement('p'),
        { className: 'field-error', id: `error-${f.name}` });
      wrap.append(label, input, err);
      fs.append(wrap);
      inputs[f.name] = input;
      input.addEventListener('change', () => {
        state.settings[f.name] = parseValue(f, input.value);
        onChange(f.name);
      });
    }
    if (fs.children.length > 1) form.append(fs);
  }
  return inputs;
}

/** The RunConfig body the settings describe (POST /api/runs, the theory card's prediction). */
export function configBody(state) {
  const body = {};
  for (const f of state.fields) {
    if (f.scope !== 'config') continue;
    const v = state.settings[f.name];
    if (v === undefined || (f.name === 'group_table' && state.settings.group !== 'custom')) {
      continue;
    }
    body[f.name] = v;
  }
  return body;
}

/** Puts settings into the inputs (after a preset, a URL load, or a group pick). */
export function showSettings(state, inputs) {
  for (const f of state.fields) {
    const input = inputs[f.name];
    if (!input) continue;
    const text = formatValue(f, state.settings[f.name]);
    if (input.value !== text) input.value = text;
    if (f.showIf) input.closest('.field').hidden = !f.showIf(state.settings);
  }
}

/** URL flag hide=lr,optimizer hides those controls (and panels, by panel id). */
export function applyHidden(hide) {
  const hidden = new Set(hide ?? []);
  document.querySelectorAll('.field, .control-block, .panel').forEach((el) => {
    const name = el.id.replace(/^(field|block|panel)-/, '');
    el.style.display = hidden.has(name) ? 'none' : '';
  });
}

/** Gives `state` the setSetting panels call for a view setting (it lives in the URL hash);
 *  returns saveUrl, which writes every setting back to the hash. */
export function bindSettings(state) {
  const saveUrl = () => writeUrl(state.fields, state.settings);
  state.setSetting = (name, value) => {
    state.settings[name] = value;
    saveUrl();
    if (name === 'hide') applyHidden(value);
    state.bump('view');
  };
  return saveUrl;
}

export function clearErrors() {
  document.querySelectorAll('.field.invalid').forEach((el) => el.classList.remove('invalid'));
  document.querySelectorAll('.field-error').forEach((el) => { el.textContent = ''; });
}

/** Shows each message next to its control; messages tied to no control go under Start. */
export function showErrors(fieldErrors) {
  clearErrors();
  const loose = [];
  for (const { field, msg } of fieldErrors) {
    const box = field && $(`error-${field}`);
    if (box && box.closest('.field').style.display !== 'none') {
      box.textContent = box.textContent ? `${box.textContent}; ${msg}` : msg;
      box.closest('.field').classList.add('invalid');
    } else {
      loose.push(field ? `${field}: ${msg}` : msg);
    }
  }
  $('form-error').textContent = loose.join('\n');
}

export function fillPresets(state, onPick) {
  const sel = $('preset');
  for (const p of state.presets) sel.add(new Option(p.name, p.name));
  sel.addEventListener('change', () => onPick(sel.value));
}

/** One-click preset pills in the top bar (a radio group: arrow keys move between them). */
export function fillPresetPills(state, onPick) {
  const box = $('preset-pills');
  if (!box) return;
  for (const p of state.presets) {
    const b = Object.assign(document.createElement('button'), { type: 'button',
      textContent: p.name, title: p.description });
    b.dataset.preset = p.name;
    b.setAttribute('role', 'radio');
    b.addEventListener('click', () => onPick(p.name));
    b.addEventListener('keydown', (ev) => {
      const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[ev.key];
      if (!step) return;
      ev.preventDefault();
      const all = [...box.children];
      const next = all[(all.indexOf(b) + step + all.length) % all.length];
      next.focus();
      next.click();
    });
    box.append(b);
  }
}

export function showPreset(state) {
  const p = state.presets.find((x) => x.name === state.settings.preset);
  $('preset').value = p ? p.name : '';
  $('preset-description').textContent = p ? p.description : '';
  const pills = [...($('preset-pills')?.children ?? [])];
  for (const b of pills) {
    const on = !!p && b.dataset.preset === p.name;
    b.setAttribute('aria-checked', String(on));
    b.tabIndex = on || (!p && b === pills[0]) ? 0 : -1; // one tab stop for the group
  }
}

/** Keeps --hero (the height under the top bar) so the first view holds curves and cards. */
export function fitHero() {
  const bar = document.querySelector('.topbar');
  const set = () => {
    const used = (bar?.getBoundingClientRect().height ?? 0) +
      ($('form-error')?.getBoundingClientRect().height ?? 0) + 20;
    document.documentElement.style.setProperty('--hero',
      `${Math.max(360, window.innerHeight - used)}px`);
  };
  set();
  window.addEventListener('resize', set);
  if (bar && window.ResizeObserver) new ResizeObserver(set).observe(bar);
}

/** Copies the page's address (every setting lives in it) and says so on the button. */
export async function copyLink(button) {
  const url = window.location.href;
  let ok = false;
  try {
    await navigator.clipboard.writeText(url);
    ok = true;
  } catch {
    // no clipboard permission (plain http, an embedded page): select a text box instead
    const ta = Object.assign(document.createElement('textarea'), { value: url });
    document.body.append(ta);
    ta.select();
    ok = document.execCommand?.('copy') ?? false;
    ta.remove();
  }
  const before = button.dataset.label ?? button.textContent;
  button.dataset.label = before;
  button.textContent = ok ? 'link copied' : 'copy failed: use the address bar';
  setTimeout(() => { button.textContent = before; }, 2000);
}

export function fillGroups(state, onPick) {
  const sel = $('group-picker');
  for (const g of state.groups) {
    sel.add(new Option(`${g.spec} · order ${g.order}`, g.spec));
  }
  sel.addEventListener('change', () => { if (sel.value) onPick(sel.value); });
}

const groupCache = new Map();

/** p_crit and minimal width of the chosen group, compared with the current p and K. */
export async function showGroupFacts(state) {
  const spec = String(state.settings.group ?? '').trim();
  const box = $('group-facts');
  $('group-picker').value = state.groups.some((g) => g.spec === spec) ? spec : '';
  if (!spec || spec === 'custom') { box.textContent = ''; return; }
  let g = state.groups.find((x) => x.spec === spec || x.name === spec) ?? groupCache.get(spec);
  if (!g) {
    try {
      g = await api.group(spec);
      groupCache.set(spec, g);
    } catch (exc) {
      box.replaceChildren(Object.assign(document.createElement('span'),
        { className: 'warn', textContent: exc.message }));
      return;
    }
  }
  if (String(state.settings.group ?? '').trim() !== spec) return; // changed meanwhile
  const p = Number(state.settings.train_fraction);
  const k = Number(state.settings.hidden);
  const mark = (ok) => (ok ? '<span class="ok">✓</span>' : '<span class="warn">✗</span>');
  box.innerHTML =
    `<b>${escapeHtml(g.name)}</b>: order ${g.order}, ${g.abelian ? 'abelian' : 'non-abelian'}<br>` +
    `p<sub>crit</sub> = ${g.p_crit.toFixed(3)} · p = ${escapeHtml(p)} ${mark(p >= g.p_crit)}<br>` +
    `minimal width = ${g.min_width} · K = ${escapeHtml(k)} ${mark(k >= g.min_width)}`;
}
