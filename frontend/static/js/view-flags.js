// Page flags shared by the dashboard and the watch page: settings from a plain query string
// (?run=…&present=1&hide=…), presentation mode, and extra stylesheets.

import { readUrl } from './url-state.js';

// view settings a plain query string may carry as well as the hash
const QUERY_FIELDS = new Set(['run', 'at', 'node', 'hide', 'present', 'log_loss', 'log_steps',
  'spec_rows', 'active_only']);

/** Query-string settings that the hash does not set (the hash wins). */
export function settingsFromQuery(fields, search = window.location.search,
  hash = window.location.hash) {
  const allowed = fields.filter((f) => QUERY_FIELDS.has(f.name));
  const inHash = readUrl(allowed, hash);
  return Object.fromEntries(Object.entries(readUrl(allowed, search))
    .filter(([name]) => !(name in inHash)));
}

/** Presentation mode: large type, high contrast (css/runs-over-time.css, panels/plot.js). */
export function applyPresentation(on) {
  document.documentElement.classList.toggle('present', !!on);
}

export function addStylesheet(href) {
  if (document.querySelector(`link[href="${href}"]`)) return;
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = href;
  document.head.append(link);
}
