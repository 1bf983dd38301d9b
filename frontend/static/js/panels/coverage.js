// Coverage: how many nodes serve each component, and how concentrated the nodes are.

import { layerArrays, layerPicker } from '../layers.js';
import { shownSnapshot } from '../scrub.js';
import { componentLabels, baseLayout, note, plotDiv, react, toolbarDiv } from './plot.js';

const BINS = 20;
// Where li2core/instruments/spectra.py (CONCENTRATED) draws the line, for the histogram's
// marker only: which nodes are locked comes from the snapshot's `locked` array.
const CONCENTRATED = 0.8;

export default {
  id: 'coverage',
  title: 'Coverage of the components',
  caption: 'Grokking needs every component covered by locked nodes ' +
    '(dark bars: nodes with ≥ 80% of their power in that one component).',
  deps: ['snapshot', 'run', 'view'], // view: the layer shown
  minInterval: 250,
  mount(container, state) {
    const pickLayer = layerPicker(toolbarDiv(container), state);
    const meta = note(container, 'waiting for the first snapshot…');
    meta.className = 'panel-meta';
    const div = plotDiv(container, 'plot short');
    return {
      draw() {
        const layer = pickLayer();
        const snap = shownSnapshot(state);
        const a = layerArrays(snap?.arrays, layer);
        if (snap && layer > 1 && !(a.dominant && a.concentration)) {
          div.hidden = true;
          meta.textContent = `this run reports no coverage for layer ${layer}`;
          return undefined;
        }
        if (!a || !a.dominant || !a.concentration) return undefined;
        div.hidden = false;
        const spec = a.spec_u ?? a.spec;
        const c = spec ? spec.shape[1] : Math.max(...a.dominant.data) + 1;
        const act = a.active?.data;
        const locked = new Array(c).fill(0);
        const diffuse = new Array(c).fill(0);
        const hist = [new Array(BINS).fill(0), new Array(BINS).fill(0)]; // [active, other]
        a.dominant.data.forEach((d, j) => {
          const isActive = !act || act[j] > 0;
          const conc = a.concentration.data[j];
          const isLocked = a.locked ? a.locked.data[j] > 0 : false;
          if (isActive && d >= 0 && d < c) (isLocked ? locked : diffuse)[d] += 1;
          const bin = Math.min(BINS - 1, Math.floor(conc * BINS));
          hist[isActive ? 0 : 1][bin] += 1;
        });
        const covered = locked.filter((x) => x > 0).length;
        meta.textContent = `step ${snap.step}${layer > 1 ? ` · layer ${layer}` : ''} · ` +
          'components covered by a locked node: ' +
          `${covered} of ${c}`;
        const labels = componentLabels(state, c);
        const centres = Array.from({ length: BINS }, (_, i) => (i + 0.5) / BINS);
        react(div, [
          { type: 'bar', x: labels, y: locked, marker: { color: '#0072B2' }, name: 'locked',
            hovertemplate: '%{x}: %{y} locked nodes<extra></extra>' },
          { type: 'bar', x: labels, y: diffuse, marker: { color: '#56B4E9' }, name: 'diffuse',
            hovertemplate: '%{x}: %{y} diffuse nodes<extra></extra>' },
          { type: 'bar', x: centres, y: hist[0], xaxis: 'x2', yaxis: 'y2', name: 'active',
            marker: { color: '#009E73' }, width: 1 / BINS },
          { type: 'bar', x: centres, y: hist[1], xaxis: 'x2', yaxis: 'y2', name: 'inactive',
            marker: { color: '#999999' }, width: 1 / BINS },
        ], baseLayout({
          barmode: 'stack',
          margin: { l: 56, r: 10, t: 30, b: 64 },
          xaxis: { domain: [0, 0.58], type: 'category', tickangle: -45, nticks: 18,
            title: { text: 'component' }, automargin: true },
          yaxis: { title: { text: 'active nodes' }, rangemode: 'tozero' },
          xaxis2: { domain: [0.68, 1], range: [0, 1], anchor: 'y2',
            title: { text: 'concentration' } },
          yaxis2: { anchor: 'x2', title: { text: 'nodes' }, rangemode: 'tozero' },
          legend: { orientation: 'h', x: 1, xanchor: 'right', y: 1, yanchor: 'bottom' },
          shapes: [{ type: 'line', xref: 'x2', yref: 'y2 domain', x0: CONCENTRATED,
            x1: CONCENTRATED, y0: 0, y1: 1, line: { color: '#000', width: 2, dash: 'dash' } }],
        }));
        return undefined;
      },
    };
  },
};
