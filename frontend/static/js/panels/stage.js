// The current stage in plain words, what the theory says happens in it, and the detector's
// evidence for the change (rule, indicators against thresholds).

import { api } from '../api.js';
import { eventLayer, isNetworkStage, runDepth, stagesOf } from '../layers.js';
import { pinnedStep } from '../scrub.js';
import { TERMINAL } from '../session.js';
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

/** The value of metric `name` at the last row ≤ `step` (the latest row when step is null). */
function valueAt(state, name, step) {
  const col = state.metrics.columns[name];
  if (!col) return undefined;
  const steps = state.metrics.columns.step;
  for (let i = col.length - 1; i >= 0; i--) {
    if (step !== null && steps[i] > step) continue;
    if (col[i] !== null) return col[i];
  }
  return undefined;
}

function firstValue(state, name) {
  return state.metrics.columns[name]?.find((v) => v !== null);
}

/** An indicator's student label with its symbol as a hint (hover, and for screen readers). */
function labelCell(cell, vocab, name) {
  const words = vocab?.indicators?.[name];
  cell.textContent = words?.label ?? name;
  if (words) {
    cell.title = `${words.symbol} · ${words.help}`;
    cell.append(' ', Object.assign(document.createElement('span'),
      { className: 'symbol', textContent: words.symbol }));
  }
}

/** What the detector still needs before the next stage, with live values (stage_words.py). */
function nextBlock(state, vocab, cur, at) {
  const ev = cur.evidence?.indicators ?? {};
  // C: on Stage III's indicators, the first (lazy) event's evidence, the run's group
  const comps = ev.components ?? state.stages.find((s) => typeof s.evidence?.components
    === 'number')?.evidence.components ?? state.started?.group?.components?.length;
  // groups too small for Stage III to be claimed go from Stage II straight to generalised
  const small = typeof comps === 'number' && comps < vocab?.interactive_min_components;
  const next = (small ? vocab?.next_small : vocab?.next)?.[cur.stage];
  if (!next) return [];
  const table = document.createElement('table');
  table.className = 'evidence next-needs';
  table.id = 'stage-next';
  table.innerHTML = '<tr><th>measured now</th><th>value</th><th>needed</th></tr>';
  let met = 0;
  for (const need of next.needs) {
    let target = need.value;
    if (need.scale === 'rise') {
      const c0 = ev.conc_init ?? firstValue(state, 'conc_mean');
      if (typeof c0 !== 'number') continue;
      target = c0 + need.value * (1 - c0);
    } else if (need.scale === 'share' || need.scale === 'count') {
      if (typeof comps !== 'number') continue;
      target = need.scale === 'share' ? need.value * comps : Math.min(need.value, comps);
    }
    const value = valueAt(state, need.indicator, at) ?? ev[need.indicator];
    const ok = typeof value === 'number' && value >= target;
    met += ok;
    const tr = table.insertRow();
    labelCell(tr.insertCell(), vocab, need.indicator);
    tr.insertCell().textContent = value === undefined || value === null ? '—' : fmt(value);
    const goal = tr.insertCell();
    goal.textContent = `≥ ${fmt(target)} `;
    goal.append(Object.assign(document.createElement('span'),
      { className: ok ? 'ok' : 'warn', textContent: ok ? '✓' : '✗' }));
  }
  const title = Object.assign(document.createElement('p'), { className: 'next-title',
    textContent: `To reach ${stageInfo(next.to).label}: ${met} of ${table.rows.length - 1} ` +
      'conditions met' });
  return [title, table];
}

/** Indicators as a table; a threshold sits next to the indicator of the same name, the
 *  others are listed below it (the detector names them after the rule they serve). */
