// Per-node energy ℰ(w) = ½‖Ỹᵀσ(Xw)‖², normalised so a learned irrep scores 1 (= ℰ*).

import { layerArrays, layerName, layerPicker } from '../layers.js';
import { pinShape, shownSnapshot } from '../scrub.js';
import { baseLayout, plotDiv, react, thinnedSeries, toolbarDiv } from './plot.js';

export default {
  id: 'energy',
  title: 'Energy of each node',
  caption: 'Energy / ℰ*: learned nodes sit at 1; memorising ones (×) ' +
    'score high on train rows only.',
  deps: ['metrics', 'snapshot', 'run', 'view'],
  minInterval: 300,
  mount(container, state) {
    const pickLayer = layerPicker(toolbarDiv(container), state);
    const missing = Object.assign(document.createElement('p'), { className: 'panel-meta' });
    container.append(missing);
    const div = plotDiv(container, 'plot tall');
    return {
      draw() {
        const layer = pickLayer();
        const a = layerArrays(shownSnapshot(state)?.arrays, layer);
        // ℰ is the theory's for the bottom layer; a layer above shows it only if the run sends it
        const absent = layer > 1 && !(layerName('energy_q50', layer) in state.metrics.columns) &&
          !a?.energy_full;
        missing.textContent = absent ? `this run reports no energy for layer ${layer}: ` +
          'the energy ℰ is defined for the bottom layer (pick layer 1)' : '';
        div.hidden = absent;
        if (absent) return undefined;
        const { x, y: col } = thinnedSeries(state);
        const q = (name) => col(layerName(name, layer));
        const data = [
          { type: 'scatter', mode: 'lines', x, y: q('energy_q10'), name: '10–90%',
            line: { width: 0 }, showlegend: false, hoverinfo: 'skip' },
          { type: 'scatter', mode: 'lines', x, y: q('energy_q90'), name: '10–90% of nodes',
            fill: 'tonexty', fillcolor: 'rgba(0,114,178,0.25)', line: { width: 0 } },
          { type: 'scatter', mode: 'lines', x, y: q('energy_q50'), name: 'median',
            line: { color: '#0072B2', width: 3 } },
          { type: 'scatter', mode: 'lines', x, y: q('memorising_nodes'), name: 'memorising',
            yaxis: 'y2', line: { color: '#D55E00', width: 2, dash: 'dot' } },
        ];
        if (a?.energy_train && a?.energy_full) {
          const et = a.energy_train.data;
          const ef = a.energy_full.data;
          const act = a.active?.data;
          const groups = { ok: [[], []], mem: [[], []] };
          et.forEach((t, j) => {
            if (act && !(act[j] > 0)) return;
            // the snapshot's verdict (li2core/instruments/energy.py), not a copy of the rule
            const g = a.memorising && a.memorising.data[j] > 0 ? 'mem' : 'ok';
            groups[g][0].push(ef[j]);
            groups[g][1].push(t);
          });
          data.push(
            { type: 'scatter', mode: 'markers',
              x: groups.ok[0], y: groups.ok[1], xaxis: 'x3', yaxis: 'y3', name: 'active nodes',
              marker: { color: '#009E73', size: 6, opacity: 0.6 } },
            { type: 'scatter', mode: 'markers', x: groups.mem[0], y: groups.mem[1],
              xaxis: 'x3', yaxis: 'y3', name: 'memorising',
              marker: { color: '#E69F00', size: 9, symbol: 'x' }, showlegend: false });
        }
        const estar = (xref, yref) => ({ type: 'line', xref, yref, x0: 0, x1: 1, y0: 1, y1: 1,
          line: { color: '#000', width: 2, dash: 'dash' } });
        react(div, data, baseLayout({
          margin: { l: 60, r: 56, t: 30, b: 48 },
          xaxis: { domain: [0, 0.5], title: { text: 'step' } },
          yaxis: { title: { text: 'energy / ℰ*' }, rangemode: 'tozero' },
          yaxis2: { overlaying: 'y', side: 'right', title: { text: 'memorising nodes' },
            rangemode: 'tozero', showgrid: false, tickmode: 'auto', nticks: 5 },
          xaxis3: { domain: [0.76, 1], anchor: 'y3', title: { text: 'full-table energy' },
            rangemode: 'tozero' },
          yaxis3: { anchor: 'x3', title: { text: 'train energy' }, rangemode: 'tozero' },
          shapes: [...pinShape(state), estar('x domain', 'y'), estar('x3 domain', 'y3'),
            { type: 'line', xref: 'x3', yref: 'y3', x0: 0, y0: 0, x1: 1, y1: 1,
              line: { color: '#999', width: 1 } }],
          annotations: [{ xref: 'x domain', yref: 'y', x: 0, y: 1, text: 'ℰ*',
            showarrow: false, xanchor: 'left', yanchor: 'bottom' }],
          legend: { orientation: 'h', x: 0, y: 1, yanchor: 'bottom' },
        }));
        return undefined;
      },
    };
  },
};
