// The voice console: wires the microphone, the conversation socket, playback, the conversation
// view, the timeline and the event log together. `window.vox` exposes its state for tests.

import { PageAudio, SILENCE_FRAME } from "./audio.js";
import { Connection } from "./connection.js";
import { EventLog } from "./eventlog.js";
import { Timeline, Turn } from "./timeline.js";
import { showMode } from "./mode.js";
import { TOOLS, runTool } from "./tools.js";

const $ = (id) => document.getElementById(id);
const VOICE_LEVEL = 0.015; // a frame louder than this (RMS) counts as speech for the end-of-speech clock
const PTT_TAIL_FRAMES = 30; // 0.6 s of silence after push-to-talk is released ends the utterance

const conn = new Connection();
const audio = new PageAudio();
const log = new EventLog($("log"), $("log-filter"), $("log-audio"), $("log-clear"));
const timeline = new Timeline($("turns"), $("medians"), $("legend"), $("median-n"));

const state = {
  epoch: 0, // counts connections: turn numbers start again on each
  pending: [], // turns sent (spoken or typed) whose number the server has not used yet
  byKey: new Map(), // "epoch:turn" -> Turn
  current: null, // the utterance being spoken
  lastVoiceAt: 0,
  pttHeld: false,
  uploading: false,
  playing: false,
};

// What tests (and curious people) can read.
window.vox = {
  conn, audio, log, timeline,
  turns: () => timeline.turns.map((t) => t.summary()),
  played: () => audio.played,
  transcripts: [], replies: [], errors: [], bargeIns: 0, flushes: [], speech: [], uploads: [], pins: [],
  toolCalls: [],
};

function bubble(kind, text) {
  const li = document.createElement("li");
  li.className = kind;
  li.textContent = text;
  $("history").append(li);
  $("history").scrollTop = $("history").scrollHeight;
  return li;
}

function pinForm(recording) {
  // Dev: keep this turn as a conversation test (voxstack replay pin), under a name.
  const li = document.createElement("li");
  li.className = "pin";
  const form = document.createElement("form");
  const name = document.createElement("input");
  name.placeholder = "name";
  name.required = true;
  name.pattern = "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}";
  const button = document.createElement("button");
  button.textContent = "Pin this turn";
  const said = document.createElement("span");
  said.className = "muted small";
  form.append(name, button, said);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await fetch(`/v1/dev/recordings/${encodeURIComponent(recording)}/pin`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: name.value }),
    });
    const body = await answer.json();
    said.textContent = answer.ok ? `pinned as ${body.path}` : body.error.message;
    if (answer.ok) window.vox.pins.push(body);
  });
  li.append(form);
  return li;
}

function setSpeechState(name) {
  $("speech-state").dataset.state = name;
  $("speech-state").textContent = name;
}

// ---- the socket's events ---------------------------------------------------------------

function turnFor(number) {
  const key = `${state.epoch}:${number}`;
  let turn = state.byKey.get(key);
  if (!turn && state.pending.length) {
    turn = state.pending.shift();
    turn.turn = number;
    turn.key = key;
    state.byKey.set(key, turn);
  }
  return turn;
}

function flushPlayback(reason) {
  if (!state.playing) return;
  audio.flush();
  state.playing = false;
  // heard: the questions transcribed so far (a barge-in stops playback before its own is).
  window.vox.flushes.push({ at: performance.now(), reason, heard: window.vox.transcripts.filter((t) => t.trim()).length });
}