function evidenceBlock(evidence, vocab) {
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
      labelCell(tr.insertCell(), vocab, name);
      tr.insertCell().textContent = ind[name] === null ? '—' : fmt(ind[name]);
      if (paired) tr.insertCell().textContent = name in thr ? fmt(thr[name]) : '';
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

/** Deeper runs: where each layer stands at step `at` (null: now), besides the stage shown
 *  (the bottom layer's own, or the whole network's outcome). */
function otherLayers(state, at, cur) {
  const depth = runDepth(state);
  if (depth < 2) return [];
  const network = isNetworkStage(cur);
  const lines = [];
  for (let layer = network ? 1 : 2; layer <= depth; layer += 1) {
    const own = state.stages.filter((s) => eventLayer(s) === layer && !isNetworkStage(s) &&
      (at === null || s.step <= at));
    const last = own[own.length - 1];
    lines.push(`Layer ${layer}: ${last ? `${stageInfo(last.stage).label} (${when(last)})`
      : 'no stage detected yet'}`);
  }
  const shown = network ? 'The outcome above is the whole network\'s.'
    : 'The stage above is the bottom layer\'s (layer 1).';
  return [Object.assign(document.createElement('p'), { className: 'panel-meta stage-layers',
    textContent: `${shown} ${lines.join(' · ')}.` })];
}

export default {
  id: 'stage',
  title: 'Stage now',
  caption: 'Which of the theory\'s stages the run is in, and the measurements that said so.',
  testid: 'stage-now',
  deps: ['stages', 'run', 'view', 'metrics'],
  minInterval: 250,
  mount(container, state) {
    const now = Object.assign(document.createElement('p'), { className: 'stage-now' });
    const outcome = Object.assign(document.createElement('p'), { className: 'stage-outcome' });
    const timeline = Object.assign(document.createElement('div'), { className: 'stage-timeline' });
    const needs = document.createElement('div');
    const explain = Object.assign(document.createElement('p'), { className: 'stage-explain' });
    const remarks = document.createElement('div'); // detector notes and a fork's origin
    const evidence = document.createElement('details');
    evidence.className = 'stage-evidence';
    container.append(now, outcome, timeline, needs, explain, remarks, evidence);
    let vocab = null;
    api.indicators().then((v) => { vocab = v; state.bump('stages'); })
      .catch(() => {}); // without the words the card shows the raw names
    return {
      draw() {
        const at = pinnedStep(state); // looking back (replay): the stage at that step
        // a deeper run: the bottom layer's stage and the network's outcome (the curves' bands)
        const deep = runDepth(state) > 1;
        const cur = at === null ? currentStage(state) : [...stagesOf(state.stages, 1)].reverse()
          .find((s) => s.step <= at) ?? null;
        if (!cur) {
          const ended = state.run && TERMINAL.has(state.run.status);
          const cell = state.run?.sweep;
          now.textContent = !state.run ? 'no run yet'
            : ended ? 'no stages recorded' : 'no stage detected yet';
          now.style.color = '';
          explain.textContent = !state.run ? 'Pick a preset and press Start.'
            : cell ? `This run is cell ${cell.index} of sweep ${cell.id}: sweep cells record ` +
              'their metrics, weight snapshots and outcome, not the stage detector\'s events.'
              : ended ? 'The stage detector recorded nothing for this run.'
                : `${stageInfo('lazy').label} usually comes first: ${stageInfo('lazy').says}`;
          outcome.textContent = '';
          evidence.replaceChildren();
          evidence.hidden = true;
          timeline.replaceChildren();
          needs.replaceChildren();
          remarks.replaceChildren();
          return undefined;
        }
        const info = stageInfo(cur.stage);
        now.replaceChildren(info.label, ' ', Object.assign(document.createElement('span'),
          { className: 'since', textContent: when(cur) }));
        now.dataset.stage = cur.stage;
        explain.textContent = info.says;
        const key = at === null ? state.summary?.outcome : null;
        outcome.dataset.outcome = key ?? '';
        // the outcome's explanation only when the stage shown does not already give it
        outcome.textContent = !key ? '' : `Outcome: ${outcomeInfo(key).label}.` +
          (key === cur.stage ? '' : ` ${outcomeInfo(key).says}`);
        needs.replaceChildren(...nextBlock(state, vocab, cur, at));
        const rule = cur.evidence?.rule;
        const parts = [Object.assign(document.createElement('summary'),
          // the indicators are the values at the row the evidence became conclusive
          { textContent: `why the detector said ${stageInfo(cur.stage).short} at step ` +
            `${cur.evidence?.conclusive_step ?? cur.step}` })];
        if (rule) {
          parts.push(Object.assign(document.createElement('p'),
            { textContent: `Evidence: ${rule}` }));
        }
        const open = evidence.open;
        evidence.hidden = false;
        evidence.replaceChildren(...parts, ...evidenceBlock(cur.evidence, vocab));
        evidence.open = open;
        timeline.replaceChildren(...state.stages.map((s) => {
          // a deeper run's chips say whose stage it is (L2 = layer 2); outcomes are the network's
          const tag = deep && !isNetworkStage(s) ? ` · L${eventLayer(s)}` : '';
          const chip = Object.assign(document.createElement('span'), { className: 'stage-chip',
            textContent: `${stageInfo(s.stage).short}${tag} @ ${s.step}` });
          chip.title = `${stageInfo(s.stage).label}${tag ? `, layer ${eventLayer(s)}` : ''}: ` +
            when(s);
          chip.dataset.layer = String(eventLayer(s));
          chip.style.background = stageInfo(s.stage).colour;
          return chip;
        }));
        remarks.replaceChildren(...otherLayers(state, at, cur), ...notes(state.stages));
        return undefined;
      },
    };
  },
};
