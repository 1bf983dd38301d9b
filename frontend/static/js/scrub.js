// Looking back: pin the panels to an earlier step (slider or a click on a step axis). Metric
// panels mark the step; array panels show the stored snapshot at or before it.

import { snapshotBytes } from './api.js';
import { decodeSnapshot } from './protocol.js';

const FETCH_DELAY_MS = 120; // a dragged slider asks for the last position only

let timer = null;
let wanted = null;

/** The snapshot the array panels should draw: the pinned one if loaded, else the live one. */
export function shownSnapshot(state) {
  return state.scrub?.snapshot ?? state.snapshot;
}

/** The pinned step, or null when following the run live. */
export function pinnedStep(state) {
  return state.scrub ? state.scrub.step : null;
}

export function pinStep(state, step) {
  if (!state.run?.id || !Number.isFinite(step)) return;
  step = Math.max(0, Math.round(step));
  state.scrub = { step, snapshot: state.scrub?.snapshot ?? null };
  state.setSetting('at', step);
  wanted = `${state.run.id}:${step}`;
  clearTimeout(timer);
  timer = setTimeout(() => loadSnapshot(state, state.run.id, step), FETCH_DELAY_MS);
}

export function followLive(state) {
  clearTimeout(timer);
  wanted = null;
  state.scrub = null;
  state.setSetting('at', undefined);
  state.bump('snapshot');
}

async function loadSnapshot(state, runId, step) {
  const key = `${runId}:${step}`;
  try {
    const snap = decodeSnapshot(await snapshotBytes(runId, step));
    if (wanted !== key || !state.scrub) return; // the user moved on meanwhile
    state.scrub = { step, snapshot: snap, error: null };
  } catch (exc) {
    if (wanted !== key || !state.scrub) return;
    state.scrub = { step, snapshot: null, error: exc.message };
  }
  state.bump('snapshot');
}

/** A vertical marker at the pinned step, for any plot with a step x axis. */
export function pinShape(state, xref = 'x') {
  const step = pinnedStep(state);
  if (step === null) return [];
  return [{ type: 'line', xref, yref: 'paper', x0: step, x1: step, y0: 0, y1: 1,
    line: { color: '#000', width: 2 } }];
}
