// A click on a row of the spectrum heatmap selects that hidden node for the inspector (the
// heatmap's customdata carries each row's node index, whatever the sort order).

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
  return true;
}
