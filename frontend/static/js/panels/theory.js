// What the theory predicts for this setup (p vs p_crit, K vs minimal width, a verdict) and,
// once the run is over, whether it came true.

import { escapeHtml } from '../html.js';
import { agreementText, outcomeInfo, verdictInfo } from '../vocabulary.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'interrupted']);

function row(parent, html, cls = 'theory-row') {
  const p = document.createElement('p');
  p.className = cls;
  p.innerHTML = html;
  parent.append(p);
  return p;
}

const mark = (ok) => (ok ? '<span class="ok">✓ above</span>'
  : '<span class="warn">✗ below</span>');

export default {
  id: 'theory',
  title: 'Theory card',
  caption: 'The Li₂ prediction for this setup before the run, and whether the run agreed.',
  deps: ['run', 'stages', 'metrics'],
  minInterval: 500,
  mount(container, state) {
    const body = document.createElement('div');
    container.append(body);
    return {
      draw() {
        body.replaceChildren();
        const st = state.started;
        if (!st) {
          row(body, state.run ? 'waiting for the run to start…' : 'no run yet', 'empty-note');
          return undefined;
        }
        const cfg = st.config ?? {};
        const g = st.group ?? {};
        const pCrit = st.p_crit ?? g.p_crit;
        const p = cfg.train_fraction;
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
        const pred = st.prediction ?? {};
        const verdict = row(body, '', 'verdict');
        verdict.id = 'theory-verdict';
        verdict.dataset.verdict = pred.verdict ?? '';
        verdict.textContent = pred.verdict ? `Prediction: ${verdictInfo(pred.verdict).label}`
          : 'Prediction: none for this setup';
        if (pred.verdict) row(body, escapeHtml(verdictInfo(pred.verdict).says), 'panel-meta');
        if (Array.isArray(pred.reasons) && pred.reasons.length) {
          const ul = document.createElement('ul');
          for (const r of pred.reasons) ul.append(Object.assign(document.createElement('li'),
            { textContent: r }));
          body.append(ul);
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
        return undefined;
      },
    };
  },
};
