// The current stage in plain words, what the theory says happens in it, and the detector's
// evidence for the change (rule, indicators against thresholds).

import { pinnedStep } from '../scrub.js';
import { currentStage } from '../state.js';
import { stageInfo } from '../stages.js';

function fmt(v) {
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? v.toPrecision(3) : v.toExponential(2);
}

/** Indicators as a table; a threshold sits next to the indicator of the same name, the
 *  others are listed below it (the detector names them after the rule they serve). */
function evidenceBlock(evidence) {
  const ind = evidence?.indicators ?? {};
  const thr = evidence?.thresholds ?? {};
  const parts = [];
  const names = Object.keys(ind);
  if (names.length) {
    const paired = names.some((n) => n in thr);
    const table = document.createElement('table');
    table.className = 'evidence';
    const head = paired ? '<th>threshold</th>' : '';
    table.innerHTML = `<tr><th>indicator</th><th>value</th>${head}</tr>`;
    for (const name of names) {
      const tr = table.insertRow();
      const cells = [name, fmt(ind[name])];
      if (paired) cells.push(name in thr ? fmt(thr[name]) : '');
      for (const text of cells) tr.insertCell().textContent = text;
    }
    parts.push(table);
  }
  const loose = Object.keys(thr).filter((n) => !(n in ind));
  if (loose.length) {
    parts.push(Object.assign(document.createElement('p'), { className: 'panel-meta',
      textContent: `thresholds: ${loose.map((n) => `${n} = ${fmt(thr[n])}`).join(', ')}` }));
  }
  return parts;
}

export default {
  id: 'stage',
  title: 'Stage now',
  caption: 'Which of the theory\'s stages the run is in, and the measurements that said so.',
  deps: ['stages', 'run', 'view'],
  minInterval: 100,
  mount(container, state) {
    const now = Object.assign(document.createElement('p'), { className: 'stage-now' });
    const explain = Object.assign(document.createElement('p'), { className: 'stage-explain' });
    const evidence = document.createElement('div');
    const timeline = Object.assign(document.createElement('div'), { className: 'stage-timeline' });
    container.append(now, explain, evidence, timeline);
    return {
      draw() {
        const at = pinnedStep(state); // looking back (replay): the stage at that step
        const cur = at === null ? currentStage(state)
          : [...state.stages].reverse().find((s) => s.step <= at) ?? null;
        if (!cur) {
          now.textContent = state.run ? 'no stage detected yet' : 'no run yet';
          now.style.color = '';
          explain.textContent = state.run ? 'Stage I (lazy learning) usually comes first: ' +
            stageInfo('lazy').says : 'Pick a preset and press Start.';
          evidence.replaceChildren();
          timeline.replaceChildren();
          return undefined;
        }
        const info = stageInfo(cur.stage);
        now.textContent = `${info.name} (since step ${cur.step})`;
        now.dataset.stage = cur.stage;
        explain.textContent = info.says;
        const rule = cur.evidence?.rule;
        const parts = [];
        if (rule) {
          parts.push(Object.assign(document.createElement('p'),
            { textContent: `Evidence: ${rule}` }));
        }
        evidence.replaceChildren(...parts, ...evidenceBlock(cur.evidence));
        timeline.replaceChildren(...state.stages.map((s) => {
          const chip = Object.assign(document.createElement('span'), {
            className: 'stage-chip', textContent: `${s.stage} @ ${s.step}` });
          chip.style.background = stageInfo(s.stage).colour;
          return chip;
        }));
        return undefined;
      },
    };
  },
};
