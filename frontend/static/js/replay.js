// Replay of a stored run: play/pause at a chosen speed and hover-to-scrub on the curves, both
// driving scrub.js's pinned step, so every panel redraws at that step from stored snapshots.
// Playback walks the stored snapshot steps and waits for each to load: it never outruns the
// server, and metric panels move with the array panels.

import { history } from './history-api.js';
import { followLive, pinStep, pinnedStep } from './scrub.js';
import { TERMINAL } from './session.js';
import { el } from './html.js';

export const SPEEDS = [10, 25, 50, 100, 250, 500, 1000, 2500];
const MIN_FRAME_S = 0.05;

/** The step under the mouse on a Plotly figure's x axis, or null outside its plot area. */
export function stepUnderMouse(div, ev) {
  const fl = div._fullLayout;
  const xa = fl?.xaxis;
  if (!xa || typeof xa.p2d !== 'function') return null;
  const rect = div.getBoundingClientRect();
  const px = ev.clientX - rect.left - xa._offset;
  const py = ev.clientY - rect.top - fl._size.t;
  if (px < 0 || px > xa._length || py < 0 || py > fl._size.h) return null;
  const step = xa.p2d(px);
  return Number.isFinite(step) ? Math.round(step) : null;
}

function nearestSpeed(steps) {
  const want = steps / 10; // a whole run in about ten seconds
  return SPEEDS.reduce((a, b) => (Math.abs(Math.log(b / want)) < Math.abs(Math.log(a / want))
    ? b : a));
}

export function mountReplay(state, debug) {
  const play = el('button', { type: 'button', id: 'replay-play', textContent: '▶ play',
    title: 'replay the stored run from its snapshots' });
  const speed = el('select', { id: 'replay-speed', title: 'replay speed' });
  for (const s of SPEEDS) speed.add(new Option(`${s} steps/s`, String(s)));
  const box = el('span', { className: 'control-block replay-controls', id: 'block-replay' },
    play, speed);
  const r = { runId: null, steps: [], playing: false, index: 0, due: 0, committed: undefined,
    hovering: false, speedChosen: false };

  function place() {
    const host = document.querySelector('#panel-curves .scrubber') ??
      document.querySelector('#panel-curves .toolbar') ?? document.getElementById('panels');
    if (host && box.parentElement !== host) host.append(box);
  }

  async function loadSteps(runId) {
    try {
      const steps = await history.snapshotSteps(runId);
      if (r.runId !== runId) return;
      r.steps = steps;
      if (!r.speedChosen && steps.length) {
        speed.value = String(nearestSpeed(steps[steps.length - 1] - steps[0]));
      }
    } catch {
      r.steps = [];
    }
  }

  function available() {
    return !!state.run?.id && TERMINAL.has(state.run.status) && r.steps.length > 0;
  }

  function start() {
    if (!available()) return;
    const at = pinnedStep(state);
    const last = r.steps[r.steps.length - 1];
    // from the pinned step, or from the beginning when following live or at the end
    r.index = at === null || at >= last ? 0 : Math.max(0, r.steps.findIndex((s) => s >= at));
    r.playing = true;
    r.due = 0;
    pinStep(state, r.steps[r.index]);
  }

  function stop() {
    r.playing = false;
  }

  /** The pinned snapshot arrived (playback pins stored steps, so it is that very step); after
   *  a while without it, move on rather than stall. */
  function loaded(step, now) {
    const sc = state.scrub;
    if (!sc || sc.error || sc.snapshot?.step === step) return true;
    if (r.waitingFor !== step) {
      r.waitingFor = step;
      r.waitSince = now;
    }
    return now - r.waitSince > 3000;
  }

  function tick(now) {
    if (state.run?.id !== r.runId) {
      r.runId = state.run?.id ?? null;
      r.steps = [];
      r.playing = false;
      r.committed = undefined;
    }
    if (r.runId && !r.steps.length && TERMINAL.has(state.run?.status) && !r.loading) {
      r.loading = true;
      loadSteps(r.runId).finally(() => { r.loading = false; });
    }
    place();
    if (r.playing) {
      const step = r.steps[r.index];
      if (pinnedStep(state) !== step) {
        r.playing = false; // the user moved the slider or clicked: they take over
      } else if (loaded(step, now)) {
        if (!r.due) {
          const next = r.steps[r.index + 1];
          const dt = next === undefined ? 0 : Math.max(MIN_FRAME_S, (next - step) /
            Number(speed.value));
          r.due = now + dt * 1000;
        } else if (now >= r.due) {
          r.due = 0;
          if (r.index + 1 >= r.steps.length) r.playing = false;
          else pinStep(state, r.steps[++r.index]);
        }
      }
    }
    play.textContent = r.playing ? '❚❚ pause' : '▶ play';
    play.disabled = !available();
    box.title = available() ? '' : 'replay works once the run has ended';
  }

  play.addEventListener('click', () => (r.playing ? stop() : start()));
  speed.addEventListener('change', () => { r.speedChosen = true; });

  // hover on the curves previews that step everywhere; leaving restores, a click keeps it
  function bindHover() {
    const div = document.querySelector('#panel-curves .plot');
    if (!div || div.dataset.replayHover) return;
    div.dataset.replayHover = '1';
    div.addEventListener('mousemove', (ev) => {
      if (!available() || r.playing) return;
      const step = stepUnderMouse(div, ev);
      if (step === null) return;
      if (!r.hovering) {
        r.hovering = true;
        r.committed = pinnedStep(state);
      }
      if (pinnedStep(state) !== step) pinStep(state, step);
    });
    div.addEventListener('mouseleave', () => {
      if (!r.hovering) return;
      r.hovering = false;
      if (r.committed === null) followLive(state);
      else if (r.committed !== undefined && r.committed !== pinnedStep(state)) {
        pinStep(state, r.committed);
      }
    });
    div.addEventListener('click', () => {
      if (r.hovering) r.committed = pinnedStep(state);
    });
  }

  const loop = (now) => {
    bindHover();
    tick(now);
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);

  debug.replay = {
    get available() { return available(); },
    get playing() { return r.playing; },
    get steps() { return [...r.steps]; },
    get speed() { return Number(speed.value); },
    play: start,
    pause: stop,
  };
  return debug.replay;
}