const handlers = {
  ready(e) {
    state.epoch += 1;
    state.pending = [];
    $("session").textContent = `session ${e.session_id.slice(0, 12)}`;
  },
  speech_started() {
    flushPlayback("speech_started"); // the server cancels the reply too; do not wait for its barge_in
    state.current = new Turn("spoken", null);
    window.vox.speech.push({ started: performance.now() });
    setSpeechState("speech");
  },
  partial(e) {
    $("partial").textContent = e.text;
  },
  speech_ended() {
    const now = performance.now();
    const turn = state.current || new Turn("spoken", null);
    turn.speechEnded = now;
    // The asr says so after its silence window: the speech itself ended at the last loud frame.
    turn.start = state.lastVoiceAt && state.lastVoiceAt <= now ? state.lastVoiceAt : now;
    state.current = turn;
    setSpeechState("thinking");
  },
  transcript(e) {
    $("partial").textContent = "";
    const turn = state.current;
    state.current = null;
    window.vox.transcripts.push(e.text);
    if (!e.text.trim() || !turn) return setSpeechState("idle");
    turn.transcript = performance.now();
    turn.said = e.text;
    bubble("user", e.text);
    state.pending.push(turn);
    timeline.add(turn);
  },
  reply_delta(e) {
    const turn = turnFor(e.turn);
    if (!turn) return;
    if (turn.firstDelta === null) turn.firstDelta = performance.now();
    turn.bubble = turn.bubble || bubble("assistant", "");
    turn.bubble.textContent += e.text;
    timeline.render();
  },
  reply_done(e) {
    const turn = turnFor(e.turn);
    if (!turn) return;
    turn.server = e.timings;
    turn.tokens = { prompt: e.prompt_tokens, completion: e.completion_tokens };
    turn.bubble = turn.bubble || bubble("assistant", "");
    turn.bubble.textContent = e.text;
    if (e.recording) $("history").append(pinForm(e.recording));
    window.vox.replies.push(e.text);
    timeline.render();
  },
  tool_call(e) {
    // The reply asks for one of the page's tools: run it here, show the call and its result, send it back.
    const result = runTool(e.name, e.arguments);
    bubble("tool", `${e.name}(${e.arguments === "{}" ? "" : e.arguments}) → ${result}`);
    window.vox.toolCalls.push({ name: e.name, arguments: e.arguments, result });
    conn.sendToolResult(e.id, result);
  },
  barge_in(e) {
    window.vox.bargeIns += 1;
    flushPlayback("barge_in");
    const turn = state.byKey.get(`${state.epoch}:${e.turn}`);
    if (turn && turn.bubble) turn.bubble.textContent += " …(interrupted)";
  },
  error(e) {
    window.vox.errors.push(e);
    bubble("error", `${e.code}: ${e.message}`);
    if (e.turn !== undefined) turnFor(e.turn);
  },
};

conn.addEventListener("event", ({ detail: e }) => {
  const { type, ...rest } = e;
  log.add("in", type, JSON.stringify(rest));
  const handle = handlers[type];
  if (handle) handle(e);
});

conn.addEventListener("audio", ({ detail: { meta, pcm } }) => {
  const turn = turnFor(meta.turn);
  if (turn) {
    if (turn.firstAudio === null) turn.firstAudio = performance.now();
    turn.audioSeconds += meta.bytes / 2 / meta.sample_rate;
  }
  if (!audio.ctx) return; // no audio yet: the page was never clicked
  state.playing = true;
  audio.play(pcm, meta.sample_rate, turn ? turn.key : `${state.epoch}:${meta.turn}`);
  setSpeechState("speaking");
});

conn.addEventListener("status", ({ detail: { state: s, detail } }) => {
  $("status").dataset.state = s;
  $("status").textContent = detail ? `${s}: ${detail}` : s;
  log.add("in", "status", `${s} ${detail}`);
});

// ---- playback --------------------------------------------------------------------------

audio.addEventListener("started", ({ detail }) => {
  const turn = state.byKey.get(detail.turn);
  if (turn && turn.firstPlayed === null) {
    turn.firstPlayed = performance.now() + audio.outputLatency * 1000;
    timeline.render();
  }
});
audio.addEventListener("idle", () => {
  state.playing = false;
  if ($("speech-state").dataset.state === "speaking") setSpeechState("listening");
});

// ---- audio out: microphone, uploads, push-to-talk ---------------------------------------

function sendFrame(frame, force = false) {
  const level = Math.min(100, Math.round(frame.rms * 400));
  $("level").style.width = `${level}%`;
  if (frame.rms > VOICE_LEVEL) state.lastVoiceAt = performance.now();
  if (!force && (state.uploading || ($("talk-mode").value === "push-to-talk" && !state.pttHeld))) return;
  conn.sendAudio(frame.pcm);
  log.add("out", "frame", `${frame.pcm.byteLength} bytes`);
}

audio.addEventListener("frame", ({ detail }) => sendFrame(detail));

$("mic").addEventListener("click", async () => {
  if (audio.micOn) {
    audio.stopMic();
    $("mic").textContent = "Start microphone";
    setSpeechState("idle");
    return;
  }
  try {
    await audio.startMic();
    $("mic").textContent = "Stop microphone";
    setSpeechState("listening");
  } catch (err) {
    bubble("error", `microphone: ${err.message || err}`);
  }
});

