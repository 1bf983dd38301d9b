// Every panel, in page order. A panel module exports {id, title, caption, deps, minInterval,
// mount(container, state) → {draw()}}; deps name the state versions it reads.

import ask from './ask.js';
import coverage from './coverage.js';
import curves from './curves.js';
import duplication from './duplication.js';
import energy from './energy.js';
import gf from './gf.js';
import inspector from './inspector.js';
import layers from './layers.js';
import spectrum from './spectrum.js';
import stage from './stage.js';
import table from './table.js';
import theory from './theory.js';

export const PANELS = [curves, layers, stage, table, ask, spectrum, inspector, coverage,
  duplication, gf, energy, theory];
