// Classroom mode on the instructor's dashboard: broadcast the attached run under a short code
// (students open /watch/<code>), and see how many are watching, live.

import { api, tokenHeaders } from './api.js';
import { history, wsUrl } from './history-api.js';
import { el } from './html.js';

const RETRY_MS = 2000;

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

/** The big card for the room: the code, the address students type, and its QR code. */
function roomDialog() {
  const dlg = el('dialog', { id: 'broadcast-dialog', className: 'room-card' });
  dlg.setAttribute('aria-label', 'class code for the room');
  document.body.append(dlg);
  return (info) => {
    const close = el('button', { type: 'button', textContent: 'close' });
    close.addEventListener('click', () => dlg.close());
    const qr = el('img', { src: info.qr, alt: `QR code of ${info.share_url}`, id: 'broadcast-qr' });
    dlg.replaceChildren(el('p', { className: 'room-code', textContent: info.code }),
      el('p', { className: 'room-url', textContent: info.share_url }), qr,
      el('p', { className: 'hint', textContent: 'Or open the address without the code and ' +
        'type it in.' }), close);
    dlg.showModal();
    close.focus();
  };
}

export function mountBroadcast(state, parent) {
  const button = el('button', { type: 'button', id: 'broadcast', textContent: 'Broadcast to class' });
  const code = el('span', { id: 'broadcast-code', className: 'broadcast-code' });
  const link = el('a', { id: 'broadcast-link', target: '_blank' });
  const viewers = el('span', { id: 'broadcast-viewers' });
  const stopButton = el('button', { type: 'button', id: 'broadcast-end', textContent: 'end',
    title: 'end this broadcast: its watch pages stop following' });
  const bigButton = el('button', { type: 'button', id: 'broadcast-big',
    textContent: 'show code large' });
  const warn = el('p', { className: 'hint', id: 'broadcast-public' });
  const shown = el('div', { className: 'broadcast-shown', hidden: true },
    code, ' ', bigButton, ' ', stopButton, el('br'), link, el('br'), viewers, warn);
  const others = el('ul', { className: 'broadcast-list', id: 'broadcast-list' });
  const message = el('p', { className: 'field-error', id: 'broadcast-error' });
  const box = el('div', { className: 'control-block', id: 'block-broadcast' },
    el('label', { textContent: 'classroom' }), button, shown, others, message);
  parent.append(box);
  const showLarge = roomDialog();
  let socket = null;
  let current = null; // {code, run_id, share_url, qr}
  let open = []; // every open broadcast on the server (any browser of the instructor's)

  function watch(info) {
    socket?.close();
    current = info;
    shown.hidden = false;
    code.textContent = info.code;
    link.href = info.url;
    link.textContent = info.share_url ?? `${window.location.origin}${info.url}`;
    const loopback = /^https?:\/\/(127\.|localhost|\[::1\])/.test(link.textContent);
    warn.textContent = loopback ? 'This address only works on this machine: start the ' +
      'server with --public-url (LI2_PUBLIC_URL) set to the address students can reach.' : '';
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
          refreshList();
        }
      },
    });
  }

  /** The server's open broadcasts: the instructor's other browsers see the same list. */
  async function refreshList() {
    try {
      open = (await api.broadcasts(tokenHeaders())).broadcasts;
    } catch {
      open = []; // no token yet: the list appears once one is given
    }
    others.replaceChildren(...open.filter((b) => b.code !== current?.code).map((b) => {
      const use = el('button', { type: 'button', textContent: `use ${b.code}`,
        title: `show the run on screen to the class following ${b.code}` });
      use.addEventListener('click', () => broadcast(b.code));
      const end = el('button', { type: 'button', textContent: 'end' });
      end.setAttribute('aria-label', `end broadcast ${b.code}`);
      end.addEventListener('click', () => endCode(b.code));
      return el('li', {}, `${b.code} · run ${b.run_id} · ${b.viewers} watching `, use, ' ', end);
    }));
  }

  async function broadcast(reuse) {
    const runId = state.run?.id;
    if (!runId) return;
    message.textContent = '';
    // the class keeps its code: switch the one on screen, else the newest open one
    const code = reuse ?? current?.code ?? open[0]?.code;
    try {
      const info = await history.broadcast(runId, code || undefined);
      watch(info);
      refreshList();
    } catch (exc) {
      message.textContent = exc.message;
      if (exc.status === 401 || exc.status === 403) {
        document.getElementById('token-block')?.removeAttribute('hidden');
      }
    }
  }

  async function endCode(which) {
    try {
      await api.endBroadcast(which, tokenHeaders());
    } catch (exc) {
      if (exc.status !== 404) {
        message.textContent = exc.message;
        return;
      }
    }
    if (current?.code === which) {
      socket?.close();
      shown.hidden = true;
      current = null;
    }
    refreshList();
  }

  button.addEventListener('click', () => broadcast());
  stopButton.addEventListener('click', () => current && endCode(current.code));
  bigButton.addEventListener('click', () => current && showLarge(current));
  refreshList();
  let lastRun = null;

  return {
    update() {
      const id = state.run?.id ?? null;
      button.disabled = !id;
      const live = current && current.run_id === id;
      const reusable = current?.code ?? open[0]?.code;
      button.textContent = live ? 'Broadcasting this run'
        : reusable ? `Switch class ${reusable} to this run` : 'Broadcast to class';
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
