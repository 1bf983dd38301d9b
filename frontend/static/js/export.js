// Exports: every plotted panel as a PNG, the run's metrics as CSV / JSON, the whole run as a
// bundle (zip) — and importing such a bundle from another installation.

import { history } from './history-api.js';
import { pinnedStep } from './scrub.js';
import { TERMINAL } from './session.js';
import { el } from './html.js';

const enc = encodeURIComponent;

/** File name stem for a panel image: run, panel and (if pinned) the step. */
function imageName(state, panelId) {
  const step = state ? pinnedStep(state) : null;
  return ['li2', state?.run?.id ?? 'no-run', panelId, step === null ? null : `step${step}`]
    .filter(Boolean).join('-');
}

/** A "PNG" button in the header of every panel that has a plot; call again for new panels. */
export function addPngButtons(state, root = document) {
  for (const section of root.querySelectorAll('.panel')) {
    const div = section.querySelector('.plot');
    const h2 = section.querySelector('h2');
    if (!div || !h2 || h2.querySelector('.png-button')) continue;
    const id = section.id.replace(/^panel-/, '');
    const title = h2.firstChild?.textContent?.trim() || id;
    const button = el('button', { type: 'button', className: 'png-button',
      textContent: 'PNG', title: `download “${title}” as a PNG image` });
    button.setAttribute('aria-label', `download ${title} as PNG`);
    button.dataset.panel = id;
    button.addEventListener('click', () => {
      if (!div._fullLayout) return; // nothing drawn yet
      window.Plotly.downloadImage(div, { format: 'png', filename: imageName(state, id),
        width: div.clientWidth, height: div.clientHeight, scale: 2 });
    });
    h2.append(' ', button);
  }
}

/** Download links for the attached run; `update()` on each frame keeps them current. */
export function mountExportLinks(state, parent) {
  const link = (id, text, title) => el('a', { id, textContent: text, title });
  const csv = link('export-csv', 'metrics CSV', 'every metrics row as a table');
  const json = link('export-json', 'metrics JSON', 'rows, columns and stage changes');
  const bundle = link('export-bundle', 'run bundle',
    'config, metrics, snapshots and stages as one zip, to import elsewhere');
  const box = el('p', { className: 'control-block export-links', id: 'block-export' },
    'download: ', csv, ' · ', json, ' · ', bundle);
  parent.append(box);
  let shown = '';
  return {
    update() {
      const id = state.run?.id;
      const ended = !!id && TERMINAL.has(state.run.status);
      const sig = `${id}:${ended}`;
      if (sig === shown) return;
      shown = sig;
      box.hidden = !id;
      if (!id) return;
      csv.href = `/api/runs/${enc(id)}/metrics.csv`;
      json.href = `/api/runs/${enc(id)}/metrics.json`;
      for (const a of [csv, json]) a.download = '';
      bundle.toggleAttribute('href', ended);
      if (ended) {
        bundle.href = `/api/runs/${enc(id)}/bundle`;
        bundle.download = '';
      }
      bundle.title = ended ? 'config, metrics, snapshots and stages as one zip'
        : 'a run can be bundled once it has ended';
    },
  };
}

/** The import control: a bundle file goes to POST /api/bundles; the new run opens. */
export function mountImport(parent, openRun) {
  const input = el('input', { type: 'file', id: 'import-bundle', accept: '.zip,application/zip' });
  const message = el('p', { className: 'hint', id: 'import-message' });
  const box = el('div', { className: 'control-block', id: 'block-import' },
    el('label', { htmlFor: 'import-bundle', textContent: 'import a run bundle' }), input,
    message);
  parent.append(box);
  input.addEventListener('change', async () => {
    const file = input.files?.[0];
    if (!file) return;
    message.className = 'hint';
    message.textContent = `importing ${file.name}…`;
    try {
      const run = await history.importBundle(file);
      message.textContent = `imported as run ${run.id}`;
      openRun(run.id, run);
    } catch (exc) {
      message.className = 'field-error';
      message.textContent = `not imported: ${exc.message}`;
      if (exc.status === 401 || exc.status === 403) {
        document.getElementById('token-block')?.removeAttribute('hidden');
      }
    } finally {
      input.value = '';
    }
  });
}
