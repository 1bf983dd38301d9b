// What the theory predicts for this setup (p vs p_crit, K vs minimal width, a verdict) and,
// once the run is over, whether it came true.

import { api } from '../api.js';
import { configBody } from '../controls.js';
import { escapeHtml } from '../html.js';
import { VOCAB, agreementText, outcomeInfo, verdictInfo } from '../vocabulary.js';

const FETCH_DELAY_MS = 250; // typing in a control asks once it pauses

/** Before a run: the server's prediction for the settings in the controls, refetched when
 *  they change (state.prediction = {sig, facts, error}); `redraw` bumps the card. */
function predictionFetcher(state, redraw) {
  let timer = null;
  let asked = '';
  return () => {
    // the watch page has no controls: it shows the broadcast run's own facts only
    if (!state.fields?.some((f) => f.scope === 'config')) return;
    const body = configBody(state);
    const sig = JSON.stringify(body);
    if (sig === asked) return;
    asked = sig;
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const known = new Set(state.fields.map((f) => f.name));
      try {
        const facts = await api.predict(body, known);
        if (asked === sig) state.prediction = { sig, facts, error: null };
      } catch (exc) {
        if (asked === sig) state.prediction = { sig, facts: null, error: exc.message };
      }
      redraw();
    }, FETCH_DELAY_MS);
  };
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'interrupted']);

function row(parent, html, cls = 'theory-row') {
  const p = document.createElement('p');
  p.className = cls;
  p.innerHTML = html;
  parent.append(p);
  return p;
}

/** Depth ≥ 2: what the theory says about deeper networks and what it leaves open, in the
 *  vocabulary's words (li2core.vocabulary.DEPTH_NOTE). */
function depthNote(parent, depth) {
  const words = VOCAB.depth_note;
  if (!(depth >= 2) || !words) return;
  const box = document.createElement('div');
  box.className = 'depth-note';
  box.id = 'theory-depth';
  box.dataset.depth = String(depth);
  box.append(Object.assign(document.createElement('p'), { className: 'depth-title',
    textContent: words.title.replace('{depth}', String(depth)) }));
  const ul = document.createElement('ul');
  for (const line of words.covers) ul.append(Object.assign(document.createElement('li'),
    { textContent: line }));
  box.append(ul, Object.assign(document.createElement('p'), { className: 'depth-open',
    textContent: words.open }));
  parent.append(box);
}

const mark = (ok) => (ok ? '<span class="ok">✓ above</span>'
  : '<span class="warn">✗ below</span>');

export default {
  id: 'theory',
  testid: 'theory-card',
  title: 'Theory card',
  caption: 'The Li₂ prediction for this setup before the run, and whether the run agreed.',
  deps: ['run', 'stages', 'settings'], // the run's summary (outcome) arrives with 'run'
  minInterval: 200,
  mount(container, state) {
    const body = document.createElement('div');
    container.append(body);
    const fetchPrediction = predictionFetcher(state, () => state.bump('settings'));
    return {
      draw() {
        body.replaceChildren();
        // a run shows its own facts; before one (or while it starts) the controls' settings
        let st = state.started;
        if (!st && !(state.run && TERMINAL.has(state.run.status))) {
          fetchPrediction();
          const pre = state.prediction;
          if (pre?.error) {
            row(body, `No prediction for these settings: ${escapeHtml(pre.error)}`, 'warn');
            return undefined;
          }
          if (pre?.facts) st = { ...pre.facts, config: configBody(state), before: true };
        }
        if (!st) {
          row(body, state.run ? 'waiting for the run to start…' : 'asking the theory…',
            'empty-note');
          return undefined;
        }
        const cfg = st.config ?? {};
        const g = st.group ?? {};
        const pCrit = st.p_crit ?? g.p_crit;
        const p = cfg.train_fraction;
        // the verdict and the outcome first: they are what the room reads
        const pred = st.prediction ?? {};
        const verdict = row(body, '', 'verdict');
        verdict.id = 'theory-verdict';
        verdict.dataset.verdict = pred.verdict ?? '';
        verdict.textContent = pred.verdict ? `Prediction: ${verdictInfo(pred.verdict).label}`
          : 'Prediction: none for this setup';
        // the verdict's meaning and its reasons (reasons[0] decided it: li2core.theory)
        if (pred.verdict) row(body, escapeHtml(verdictInfo(pred.verdict).says), 'panel-meta');
        if (Array.isArray(pred.reasons) && pred.reasons.length) {
          const ul = document.createElement('ul');
          for (const r of pred.reasons) ul.append(Object.assign(document.createElement('li'),
            { textContent: r }));
          body.append(ul);
        }
        if (st.before) {
          verdict.dataset.before = '1';
          row(body, state.run ? 'The run is starting; the card compares once it ends.'
            : 'For the settings in the controls: change them and the prediction follows.',
          'panel-meta');
        }
        if (state.run && TERMINAL.has(state.run.status)) {
          // outcome and its agreement with the verdict both come from li2core (run summary)
          const seen = state.summary?.outcome ?? null;
          const check = state.summary?.agreement ?? null;
          const res = row(body, '', 'verdict');
          res.id = 'theory-outcome';
          res.dataset.outcome = seen ?? '';
          res.dataset.agreement = check ?? '';
          if (!seen) res.textContent = `The run ended (${state.run.status}) without an outcome.`;
          else {
            const says = check ? ` — ${agreementText(check)}` : '';
            res.textContent = `Outcome: ${outcomeInfo(seen).label}${says}.`;
            if (check === 'came_true') res.classList.add('ok');
            if (check === 'failed') res.classList.add('warn');
          }
        }
        depthNote(body, cfg.depth); // what the theory says of deeper networks, read early
        row(body, `<b>${escapeHtml(g.name ?? cfg.group)}</b> · order M = ${g.order ?? '?'} · ` +
          `${st.n_train ?? '?'} training rows of ${(g.order ?? 0) ** 2}`);
        if (typeof pCrit === 'number') {
          row(body, `data: p = ${escapeHtml(p)} vs p<sub>crit</sub> = ${pCrit.toFixed(3)} ` +
            mark(p >= pCrit));
        }
        const minWidth = g.min_width ?? st.prediction?.min_width;
        if (typeof minWidth === 'number') {
          row(body, `width: K = ${escapeHtml(cfg.hidden)} vs minimal width ${minWidth} ` +
            `${mark(cfg.hidden >= minWidth)}`);
        }
        return undefined;
      },
    };
  },
};
