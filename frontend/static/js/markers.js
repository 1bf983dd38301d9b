// Events marked on a run's step axis besides its stages, e.g. where a fork left its parent
// (lineage.js fills state.markers = [{step, label, kind}]).

const STYLE = { fork: { color: '#CC79A7', dash: 'dash' } };

/** Plotly shapes and annotations for state.markers, on x axis `xref`. */
export function markerShapes(state, logX = false, xref = 'x') {
  const shapes = [];
  const annotations = [];
  for (const m of state.markers ?? []) {
    const style = STYLE[m.kind] ?? { color: '#000', dash: 'dot' };
    const x = logX ? Math.max(m.step, 1) : m.step;
    shapes.push({ type: 'line', xref, yref: 'paper', x0: x, x1: x, y0: 0, y1: 1,
      line: { color: style.color, width: 3, dash: style.dash }, name: `marker-${m.kind}` });
    annotations.push({ xref, yref: 'paper', x: logX ? Math.log10(x) : x, y: 0.5,
      xanchor: 'left', showarrow: false, text: m.label, textangle: -90,
      font: { size: 14, color: style.color }, bgcolor: 'rgba(255,255,255,0.8)' });
  }
  return { shapes, annotations };
}
