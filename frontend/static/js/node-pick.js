// A click on a row of the spectrum heatmap selects that hidden node for the inspector (the
// heatmap's customdata carries each row's node index, whatever the sort order). From the
// keyboard the heatmap is one tab stop: arrow keys walk its rows, each picked as it is reached.

/** Binds once the heatmap exists; call on every frame until it returns true. */
export function bindNodePicking(state) {
  const div = document.querySelector('#panel-spectrum .plot');
  if (!div || typeof div.on !== 'function') return false;
  if (div.dataset.nodePick) return true;
  div.dataset.nodePick = '1';
  div.on('plotly_click', (ev) => {
    const node = ev?.points?.[0]?.customdata;
    if (Number.isInteger(node)) {
      state.setSetting('node', node);
      document.getElementById('panel-inspector')?.scrollIntoView({ block: 'nearest' });
    }
  });
  div.tabIndex = 0;
  div.setAttribute('aria-label', 'hidden nodes: arrow keys pick a node for the inspector');
  div.addEventListener('keydown', (ev) => {
    const step = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 }[ev.key];
    const rows = (div.data?.[0]?.customdata ?? []).map((r) => r[0]);
    if (!step || !rows.length) return;
    ev.preventDefault();
    const at = rows.indexOf(state.settings.node);
    const next = rows[Math.min(rows.length - 1, Math.max(0, at < 0 ? 0 : at + step))];
    state.setSetting('node', next);
    div.setAttribute('aria-label', `node ${next} picked (row ${rows.indexOf(next) + 1} of ` +
      `${rows.length}); arrow keys pick another`);
  });
  return true;
}
