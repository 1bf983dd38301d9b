// Per-node spectrum heatmap: hidden nodes × components, each row the share of a node's power
// in each component. Learned nodes show one bright cell; random ones a smear.

import { layerArrays, layerPicker } from '../layers.js';
import { shownSnapshot } from '../scrub.js';
import { componentLabels, baseLayout, note, plotDiv, react, toggle, toolbarDiv } from './plot.js';

/** Row order: active nodes only (if asked and known), by dominant component, then most
 *  concentrated first, so nodes that learned the same component sit together. */
export function nodeOrder(arrays, activeOnly) {
  const dom = arrays.dominant?.data;
  const conc = arrays.concentration?.data;
  const act = arrays.active?.data;
  const k = (arrays.spec_u ?? arrays.spec).shape[0];
  let nodes = Array.from({ length: k }, (_, i) => i);
  if (activeOnly && act && act.some((a) => a > 0)) nodes = nodes.filter((i) => act[i] > 0);
  nodes.sort((a, b) => (dom ? dom[a] - dom[b] : 0) || (conc ? conc[b] - conc[a] : 0) || a - b);
  return nodes;
}

export default {
  id: 'spectrum',
  title: 'What each node has learned',
  caption: 'One row per hidden node: a single bright cell means the ' +
    'node locked onto one component.',
  deps: ['snapshot', 'view', 'run'],
  minInterval: 250,
  mount(container, state) {
    const bar = toolbarDiv(container);
    const rows = document.createElement('span'); // layer 1's own choice of weights
    rows.className = 'toolbar-group';
    bar.append(rows);
    for (const [value, label] of [['u', 'u (operand a)'], ['v', 'v (operand b)'],
      ['V', 'V rows (output)']]) {
      toggle(rows, state, 'spec_rows', label, state.setSetting, value);
    }
    toggle(bar, state, 'active_only', 'active nodes only', state.setSetting);
    const pickLayer = layerPicker(bar, state);
    const meta = note(container, 'waiting for the first snapshot…');
    meta.className = 'panel-meta';
    const div = plotDiv(container, 'plot tall');
    return {
      draw() {
        const layer = pickLayer();
        rows.hidden = layer > 1; // a layer above sees nodes, not operands: one spectrum each
        const snap = shownSnapshot(state);
        const arrays = layerArrays(snap?.arrays, layer);
        const base = layer > 1 ? arrays?.spec : arrays?.spec_u;
        if (!snap || !base) {
          div.hidden = !!snap;
          meta.textContent = !snap ? 'waiting for the first snapshot…'
            : layer > 1 ? `this run reports no spectra for layer ${layer}`
              : 'this run reports no spectra';
          return undefined;
        }
        div.hidden = false;
        const which = layer > 1 ? 'spec' : `spec_${state.settings.spec_rows ?? 'u'}`;
        const spec = arrays[which] ?? base;
        const [k, c] = spec.shape;
        const nodes = nodeOrder(arrays, state.settings.active_only);
        const z = nodes.map((j) => {
          const row = spec.data.subarray(j * c, (j + 1) * c);
          let sum = 0;
          for (const v of row) sum += v;
          return Array.from(row, (v) => (sum > 0 ? v / sum : 0));
        });
        meta.textContent = `step ${snap.step} · ${nodes.length} of ${k} nodes shown · ` +
          (layer > 1 ? `layer ${layer}: spectra of each node's response to the input pair`
            : `${which.replace('spec_', '')} spectra`);
        react(div, [{
          type: 'heatmap', z, x: componentLabels(state, c), y: nodes.map((_, i) => i),
          customdata: nodes.map((j) => new Array(c).fill(j)),
          colorscale: 'Viridis', zmin: 0, zmax: 1,
          colorbar: { title: { text: 'share', side: 'right' }, thickness: 14 },
          hovertemplate: 'node %{customdata}<br>%{x}: %{z:.2f}<extra></extra>',
        }], baseLayout({
          margin: { l: 64, r: 10, t: 10, b: 64 },
          xaxis: { title: { text: 'component' }, type: 'category', tickangle: -45,
            nticks: 24, automargin: true },
          yaxis: { title: { text: 'nodes (sorted by dominant component)' },
            showticklabels: false, autorange: 'reversed' },
        }));
        return undefined;
      },
    };
  },
};
