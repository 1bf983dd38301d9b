// Ask the network: type or pick two elements, see its answer for a∘b next to the true one,
// with the output's top classes and their scores, at the step the panels show (live or
// replayed). A click on a cell of the table panel asks about that pair.

import { escapeHtml } from '../html.js';
import { findElement, tableLoader, taskApi, wantedStep } from '../task-table.js';

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

export default {
  id: 'ask',
  title: 'Ask the network',
  caption: 'Type two elements (a name or an index) and ask: the network\'s answer for a∘b, ' +
    'the true answer, and its five highest-scoring classes at the shown step.',
  deps: ['snapshot', 'run', 'task'],
  minInterval: 150,
  mount(container, state) {
    const loader = tableLoader(state);
    const list = el('datalist', { id: 'ask-elements' });
    const inputA = el('input', { id: 'ask-a', type: 'text', size: 8, placeholder: 'a',
      autocomplete: 'off' });
    const inputB = el('input', { id: 'ask-b', type: 'text', size: 8, placeholder: 'b',
      autocomplete: 'off' });
    for (const input of [inputA, inputB]) input.setAttribute('list', 'ask-elements');
    inputA.setAttribute('aria-label', 'first element a');
    inputB.setAttribute('aria-label', 'second element b');
    const button = el('button', { type: 'submit', textContent: 'Ask', id: 'ask-go' });
    const form = el('form', { className: 'ask-form' }, inputA, el('span', { textContent: ' ∘ ' }),
      inputB, ' ', button, list);
    const answer = el('div', { className: 'ask-answer', id: 'ask-answer' });
    answer.setAttribute('aria-live', 'polite');
    const root = el('div', { className: 'ask' }, form, answer);
    root.dataset.testid = 'ask';
    container.append(root);

    let names = [];
    let question = null; // {a, b}: asked at least once; re-asked when the shown step moves
    let asked = null; // `${run}:${a}:${b}:${step}` of the answer on screen or on its way
    let pairSeen = null;
    let runSeen = null;

    function showError(msg) {
      answer.innerHTML = `<p class="field-error">${escapeHtml(msg)}</p>`;
    }

    function render(p) {
      const n = p.names;
      const top = p.scores;
      const lo = Math.min(0, ...top.map((s) => s.score));
      const hi = Math.max(1e-9, ...top.map((s) => s.score));
      const rows = top.map((s) => {
        const width = (100 * (s.score - lo) / (hi - lo)).toFixed(1);
        const cls = s.element === p.label ? ' truth' : '';
        return `<tr class="ask-row${cls}"><td>${escapeHtml(s.name)}</td>` +
          `<td class="ask-bar-cell"><span class="ask-bar" style="width:${width}%"></span></td>` +
          `<td class="num">${s.score.toFixed(3)}</td></tr>`;
      }).join('');
      answer.innerHTML =
        `<p class="ask-verdict ${p.correct ? 'right' : 'wrong'}" data-testid="ask-verdict">` +
        `${escapeHtml(n.a)} ∘ ${escapeHtml(n.b)} = <b>${escapeHtml(n.label)}</b> · the network ` +
        `says <b data-testid="ask-prediction">${escapeHtml(n.prediction)}</b> ` +
        `${p.correct ? '✓ right' : '✗ wrong'}</p>` +
        `<p class="panel-meta">step ${p.step} · margin ${p.margin.toFixed(3)} · ` +
        `${p.train ? 'a training pair' : 'a test pair (never trained on)'}</p>` +
        `<table class="ask-scores"><thead><tr><th>class</th><th></th><th>score</th></tr>` +
        `</thead><tbody>${rows}</tbody></table>`;
      root.dataset.step = String(p.step);
      root.dataset.prediction = String(p.prediction);
      root.dataset.label = String(p.label);
    }

    async function ask() {
      const runId = state.run?.id;
      if (!runId || !question) return;
      const step = wantedStep(state);
      const key = `${runId}:${question.a}:${question.b}:${step}`;
      if (key === asked) return;
      asked = key;
      try {
        const p = await taskApi.predict(runId, question.a, question.b, step ?? undefined);
        if (asked === key) render(p);
      } catch (exc) {
        if (asked === key) showError(exc.message);
      }
    }

    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!state.run?.id) {
        showError('start or open a run first');
        return;
      }
      if (!names.length) {
        showError('the run has no stored weights yet');
        return;
      }
      const a = findElement(names, inputA.value);
      const b = findElement(names, inputB.value);
      const bad = a === null ? inputA.value : b === null ? inputB.value : null;
      if (bad !== null) {
        showError(`“${bad}” is not an element of this group: type a name such as ` +
          `${names[Math.min(2, names.length - 1)]} or an index 0…${names.length - 1}`);
        return;
      }
      question = { a, b };
      asked = null;
      ask();
    });

    return {
      draw() {
        if (state.run?.id !== runSeen) { // another run: another group, forget the question
          runSeen = state.run?.id;
          question = null;
          asked = null;
          answer.replaceChildren();
        }
        loader.want();
        const t = loader.current;
        if (t && t.names !== names) {
          names = t.names;
          list.replaceChildren(...names.map((n) => el('option', { value: n })));
        }
        if (state.askPair && state.askPair !== pairSeen && names.length) {
          pairSeen = state.askPair;
          inputA.value = names[pairSeen.a];
          inputB.value = names[pairSeen.b];
          question = { a: pairSeen.a, b: pairSeen.b };
        }
        if (question && state.run?.id) ask();
        return undefined;
      },
    };
  },
};
