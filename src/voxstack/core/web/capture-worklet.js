// Microphone -> 16 kHz PCM16 in 20 ms frames, with each frame's level (runs on the audio thread).
//
// A one-pole low-pass (about 7 kHz) keeps the downsampling from folding the
// upper band onto speech; then linear interpolation to the target rate.
class Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.target = opts.targetRate || 16000;
    this.frame = new Int16Array(Math.round(this.target * (opts.frameMs || 20) / 1000));
    this.filled = 0;
    this.step = sampleRate / this.target; // input samples per output sample
    this.pos = 0; // position of the next output sample, in input samples since `prev`
    this.prev = 0; // the last filtered input sample of the previous block
    this.lp = 0;
    const cutoff = Math.min(7000, this.target * 0.45);
    this.alpha = 1 - Math.exp(-2 * Math.PI * cutoff / sampleRate);
    this.sumSquares = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    const filtered = new Float32Array(channel.length);
    for (let i = 0; i < channel.length; i++) {
      this.lp += this.alpha * (channel[i] - this.lp);
      filtered[i] = this.lp;
    }
    // Output samples fall between input samples i-1 and i (index -1 is `prev`).
    while (this.pos < channel.length) {
      const i = Math.floor(this.pos);
      const frac = this.pos - i;
      const a = i === 0 ? this.prev : filtered[i - 1];
      const b = filtered[i];
      const value = Math.max(-1, Math.min(1, a + (b - a) * frac));
      this.sumSquares += value * value;
      this.frame[this.filled++] = value < 0 ? value * 32768 : value * 32767;
      if (this.filled === this.frame.length) this.flush();
      this.pos += this.step;
    }
    this.pos -= channel.length;
    this.prev = filtered[channel.length - 1];
    return true;
  }

  flush() {
    const rms = Math.sqrt(this.sumSquares / this.frame.length);
    const pcm = this.frame.slice().buffer;
    this.port.postMessage({ pcm, rms }, [pcm]);
    this.filled = 0;
    this.sumSquares = 0;
  }
}

registerProcessor("vox-capture", Capture);
