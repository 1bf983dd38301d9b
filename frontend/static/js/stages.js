// The stages of the Li2 theory in plain words (li2-theory.md §3), with a colour each: the
// table lives in li2core.vocabulary and arrives through ./vocabulary.js.

export { stageInfo } from './vocabulary.js';
