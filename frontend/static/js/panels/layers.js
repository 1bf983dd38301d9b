// The layers strip under the curves (runs with two or more hidden layers): one row per hidden
// layer, the bottom one at the bottom, each that layer's stage over time as coloured bands
// (the curves' colours and words). A depth-1 run has one layer, whose stages the curves'
// bands already show, so the strip stays hidden there.

import { eventLayer, isNetworkStage, runDepth, stageBands, stagesOf } from '../layers.js';
import { pinShape } from '../scrub.js';
import { TERMINAL } from '../session.js';
import { lastValue } from '../state.js';
import { VOCAB, stageInfo } from '../vocabulary.js';
import { baseLayout, plotDiv, react } from './plot.js';

const ROW = 0.42; // half a row's height, in layer units

const MIN_CURVES_REM = 22; // the curves' plot keeps at least this height beside the strip

/** The strip joins the first view (the hero: curves beside the cards) when the curves keep a
 *  readable height above it; otherwise it follows the hero. style.css takes its height from
 *  --layers-h. */
function fitHero(section) {
  const panels = section?.parentElement;
  const curves = document.getElementById('panel-curves');
  const plot = curves?.querySelector('.plot');
  if (!panels || !plot || section.hidden) return;
  const root = document.documentElement;
  const rem = parseFloat(getComputedStyle(root).fontSize);
  const hero = parseFloat(getComputedStyle(root).getPropertyValue('--hero'));
  const header = plot.getBoundingClientRect().top - curves.getBoundingClientRect().top;
  const need = header + MIN_CURVES_REM * rem + 2 * rem + section.offsetHeight;
  panels.classList.toggle('layers-in-hero', Number.isFinite(hero) && need <= hero);
  keepHeight(section); // measured again: in the hero the strip is narrower, its text may wrap
}

function keepHeight(section) {
  section.parentElement?.style.setProperty('--layers-h', `${section.offsetHeight}px`);
}

/** Invisible points at each stage's onset, so hovering a band names its stage and layer. */
function onsetTrace(stages, layer) {
  return { type: 'scatter', mode: 'markers', x: stages.map((s) => Math.max(s.step, 0)),
    y: stages.map(() => layer), marker: { size: 14, opacity: 0 }, showlegend: false,
    name: `layer ${layer}`,
    text: stages.map((s) => `layer ${layer}: ${stageInfo(s.stage).label}` +
      (isNetworkStage(s) && eventLayer(s) !== layer ? ' (the whole network)' : '')),
    hovertemplate: '%{text}<br>from step %{x}<extra></extra>' };
}

export default {
  id: 'layers',
  testid: 'layers-strip',
  title: 'Layers',
  caption: 'Each hidden layer\'s stage over time, the bottom layer (which sees the input) ' +
    'at the bottom; the curves\' bands are the bottom layer\'s.',
  deps: ['stages', 'metrics', 'run', 'view', 'snapshot'],
  minInterval: 250,
  mount(container, state) {
    const section = container.closest('section');
    if (section) section.hidden = true;
    const meta = Object.assign(document.createElement('p'), { className: 'panel-meta' });
    const div = plotDiv(container, 'plot strip');
    container.append(meta);
    window.addEventListener('resize', () => fitHero(section));
    if (section && window.ResizeObserver) {
      new ResizeObserver(() => keepHeight(section)).observe(section);
    }
    return {
      draw() {
        const depth = runDepth(state);
        if (section) section.hidden = depth < 2;
        if (depth < 2) return undefined;
        const logX = !!state.settings.log_steps;
        const lastStep = lastValue(state, 'step') ?? 0;
        // the same plot area as the curves above, so a step sits at the same x in both
        const size = document.querySelector('#panel-curves .plot')?._fullLayout?._size;
        const margin = size ? { l: size.l, r: size.r } : { l: 64, r: 20 };
        const width = size?.w ?? div.clientWidth - margin.l - margin.r;
        const pxPerStep = logX ? null : width / Math.max(lastStep, 1);
        const shapes = [];
        const annotations = [];
        const data = [];
        const counts = [];
        for (let layer = 1; layer <= depth; layer += 1) {
          const own = stagesOf(state.stages, layer);
          counts.push(own.filter((s) => !isNetworkStage(s)).length);
          const bands = stageBands(own, lastStep, { logX, yref: 'y', y0: layer - ROW,
            y1: layer + ROW, labelAt: 'middle', opacity: 0.55, labelSize: 13, pxPerStep });
          shapes.push(...bands.shapes);
          annotations.push(...bands.annotations);
          data.push(onsetTrace(own, layer));
        }
        shapes.push(...pinShape(state));
        div.dataset.rows = String(depth);
        div.style.height = `${3.4 + 2.2 * depth}rem`; // a row per layer, as tall as a label
        const order = state.summary?.layer_order;
        const said = order ? VOCAB.layer_orders?.[order] : null;
        // which stage's onsets the order was read from (li2core: Stage III's where it can be)
        const from = state.summary?.layer_order_stage;
        const orderStage = from ? stageInfo(from).label : 'their stages';
        const ended = TERMINAL.has(state.run?.status);
        meta.textContent = counts.every((n) => n === 0)
          ? (ended ? 'no stages recorded for this run' : 'no stage detected yet')
          : said ? `Order in which the layers reached ${orderStage}: ${said.label}. ` +
            said.says
            : counts.map((n, i) => `layer ${i + 1}: ${n ? `${n} stage${n > 1 ? 's' : ''}`
              : 'none yet'}`).join(' · ');
        meta.dataset.order = order ?? '';
        fitHero(section);
        const ticks = Array.from({ length: depth }, (_, i) => i + 1);
        react(div, data, baseLayout({
          margin: { ...margin, t: 4, b: 36 },
          showlegend: false,
          xaxis: { title: { text: 'step', standoff: 2 }, type: logX ? 'log' : 'linear',
            range: logX ? [0, Math.log10(Math.max(lastStep, 10))] : [0, Math.max(lastStep, 1)],
            automargin: true },
          yaxis: { range: [0.5, depth + 0.5], tickvals: ticks, fixedrange: true,
            ticktext: ticks.map((l) => `layer ${l}`), automargin: !size, zeroline: false,
            showgrid: false },
          shapes, annotations,
        }));
        return lastStep;
      },
    };
  },
};
