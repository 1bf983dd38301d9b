// After a reload or a reconnect the websocket sends only the latest snapshot; the G_F-over-time
// heatmap needs earlier ones, so fetch a spread of the stored snapshots, one at a time.

import { api, snapshotBytes } from './api.js';
import { decodeSnapshot } from './protocol.js';
import { addGfColumn } from './state.js';

const MAX_FETCHES = 40;

let running = null;

export async function backfillHistory(state, runId) {
  if (running === runId) return;
  running = runId;
  try {
    const steps = await api.snapshotSteps(runId);
    if (state.run?.id === runId) state.recordedSnapshots = steps.length; // 0: none were kept
    const have = new Set(state.gfHistory.map((h) => h.step));
    const missing = steps.filter((s) => !have.has(s));
    const stride = Math.max(1, Math.ceil(missing.length / MAX_FETCHES));
    for (let i = 0; i < missing.length; i += stride) {
      if (state.run?.id !== runId) return; // the page moved to another run
      let bytes;
      try { bytes = await snapshotBytes(runId, missing[i]); } catch { continue; }
      addGfColumn(state, decodeSnapshot(bytes));
      state.bump('snapshot');
    }
  } catch (exc) {
    console.warn('could not backfill the snapshot history', exc);
  } finally {
    if (running === runId) running = null;
  }
}
