// The conversation WebSocket (/v1/stream): config, audio frames out; events (and each audio event's
// binary frame) in. It reconnects by itself when the core goes away (a dev reload, a restart),
// keeping the session, and says so through "status" events.

const FATAL = new Set([1007, 1008]); // the server refused what we sent: retrying would not help
const SERVICE_RESTART = 1012;
const TRY_AGAIN_LATER = 1013; // the core is at its limit of conversations: come back after retry_after

export class Connection extends EventTarget {
  constructor({ sampleRate = 16000 } = {}) {
    super();
    this.sampleRate = sampleRate;
    this.sessionId = sessionStorage.getItem("vox-session") || null;
    this.voice = "";
    this.interim = true;
    this.tools = []; // functions offered to the assistant (tools.js)
    this.key = sessionStorage.getItem("vox-key") || "";
    this.ws = null;
    this.pending = null; // an audio event waiting for its binary frame
    this.retries = 0;
    this.retryAfter = 0; // seconds, from an OVERLOADED refusal
    this.reconnects = 0;
    this.closing = false;
    this.state = "connecting";
  }

  headers() {
    return this.key ? { Authorization: `Bearer ${this.key}` } : {};
  }

  async url() {
    const base = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/stream`;
    if (!this.key) return base;
    const r = await fetch("/v1/auth/ws-token", { method: "POST", headers: this.headers() });
    if (!r.ok) throw new Error(`the key was refused (${r.status})`);
    return `${base}?token=${encodeURIComponent((await r.json()).token)}`;
  }

  async open() {
    this.closing = false;
    this.setState(this.reconnects || this.retries ? "reconnecting" : "connecting");
    let url;
    try {
      url = await this.url();
    } catch (err) {
      this.setState("closed", String(err.message || err));
      return;
    }
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({
        type: "config", sample_rate: this.sampleRate, session_id: this.sessionId, voice: this.voice,
        interim_results: this.interim, tools: this.tools,
      }));
    };
    ws.onmessage = (e) => this.onMessage(e.data);
    ws.onclose = (e) => this.onClose(ws, e);
  }

  onMessage(data) {
    if (typeof data !== "string") {
      const meta = this.pending;
      this.pending = null;
      if (meta) this.emit("audio", { meta, pcm: data });
      return;
    }
    const event = JSON.parse(data);
    if (event.type === "ready") {
      const resumed = this.sessionId === event.session_id;
      this.sessionId = event.session_id;
      sessionStorage.setItem("vox-session", this.sessionId);
      if (this.retries) this.reconnects += 1;
      this.retries = 0;
      this.setState("connected", resumed ? "session resumed" : "new session");
    }
    if (event.type === "audio") this.pending = event;
    if (event.type === "error" && event.retry_after) this.retryAfter = event.retry_after;
    this.emit("event", event);
  }

  onClose(ws, e) {
    if (ws !== this.ws) return;
    this.ws = null;
    if (this.closing) return this.setState("closed", "closed");
    if (FATAL.has(e.code)) return this.setState("closed", e.reason || `refused (${e.code})`);
    // 1012: the core hands the conversation over (a reload, a rolling restart): the instance that
    // took over is serving already. Anything else: it went away; back off until it is back.
    let delay = e.code === SERVICE_RESTART && this.retries === 0 ? 0 : Math.min(5000, 150 * 2 ** this.retries);
    if (e.code === TRY_AGAIN_LATER) delay = Math.max(delay, 1000 * (this.retryAfter || 5));
    this.retryAfter = 0;
    this.retries += 1;
    const why = e.code === TRY_AGAIN_LATER ? "the core is busy" : `core went away (code ${e.code})`;
    this.setState("reconnecting", `${why}; reconnecting in ${delay} ms`);
    setTimeout(() => this.open(), delay);
  }

  setState(state, detail = "") {
    this.state = state;
    this.emit("status", { state, detail });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  get ready() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.state === "connected";
  }

  sendAudio(buffer) {
    if (this.ready) this.ws.send(buffer);
  }

  sendText(text) {
    if (!this.ready) return false;
    this.ws.send(JSON.stringify({ type: "text", text }));
    return true;
  }

  sendToolResult(id, content) {
    if (!this.ready) return false;
    this.ws.send(JSON.stringify({ type: "tool_result", id, content }));
    return true;
  }

  newSession() {
    this.sessionId = null;
    sessionStorage.removeItem("vox-session");
    this.restart();
  }

  restart() {
    // A new config (another voice): same session, new socket.
    if (this.ws) {
      const old = this.ws;
      this.ws = null;
      old.close(1000);
    }
    this.open();
  }
}
