// Attaching the page to one run: the websocket's messages go into the shared state.

import { api } from './api.js';
import { RunConnection } from './connection.js';
import { backfillHistory } from './history.js';
import { decodeSnapshot } from './protocol.js';
import { addStage, appendRows, resetRunData, setSnapshot } from './state.js';

export const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'interrupted']);
export const ACTIVE = new Set(['queued', 'running']);
const CLOSE_NOT_FOUND = 4404; // server/routes/live.py

let connection = null;

export function lastSeq() {
  return connection ? connection.lastSeq : 0;
}

function applyRun(state, fields) {
  state.run = { ...state.run, ...fields };
  state.bump('run');
}

function onText(state, msg) {
  switch (msg.type) {
    case 'hello':
      state.hellos += 1;
      // something happened before this connection (a reload, or a gap while reconnecting)
      if (msg.latest_seq > 0) backfillHistory(state, msg.run_id);
      if (msg.started) state.started = msg.started;
      if (msg.summary) state.summary = msg.summary;
      applyRun(state, { status: msg.status, queue_position: msg.queue_position ?? null,
        error: msg.error ?? null });
      break;
    case 'started':
      state.started = msg.started ?? msg;
      applyRun(state, { status: 'running', queue_position: null });
      break;
    case 'metrics':
      appendRows(state, msg.rows ?? []);
      break;
    case 'stage':
      addStage(state, { step: msg.step, stage: msg.stage, evidence: msg.evidence ?? {},
        layer: Number.isInteger(msg.layer) ? msg.layer : 1 }); // old runs: layer 1
      break;
    case 'status':
      if (msg.started) state.started = msg.started;
      applyRun(state, { status: msg.status, queue_position: msg.queue_position ?? null,
        error: msg.error ?? state.run.error });
      break;
    case 'finished':
      state.summary = msg.summary ?? {};
      applyRun(state, { status: msg.status ?? 'completed', error: msg.error ?? state.run.error });
      break;
    case 'error':
      applyRun(state, { error: msg.message ?? msg.detail ?? msg.error ?? 'the run failed' });
      break;
    default:
      break;
  }
}

/** Detaches from any run, clears the panels and follows `runId` live. */
export function attachRun(state, runId) {
  detachRun();
  resetRunData(state);
  state.run = { id: runId, status: 'connecting', queue_position: null, error: null };
  const conn = new RunConnection(runId, {
    onText: (msg) => { if (msg.run_id === undefined || msg.run_id === runId) onText(state, msg); },
    onBinary: (buf) => {
      const snap = decodeSnapshot(buf);
      if (snap.runId === runId) setSnapshot(state, snap);
      return snap.seq;
    },
    onState: (s, wait) => {
      state.connection = { state: s, retryAt: performance.now() + wait };
      state.bump('run');
      if (s === 'retrying') checkRunExists(state, conn);
    },
    // 4404: the server has no such run; anything else may be a blip or a restart
    shouldRetry: (code) => code !== CLOSE_NOT_FOUND && !TERMINAL.has(state.run?.status),
  });
  connection = conn;
  conn.open();
}

/** While retrying, ask the REST API whether the run still exists: stop on a 404. */
async function checkRunExists(state, conn) {
  try {
    const run = await api.run(conn.runId);
    if (connection === conn && run && !ACTIVE.has(run.status) && TERMINAL.has(run.status)) {
      applyRun(state, { status: run.status, error: run.error ?? state.run.error });
    }
  } catch (exc) {
    if (exc.status === 404 && connection === conn) {
      conn.close();
      applyRun(state, { status: 'failed', error: `run ${conn.runId} not found on the server` });
      state.connection = { state: 'closed', retryAt: 0 };
    }
  }
}

export function detachRun() {
  if (connection) connection.close();
  connection = null;
}
