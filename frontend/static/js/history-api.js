// HTTP calls for runs over time (forks, series, bundles, broadcasts), beside api.js's basics.

import { fetchData, request, snapshotBytes, tokenHeaders } from './api.js';
import { decodeSnapshot } from './protocol.js';

const enc = encodeURIComponent;

export const history = {
  run: (id) => request('GET', `/api/runs/${enc(id)}`),
  runs: (limit = 200) => request('GET', '/api/runs', { query: { limit } }),
  metrics: (id) => request('GET', `/api/runs/${enc(id)}/metrics`),
  stages: (id) => request('GET', `/api/runs/${enc(id)}/stages`),
  snapshotSteps: (id) => request('GET', `/api/runs/${enc(id)}/snapshots`),
  series: (id, array, node) =>
    request('GET', `/api/runs/${enc(id)}/series`, { query: { array, node } }),
  fork: (id, body, knownFields) => request('POST', `/api/runs/${enc(id)}/fork`,
    { body, headers: tokenHeaders(), knownFields }),
  broadcast: (id, code) => request('POST', `/api/runs/${enc(id)}/broadcast`,
    { body: code ? { code } : undefined, headers: tokenHeaders() }),
  broadcastOf: (id) => request('GET', `/api/runs/${enc(id)}/broadcast`),
  watchInfo: (code) => request('GET', `/api/broadcasts/${enc(code)}`),
  importBundle: (file) => fetchData('/api/bundles', { method: 'POST', body: file,
    headers: { 'Content-Type': 'application/zip', ...tokenHeaders() } }),
};

/** The stored snapshot at or before `step`, decoded ({runId, seq, step, arrays}). */
export async function fetchSnapshot(runId, step) {
  return decodeSnapshot(await snapshotBytes(runId, step));
}

/** A websocket URL on this page's host. */
export function wsUrl(path) {
  const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${window.location.host}${path}`;
}
