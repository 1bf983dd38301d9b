// The inspector's node on a circle: its input weights u (operand a) and v (operand b) drawn
// around a circle of the group's elements, at the run's first snapshot and at the shown step.
// Radius = 1 + weight / (largest |weight| of that curve), so shape, not size, is compared: a
// node locked to frequency k of Z_M is a smooth wave with k lobes, a random one is noise.
//   Z_M: element m at angle 360°·m/M (a clock).
//   Z_m1×…×Z_mr: element g at the phase 2π Σ k_i g_i/m_i of the node's dominant component
//     (k_1, …, k_r), so its cos/sin basis functions are one smooth wave.
//   D_n: r^k on the outer ring and r^k s on the inner one, both at 360°·k/n: a 2-dim irrep
//     sends r^k to a rotation by 2πjk/n, so its features are waves on both rings.
//   Other groups have no such circle: elements go round in index order (said on the plot).

import { fetchSnapshot, history } from '../history-api.js';
import { tableLoader } from '../task-table.js';
import { baseLayout, componentLabels, react } from './plot.js';

const FACTOR = /^([ZDS])(\d+)$/;
const BEFORE = '#999999';
const NOW = { u: '#0072B2', v: '#D55E00' };

function parseSpec(spec) {
  if (typeof spec !== 'string' || spec === 'custom') return null;
  const parts = spec.split('x').map((p) => FACTOR.exec(p));
  if (parts.some((p) => !p)) return null;
  return parts.map((p) => ({ kind: p[1], n: Number(p[2]) }));
}

/** Angle (degrees) and ring (1 outer, 0 inner) of every element, and what the layout means. */
export function placement(spec, m, dominantLabel) {
  const factors = parseSpec(spec);
  const around = (f) => Array.from({ length: m }, (_, i) => 360 * f(i));
  if (factors?.length === 1 && factors[0].kind === 'Z') {
    return { angles: around((i) => i / m), rings: new Array(m).fill(1),
      note: 'elements 0…M−1 round a clock' };
  }
  if (factors?.length === 1 && factors[0].kind === 'D') {
    const n = factors[0].n;
    return { angles: around((i) => (i % n) / n), rings: Array.from({ length: m },
      (_, i) => (i < n ? 1 : 0)), note: 'outer ring r^k, inner ring r^k s, k round the clock' };
  }
  const ks = /^\(([\d,]+)\)$/.exec(dominantLabel ?? '')?.[1]?.split(',').map(Number);
  if (factors?.every((f) => f.kind === 'Z') && ks?.length === factors.length) {
    const ms = factors.map((f) => f.n);
    const phase = (i) => { // mixed radix digits, last factor fastest (li2core.groups)
      let rest = i;
      let turn = 0;
      for (let j = ms.length - 1; j >= 0; j--) {
        turn += (ks[j] * (rest % ms[j])) / ms[j];
        rest = Math.floor(rest / ms[j]);
      }
      return turn - Math.floor(turn);
    };
    return { angles: around(phase), rings: new Array(m).fill(1),
      note: `each element at its phase in component ${dominantLabel}` };
  }
  return { angles: around((i) => i / m), rings: new Array(m).fill(1),
    note: 'no circle of elements for this group: index order' };
}

function weights(snapshot, node, part) {
  const W = snapshot.arrays.W;
  const [rows, cols] = W.shape;
  const m = rows / 2;
  const off = part === 'u' ? 0 : m;
  return Array.from({ length: m }, (_, i) => W.data[(off + i) * cols + node]);
}

