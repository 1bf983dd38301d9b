// Thin wrappers over the HTTP API (docs/contracts.md). Errors come back as ApiError carrying
// the server's own words and, for 422s, which field each message belongs to.

export class ApiError extends Error {
  constructor(status, message, fieldErrors = []) {
    super(message);
    this.status = status;
    this.fieldErrors = fieldErrors; // [{field, msg}] ; field null = not tied to one control
  }
}

/** Maps the server's detail[] to controls by its structured loc: [..., "hidden"] → hidden
 *  (cross-field checks name their field in loc too; the message text is never parsed). */
export function fieldErrorsFromDetail(detail, knownFields) {
  if (typeof detail === 'string') return [{ field: null, msg: detail }];
  if (!Array.isArray(detail)) return [{ field: null, msg: JSON.stringify(detail) }];
  return detail.map((d) => {
    const loc = Array.isArray(d.loc) ? d.loc : [];
    const field = [...loc].reverse().find((p) => typeof p === 'string' && knownFields.has(p));
    return { field: field ?? null, msg: String(d.msg ?? '') };
  });
}

/** The instructor token typed on this page or remembered from an earlier command. */
export function tokenHeaders() {
  const typed = document.getElementById('token')?.value;
  const token = typed || localStorage.getItem('li2-token') || '';
  return token ? { 'X-Instructor-Token': token } : {};
}

/** After the server accepted a command: keep the typed token for later visits and pages. */
export function rememberToken() {
  const typed = document.getElementById('token')?.value;
  if (typed) localStorage.setItem('li2-token', typed);
}

/** fetch(url, init) → the JSON body (or the text when it is not JSON); a failure becomes an
 *  ApiError. request() and uploads of raw bodies (history-api.js) both end here. */
export async function fetchData(url, init, knownFields = new Set()) {
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (exc) {
    throw new ApiError(0, `cannot reach the server (${exc.message})`);
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!resp.ok) {
    const detail = data && typeof data === 'object' && 'detail' in data ? data.detail : data;
    const errs = fieldErrorsFromDetail(detail ?? resp.statusText, knownFields);
    const err = new ApiError(resp.status, errs.map((e) => e.msg).join('; '), errs);
    err.detail = detail; // the raw FastAPI detail, for pages that show nested locations
    throw err;
  }
  return data;
}

/** A stored snapshot at or before `step` as raw bytes (protocol.js decodes them). */
export async function snapshotBytes(runId, step) {
  const url = `/api/runs/${encodeURIComponent(runId)}/snapshot?step=${step}`;
  let resp;
  try {
    resp = await fetch(url);
  } catch (exc) {
    throw new ApiError(0, `cannot reach the server (${exc.message})`);
  }
  if (!resp.ok) throw new ApiError(resp.status, `no snapshot at or before step ${step}`);
  return resp.arrayBuffer();
}

export async function request(method, path, { body, query, headers, knownFields } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  }
  const init = { method, headers: { ...(headers ?? {}) } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return fetchData(url, init, knownFields ?? new Set());
}

export const api = {
  schema: () => request('GET', '/api/config/schema'),
  groups: () => request('GET', '/api/groups'),
  group: (spec) => request('GET', `/api/groups/${encodeURIComponent(spec)}`),
  presets: () => request('GET', '/api/presets'),
  predict: (config, knownFields) => request('POST', '/api/theory/predict',
    { body: config, knownFields }),
  indicators: () => request('GET', '/api/theory/indicators'),
  broadcast: (code) => request('GET', `/api/broadcasts/${encodeURIComponent(code)}`),
  broadcasts: (headers) => request('GET', '/api/broadcasts', { headers }),
  endBroadcast: (code, headers) => request('DELETE',
    `/api/broadcasts/${encodeURIComponent(code)}`, { headers }),
  run: (id) => request('GET', `/api/runs/${encodeURIComponent(id)}`),
  snapshotSteps: (id) => request('GET', `/api/runs/${encodeURIComponent(id)}/snapshots`),
  cancel: (id, headers) => request('POST', `/api/runs/${encodeURIComponent(id)}/cancel`,
    { headers }),
  start: (config, query, headers, knownFields) =>
    request('POST', '/api/runs', { body: config, query, headers, knownFields }),
};
