// G_F, the gradient reaching the hidden layer: its size, its alignment with the label signal,
// and which components it asks for over time.

import { layerName, layerPicker } from '../layers.js';
import { pinShape } from '../scrub.js';
import { VOCAB } from '../vocabulary.js';
import { componentLabels, baseLayout, plotDiv, react, thinIndices, thinnedSeries,
  toolbarDiv } from './plot.js';

const MAX_COLUMNS = 400; // heatmap time columns kept on screen

export default {
  id: 'gf',
  title: 'The hidden-layer gradient G_F',
  caption: '‖G_F‖ peaks, then settles at O(η); below, the components ' +
    'G_F pushes, step by step.',
  deps: ['metrics', 'snapshot', 'run', 'view'],
  minInterval: 300,
  mount(container, state) {
    const pickLayer = layerPicker(toolbarDiv(container), state);
    const missing = Object.assign(document.createElement('p'), { className: 'panel-meta' });
    container.append(missing);
    const div = plotDiv(container, 'plot tall');
    const scale = Object.assign(document.createElement('p'), { className: 'panel-meta gf-scale' });
    container.append(scale);
    return {
      draw() {
        // the code's mse is a mean without ½: say how far that is from the paper's G_F
        const n = state.started?.n_train;
        scale.textContent = typeof n === 'number' && state.started?.config?.loss !== 'cross_entropy'
          ? VOCAB.gf_scale.replace('{factor}', String(n / 2)) : '';
        // layer ℓ ≥ 2: the gradient reaching that layer (gf_norm@ℓ, gf_align@ℓ, gf_spectrum@ℓ)
        const layer = pickLayer();
        const hist = layer > 1 ? state.gfLayers[layer] ?? [] : state.gfHistory;
        const norm = layerName('gf_norm', layer);
        const absent = layer > 1 && !(norm in state.metrics.columns) && !hist.length;
        missing.textContent = absent && state.metrics.length
          ? `this run reports no gradient for layer ${layer}` : '';
        div.hidden = !!missing.textContent;
        if (div.hidden) return undefined;
        if (layer > 1) {
          scale.textContent = ''; // the paper's G_F formula is the bottom layer's
          if (!hist.length && state.metrics.length) {
            missing.textContent = `layer ${layer}: size and alignment only (this run reports ` +
              'no component spectrum of its gradient)';
          }
        }
        const { x, y: col } = thinnedSeries(state);
        const data = [
          { type: 'scatter', mode: 'lines', name: '‖G_F‖', x,
            y: col(norm), line: { color: '#0072B2', width: 3 } },
          { type: 'scatter', mode: 'lines', name: 'alignment', x,
            y: col(layerName('gf_align', layer)), yaxis: 'y2',
            line: { color: '#E69F00', width: 3, dash: 'dash' } },
        ];
        const hIdx = thinIndices(hist.length, MAX_COLUMNS);
        const cols = hIdx ? hIdx.map((i) => hist[i]) : hist;
        if (cols.length) {
          const c = cols[0].values.length;
          const z = Array.from({ length: c }, () => new Array(cols.length));
          cols.forEach((h, t) => {
            let sum = 0;
            for (const v of h.values) sum += v;
            for (let k = 0; k < c; k++) z[k][t] = sum > 0 ? h.values[k] / sum : 0;
          });
          data.push({ type: 'heatmap', x: cols.map((h) => h.step), y: componentLabels(state, c), z,
            xaxis: 'x', yaxis: 'y3', colorscale: 'Cividis', zmin: 0, showscale: true,
            colorbar: { title: { text: 'share' }, thickness: 14, len: 0.5, y: 0,
              yanchor: 'bottom' },
            hovertemplate: 'step %{x}<br>%{y}: %{z:.2f}<extra></extra>' });
        }
        react(div, data, baseLayout({
          margin: { l: 64, r: 64, t: 30, b: 48 },
          xaxis: { title: { text: 'step' }, anchor: cols.length ? 'y3' : 'y' },
          yaxis: { title: { text: layer > 1 ? `‖G_F‖, layer ${layer}` : '‖G_F‖' }, type: 'log',
            domain: cols.length ? [0.58, 1] : [0, 1], exponentformat: 'power', nticks: 4 },
          yaxis2: { title: { text: 'alignment' }, overlaying: 'y', side: 'right',
            range: [-0.05, 1.05], tickmode: 'linear', tick0: 0, dtick: 0.5, showgrid: false },
          ...(cols.length ? { yaxis3: { domain: [0, 0.48], type: 'category', nticks: 12,
            automargin: true } } : {}),
          legend: { orientation: 'h', x: 1, xanchor: 'right', y: 1, yanchor: 'bottom' },
          shapes: pinShape(state),
        }));
        return undefined;
      },
    };
  },
};
