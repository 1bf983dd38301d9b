// Runs over time on the dashboard: replay controls, lineage and forks, the node inspector's
// picking, exports and import, and the classroom broadcast. main.js calls
// mountRunsOverTime(state, debug, onOpen) once, after the panels are mounted.

import { mountBroadcast } from './classroom.js';
import { addPngButtons, mountExportLinks, mountImport } from './export.js';
import { mountFork } from './fork.js';
import { mountLineage } from './lineage.js';
import { bindNodePicking } from './node-pick.js';
import { mountReplay } from './replay.js';
import { attachRun } from './session.js';
import { addStylesheet, applyPresentation, settingsFromQuery } from './view-flags.js';

/** `onOpen(id, run)` runs after another run is attached (main.js fills the controls). */
export function mountRunsOverTime(state, debug, onOpen = () => {}) {
  addStylesheet('/css/runs-over-time.css');
  Object.assign(state.settings, settingsFromQuery(state.fields));
  applyPresentation(state.settings.present);
  const aside = document.getElementById('controls');
  const info = { run: null }; // the attached run's resource (parent, children, config)

  function openRun(id, run) {
    state.settings.at = undefined; // a new run starts live, not pinned
    state.setSetting('run', id);
    attachRun(state, id);
    if (run) state.run = { ...state.run, ...run };
    onOpen(id, run);
  }

  const heading = document.createElement('h2');
  heading.className = 'aside-heading';
  heading.textContent = 'runs over time';
  aside.append(heading);
  const lineage = mountLineage(state, aside, info, openRun);
  const exports = mountExportLinks(state, aside);
  const fork = mountFork(state, aside, info, openRun);
  const broadcast = mountBroadcast(state, aside);
  mountImport(aside, openRun);
  const compare = document.createElement('p');
  compare.className = 'control-block';
  compare.id = 'block-compare';
  compare.innerHTML = '<a href="/compare.html">compare runs side by side →</a>';
  aside.append(compare);
  mountReplay(state, debug);
  addPngButtons(state);

  let picking = false;
  const loop = () => {
    lineage.update();
    exports.update();
    fork.update();
    broadcast.update();
    if (!picking) picking = bindNodePicking(state);
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);

  Object.defineProperties(debug, {
    markers: { get: () => state.markers ?? [] },
    runInfo: { get: () => info.run },
  });
  debug.inspect = (node) => state.setSetting('node', node);
  debug.openRun = openRun;
}
