// The current stage in plain words, what the theory says happens in it, and the detector's
// evidence for the change (rule, indicators against thresholds).

import { pinnedStep } from '../scrub.js';
import { currentStage } from '../state.js';
import { outcomeInfo, stageInfo } from '../vocabulary.js';

function fmt(v) {
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? v.toPrecision(3) : v.toExponential(2);
}

/** "since step 30, conclusive at step 85": the onset, and when the evidence was known. */
function when(ev) {
  const known = ev.evidence?.conclusive_step;
  return typeof known === 'number' && known !== ev.step
    ? `since step ${ev.step}, conclusive at step ${known}` : `since step ${ev.step}`;
}

/** Notes the detector attached (e.g. Stage III not claimed for a small group) and, for a
 *  fork, where it forked: its stages up to there are the parent's. */
function notes(stages) {
  const out = new Set();
  for (const s of stages) {
    for (const n of s.evidence?.notes ?? []) out.add(n);
    const fork = s.evidence?.inherited;
    if (fork && typeof fork.step === 'number') {
      out.add(`Forked from run ${fork.run_id ?? '?'} at step ${fork.step}: the stages up to ` +
        'there are the parent\'s.');
    }
  }
  return [...out].map((text) => Object.assign(document.createElement('p'),
    { className: 'panel-meta stage-note', textContent: text }));
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
    const outcome = Object.assign(document.createElement('p'), { className: 'stage-outcome' });
    const evidence = document.createElement('div');
    const timeline = Object.assign(document.createElement('div'), { className: 'stage-timeline' });
    const remarks = document.createElement('div');
    container.append(now, explain, outcome, evidence, timeline, remarks);
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
          outcome.textContent = '';
          evidence.replaceChildren();
          timeline.replaceChildren();
          remarks.replaceChildren();
          return undefined;
        }
        const info = stageInfo(cur.stage);
        now.textContent = `${info.label} (${when(cur)})`;
        now.dataset.stage = cur.stage;
        explain.textContent = info.says;
        const key = at === null ? state.summary?.outcome : null;
        outcome.dataset.outcome = key ?? '';
        // the outcome's explanation only when the stage shown does not already give it
        outcome.textContent = !key ? '' : `Outcome: ${outcomeInfo(key).label}.` +
          (key === cur.stage ? '' : ` ${outcomeInfo(key).says}`);
        const rule = cur.evidence?.rule;
        const parts = [];
        if (rule) {
          parts.push(Object.assign(document.createElement('p'),
            { textContent: `Evidence: ${rule}` }));
        }
        evidence.replaceChildren(...parts, ...evidenceBlock(cur.evidence));
        timeline.replaceChildren(...state.stages.map((s) => {
          const chip = Object.assign(document.createElement('span'), {
            className: 'stage-chip', textContent: `${stageInfo(s.stage).short} @ ${s.step}` });
          chip.title = `${stageInfo(s.stage).label}: ${when(s)}`;
          chip.style.background = stageInfo(s.stage).colour;
          return chip;
        }));
        remarks.replaceChildren(...notes(state.stages));
        return undefined;
      },
    };
  },
};