$("talk-mode").addEventListener("change", () => {
  $("ptt").disabled = $("talk-mode").value !== "push-to-talk";
});

function pushToTalk(held) {
  if ($("talk-mode").value !== "push-to-talk" || state.pttHeld === held) return;
  state.pttHeld = held;
  $("ptt").classList.toggle("primary", held);
  if (!held) for (let i = 0; i < PTT_TAIL_FRAMES; i++) conn.sendAudio(SILENCE_FRAME());
}
$("ptt").addEventListener("pointerdown", () => pushToTalk(true));
$("ptt").addEventListener("pointerup", () => pushToTalk(false));
$("ptt").addEventListener("pointerleave", () => pushToTalk(false));
document.addEventListener("keydown", (e) => {
  if (e.code === "Space" && e.target === document.body) {
    e.preventDefault();
    pushToTalk(true);
  }
});
document.addEventListener("keyup", (e) => e.code === "Space" && pushToTalk(false));

$("upload").addEventListener("change", async () => {
  const file = $("upload").files[0];
  if (!file) return;
  let frames;
  try {
    frames = await audio.frames(file);
  } catch (err) {
    bubble("error", `could not read ${file.name}: ${err.message || err}`);
    return;
  }
  frames.push(...Array.from({ length: 40 }, () => ({ pcm: SILENCE_FRAME(), rms: 0 })));
  state.uploading = true;
  window.vox.uploads.push({ started: performance.now(), name: file.name });
  log.add("out", "upload", `${file.name}: ${(frames.length * 0.02).toFixed(1)} s`);
  // In real time, as a microphone would: the server's voice detection times the end of speech.
  const begun = performance.now();
  for (let i = 0; i < frames.length; i++) {
    const due = begun + i * 20 - performance.now();
    if (due > 0) await new Promise((r) => setTimeout(r, due));
    sendFrame(frames[i], true);
  }
  state.uploading = false;
  $("upload").value = "";
});

// ---- typing, voices, keys ----------------------------------------------------------------

$("type-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("type-text").value.trim();
  if (!text) return;
  await audio.init();
  if (!conn.sendText(text)) return bubble("error", "not connected: wait for the core");
  log.add("out", "text", text);
  const turn = new Turn("typed", performance.now());
  turn.said = text;
  state.pending.push(turn);
  bubble("user", text);
  timeline.add(turn);
  $("type-text").value = "";
});

/** The voice picker's choices; false only when a key is needed (a tts that is down leaves it empty). */
async function loadVoices() {
  const r = await fetch("/v1/voices", { headers: conn.headers() });
  if (r.status === 401) {
    $("key-row").hidden = false;
    return false;
  }
  if (!r.ok) {
    log.add("in", "voices", `GET /v1/voices answered ${r.status}: the picker stays empty`);
    return true;
  }
  const { voices } = await r.json();
  $("voice").replaceChildren(...voices.map((v) => {
    const option = document.createElement("option");
    option.value = v.name;
    option.textContent = `${v.name} (${v.language})${v.default ? " default" : ""}`;
    option.selected = v.default;
    return option;
  }));
  return true;
}

$("interim").checked = new URLSearchParams(location.search).get("interim") !== "0";
conn.interim = $("interim").checked;
$("interim").addEventListener("change", () => {
  conn.interim = $("interim").checked;
  conn.restart();
});

function offerTools() {
  conn.tools = $("tools").checked ? Object.values(TOOLS).map((t) => t.spec) : [];
}
$("tools").checked = new URLSearchParams(location.search).get("tools") === "1";
offerTools();
$("tools").addEventListener("change", () => {
  offerTools();
  conn.restart();
});

$("new-session").addEventListener("click", () => {
  $("history").replaceChildren();
  conn.newSession();
});

$("voice").addEventListener("change", () => {
  conn.voice = $("voice").value;
  conn.restart();
});

$("save-key").addEventListener("click", async () => {
  conn.key = $("api-key").value.trim();
  sessionStorage.setItem("vox-key", conn.key);
  if (await loadVoices()) {
    $("key-row").hidden = true;
    conn.restart();
  }
});

showMode("console");
if (await loadVoices().catch(() => true)) conn.open();
