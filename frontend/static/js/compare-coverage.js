// The compare page's coverage overlay: coverage and duplication of each run over time, so an
// Adam run and a Muon run of the same seed can be read against each other (docs/optimizers.md).

import { OKABE_ITO, baseLayout, react } from './panels/plot.js';

/** Draws into `el`: coverage (solid) and locked nodes per component (dashed) per run. */
export function drawCoverageOverlay(el, runs, step) {
  if (!el) return;
  const data = [];
  runs.forEach(({ id, d }, i) => {
    const x = d.columns.step ?? [];
    const colour = OKABE_ITO[i % OKABE_ITO.length];
    const opt = d.run?.config?.optimizer ?? '';
    data.push({ type: 'scatter', mode: 'lines', x, y: d.columns.coverage ?? [], yaxis: 'y',
      name: `${id} ${opt} coverage`, legendgroup: id,
      line: { color: colour, width: 3 },
      hovertemplate: `${id} coverage %{y} @ %{x}<extra></extra>` });
    data.push({ type: 'scatter', mode: 'lines', x, y: d.columns.duplication ?? [], yaxis: 'y2',
      name: `${id} nodes per component`, legendgroup: id, showlegend: false,
      line: { color: colour, width: 2, dash: 'dash' },
      hovertemplate: `${id} nodes per component %{y:.2f} @ %{x}<extra></extra>` });
  });
  const shapes = step === null ? [] : [{ type: 'line', xref: 'x', yref: 'paper', x0: step,
    x1: step, y0: 0, y1: 1, line: { color: '#000', width: 2 } }];
  react(el, data, baseLayout({
    margin: { l: 64, r: 20, t: 40, b: 48 },
    xaxis: { title: { text: 'step' }, anchor: 'y2' },
    yaxis: { title: { text: 'covered' }, domain: [0.52, 1], rangemode: 'tozero' },
    yaxis2: { title: { text: 'nodes / comp.' }, domain: [0, 0.44], rangemode: 'tozero' },
    legend: { orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom' },
    shapes,
  }));
}
