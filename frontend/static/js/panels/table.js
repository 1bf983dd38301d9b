// The task itself: the group's M×M table (row a, column b, cell a∘b), each cell coloured by
// whether it is a training pair and whether the network's answer at the shown step is right.
// One canvas pixel per cell, scaled up without smoothing: M = 256 (65,536 cells) stays cheap,
// where one DOM node or one SVG shape per cell would not.

import { tableLoader } from '../task-table.js';

// pale = a training pair, saturated = a test pair; blue = right, vermillion = wrong (Okabe–Ito)
export const CELL_KINDS = [
  { key: 'train_right', label: 'train, right', rgb: [169, 211, 238] },
  { key: 'train_wrong', label: 'train, wrong', rgb: [242, 190, 152] },
  { key: 'test_right', label: 'test, right', rgb: [0, 114, 178] },
  { key: 'test_wrong', label: 'test, wrong', rgb: [213, 94, 0] },
];
const MAX_SIDE = 640; // css px of the grid itself
const LABEL_FONT = '12px system-ui, "DejaVu Sans", sans-serif';
const LABEL_PITCH = 15; // css px a row label needs

/** Cell kind index from its flags byte: bit 0 = training pair, bit 1 = answered right. */
function kindOf(flag) {
  return (flag & 1 ? 0 : 2) + (flag & 2 ? 0 : 1);
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

export default {
  id: 'table',
  title: 'The table the network learns',
  caption: 'Every pair (a, b) of the group: row a, column b. Pale cells are the training ' +
    'pairs, strong ones the test pairs; blue = the network answers a∘b right at this step, ' +
    'vermillion = wrong. Grokking is the strong vermillion turning blue. Click a cell to ask ' +
    'the network about it.',
  deps: ['snapshot', 'run', 'task'],
  minInterval: 150,
  mount(container, state) {
    const loader = tableLoader(state);
    const counts = {};
    const legend = el('div', { className: 'task-legend' });
    for (const kind of CELL_KINDS) {
      const swatch = el('span', { className: 'task-swatch' });
      swatch.style.background = `rgb(${kind.rgb.join(',')})`;
      counts[kind.key] = el('b', {});
      counts[kind.key].dataset.testid = `table-count-${kind.key}`;
      legend.append(el('span', { className: 'task-legend-item' }, swatch, ` ${kind.label} `,
        counts[kind.key]));
    }
    const meta = el('p', { className: 'panel-meta', textContent: 'start a run to see its table' });
    const canvas = el('canvas', { className: 'task-canvas' });
    canvas.setAttribute('role', 'img');
    const wrap = el('div', { className: 'task-canvas-wrap' }, canvas);
    const readout = el('p', { className: 'task-readout',
      textContent: 'hover a cell: a∘b, its answer and the network\'s' });
    const root = el('div', { className: 'task-table' }, legend, meta, wrap, readout);
    root.dataset.testid = 'table-view';
    container.append(root);

    const off = document.createElement('canvas'); // M×M, one pixel per cell
    let shown = null; // the decoded table on the canvas
    let geom = null; // {gutter, side, cell}
    let hover = null; // {a, b}

    function paint(t) {
      const m = t.order;
      off.width = m;
      off.height = m;
      const octx = off.getContext('2d');
      const img = octx.createImageData(m, m);
      const n = [0, 0, 0, 0];
      const rgb = CELL_KINDS.map((k) => k.rgb);
      for (let i = 0; i < m * m; i++) {
        const kind = kindOf(t.flags[i]);
        n[kind] += 1;
        const c = rgb[kind];
        img.data[4 * i] = c[0];
        img.data[4 * i + 1] = c[1];
        img.data[4 * i + 2] = c[2];
        img.data[4 * i + 3] = 255;
      }
      octx.putImageData(img, 0, 0);
      CELL_KINDS.forEach((k, i) => { counts[k.key].textContent = String(n[i]); });
      root.dataset.counts = JSON.stringify(Object.fromEntries(CELL_KINDS.map((k, i) =>
        [k.key, n[i]])));
      const nTrain = n[0] + n[1];
      const nTest = n[2] + n[3];
      const pct = (x, of) => (of ? (100 * x / of).toFixed(1) : '0.0');
      meta.textContent = `${t.group} · step ${t.step}${t.asked !== null &&
        t.asked !== undefined && t.asked !== t.step ? ` (the snapshot at or before ${t.asked})`
        : ''} · train ${pct(n[0], nTrain)}% right · test ${pct(n[2], nTest)}% right`;
      canvas.setAttribute('aria-label', `table of ${t.group} at step ${t.step}: ` +
        `${n[0]} of ${nTrain} training pairs and ${n[2]} of ${nTest} test pairs right`);
    }

    function layout(t) {
      const ctx = canvas.getContext('2d');
      ctx.font = LABEL_FONT;
      const longest = Math.max(...t.names.map((s) => ctx.measureText(s).width));
      const gutter = Math.ceil(Math.min(longest, 110)) + 8;
      const width = Math.max(120, wrap.clientWidth || 320);
      // square, and short enough that the whole grid and its readout fit the window
      const tall = (window.innerHeight || 800) * 0.8 - gutter;
      const side = Math.max(120, Math.min(MAX_SIDE, width - gutter, tall));
      return { gutter, side, cell: side / t.order, width: gutter + side };
    }

    function render() {
      const t = shown;
      if (!t) return;
      geom = layout(t);
      const { gutter, side, cell } = geom;
      canvas.dataset.gutter = String(gutter); // css px, for tests and tools that point at cells
      canvas.dataset.cell = String(cell);
      const dpr = window.devicePixelRatio || 1;
      const css = gutter + side;
      if (canvas.width !== Math.round(css * dpr)) {
        canvas.width = canvas.height = Math.round(css * dpr);
        canvas.style.width = canvas.style.height = `${css}px`;
      }
      const ctx = canvas.getContext('2d');
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, css, css);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(off, gutter, gutter, side, side);
      if (cell >= 8) { // cell borders once cells are big enough to read as a grid
        ctx.strokeStyle = 'rgba(255,255,255,0.7)';
        ctx.lineWidth = 1;
        ctx.beginPath();
        for (let i = 1; i < t.order; i++) {
          const p = Math.round(gutter + i * cell) + 0.5;
          ctx.moveTo(p, gutter);
          ctx.lineTo(p, gutter + side);
          ctx.moveTo(gutter, p);
          ctx.lineTo(gutter + side, p);
        }
        ctx.stroke();
      }
      // every k-th element's name on both axes, as many as fit
      ctx.font = LABEL_FONT;
      ctx.fillStyle = '#333';
      const every = Math.max(1, Math.ceil(LABEL_PITCH / cell));
      ctx.textBaseline = 'middle';
      ctx.textAlign = 'right';
      for (let i = 0; i < t.order; i += every) {
        ctx.fillText(t.names[i], gutter - 4, gutter + (i + 0.5) * cell, gutter - 6);
      }
      ctx.save();
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = 'left';
      for (let i = 0; i < t.order; i += every) {
        ctx.fillText(t.names[i], -gutter + 4, gutter + (i + 0.5) * cell, gutter - 6);
      }
      ctx.restore();
      if (hover) {
        ctx.strokeStyle = '#000';
        ctx.lineWidth = 2;
        ctx.strokeRect(gutter, gutter + hover.a * cell, side, cell); // the row
        ctx.strokeRect(gutter + hover.b * cell, gutter, cell, side); // the column
      }
    }

    function describe(a, b) {
      const t = shown;
      const i = a * t.order + b;
      const right = (t.flags[i] & 2) !== 0;
      const n = t.names;
      return `${n[a]} ∘ ${n[b]} = ${n[t.label[i]]} · the network says ${n[t.prediction[i]]} ` +
        `${right ? '✓' : '✗'} · margin ${t.margin[i].toFixed(3)} · ` +
        `${t.flags[i] & 1 ? 'a training pair' : 'a test pair'} (step ${t.step})`;
    }

    function cellAt(ev) {
      if (!shown || !geom) return null;
      const r = canvas.getBoundingClientRect();
      const x = ev.clientX - r.left - geom.gutter;
      const y = ev.clientY - r.top - geom.gutter;
      if (x < 0 || y < 0 || x >= geom.side || y >= geom.side) return null;
      return { a: Math.floor(y / geom.cell), b: Math.floor(x / geom.cell) };
    }

    canvas.addEventListener('mousemove', (ev) => {
      const at = cellAt(ev);
      if (at?.a === hover?.a && at?.b === hover?.b) return;
      hover = at;
      if (at) readout.textContent = describe(at.a, at.b);
      render();
    });
    canvas.addEventListener('mouseleave', () => { hover = null; render(); });
    canvas.addEventListener('click', (ev) => {
      const at = cellAt(ev);
      if (!at) return;
      hover = at; // a tap on a touch screen has no hover: show the cell's answer here too
      readout.textContent = describe(at.a, at.b);
      render();
      state.askPair = { ...at, at: performance.now() }; // read by panels/ask.js
      state.bump('task');
      document.getElementById('panel-ask')?.scrollIntoView({ block: 'nearest' });
    });
    new ResizeObserver(() => render()).observe(wrap);

    return {
      draw() {
        loader.want();
        const t = loader.current;
        if (!t) {
          shown = null;
          wrap.hidden = true;
          meta.textContent = state.run?.id ? (loader.error ?? 'waiting for the first snapshot…')
            : 'start a run to see its table';
          return undefined;
        }
        wrap.hidden = false;
        if (t !== shown) {
          const t0 = performance.now();
          shown = t;
          paint(t);
          render();
          root.dataset.step = String(t.step);
          root.dataset.drawMs = (performance.now() - t0).toFixed(2);
          root.dataset.draws = String(Number(root.dataset.draws ?? 0) + 1);
          if (hover && hover.a < t.order && hover.b < t.order) {
            readout.textContent = describe(hover.a, hover.b);
          } else hover = null;
        }
        if (loader.error && t) meta.textContent = `${loader.error} (showing step ${t.step})`;
        return undefined;
      },
    };
  },
};
