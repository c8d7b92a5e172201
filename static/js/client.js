// The run client: owns one websocket to a run, reconnects by itself and resumes
// from the last frame it saw, acknowledges frames (flow control), and drops
// anything it has already seen. See docs/protocol.md.

const ACK_EVERY = 5;

export class RunClient extends EventTarget {
  constructor(runId, { url } = {}) {
    super();
    this.runId = runId;
    this.url = url || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/runs/${runId}/`;
    this.lastSeq = 0;
    this.lastSub = 0;
    this.ws = null;
    this.closed = false;
    this.retry = 0;
    this.refs = 0;
    this.pending = new Map();
    this.ackedSeq = 0;
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const ws = new WebSocket(`${this.url}?after=${this.lastSeq}`);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.retry = 0;
      this.emit("connection", { state: "open" });
    });
    ws.addEventListener("message", (e) => this.receive(e.data));
    ws.addEventListener("close", (e) => {
      if (this.ws !== ws) return;
      for (const [, p] of this.pending) p.reject(new Error("connection lost"));
      this.pending.clear();
      if (e.code === 4404 || this.closed) {
        this.emit("connection", { state: "closed", code: e.code });
        return;
      }
      const delay = Math.min(10000, 300 * 2 ** this.retry++) * (0.75 + Math.random() / 2);
      this.emit("connection", { state: "reconnecting", delay });
      setTimeout(() => this.connect(), delay);
    });
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    switch (msg.type) {
      case "frame":
        if (msg.seq <= this.lastSeq) return; // already seen (a replay or a resumed worker)
        this.lastSeq = msg.seq;
        this.lastSub = 0;
        this.emit("frame", msg);
        if (this.lastSeq - this.ackedSeq >= ACK_EVERY) this.ack();
        break;
      case "snapshot":
        if (msg.frame.seq <= this.lastSeq) return;
        this.lastSeq = msg.frame.seq;
        this.emit("snapshot", msg.frame);
        this.ack();
        break;
      case "status":
        if (msg.seq < this.lastSeq || (msg.seq === this.lastSeq && msg.sub && msg.sub <= this.lastSub)) return;
        this.emit("status", msg);
        break;
      case "accepted":
      case "error": {
        const waiting = this.pending.get(msg.ref);
        if (waiting) {
          this.pending.delete(msg.ref);
          if (msg.type === "accepted") waiting.resolve(msg);
          else waiting.reject(Object.assign(new Error(msg.message), { field: msg.field }));
        } else if (msg.type === "error") {
          this.emit("error", msg);
        }
        break;
      }
      default:
        this.emit(msg.type, msg);
    }
  }

  ack() {
    this.ackedSeq = this.lastSeq;
    this.sendRaw({ type: "seen", seq: this.lastSeq });
  }

  sendRaw(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  // Send a control; resolves when the server accepts it, rejects with its error.
  control(msg) {
    const ref = ++this.refs;
    return new Promise((resolve, reject) => {
      if (!this.sendRaw({ ...msg, ref })) {
        reject(new Error("not connected; reconnecting"));
        return;
      }
      this.pending.set(ref, { resolve, reject });
      setTimeout(() => {
        if (this.pending.delete(ref)) reject(new Error("no answer from the server"));
      }, 8000);
    });
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