/** Closed loops, one per ring, for one curve; radius base + 0.4·w/max|w|. */
function loops(place, w, name, colour, dash, subplot, showlegend) {
  const scale = Math.max(1e-12, ...w.map(Math.abs));
  const traces = [];
  for (const ring of [1, 0]) {
    const idx = place.angles.map((_, i) => i).filter((i) => place.rings[i] === ring)
      .sort((i, j) => place.angles[i] - place.angles[j]);
    if (!idx.length) continue;
    idx.push(idx[0]);
    const base = ring === 1 ? 1.6 : 0.7;
    traces.push({ type: 'scatterpolar', mode: 'lines+markers', subplot, name,
      theta: idx.map((i) => place.angles[i]), r: idx.map((i) => base + 0.4 * w[i] / scale),
      line: { color: colour, width: dash ? 2 : 3, dash: dash ? 'dot' : 'solid' },
      marker: { size: 4, color: colour }, showlegend: showlegend && ring === 1,
      hoverinfo: 'skip' });
  }
  return traces;
}

/** Draws node `node` of `snap` (and of the run's first snapshot) into `div`. */
export function mountNodeCircle(div, state) {
  const first = { runId: null, snap: null, loading: false };

  function firstSnapshot() {
    const runId = state.run?.id;
    if (first.runId !== runId) Object.assign(first, { runId, snap: null, loading: false });
    if (!runId || first.snap || first.loading) return first.snap;
    first.loading = true;
    history.snapshotSteps(runId)
      .then((steps) => (steps.length ? fetchSnapshot(runId, steps[0]) : null))
      .then((snap) => { if (first.runId === runId) first.snap = snap; })
      .catch(() => {})
      .finally(() => {
        if (first.runId === runId) first.loading = false;
        state.bump('view');
      });
    return null;
  }

  return function draw(snap, node) {
    const m = snap.arrays.W.shape[0] / 2;
    const spec = state.started?.config?.group ?? state.run?.config?.group;
    const c = snap.arrays.spec_u ? snap.arrays.spec_u.shape[1] : 0;
    const dom = snap.arrays.dominant ? snap.arrays.dominant.data[node] : -1;
    const label = dom >= 0 ? componentLabels(state, c)[dom] : null;
    const place = placement(spec, m, label);
    const init = firstSnapshot();
    const names = tableLoader(state).current?.names;
    const data = [];
    for (const [part, subplot] of [['u', 'polar'], ['v', 'polar2']]) {
      if (init && init.step !== snap.step) {
        data.push(...loops(place, weights(init, node, part), `step ${init.step} (first)`,
          BEFORE, true, subplot, part === 'u'));
      }
      data.push(...loops(place, weights(snap, node, part), `step ${snap.step} (shown)`,
        NOW[part], false, subplot, part === 'u'));
    }
    const every = Math.max(1, Math.ceil(m / 12));
    const ticks = place.angles.map((a, i) => i).filter((i) => place.rings[i] === 1 &&
      i % every === 0);
    const angular = { direction: 'clockwise', rotation: 90, tickvals: ticks.map((i) =>
      place.angles[i]), ticktext: ticks.map((i) => names?.[i] ?? String(i)),
    tickfont: { size: 11 }, gridcolor: '#eee' };
    const radial = { visible: false, range: [0, 2.1] };
    react(div, data, baseLayout({
      margin: { l: 30, r: 30, t: 84, b: 30 },
      polar: { domain: { x: [0, 0.46] }, angularaxis: angular, radialaxis: radial },
      polar2: { domain: { x: [0.54, 1] }, angularaxis: angular, radialaxis: radial },
      legend: { orientation: 'h', x: 0, y: -0.02, yanchor: 'top' },
      annotations: [
        { text: place.note, x: 0.5, y: 1.3, xref: 'paper', yref: 'paper', showarrow: false,
          xanchor: 'center', font: { size: 13, color: '#555' } },
        { text: 'u (operand a)', x: 0.23, y: 1.18, xref: 'paper', yref: 'paper',
          showarrow: false, xanchor: 'center', font: { size: 14 } },
        { text: 'v (operand b)', x: 0.77, y: 1.18, xref: 'paper', yref: 'paper',
          showarrow: false, xanchor: 'center', font: { size: 14 } },
      ],
    }));
  };
}
