// The page's audio: microphone capture (an AudioWorklet, 16 kHz PCM16 in 20 ms frames), WAV
// uploads turned into the same frames, and gapless playback of the reply (another worklet).

const RATE = 16000;
const FRAME = 320; // 20 ms at 16 kHz

export class PageAudio extends EventTarget {
  constructor() {
    super();
    this.ctx = null;
    this.playback = null;
    this.capture = null;
    this.stream = null;
    this.played = 0; // samples played, at the context's rate
  }

  async init() {
    if (this.ctx) return;
    this.ctx = new AudioContext();
    await this.ctx.audioWorklet.addModule("/console/assets/capture-worklet.js");
    await this.ctx.audioWorklet.addModule("/console/assets/playback-worklet.js");
    this.playback = new AudioWorkletNode(this.ctx, "vox-playback", { outputChannelCount: [1] });
    this.playback.connect(this.ctx.destination);
    this.playback.port.onmessage = (e) => {
      if (e.data.played !== undefined) this.played = e.data.played;
      this.emit(e.data.type, e.data);
    };
    if (this.ctx.state !== "running") await this.ctx.resume();
  }

  async startMic() {
    await this.init();
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    const source = this.ctx.createMediaStreamSource(this.stream);
    this.capture = new AudioWorkletNode(this.ctx, "vox-capture", {
      processorOptions: { targetRate: RATE, frameMs: 20 },
    });
    this.capture.port.onmessage = (e) => this.emit("frame", e.data);
    // Pulled only when it leads somewhere: a silent path to the output.
    const mute = this.ctx.createGain();
    mute.gain.value = 0;
    source.connect(this.capture).connect(mute).connect(this.ctx.destination);
  }

  stopMic() {
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.capture) this.capture.disconnect();
    this.stream = this.capture = null;
  }

  get micOn() {
    return this.stream !== null;
  }

  /** A WAV (or any file the browser decodes) as 16 kHz PCM16 frames of 20 ms. */
  async frames(file) {
    await this.init();
    const decoded = await this.ctx.decodeAudioData(await file.arrayBuffer());
    const length = Math.ceil(decoded.duration * RATE);
    const offline = new OfflineAudioContext(1, length, RATE);
    const source = offline.createBufferSource();
    source.buffer = decoded;
    source.connect(offline.destination);
    source.start();
    const samples = (await offline.startRendering()).getChannelData(0);
    const frames = [];
    for (let start = 0; start < samples.length; start += FRAME) {
      const pcm = new Int16Array(FRAME);
      let sum = 0;
      for (let i = 0; i < FRAME && start + i < samples.length; i++) {
        const v = Math.max(-1, Math.min(1, samples[start + i]));
        pcm[i] = v < 0 ? v * 32768 : v * 32767;
        sum += v * v;
      }
      frames.push({ pcm: pcm.buffer, rms: Math.sqrt(sum / FRAME) });
    }
    return frames;
  }

  /** One sentence of the reply (PCM16 at `rate`), queued behind what is playing. */
  play(pcm, rate, turn) {
    const input = new Int16Array(pcm);
    const out = new Float32Array(Math.round(input.length * this.ctx.sampleRate / rate));
    const step = rate / this.ctx.sampleRate;
    for (let i = 0; i < out.length; i++) {
      const x = i * step;
      const j = Math.floor(x);
      const a = input[j] || 0;
      const b = j + 1 < input.length ? input[j + 1] : a;
      out[i] = (a + (b - a) * (x - j)) / 32768;
    }
    this.playback.port.postMessage({ type: "push", samples: out, turn }, [out.buffer]);
  }

  flush() {
    if (this.playback) this.playback.port.postMessage({ type: "flush" });
  }

  /** Seconds between the audio thread producing a sample and it being heard (best known). */
  get outputLatency() {
    return this.ctx ? (this.ctx.outputLatency || 0) + (this.ctx.baseLatency || 0) : 0;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

export const SILENCE_FRAME = () => new Int16Array(FRAME).buffer;
