// Coverage, duplication and where each update goes, over time (li2core/instruments/duplication.py):
// the measurements behind the paper's account of why Muon helps.

import { runDepth } from '../layers.js';
import { pinShape } from '../scrub.js';
import { baseLayout, note, plotDiv, react, thinnedSeries } from './plot.js';

export default {
  id: 'duplication',
  title: 'Duplication and coverage over time',
  caption: 'Components covered, locked nodes per covered component, and the share of the ' +
    'update that goes into components other nodes already hold (the theory says Muon keeps ' +
    'it lower; what was measured: docs/optimizers.md).',
  deps: ['metrics', 'run', 'view'],
  minInterval: 300,
  mount(container, state) {
    const meta = note(container, 'waiting for instrument rows…');
    meta.className = 'panel-meta';
    const div = plotDiv(container, 'plot');
    return {
      draw() {
        const { x, y: col } = thinnedSeries(state);
        if (!x.length || !('duplication' in state.metrics.columns)) return undefined;
        const total = state.started?.group?.components?.length;
        const cov = col('coverage');
        const dup = col('duplication');
        const share = col('learned_share');
        const last = (arr) => arr.findLast((v) => v != null) ?? null;
        const fmt = (v, d) => (v == null ? '–' : v.toFixed(d));
        const where = runDepth(state) > 1 ? ' · bottom layer' : ''; // a deeper run's layer 1
        meta.textContent = `step ${x[x.length - 1]}${where} · covered ${fmt(last(cov), 0)}` +
          (total ? ` of ${total}` : '') + ` · ${fmt(last(dup), 2)} locked nodes per component` +
          ` · update into held components ${fmt(last(share), 2)}`;
        const data = [
          { type: 'scatter', mode: 'lines', name: 'covered', x, y: cov,
            line: { color: '#0072B2', width: 3 } },
          { type: 'scatter', mode: 'lines', name: 'nodes per component', x, y: dup, yaxis: 'y2',
            line: { color: '#D55E00', width: 3, dash: 'dash' } },
          { type: 'scatter', mode: 'lines', name: 'update into held components', x, y: share,
            xaxis: 'x', yaxis: 'y3', line: { color: '#009E73', width: 2 } },
        ];
        const shapes = [...pinShape(state)];
        if (total) {
          shapes.push({ type: 'line', xref: 'paper', yref: 'y', x0: 0, x1: 1, y0: total,
            y1: total, line: { color: '#0072B2', width: 1, dash: 'dot' } });
        }
        react(div, data, baseLayout({
          margin: { l: 64, r: 64, t: 30, b: 48 },
          xaxis: { title: { text: 'step' }, anchor: 'y3' },
          yaxis: { title: { text: 'covered' }, domain: [0.45, 1], rangemode: 'tozero' },
          yaxis2: { title: { text: 'nodes / comp.' }, overlaying: 'y', side: 'right',
            rangemode: 'tozero', showgrid: false, tickmode: 'auto', tickformat: '.1f' },
          yaxis3: { title: { text: 'share' }, domain: [0, 0.35], range: [0, 1.02] },
          legend: { orientation: 'h', x: 1, xanchor: 'right', y: 1, yanchor: 'bottom' },
          shapes,
        }));
        return undefined;
      },
    };
  },
};
