// The phase diagram of a sweep: one SVG cell per run, coloured by outcome, with the theory's
// p_crit = 2.7482·ln M/M per row and the measured flip p* overlaid. Pure layout + one renderer.

import { escapeHtml } from './html.js';
import { VOCAB } from './vocabulary.js';

// outcome words and colours come from li2core.vocabulary (GET /api/vocabulary)
const outcomes = Object.entries(VOCAB.outcomes);
export const OUTCOME_COLOURS = Object.fromEntries(outcomes.map(([k, o]) => [k, o.colour]));
export const OUTCOME_LABELS = Object.fromEntries(outcomes.map(([k, o]) => [k, o.label]));
// a running cell is drawn apart from every outcome: white, dashed outline, and a bar that
// fills from the bottom to its live test accuracy (the sweep socket's 'live' message)
const STATUS_COLOURS = { queued: '#f2f2f2', running: '#ffffff', cancelled: '#bbbbbb',
  failed: '#888888', interrupted: '#888888' };
export const LIVE_COLOUR = '#555555'; // no outcome's hue: a running cell has no outcome yet

/** Index → {step, train_acc, test_acc} of the running cells (an array in the view's hello). */
export function liveByIndex(view) {
  const live = view.live ?? {};
  return Array.isArray(live) ? Object.fromEntries(live.map((c) => [c.index, c])) : live;
}

const fmt = (v) => (typeof v === 'number' ? String(+v.toPrecision(4)) : String(v));

/** Rows × columns of a sweep view. Columns: train_fraction when swept, else the last axis
 *  (seed aside); rows: the other axes; runs sharing a cell (seeds) get slots side by side. */
export function phaseLayout(view) {
  const axes = view.axes.filter((a) => a !== 'seed');
  const xAxis = axes.includes('train_fraction') ? 'train_fraction' : (axes.at(-1) ?? 'seed');
  const rowAxes = axes.filter((a) => a !== xAxis);
  const xValues = [];
  const rows = [];
  const rowIndex = new Map();
  const colIndex = new Map();
  for (const cell of view.cells) {
    const x = cell.point[xAxis];
    if (!colIndex.has(JSON.stringify(x))) {
      colIndex.set(JSON.stringify(x), xValues.length);
      xValues.push(x);
    }
    const key = JSON.stringify(rowAxes.map((a) => cell.point[a]));
    if (!rowIndex.has(key)) {
      rowIndex.set(key, rows.length);
      rows.push({ key, label: rowAxes.map((a) => `${a}=${fmt(cell.point[a])}`).join(', '),
        group: cell.point.group ?? view.spec?.base?.group, pcrit: cell.p_crit });
    }
  }
  const numeric = xValues.every((v) => typeof v === 'number');
  let order = xValues.map((_, i) => i);
  if (numeric) order = order.sort((a, b) => xValues[a] - xValues[b]);
  const sortedX = order.map((i) => xValues[i]);
  const colOf = new Map(order.map((orig, pos) => [orig, pos]));
  const slots = new Map();
  const cells = view.cells.map((cell) => {
    const row = rowIndex.get(JSON.stringify(rowAxes.map((a) => cell.point[a])));
    const col = colOf.get(colIndex.get(JSON.stringify(cell.point[xAxis])));
    const k = `${row},${col}`;
    const slot = slots.get(k) ?? 0;
    slots.set(k, slot + 1);
    return { row, col, slot, cell };
  });
  for (const c of cells) c.slots = slots.get(`${c.row},${c.col}`);
  return { xAxis, rowAxes, xValues: sortedX, rows, cells,
    pOnX: xAxis === 'train_fraction' && numeric };
}

/** Column coordinate (0 = centre of the first column) of a value on a sorted numeric axis,
 *  by linear interpolation; half a column beyond either end at most, else null. */
export function columnOf(values, p) {
  if (p === null || p === undefined || values.length === 0) return null;
  if (values.length === 1) return p === values[0] ? 0 : null;
  for (let i = 0; i < values.length - 1; i++) {
    if (p >= values[i] && p <= values[i + 1]) {
      return i + (p - values[i]) / (values[i + 1] - values[i]);
    }
  }
  const first = (p - values[0]) / (values[1] - values[0]);
  const n = values.length - 1;
  const last = n + (p - values[n]) / (values[n] - values[n - 1]);
  if (p < values[0]) return first >= -0.5 - 1e-9 ? first : null;
  return last <= n + 0.5 + 1e-9 ? last : null;
}

function cellColour(cell) {
  if (cell.status === 'completed' && cell.outcome) return OUTCOME_COLOURS[cell.outcome];
  return STATUS_COLOURS[cell.status] ?? '#f2f2f2';
}

function cellTitle(cell, live) {
  const point = Object.entries(cell.point).map(([k, v]) => `${k}=${fmt(v)}`).join(', ');
  const f3 = (x) => (typeof x === 'number' ? x.toFixed(3) : '–');
  const acc = cell.status === 'completed' ? ` · train ${f3(cell.train_acc)}, test ${f3(cell.test_acc)}`
    : '';
  const first = cell['first_test_acc_0.9'] ? ` · test ≥ 0.9 at step ${cell['first_test_acc_0.9']}`
    : '';
  const what = (cell.outcome ? (OUTCOME_LABELS[cell.outcome] ?? cell.outcome) : cell.status) +
    (live ? ` · step ${live.step}, train ${f3(live.train_acc)}, test ${f3(live.test_acc)}` : '');
  return `${point}\n${what}${acc}${first}\nclick: open run ${cell.run_id}`;
}

