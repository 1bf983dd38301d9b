// HTTP calls for runs over time (forks, series, bundles, broadcasts), beside api.js's basics.

import { ApiError, fieldErrorsFromDetail, request } from './api.js';
import { decodeSnapshot } from './protocol.js';

const enc = encodeURIComponent;

/** The instructor token typed on this page or remembered from an earlier Start. */
export function tokenHeaders() {
  const typed = document.getElementById('token')?.value;
  const token = typed || localStorage.getItem('li2-token') || '';
  return token ? { 'X-Instructor-Token': token } : {};
}

async function raw(method, path, body, headers) {
  let resp;
  try {
    resp = await fetch(path, { method, body, headers });
  } catch (exc) {
    throw new ApiError(0, `cannot reach the server (${exc.message})`);
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!resp.ok) {
    const detail = data && typeof data === 'object' && 'detail' in data ? data.detail : data;
    const errs = fieldErrorsFromDetail(detail ?? resp.statusText, new Set());
    throw new ApiError(resp.status, errs.map((e) => e.msg).join('; '), errs);
  }
  return data;
}

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
  importBundle: (file) => raw('POST', '/api/bundles', file,
    { 'Content-Type': 'application/zip', ...tokenHeaders() }),
};

/** The stored snapshot at or before `step`, decoded ({runId, seq, step, arrays}). */
export async function fetchSnapshot(runId, step) {
  const resp = await fetch(`/api/runs/${enc(runId)}/snapshot?step=${step}`);
  if (!resp.ok) throw new ApiError(resp.status, `no snapshot at or before step ${step}`);
  return decodeSnapshot(await resp.arrayBuffer());
}

/** A websocket URL on this page's host. */
export function wsUrl(path) {
  const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${window.location.host}${path}`;
}
