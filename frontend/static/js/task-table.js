// The network's answers on the group's table (GET /api/runs/{id}/table, docs/protocol.md) at
// the step the panels show: the pinned step while replaying, else the newest snapshot. One
// loader per page, shared by the table and ask panels; it bumps state.versions.task on news.

import { request } from './api.js';
import { pinnedStep } from './scrub.js';

const enc = encodeURIComponent;
const LIVE_REFRESH_MS = 700; // a live run's table is refetched at most this often
const TYPED = { uint8: Uint8Array, uint16: Uint16Array };

export const taskApi = {
  table: (id, step) => request('GET', `/api/runs/${enc(id)}/table`, { query: { step } }),
  predict: (id, a, b, step) => request('GET', `/api/runs/${enc(id)}/predict`,
    { query: { a, b, step } }),
};

function bytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The /table body with its base64 arrays decoded into typed arrays (little-endian). */
export function decodeTable(body) {
  const flags = bytes(body.cells);
  const Pred = TYPED[body.prediction_dtype];
  if (!Pred) throw new Error(`table: unknown prediction dtype ${body.prediction_dtype}`);
  return { ...body, flags, label: new Pred(bytes(body.label).buffer),
    prediction: new Pred(bytes(body.prediction).buffer),
    margin: new Float32Array(bytes(body.margin).buffer) };
}

/** The step the array panels show (null: the newest), as the table should be asked for. */
export function wantedStep(state) {
  const pinned = pinnedStep(state);
  return pinned !== null ? pinned : state.snapshot?.step ?? null;
}

/** Element index named by `text` (a name, spaces and ^ optional, or an index), else null. */
export function findElement(names, text) {
  const squash = (s) => String(s).replace(/[\s^]/g, '');
  const want = squash(text);
  if (!want) return null;
  const hit = names.findIndex((n) => squash(n) === want);
  if (hit >= 0) return hit;
  return /^\d+$/.test(want) && Number(want) < names.length ? Number(want) : null;
}

const loaders = new WeakMap();

/** The page's one table loader: call want() from a draw; read current (or null) and error. */
export function tableLoader(state) {
  if (loaders.has(state)) return loaders.get(state);
  state.versions.task ??= 0;
  const L = { current: null, error: null, key: null, loading: false, fetchedAt: -Infinity,
    timer: null };

  async function load(runId, step, key) {
    L.loading = true;
    L.key = key;
    try {
      const body = decodeTable(await taskApi.table(runId, step ?? undefined));
      if (state.run?.id === runId) {
        L.current = { runId, asked: step, ...body };
        L.error = null;
      }
    } catch (exc) {
      if (state.run?.id === runId) L.error = exc.message;
    } finally {
      L.loading = false;
      L.fetchedAt = performance.now();
      state.bump('task');
    }
  }

  L.want = () => {
    const runId = state.run?.id;
    if (!runId) {
      L.current = null;
      return;
    }
    if (L.current && L.current.runId !== runId) L.current = null;
    const step = wantedStep(state);
    const key = `${runId}:${step}`;
    if (L.loading || key === L.key) return;
    const wait = pinnedStep(state) !== null ? 0 :
      L.fetchedAt + LIVE_REFRESH_MS - performance.now();
    if (wait > 0) {
      clearTimeout(L.timer);
      L.timer = setTimeout(() => state.bump('task'), wait);
      return;
    }
    load(runId, step, key);
  };
  loaders.set(state, L);
  return L;
}
