// Reads and writes the page settings in the URL hash, through the one table in fields.js.

/** Text as typed → value sent to the server. Numbers that do not parse stay text, so the
 *  server's 422 names the problem in its own words instead of the page guessing. */
export function parseValue(field, text) {
  if (text === null || text === undefined) return undefined;
  switch (field.type) {
    case 'bool': return text === '1' || text === 'true';
    case 'list': return text === '' ? [] : text.split(',').map((s) => s.trim()).filter(Boolean);
    case 'int':
    case 'number': {
      if (text.trim() === '') return undefined;
      const n = Number(text);
      return Number.isFinite(n) ? n : text;
    }
    case 'json': {
      if (text.trim() === '') return undefined;
      try { return JSON.parse(text); } catch { return text; }
    }
    default: return text;
  }
}

export function formatValue(field, value) {
  if (value === undefined || value === null) return '';
  switch (field.type) {
    case 'bool': return value ? '1' : '0';
    case 'list': return value.join(',');
    case 'json': return typeof value === 'string' ? value : JSON.stringify(value);
    default: return String(value);
  }
}

/** Settings from the current URL: {name: value}; absent fields are left out. */
export function readUrl(fields, hash = window.location.hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const out = {};
  for (const f of fields) {
    if (params.has(f.name)) {
      const v = parseValue(f, params.get(f.name));
      if (v !== undefined) out[f.name] = v;
    }
  }
  return out;
}

/** Writes every field (not just changed ones) so a link keeps meaning the same run even if
 *  the server's defaults change later. Empty values are left out. */
export function writeUrl(fields, values) {
  const params = new URLSearchParams();
  for (const f of fields) {
    const text = formatValue(f, values[f.name]);
    if (text !== '' && !(f.scope === 'view' && text === formatValue(f, f.default))) {
      params.set(f.name, text);
    }
  }
  const hash = '#' + params.toString().replace(/%2C/g, ',');
  if (hash !== window.location.hash) history.replaceState(null, '', hash);
}

/** The hash as URLSearchParams, for pages whose state is a few free-form keys. */
export function hashParams(hash = window.location.hash) {
  return new URLSearchParams(hash.replace(/^#/, ''));
}

/** Sets (or, for empty values, removes) some keys of the hash, keeping the others. */
export function setHashParams(values) {
  const params = hashParams();
  for (const [k, v] of Object.entries(values)) {
    if (v !== undefined && v !== null && v !== '') params.set(k, v); else params.delete(k);
  }
  const hash = `#${params.toString().replace(/%2C/g, ',')}`;
  if (hash !== window.location.hash) history.replaceState(null, '', hash);
}
