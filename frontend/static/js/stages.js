// The five stages of the Li2 theory in plain words (li2-theory.md §3), with a colour each.

export const STAGES = {
  lazy: {
    name: 'Stage I · lazy learning',
    colour: '#56B4E9',
    says: 'The hidden weights W barely move while the top layer V fits the random features: ' +
      'train accuracy climbs, test accuracy stays at chance. Meanwhile the gradient reaching ' +
      'the hidden layer, G_F, starts to carry the labels — as long as weight decay η > 0.',
  },
  independent: {
    name: 'Stage II · independent feature learning',
    colour: '#E69F00',
    says: 'Each hidden node climbs its own energy ℰ(w) = ½‖Ỹᵀσ(Xw)‖², on its own. Its local ' +
      'maxima are single irreducible representations (one frequency for Z_M), so spectrum ' +
      'rows concentrate on one component each.',
  },
  interactive: {
    name: 'Stage III · interactive feature learning',
    colour: '#CC79A7',
    says: 'Nodes now feel each other: similar nodes repel and diversify, and G_F shifts to ' +
      'the components nobody covers yet. Coverage fills up and test accuracy rises.',
  },
  generalised: {
    name: 'Generalised',
    colour: '#009E73',
    says: 'Every component is covered by some nodes, so the network computes the group ' +
      'product from features and test accuracy reaches ~1: the network has grokked.',
  },
  memorised: {
    name: 'Memorised',
    colour: '#D55E00',
    says: 'The network fits the training table without the group\'s features: nodes focus on ' +
      'single (h₁, h₂) pairs, with high energy on the training rows and low energy on the ' +
      'full table. Test accuracy stays near chance (too little data, or no weight decay).',
  },
};

export function stageInfo(name) {
  return STAGES[name] ?? { name: name ?? '—', colour: '#999999', says: '' };
}
