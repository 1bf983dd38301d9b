// Shared Plotly settings: projector-sized type, Okabe–Ito colours, no mode bar.

import { column } from '../state.js';

export const OKABE_ITO = ['#0072B2', '#D55E00', '#009E73', '#E69F00', '#CC79A7', '#56B4E9',
  '#F0E442', '#000000'];
export const TRAIN = '#0072B2';
export const TEST = '#D55E00';

const CONFIG = { displayModeBar: false, responsive: true };

/** Plot type follows the page's: 16 px normally, ~0.8 rem of the projector's larger type. */
export function plotFontSize() {
  const root = document.documentElement;
  if (!root.classList.contains('present')) return 16;
  return Math.round(0.9 * parseFloat(getComputedStyle(root).fontSize));
}

export function baseLayout(extra = {}) {
  return {
    // presentation mode (?present=1, view-flags.js) enlarges every plot's type
    font: { size: plotFontSize(),
      family: 'system-ui, "DejaVu Sans", sans-serif', color: '#111' },
    margin: { l: 64, r: 20, t: 10, b: 48 },
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: '#fff',
    colorway: OKABE_ITO,
    legend: { orientation: 'h', y: 1.02, yanchor: 'bottom', x: 0 },
    uirevision: 'keep', // user zoom survives live updates
    ...extra,
  };
}

export function react(el, data, layout) {
  return window.Plotly.react(el, data, layout, CONFIG);
}

/** Indices of at most `max` evenly spread points, always keeping the newest one, so long
 *  runs stay cheap to draw. */
export function thinIndices(n, max = 1500) {
  if (n <= max) return null;
  const stride = Math.ceil(n / max);
  const idx = [];
  for (let i = (n - 1) % stride; i < n; i += stride) idx.push(i);
  return idx;
}

export function pick(arr, idx) {
  return idx ? idx.map((i) => arr[i]) : arr.slice();
}

/** The metrics rows a time-series panel plots, thinned once (thinIndices): `x` the steps,
 *  `y(key)` the column `key` at the same rows. */
export function thinnedSeries(state) {
  const idx = thinIndices(state.metrics.length);
  return { x: pick(column(state, 'step'), idx), y: (key) => pick(column(state, key), idx) };
}

// a plot follows its box, not only the window: the hero's height, the projector's type and
// a phone's rotation all change the box without a window resize that Plotly would notice
const sizeWatch = window.ResizeObserver ? new ResizeObserver((entries) => {
  for (const { target } of entries) {
    // a hidden plot (a panel saying its layer has no such array) has no size to fit
    if (target.data && target.isConnected && target.offsetParent !== null) {
      window.Plotly.Plots.resize(target);
    }
  }
}) : null;

export function plotDiv(container, cls = 'plot') {
  const div = document.createElement('div');
  div.className = cls;
  container.append(div);
  sizeWatch?.observe(div);
  return div;
}

export function note(container, text) {
  const p = document.createElement('p');
  p.className = 'empty-note';
  p.textContent = text;
  p.dataset.waiting = text; // what render.js puts back when another run is attached
  container.append(p);
  return p;
}

/** A labelled checkbox or radio that edits one view setting (so it lives in the URL). */
export function toggle(toolbar, state, name, label, onChange, value) {
  const lab = document.createElement('label');
  const input = document.createElement('input');
  input.type = value === undefined ? 'checkbox' : 'radio';
  input.name = `view-${name}`;
  input.dataset.setting = name;
  if (value !== undefined) input.value = value;
  const sync = () => {
    if (value === undefined) input.checked = !!state.settings[name];
    else input.checked = state.settings[name] === value;
  };
  sync();
  input.addEventListener('change', () => {
    onChange(name, value === undefined ? input.checked : value);
  });
  lab.append(input, ' ' + label);
  toolbar.append(lab);
  return sync;
}

export function toolbarDiv(container) {
  const div = document.createElement('div');
  div.className = 'toolbar';
  container.append(div);
  return div;
}

/** Component labels from the `started` message, or 1..C when the run did not send them. */
export function componentLabels(state, c) {
  const comps = state.started?.group?.components;
  if (comps && comps.length === c) return comps.map((x) => x.label);
  return Array.from({ length: c }, (_, i) => `#${i + 1}`);
}
