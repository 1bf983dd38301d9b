// The words a student reads (stage names, outcomes, theory verdicts), loaded once from
// li2core.vocabulary via GET /api/vocabulary: every page renders these, none re-spells them.

async function load() {
  try {
    const res = await fetch('/api/vocabulary');
    if (res.ok) return await res.json();
  } catch { /* offline page or module test: fall back to the keys themselves */ }
  return { outcomes: {}, stages: {}, verdicts: {}, agreement: {}, interactive_not_claimed: '',
    gf_scale: '', rule: {} };
}

export const VOCAB = await load();

const plain = (key) => ({ label: String(key ?? '—').replaceAll('_', ' '),
  short: String(key ?? '—'), colour: '#999999', says: '' });

/** {label, short, colour, says} of a stage event's name (lazy … generalised, memorised). */
export function stageInfo(name) {
  return VOCAB.stages[name] ?? plain(name);
}

/** {label, colour, says} of an outcome key (generalised, memorised, still_learning, …). */
export function outcomeInfo(key) {
  return VOCAB.outcomes[key] ?? plain(key);
}

/** {label, expects, says} of a theory verdict (generalise, memorise, uncertain). */
export function verdictInfo(key) {
  return VOCAB.verdicts[key] ?? { ...plain(key), expects: null };
}

/** The sentence for an agreement key of li2core.vocabulary.agreement (came_true, failed, …). */
export function agreementText(key) {
  return VOCAB.agreement[key] ?? '';
}
