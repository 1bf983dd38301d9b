// One hidden node up close: its input weights u (operand a) and v (operand b) and its output
// weights V as curves over the group elements, their component spectra, and its energy over
// the run. Pick the node by clicking its row in the spectrum heatmap (node-pick.js).

import { history } from '../history-api.js';
import { layerArrays, layerPicker } from '../layers.js';
import { shownSnapshot } from '../scrub.js';
import { mountNodeCircle } from './node-circle.js';
import { baseLayout, componentLabels, note, plotDiv, react, toolbarDiv } from './plot.js';

const SERIES = ['energy_full', 'energy_train'];
const REFRESH_MS = 2000; // a live run's energy series is refetched at most this often

/** The inspected node from the URL setting, or null. */
export function selectedNode(state) {
  const n = Number(state.settings.node);
  return state.settings.node !== '' && state.settings.node != null && Number.isInteger(n) &&
    n >= 0 ? n : null;
}

function column(arr, j) {
  const [rows, cols] = arr.shape;
  return Array.from({ length: rows }, (_, i) => arr.data[i * cols + j]);
}

function row(arr, j) {
  const cols = arr.shape[1];
  return Array.from(arr.data.subarray(j * cols, (j + 1) * cols));
}

/** A node of layer ℓ ≥ 2: its weights from the nodes of the layer below (W_ℓ's column) and
 *  the spectrum of its response to the input pair; node curves over the group elements and
 *  the energy belong to the bottom layer, which sees the input. */
