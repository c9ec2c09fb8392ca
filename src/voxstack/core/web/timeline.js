// Each turn's timing: when each stage's result reached the page, counted from the end of the
// user's audible speech (for a typed turn, from sending it), up to the reply's first sample played.

export const STAGES = [
  { key: "eou", label: "end of utterance", color: "#94a3b8", from: "start", to: "speechEnded" },
  { key: "asr", label: "asr final", color: "#0ea5e9", from: "speechEnded", to: "transcript" },
  { key: "llm", label: "llm first token", color: "#8b5cf6", from: "transcript", to: "firstDelta" },
  { key: "tts", label: "tts first audio", color: "#f59e0b", from: "firstDelta", to: "firstAudio" },
  { key: "play", label: "to the speaker", color: "#10b981", from: "firstAudio", to: "firstPlayed" },
];
const MEDIAN_OF = 10;

export class Turn {
  constructor(kind, start) {
    this.kind = kind; // spoken, typed
    this.turn = null;
    this.start = start; // end of audible speech, or when the text was sent (performance.now() ms)
    this.speechEnded = kind === "typed" ? start : null;
    this.transcript = kind === "typed" ? start : null;
    this.firstDelta = this.firstAudio = this.firstPlayed = null;
    this.server = null; // the server's own timings (reply_done)
    this.tokens = null;
    this.audioSeconds = 0;
  }

  stages() {
    const out = {};
    for (const s of STAGES) {
      const a = this[s.from], b = this[s.to];
      if (a !== null && b !== null && !(this.kind === "typed" && (s.key === "eou" || s.key === "asr"))) {
        out[s.key] = Math.max(0, b - a);
      }
    }
    return out;
  }

  get total() {
    return this.firstPlayed === null ? null : this.firstPlayed - this.start;
  }

  summary() {
    return {
      turn: this.turn, kind: this.kind, stages: this.stages(), total: this.total, server: this.server,
      tokens: this.tokens, audioSeconds: this.audioSeconds,
    };
  }
}

function median(values) {
  const v = values.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

const ms = (x) => (x === null || x === undefined ? "–" : `${Math.round(x)}`);

export class Timeline {
  constructor(list, table, legend, count) {
    this.list = list;
    this.table = table;
    this.count = count;
    this.turns = [];
    for (const s of STAGES) {
      const item = document.createElement("span");
      item.style.setProperty("--c", s.color);
      item.textContent = s.label;
      legend.append(item);
    }
    const head = table.tHead.rows[0];
    for (const label of [...STAGES.map((s) => s.label), "to first audio played"]) {
      const th = document.createElement("th");
      th.textContent = label;
      head.append(th);
    }
  }

  add(turn) {
    this.turns.push(turn);
    this.render();
  }

  render() {
    const shown = this.turns.slice(-20);
    const scale = Math.max(1500, ...shown.map((t) => t.total || 0));
    this.list.replaceChildren(...shown.reverse().map((t) => this.row(t, scale)));
    const recent = this.turns.filter((t) => t.total !== null).slice(-MEDIAN_OF);
    this.count.textContent = String(recent.length);
    const cells = [...STAGES.map((s) => median(recent.map((t) => t.stages()[s.key]))), median(recent.map((t) => t.total))];
    this.table.tBodies[0].rows[0].replaceChildren(...cells.map((v) => {
      const td = document.createElement("td");
      td.textContent = ms(v);
      return td;
    }));
  }

  row(turn, scale) {
    const li = document.createElement("li");
    li.dataset.turn = String(turn.turn);
    li.dataset.total = turn.total === null ? "" : String(Math.round(turn.total));
    const head = document.createElement("div");
    head.className = "turn-head";
    const title = document.createElement("span");
    title.textContent = `turn ${turn.turn ?? "…"} (${turn.kind})`;
    const total = document.createElement("b");
    total.textContent = turn.total === null ? "…" : `${ms(turn.total)} ms to first audio played`;
    head.append(title, total);
    const bars = document.createElement("div");
    bars.className = "bars";
    const stages = turn.stages();
    for (const s of STAGES) {
      if (stages[s.key] === undefined) continue;
      const bar = document.createElement("span");
      bar.style.setProperty("--c", s.color);
      bar.style.width = `${(100 * stages[s.key]) / scale}%`;
      bar.title = `${s.label}: ${ms(stages[s.key])} ms`;
      bar.dataset.stage = s.key;
      bars.append(bar);
    }
    const detail = document.createElement("div");
    detail.className = "muted";
    const parts = STAGES.filter((s) => stages[s.key] !== undefined).map((s) => `${s.label} ${ms(stages[s.key])}`);
    if (turn.tokens) parts.push(`${turn.tokens.completion} tokens`);
    if (turn.audioSeconds) parts.push(`${turn.audioSeconds.toFixed(1)} s audio`);
    if (turn.server) parts.push(`server: asr decode ${ms(turn.server.asr_decode * 1000)}, llm ttft ${ms(turn.server.llm_first_token * 1000)}, tts ${ms(turn.server.tts_first_chunk * 1000)}`);
    detail.textContent = parts.join(" · ");
    li.append(head, bars, detail);
    return li;
  }
}
