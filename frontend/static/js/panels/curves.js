// Train/test accuracy and loss over steps, with the detected stages as coloured bands.

import { stageBands, stagesOf } from '../layers.js';
import { markerShapes } from '../markers.js';
import { followLive, pinShape, pinStep, pinnedStep } from '../scrub.js';
import { TEST, TRAIN, baseLayout, plotDiv, plotFontSize, react, thinnedSeries, toggle,
  toolbarDiv } from './plot.js';

/** Band labels grow with the page's type (projector mode: html.present). */
function bandLabelSize() {
  return document.documentElement.classList.contains('present') ? plotFontSize() + 2 : 15;
}

/** The bottom layer's stages and the network's outcome (a depth-1 run: all its stages); the
 *  layers strip under the curves shows every layer's. */
function stageShapes(state, lastStep, logX) {
  return stageBands(stagesOf(state.stages, 1), lastStep, { logX, labelSize: bandLabelSize() });
}

/** The step slider: drag (or click the plot) to look back; "live" follows the run again. */
function scrubber(bar, state) {
  const wrap = document.createElement('span');
  wrap.className = 'scrubber';
  const range = Object.assign(document.createElement('input'),
    { type: 'range', min: 0, max: 0, step: 1, id: 'scrub' });
  range.setAttribute('aria-label', 'step shown');
  const label = Object.assign(document.createElement('span'), { id: 'scrub-label' });
  const live = Object.assign(document.createElement('button'),
    { type: 'button', textContent: 'live', id: 'scrub-live' });
  wrap.append('step ', range, label, live);
  bar.append(wrap);
  range.addEventListener('input', () => pinStep(state, Number(range.value)));
  live.addEventListener('click', () => followLive(state));
  return (lastStep) => {
    const pinned = pinnedStep(state);
    range.max = String(Math.max(lastStep, pinned ?? 0));
    if (document.activeElement !== range) range.value = String(pinned ?? lastStep);
    label.textContent = pinned === null ? ' live' : ` ${pinned}` +
      (state.scrub?.error ? ` (${state.scrub.error})` : '');
    live.disabled = pinned === null;
  };
}

export default {
  id: 'curves',
  testid: 'curves',
  title: 'Accuracy and loss',
  caption: 'Train accuracy rises first (memorising); grokking is the later jump in test accuracy.',
  deps: ['metrics', 'stages', 'view'],
  minInterval: 100,
  mount(container, state) {
    const bar = toolbarDiv(container);
    toggle(bar, state, 'log_loss', 'log loss', state.setSetting);
    toggle(bar, state, 'log_steps', 'log steps', state.setSetting);
    const scrub = scrubber(bar, state);
    const div = plotDiv(container, 'plot tall');
    let clickable = false;
    return {
      draw() {
        const n = state.metrics.length;
        const { x, y: col } = thinnedSeries(state);
        const logX = !!state.settings.log_steps;
        const line = (name, key, colour, yaxis, dash) => ({
          type: 'scatter', mode: 'lines', name, x, y: col(key),
          line: { color: colour, width: 3, dash }, yaxis, hoverinfo: 'x+y+name',
          showlegend: yaxis === 'y',
        });
        const data = [
          line('train', 'train_acc', TRAIN, 'y'),
          line('test', 'test_acc', TEST, 'y'),
          line('train', 'train_loss', TRAIN, 'y2'),
          line('test', 'test_loss', TEST, 'y2', 'solid'),
        ];
        const lastStep = n ? x[x.length - 1] : 0;
        const { shapes, annotations } = stageShapes(state, lastStep, logX);
        shapes.push(...pinShape(state));
        const marks = markerShapes(state, logX); // e.g. where a fork left its parent
        shapes.push(...marks.shapes);
        annotations.push(...marks.annotations);
        react(div, data, baseLayout({
          margin: { l: 64, r: 20, t: 64, b: 48 },
          xaxis: { title: { text: 'step', standoff: 4 }, type: logX ? 'log' : 'linear',
            anchor: 'y2', automargin: true },
          // automargin + standoff: the axis titles never sit on the tick labels (10⁻¹ is wide)
          yaxis: { title: { text: 'accuracy', standoff: 6 }, domain: [0.52, 1],
            range: [-0.02, 1.02], automargin: true },
          yaxis2: { title: { text: 'loss', standoff: 6 }, domain: [0, 0.45], automargin: true,
            type: state.settings.log_loss ? 'log' : 'linear', exponentformat: 'power',
            // decades only: Plotly's minor labels (2, 5) crowd a short log axis
            ...(state.settings.log_loss ? { dtick: 1 } : { nticks: 4 }) },
          // above the stage labels, which sit on the plot's top edge
          legend: { orientation: 'h', x: 1, xanchor: 'right', y: 1.1, yanchor: 'bottom' },
          shapes, annotations,
        }));
        scrub(lastStep);
        if (!clickable && div.on) {
          // a click anywhere on the curves pins every panel to that step
          div.on('plotly_click', (ev) => pinStep(state, ev.points[0].x));
          clickable = true;
        }
        return lastStep;
      },
    };
  },
};
