// Where the attached run came from and what came of it: its parent and fork step (marked on
// the curves), its forks, an import's origin, and a link comparing them.

import { escapeHtml } from './html.js';
import { history } from './history-api.js';
import { TERMINAL } from './session.js';
import { outcomeInfo } from './vocabulary.js';

const enc = encodeURIComponent;

function fmt(v) {
  if (typeof v === 'number' && !Number.isInteger(v)) return String(Number(v.toPrecision(4)));
  return String(v);
}

/** "lr 0.005 → 0.01, weight_decay 0 → 0.001" */
export function changeText(changes) {
  return Object.entries(changes ?? {})
    .map(([k, c]) => `${k} ${fmt(c.from)} → ${fmt(c.to)}`).join(', ');
}

/** The fork marker for the curves (markers.js): where a fork left its parent. */
function forkMarkers(run) {
  if (!run?.parent) return [];
  const what = changeText(run.parent.changes);
  return [{ step: run.parent.step, label: what ? `fork: ${what}` : 'fork', kind: 'fork' }];
}

function runLink(id, cls = 'run-link') {
  return `<a href="/#run=${enc(id)}" class="${cls}" data-run="${escapeHtml(id)}">` +
    `${escapeHtml(id)}</a>`;
}

/** `info.run` receives the run resource; `openRun(id)` attaches another run. */
export function mountLineage(state, parent, info, openRun) {
  const box = document.createElement('div');
  box.className = 'control-block lineage';
  box.id = 'block-lineage';
  parent.append(box);
  box.addEventListener('click', (ev) => {
    const a = ev.target.closest('a.run-link');
    if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey) return; // new tab: follow the href
    ev.preventDefault();
    openRun(a.dataset.run);
  });
  let sig = '';
  let pending = null;

  function render(run) {
    const outcome = run.summary?.outcome ? ` · ${escapeHtml(outcomeInfo(run.summary.outcome).label)}`
      : '';
    const lines = [`<b>run ${escapeHtml(run.id)}</b> · ${escapeHtml(run.status)}${outcome}`];
    const related = [run.id];
    if (run.parent) {
      lines.push(`<span id="lineage-parent">forked from ${runLink(run.parent.run_id)} at step ` +
        `${run.parent.step}${run.parent.changes && Object.keys(run.parent.changes).length
          ? ` · ${escapeHtml(changeText(run.parent.changes))}` : ''}</span>`);
      related.unshift(run.parent.run_id);
    }
    if (run.children?.length) {
      lines.push(`<span id="lineage-children">forks: ${run.children.map((c) => runLink(c))
        .join(', ')}</span>`);
      related.push(...run.children);
    }
    if (run.imported_from) {
      lines.push(`<span id="lineage-imported">imported (was run ` +
        `${escapeHtml(run.imported_from.run_id)} elsewhere)</span>`);
    }
    lines.push(`<a id="compare-link" href="/compare.html#runs=${related.map(enc).join(',')}">` +
      `${related.length > 1 ? 'compare these runs' : 'compare with other runs'}</a>`);
    box.innerHTML = lines.map((l) => `<p class="lineage-line">${l}</p>`).join('');
  }

  async function refresh(id) {
    try {
      const run = await history.run(id);
      if (state.run?.id !== id) return;
      info.run = run;
      render(run);
      state.markers = forkMarkers(run);
      state.bump('stages'); // the curves draw the markers with the stage bands
    } catch (exc) {
      if (state.run?.id === id) box.textContent = `run ${id}: ${exc.message}`;
    }
  }

  return {
    update() {
      const id = state.run?.id ?? null;
      // refetch when the run changes and once it ends (a fork made meanwhile shows up)
      const now = `${id}:${TERMINAL.has(state.run?.status)}`;
      box.hidden = !id;
      if (now === sig) return;
      sig = now;
      if (info.run?.id !== id) {
        info.run = null;
        state.markers = [];
        box.textContent = '';
      }
      if (id) {
        clearTimeout(pending);
        pending = setTimeout(() => refresh(id), 50);
      }
    },
    refresh: () => state.run?.id && refresh(state.run.id),
  };
}