function drawUpperNode(div, meta, state, snap, node, layer) {
  const a = layerArrays(snap.arrays, layer);
  const w = snap.arrays[`W${layer}`];
  const k = w?.shape[1] ?? a.spec?.shape[0];
  if (!w && !a.spec) {
    meta.textContent = `this run reports no arrays for layer ${layer}`;
    return false;
  }
  if (node >= k) {
    meta.textContent = `node ${node} does not exist: layer ${layer} has ${k} nodes`;
    return false;
  }
  const c = a.spec ? a.spec.shape[1] : 0;
  const labels = componentLabels(state, c);
  const dominant = a.dominant ? a.dominant.data[node] : null;
  meta.textContent = `layer ${layer} node ${node} at step ${snap.step}` +
    (dominant !== null && dominant >= 0 ? ` · dominant component ${labels[dominant]}` : '') +
    (a.concentration ? ` · concentration ${a.concentration.data[node].toFixed(2)}` : '') +
    (a.active ? (a.active.data[node] > 0 ? ' · active' : ' · inactive') : '') +
    ' · weights over the group and the energy: bottom layer only';
  const data = [];
  if (w) {
    data.push({ type: 'bar', name: `weights from layer ${layer - 1}`, y: column(w, node),
      x: Array.from({ length: w.shape[0] }, (_, i) => i), marker: { color: '#0072B2' } });
  }
  if (a.spec) {
    const power = row(a.spec, node);
    const total = power.reduce((acc, v) => acc + v, 0);
    data.push({ type: 'bar', name: 'response spectrum', x: labels, xaxis: 'x2', yaxis: 'y2',
      y: power.map((v) => (total > 0 ? v / total : 0)), marker: { color: '#009E73' } });
  }
  react(div, data, baseLayout({
    margin: { l: 60, r: 16, t: 30, b: 40 },
    xaxis: { anchor: 'y', title: { text: `node of layer ${layer - 1}`, standoff: 4 } },
    yaxis: { domain: [0.6, 1], title: { text: 'weight' } },
    xaxis2: { anchor: 'y2', type: 'category', tickangle: -45, nticks: 18, automargin: true },
    yaxis2: { domain: [0, 0.4], title: { text: 'share' }, range: [0, 1] },
    legend: { orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom' },
  }));
  return true;
}

export default {
  id: 'inspector',
  title: 'Node inspector',
  caption: 'Click a row of the spectrum heatmap: that node\'s weights over the group, their ' +
    'spectra, and its energy over the run (1 = a learned component, ℰ*).',
  deps: ['snapshot', 'view', 'run'],
  minInterval: 250,
  mount(container, state) {
    const pickLayer = layerPicker(toolbarDiv(container), state);
    const meta = note(container, 'click a node in the spectrum heatmap to inspect it');
    meta.className = 'panel-meta';
    meta.id = 'inspector-meta';
    const div = plotDiv(container, 'plot inspector');
    const circle = plotDiv(container, 'plot node-circle'); // u, v round a circle of elements
    const drawCircle = mountNodeCircle(circle, state);
    const series = { key: '', fetchedAt: -Infinity, data: null, loading: false };

    function wantSeries(runId, node, snapStep) {
      const key = `${runId}:${node}`;
      const stale = series.key !== key ||
        (state.run?.status === 'running' && performance.now() - series.fetchedAt > REFRESH_MS &&
          (series.data?.lastStep ?? -1) < snapStep);
      if (!stale || series.loading) return;
      series.loading = true;
      series.key = key;
      Promise.all(SERIES.map((name) => history.series(runId, name, node)))
        .then((answers) => {
          if (series.key !== key) return;
          const steps = answers[0].steps;
          series.data = { steps, lastStep: steps[steps.length - 1] ?? -1,
            values: Object.fromEntries(SERIES.map((n, i) => [n, answers[i].values])) };
        })
        .catch(() => { if (series.key === key) series.data = null; })
        .finally(() => {
          series.loading = false;
          series.fetchedAt = performance.now();
          state.bump('view'); // redraw with what arrived
        });
    }

    return {
      draw() {
        const layer = pickLayer();
        const node = selectedNode(state);
        const snap = shownSnapshot(state);
        div.hidden = node === null || !snap;
        circle.hidden = div.hidden;
        if (node === null) {
          meta.textContent = 'click a node in the spectrum heatmap to inspect it';
          return undefined;
        }
        if (!snap) {
          meta.textContent = `node ${node}: waiting for a snapshot…`;
          return undefined;
        }
        if (layer > 1) {
          circle.hidden = true;
          div.hidden = !drawUpperNode(div, meta, state, snap, node, layer);
          return undefined;
        }
        const a = snap.arrays;
        const k = a.W.shape[1];
        if (node >= k) {
          meta.textContent = `node ${node} does not exist: this run has ${k} nodes`;
          div.hidden = true;
          circle.hidden = true;
          return undefined;
        }
        wantSeries(state.run?.id, node, snap.step);
        const m = a.V.shape[1];
        const w = column(a.W, node);
        const elements = Array.from({ length: m }, (_, i) => i);
        const dominant = a.dominant ? a.dominant.data[node] : null;
        const c = a.spec_u ? a.spec_u.shape[1] : 0;
        const labels = componentLabels(state, c);
        meta.textContent = `node ${node} at step ${snap.step}` +
          (dominant !== null && dominant >= 0 ? ` · dominant component ${labels[dominant]}` : '') +
          (a.concentration ? ` · concentration ${a.concentration.data[node].toFixed(2)}` : '') +
          (a.active ? (a.active.data[node] > 0 ? ' · active' : ' · inactive') : '');
        const data = [
          { type: 'scatter', mode: 'lines+markers', name: 'u (a)', x: elements, y: w.slice(0, m),
            line: { color: '#0072B2', width: 3 } },
          { type: 'scatter', mode: 'lines+markers', name: 'v (b)', x: elements, y: w.slice(m),
            line: { color: '#D55E00', width: 3, dash: 'dash' } },
          { type: 'scatter', mode: 'lines+markers', name: 'V row', x: elements, y: row(a.V, node),
            line: { color: '#009E73', width: 3, dash: 'dot' } },
        ];
        for (const [name, colour] of [['spec_u', '#0072B2'], ['spec_v', '#D55E00'],
          ['spec_V', '#009E73']]) {
          if (!a[name]) continue;
          const power = row(a[name], node);
          const total = power.reduce((s, v) => s + v, 0);
          data.push({ type: 'bar', name: name.replace('spec_', '') + ' spectrum', x: labels,
            y: power.map((v) => (total > 0 ? v / total : 0)), xaxis: 'x2', yaxis: 'y2',
            marker: { color: colour }, showlegend: false });
        }
        const sd = series.key === `${state.run?.id}:${node}` ? series.data : null;
        if (sd) {
          data.push(
            { type: 'scatter', mode: 'lines', name: 'energy, full table', x: sd.steps,
              y: sd.values.energy_full, xaxis: 'x3', yaxis: 'y3',
              line: { color: '#000', width: 3 } },
            { type: 'scatter', mode: 'lines', name: 'energy, train rows', x: sd.steps,
              y: sd.values.energy_train, xaxis: 'x3', yaxis: 'y3',
              line: { color: '#E69F00', width: 2, dash: 'dash' } });
        }
        react(div, data, baseLayout({
          margin: { l: 60, r: 16, t: 30, b: 40 },
          barmode: 'group',
          xaxis: { anchor: 'y', title: { text: 'group element', standoff: 4 } },
          yaxis: { domain: [0.76, 1], title: { text: 'weight' } },
          xaxis2: { anchor: 'y2', type: 'category', tickangle: -45, nticks: 18 },
          yaxis2: { domain: [0.4, 0.58], title: { text: 'share' }, range: [0, 1] },
          xaxis3: { anchor: 'y3', title: { text: 'step' } },
          yaxis3: { domain: [0, 0.26], title: { text: 'energy / ℰ*' }, rangemode: 'tozero' },
          shapes: [{ type: 'line', xref: 'x3', yref: 'y3 domain', x0: snap.step, x1: snap.step,
            y0: 0, y1: 1, line: { color: '#000', width: 2 } }],
          legend: { orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom' },
        }));
        drawCircle(snap, node);
        return undefined;
      },
    };
  },
};
