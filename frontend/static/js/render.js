// The render loop: on each animation frame, redraw the panels whose inputs changed, each no
// more often than its interval. Intervals stretch with a panel's draw time (≤ ~20% of the
// time spent drawing it), so a heavy panel never makes the page fall behind the data.

const LATENCY_KEEP = 1000;

/** Builds each registered panel in its own box; a panel that throws shows the error there. */
export function mountPanels(state, panels, root) {
  return panels.map((panel) => {
    const section = document.createElement('section');
    section.className = 'panel';
    section.id = `panel-${panel.id}`;
    if (panel.testid) section.dataset.testid = panel.testid;
    section.setAttribute('aria-labelledby', `panel-${panel.id}-title`);
    const h2 = Object.assign(document.createElement('h2'), { textContent: panel.title,
      id: `panel-${panel.id}-title` });
    const cap = Object.assign(document.createElement('p'),
      { className: 'caption', textContent: panel.caption });
    const body = document.createElement('div');
    body.className = 'panel-body';
    const err = Object.assign(document.createElement('pre'), { className: 'panel-error' });
    section.append(h2, cap, body, err);
    root.append(section);
    const host = { panel, body, err, instance: null, lastSig: '', lastDraw: -Infinity, epoch: 0,
      interval: panel.minInterval ?? 100, draws: 0 };
    try {
      host.instance = panel.mount(body, state);
    } catch (exc) {
      showError(host, exc);
    }
    return host;
  });
}

/** Another run was attached: empty every plot of the panel (keeping its click handlers) before
 *  it draws again, so nothing of the previous run stays on screen while the new one starts. */
function forgetRun(host, state) {
  host.epoch = state.epoch;
  host.lastSig = '';
  host.err.textContent = '';
  for (const div of host.body.querySelectorAll('.plot')) {
    if (!div.data || !window.Plotly) continue;
    const { shapes, annotations, ...layout } = div.layout ?? {};
    window.Plotly.react(div, [], layout);
  }
  for (const meta of host.body.querySelectorAll('[data-waiting]')) {
    meta.textContent = meta.dataset.waiting;
  }
}

/** A stored run that kept no weight snapshots (e.g. a sweep's cell, or snapshot_every beyond
 *  its steps): panels that wait for one say it will not come instead of waiting. */
function markUnrecorded(hosts) {
  for (const host of hosts) {
    for (const note of host.body.querySelectorAll('[data-waiting]')) {
      if (note.textContent === note.dataset.waiting && /snapshot/.test(note.textContent)) {
        note.textContent = 'not recorded: this run kept no weight snapshots';
      }
    }
  }
}

function showError(host, exc) {
  host.err.textContent = `This panel failed: ${exc?.message ?? exc}`;
  console.error(`panel ${host.panel.id}`, exc);
}

export function startRenderLoop(state, hosts, debug, onFrame = () => {}) {
  debug.redraws = 0;
  debug.latencies = [];
  debug.endToEnd = [];
  debug.panelDraws = {};
  debug.drawnStep = -1;
  const frame = (now) => {
    let drew = false;
    for (const host of hosts) {
      if (!host.instance) continue;
      if (host.epoch !== state.epoch) forgetRun(host, state);
      const sig = host.panel.deps.map((d) => state.versions[d]).join(',');
      if (sig === host.lastSig || now - host.lastDraw < host.interval) continue;
      const t0 = performance.now();
      let drawnStep;
      try {
        drawnStep = host.instance.draw();
        if (host.err.textContent) host.err.textContent = '';
      } catch (exc) {
        showError(host, exc);
      }
      const t1 = performance.now();
      host.interval = Math.max(host.panel.minInterval ?? 100, 5 * (t1 - t0));
      host.lastSig = sig;
      host.lastDraw = now;
      host.draws += 1;
      debug.panelDraws[host.panel.id] = host.draws;
      drew = true;
      recordLatency(state, debug, drawnStep, t1);
    }
    if (drew) debug.redraws += 1;
    if (state.recordedSnapshots === 0) markUnrecorded(hosts);
    onFrame(now);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

/** Time from a metrics row's arrival to the first draw that shows it (latencies), and from
 *  the worker producing it to that draw (endToEnd; same machine's clock, so only meaningful
 *  when browser and server share one). */
function recordLatency(state, debug, step, t) {
  if (typeof step !== 'number' || step <= debug.drawnStep) return;
  debug.drawnStep = step;
  const arrived = state.arrivals.get(step);
  if (arrived === undefined) return;
  debug.latencies.push(t - arrived);
  if (debug.latencies.length > LATENCY_KEEP) debug.latencies.shift();
  const produced = state.produced.get(step);
  if (produced !== undefined) {
    debug.endToEnd.push(performance.timeOrigin + t - produced);
    if (debug.endToEnd.length > LATENCY_KEEP) debug.endToEnd.shift();
  }
}
