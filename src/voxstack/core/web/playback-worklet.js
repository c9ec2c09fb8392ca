// Gapless playback of the reply's audio as it arrives (runs on the audio thread).
//
// Chunks (Float32 at the context's rate) queue up and play back to back. The
// main thread learns when a turn's first sample actually plays ("started"),
// how many samples have played ("played", about every 50 ms while playing)
// and when the queue runs dry ("idle"); "flush" drops everything queued at
// once (barge-in).
class Playback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];
    this.offset = 0; // read position in queue[0]
    this.played = 0;
    this.turn = -1; // the turn whose audio played last
    this.playing = false;
    this.sinceReport = 0;
    this.port.onmessage = (e) => {
      const m = e.data;
      if (m.type === "push") this.queue.push({ samples: m.samples, turn: m.turn });
      else if (m.type === "flush") {
        const dropped = this.queued();
        this.queue = [];
        this.offset = 0;
        this.port.postMessage({ type: "flushed", dropped, played: this.played });
      }
    };
  }

  queued() {
    return this.queue.reduce((n, c) => n + c.samples.length, 0) - this.offset;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    let written = 0;
    while (written < out.length && this.queue.length) {
      const chunk = this.queue[0];
      if (chunk.turn !== this.turn) {
        this.turn = chunk.turn;
        this.port.postMessage({ type: "started", turn: chunk.turn, played: this.played });
      }
      const n = Math.min(out.length - written, chunk.samples.length - this.offset);
      out.set(chunk.samples.subarray(this.offset, this.offset + n), written);
      written += n;
      this.offset += n;
      if (this.offset === chunk.samples.length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
    out.fill(0, written);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    this.played += written;
    if (written) this.playing = true;
    this.sinceReport += out.length;
    if (this.playing && (this.sinceReport >= sampleRate / 20 || !this.queue.length)) {
      this.sinceReport = 0;
      this.port.postMessage({ type: "played", played: this.played, queued: this.queued() });
    }
    if (this.playing && !this.queue.length) {
      this.playing = false;
      this.port.postMessage({ type: "idle", played: this.played, turn: this.turn });
    }
    return true;
  }
}

registerProcessor("vox-playback", Playback);
