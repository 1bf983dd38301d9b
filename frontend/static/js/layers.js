// Deeper networks (issue 15, docs/contracts.md): a run with depth L ≥ 2 sends layer ℓ ≥ 2's
// per-node arrays as `<name>@ℓ` beside layer 1's plain names, and its stage events carry
// `layer` (1 = the bottom). This module is the one place that knows those spellings.

import { stageInfo } from './vocabulary.js';

/** Whole-network outcomes: they close every layer's timeline, whatever layer they carry. */
const NETWORK_STAGES = new Set(['generalised', 'memorised']);

/** The attached run's number of hidden layers: its config, else the weights it sends. */
export function runDepth(state) {
  const cfg = state.started?.config ?? state.run?.config;
  if (Number.isInteger(cfg?.depth)) return cfg.depth;
  const arrays = (state.scrub?.snapshot ?? state.snapshot)?.arrays;
  let depth = 1;
  while (arrays && `W${depth + 1}` in arrays) depth += 1;
  return depth;
}

/** The layer the per-node panels show: the `layer` view setting, within the run's depth. */
export function selectedLayer(state) {
  const want = Number(state.settings.layer);
  const depth = runDepth(state);
  return Number.isInteger(want) && want >= 1 && want <= depth ? want : 1;
}

/** The snapshot name of base array `name` for `layer` (layer 1 keeps the plain name). */
export function layerName(name, layer) {
  return layer > 1 ? `${name}@${layer}` : name;
}

/** Layer `layer`'s view of a snapshot's arrays: base name → that layer's array (absent when
 *  the layer has no twin of it, so a panel never shows layer 1's data as another layer's). */
export function layerArrays(arrays, layer) {
  if (!arrays || layer <= 1) return arrays;
  const suffix = `@${layer}`;
  const out = {};
  for (const [name, arr] of Object.entries(arrays)) {
    if (name.endsWith(suffix)) out[name.slice(0, -suffix.length)] = arr;
  }
  return out;
}

/** An event's layer: old stored runs carry none and are layer 1. */
export function eventLayer(event) {
  return Number.isInteger(event.layer) ? event.layer : 1;
}

export function isNetworkStage(event) {
  return NETWORK_STAGES.has(event.stage);
}

/** Layer `layer`'s own stage events followed (in step order) by the network's outcomes, so
 *  a depth-1 run reads exactly its full timeline. */
export function stagesOf(stages, layer) {
  return stages.filter((s) => isNetworkStage(s) || eventLayer(s) === layer);
}

/** Band shapes and labels of a stage timeline between y0 and y1 (paper or axis units of
 *  `yref`): one faint rectangle per stage from its onset to the next, a dotted edge at the
 *  onset, the stage's word as a label. Colours and words come from the vocabulary. */
export function stageBands(stages, lastStep, { logX = false, y0 = 0, y1 = 1, yref = 'paper',
  labelSize = 15, labelAt = 'top', opacity = 0.18, short = true, pxPerStep = null } = {}) {
  const shapes = [];
  const annotations = [];
  stages.forEach((s, i) => {
    const info = stageInfo(s.stage);
    const x0 = logX ? Math.max(s.step, 1) : s.step;
    const x1 = i + 1 < stages.length ? stages[i + 1].step : Math.max(lastStep, s.step);
    shapes.push({ type: 'rect', xref: 'x', yref, x0, x1: Math.max(x1, x0), y0, y1,
      fillcolor: info.colour, opacity, line: { width: 0 }, layer: 'below' });
    shapes.push({ type: 'line', xref: 'x', yref, x0, x1: x0, y0, y1,
      line: { color: info.colour, width: 3, dash: 'dot' } });
    const text = short ? info.short : info.label;
    // a band too narrow for its word keeps it for the hover (pxPerStep: linear axes only)
    if (pxPerStep && (x1 - x0) * pxPerStep < text.length * labelSize * 0.62 + 6) return;
    annotations.push({ xref: 'x', yref, x: logX ? Math.log10(x0) : x0,
      y: labelAt === 'top' ? y1 : (y0 + y1) / 2,
      yanchor: labelAt === 'top' ? 'bottom' : 'middle', xanchor: 'left', showarrow: false,
      text, font: { size: labelSize, color: '#111' },
      bgcolor: info.colour });
  });
  return { shapes, annotations };
}

/** A "layer 1 | 2 | …" radio group in `toolbar` for the `layer` view setting; the returned
 *  sync() (call it on every draw) shows it only for runs with two or more hidden layers. */
export function layerPicker(toolbar, state) {
  const box = document.createElement('span');
  box.className = 'layer-pick';
  box.setAttribute('role', 'radiogroup');
  box.setAttribute('aria-label', 'layer shown');
  box.hidden = true;
  toolbar.prepend(box);
  let built = 0;
  return function sync() {
    const depth = runDepth(state);
    const layer = selectedLayer(state);
    box.hidden = depth < 2;
    if (depth < 2) return layer;
    if (built !== depth) {
      built = depth;
      box.replaceChildren('layer');
      for (let l = 1; l <= depth; l += 1) {
        const input = Object.assign(document.createElement('input'), { type: 'radio',
          value: String(l), name: `layer-${toolbar.closest('section')?.id ?? 'panel'}` });
        input.dataset.layer = String(l);
        input.addEventListener('change', () => state.setSetting('layer', l));
        const lab = document.createElement('label');
        lab.title = l === 1 ? 'the bottom layer, which sees the input' : `hidden layer ${l}`;
        lab.append(input, ` ${l}${l === 1 ? ' (bottom)' : ''}`);
        box.append(lab);
      }
    }
    for (const input of box.querySelectorAll('input')) {
      input.checked = Number(input.value) === layer;
    }
    return layer;
  };
}