/** Draws ``view`` into ``container`` as SVG; each cell links to the dashboard of its run. */
export function drawPhase(container, view, leftFit = null) {
  const L = phaseLayout(view);
  // big enough to read on a projector, narrow enough to fit the panel (scrolls below 36 px);
  // the row labels' measured width (second pass, below) replaces the guess from their length
  const left = leftFit ?? Math.min(300, 14 + 9.5 * Math.max(4, ...L.rows.map((r) => r.label.length)));
  const avail = (container.clientWidth || 960) - left - 24;
  const cw = Math.max(36, Math.min(110, avail / Math.max(1, L.xValues.length)));
  const ch = Math.max(30, Math.min(64, 420 / Math.max(1, L.rows.length)));
  const top = 14;
  const width = left + cw * L.xValues.length + 20;
  const height = top + ch * L.rows.length + 46;
  const xOf = (col) => left + (col + 0.5) * cw;
  const yOf = (row) => top + (row + 0.5) * ch;
  const parts = [];
  const liveRows = liveByIndex(view);
  for (const { row, col, slot, slots, cell } of L.cells) {
    const w = (cw - 4) / slots;
    const x = left + col * cw + 2 + slot * w;
    const y = top + row * ch + 2;
    const live = cell.status === 'running' ? liveRows[cell.index] : undefined;
    const acc = live && typeof live.test_acc === 'number'
      ? Math.max(0, Math.min(1, live.test_acc)) : null;
    let inner = `<rect x="${x}" y="${y}" width="${w}" height="${ch - 4}" ` +
      `fill="${cellColour(cell)}" stroke="#fff"><title>${escapeHtml(cellTitle(cell, live))}` +
      '</title></rect>';
    if (cell.status === 'running') {
      const h = (ch - 6) * (acc ?? 0);
      inner += `<rect class="phase-live-bar" x="${x + 1}" y="${y + ch - 5 - h}" ` +
        `width="${Math.max(0, w - 2)}" height="${h}" fill="${LIVE_COLOUR}"/>` +
        `<rect class="phase-live-frame" x="${x + 1}" y="${y + 1}" width="${Math.max(0, w - 2)}" ` +
        `height="${ch - 6}" fill="none"/>`;
      if (acc !== null && w >= 30) { // at the top: the p_crit dot sits at the centre
        inner += `<text class="phase-live-text" x="${x + w / 2}" y="${y + 15}" ` +
          `text-anchor="middle">${Math.round(100 * acc)}%</text>`;
      }
    }
    parts.push(`<a href="/#run=${encodeURIComponent(cell.run_id)}" target="_blank" ` +
      `class="phase-cell" data-index="${cell.index}" data-run-id="${escapeHtml(cell.run_id)}" ` +
      `data-outcome="${cell.outcome ?? ''}" data-status="${cell.status}"` +
      (acc !== null ? ` data-live-acc="${acc.toFixed(3)}" data-live-step="${live.step}"` : '') +
      `>${inner}</a>`);
  }
  L.rows.forEach((r, i) => {
    parts.push(`<text x="${left - 6}" y="${yOf(i) + 5}" text-anchor="end" ` +
      `class="phase-label">${escapeHtml(r.label || L.xAxis)}</text>`);
  });
  L.xValues.forEach((v, i) => {
    parts.push(`<text x="${xOf(i)}" y="${top + ch * L.rows.length + 18}" text-anchor="middle" ` +
      `class="phase-tick">${escapeHtml(fmt(v))}</text>`);
  });
  parts.push(`<text x="${left + (cw * L.xValues.length) / 2}" y="${height - 6}" ` +
    `text-anchor="middle" class="phase-axis">${escapeHtml(L.xAxis)}</text>`);
  if (L.pOnX) {
    // theory: p_crit per row, joined into a curve; measured p* as open diamonds
    const pts = L.rows.map((r, i) => [columnOf(L.xValues, r.pcrit), i])
      .filter(([c]) => c !== null).map(([c, i]) => `${xOf(c)},${yOf(i)}`);
    if (pts.length > 1) {
      parts.push(`<polyline points="${pts.join(' ')}" class="phase-pcrit" fill="none"/>`);
    }
    for (const p of pts) {
      const [x, y] = p.split(',');
      parts.push(`<circle cx="${x}" cy="${y}" r="4" class="phase-pcrit-dot"/>`);
    }
    const bounds = new Map((view.boundaries ?? []).map((b) => [b.group, b]));
    L.rows.forEach((r, i) => {
      const b = bounds.get(r.group);
      const c = b ? columnOf(L.xValues, b.p_star) : null;
      if (c === null) return;
      const x = xOf(c);
      const y = yOf(i);
      parts.push(`<path d="M${x},${y - 7} L${x + 6},${y} L${x},${y + 7} L${x - 6},${y} Z" ` +
        `class="phase-pstar"><title>measured p* = ${fmt(b.p_star)}</title></path>`);
    });
  }
  container.innerHTML = `<svg width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" role="img" aria-label="phase diagram">` +
    `${parts.join('')}</svg>`;
  if (leftFit === null) {
    const widest = Math.max(0, ...[...container.querySelectorAll('.phase-label')]
      .map((t) => t.getComputedTextLength?.() ?? 0));
    if (widest + 12 > left) return drawPhase(container, view, Math.ceil(widest + 16));
  }
  return L;
}
