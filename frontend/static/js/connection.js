// One WebSocket to /ws/runs/{id} that reconnects by itself with exponential backoff and
// resumes with since=<last seq>, so a network blip or a server restart loses nothing.

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 8000;

export class RunConnection {
  /** handlers: onText(msg), onBinary(ArrayBuffer), onState(state, retryInMs),
   *  shouldRetry(closeCode) */
  constructor(runId, handlers) {
    this.runId = runId;
    this.handlers = handlers;
    this.lastSeq = 0;
    this.backoff = BACKOFF_START_MS;
    this.ws = null;
    this.timer = null;
    this.closed = false;
  }

  open() {
    if (this.closed) return;
    const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${proto}//${window.location.host}/ws/runs/${encodeURIComponent(this.runId)}` +
      `?since=${this.lastSeq}`;
    this.handlers.onState('connecting', 0);
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => { this.handlers.onState('open', 0); };
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') {
        const msg = JSON.parse(ev.data);
        if (msg.type === 'hello') this.backoff = BACKOFF_START_MS; // healthy again
        if (typeof msg.seq === 'number' && msg.seq > this.lastSeq) this.lastSeq = msg.seq;
        this.handlers.onText(msg);
      } else {
        const seq = this.handlers.onBinary(ev.data);
        if (typeof seq === 'number' && seq > this.lastSeq) this.lastSeq = seq;
      }
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed || !this.handlers.shouldRetry(ev.code)) {
        this.handlers.onState('closed', 0);
        return;
      }
      const wait = this.backoff;
      this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
      this.handlers.onState('retrying', wait);
      this.timer = setTimeout(() => this.open(), wait);
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close();
    }
  }
}
