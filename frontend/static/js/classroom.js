// Classroom mode on the instructor's dashboard: broadcast the attached run under a short code
// (students open /watch/<code>), and see how many are watching, live.

import { tokenHeaders } from './api.js';
import { history, wsUrl } from './history-api.js';

const CODE_KEY = 'li2-broadcast-code'; // the class's code: the next broadcast reuses it
const RETRY_MS = 2000;

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** A websocket on /ws/watch/<code> that reconnects; onMessage gets each JSON message. */
export function watchSocket(code, { counted, onMessage, onClose = () => {} }) {
  let ws = null;
  let closed = false;
  let timer = null;
  const open = () => {
    ws = new WebSocket(wsUrl(`/ws/watch/${encodeURIComponent(code)}${counted ? '' : '?count=0'}`));
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    ws.onclose = () => {
      onClose();
      if (!closed) timer = setTimeout(open, RETRY_MS);
    };
  };
  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      ws?.close();
    },
  };
}

export function mountBroadcast(state, parent) {
  const button = el('button', { type: 'button', id: 'broadcast', textContent: 'Broadcast to class' });
  const code = el('span', { id: 'broadcast-code', className: 'broadcast-code' });
  const link = el('a', { id: 'broadcast-link', target: '_blank' });
  const viewers = el('span', { id: 'broadcast-viewers' });
  const stopButton = el('button', { type: 'button', id: 'broadcast-end', textContent: 'end' });
  const shown = el('div', { className: 'broadcast-shown', hidden: true },
    code, ' ', stopButton, el('br'), link, el('br'), viewers);
  const message = el('p', { className: 'field-error', id: 'broadcast-error' });
  const box = el('div', { className: 'control-block', id: 'block-broadcast' },
    el('label', { textContent: 'classroom' }), button, shown, message);
  parent.append(box);
  let socket = null;
  let current = null; // {code, run_id}

  function watch(info) {
    socket?.close();
    current = info;
    shown.hidden = false;
    code.textContent = info.code;
    link.href = info.url;
    link.textContent = `${window.location.origin}${info.url}`;
    viewers.textContent = `${info.viewers} watching`;
    socket = watchSocket(info.code, {
      counted: false,
      onMessage: (msg) => {
        if (msg.type === 'watch') {
          viewers.textContent = `${msg.viewers} watching`;
          viewers.dataset.count = String(msg.viewers);
          current = { ...current, run_id: msg.run_id };
        } else if (msg.type === 'ended' || msg.type === 'error') {
          socket?.close();
          shown.hidden = true;
          current = null;
        }
      },
    });
  }

  async function broadcast() {
    const runId = state.run?.id;
    if (!runId) return;
    message.textContent = '';
    const remembered = localStorage.getItem(CODE_KEY);
    try {
      let info;
      try {
        info = await history.broadcast(runId, remembered || undefined);
      } catch (exc) {
        if (!remembered || exc.status !== 422) throw exc;
        localStorage.removeItem(CODE_KEY); // that code has ended: start a new one
        info = await history.broadcast(runId);
      }
      localStorage.setItem(CODE_KEY, info.code);
      watch(info);
    } catch (exc) {
      message.textContent = exc.message;
      if (exc.status === 401 || exc.status === 403) {
        document.getElementById('token-block')?.removeAttribute('hidden');
      }
    }
  }

  async function end() {
    if (!current) return;
    try {
      const resp = await fetch(`/api/broadcasts/${encodeURIComponent(current.code)}`, {
        method: 'DELETE', headers: tokenHeaders() });
      if (!resp.ok && resp.status !== 404) throw new Error(`could not end it (${resp.status})`);
      localStorage.removeItem(CODE_KEY);
      socket?.close();
      shown.hidden = true;
      current = null;
    } catch (exc) {
      message.textContent = exc.message;
    }
  }

  button.addEventListener('click', broadcast);
  stopButton.addEventListener('click', end);
  let lastRun = null;

  return {
    update() {
      const id = state.run?.id ?? null;
      button.disabled = !id;
      const live = current && current.run_id === id;
      button.textContent = !current ? 'Broadcast to class'
        : live ? 'Broadcasting this run' : 'Switch class to this run';
      if (id !== lastRun) {
        lastRun = id;
        // a run already broadcast (e.g. after a reload) shows its code again
        if (id && !current) {
          history.broadcastOf(id).then((info) => info.code && watch(info)).catch(() => {});
        }
      }
    },
  };
}
