// The dev dashboard: one card per service from GET /v1/dev/events (server-sent snapshots of the
// supervisor's run state and health), updated live, without a page reload.

import { showMode } from "./mode.js";

const $ = (id) => document.getElementById(id);
const cards = new Map();
window.devState = { snapshots: 0, last: null };

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value;
  if (cls) el.className = cls;
  return el;
}

const mib = (bytes) => Math.round(bytes / 2 ** 20);

function ago(seconds) {
  if (!seconds) return "–";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function chart(history) {
  // A bar per recent reload: height = seconds from save to SERVING; red = failed.
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 200 48");
  svg.setAttribute("preserveAspectRatio", "none");
  const top = Math.max(1, ...history.map((h) => h.seconds));
  history.forEach((h, i) => {
    const bar = document.createElementNS(ns, "rect");
    const height = Math.max(2, (46 * h.seconds) / top);
    bar.setAttribute("x", String(i * 10 + 1));
    bar.setAttribute("y", String(48 - height));
    bar.setAttribute("width", "8");
    bar.setAttribute("height", String(height));
    bar.setAttribute("fill", h.ok ? "#16a34a" : "#dc2626");
    const title = document.createElementNS(ns, "title");
    title.textContent = `${h.ok ? "" : "failed: "}${h.seconds.toFixed(2)} s: ${h.files}`;
    bar.append(title);
    svg.append(bar);
  });
  return svg;
}

function card(name, s, now) {
  const section = document.createElement("section");
  section.className = "panel card";
  section.dataset.service = name;
  section.dataset.state = s.state || "";
  section.dataset.generation = String(s.generation || 0);
  section.dataset.health = s.health;
  const head = document.createElement("h2");
  const state = text("span", s.state || "not supervised", "pill");
  state.dataset.state = s.state || "";
  head.append(text("span", name), state);
  const rows = [
    ["health", s.health],
    ["address", s.address],
    ["pid", s.pid || "–"],
    ["generation", s.generation ?? "–"],
    ["uptime", s.started ? ago(now - s.started) : "–"],
    ["last reload", s.last_reload ? `${ago(now - s.last_reload)} ago, ${s.last_reload_seconds.toFixed(2)} s save → SERVING` : "–"],
    ["changed", (s.history || []).filter((h) => h.ok).map((h) => h.files).pop() || "–"],
    ["restarts", s.restarts ?? 0],
  ];
  if (s.reload_path) rows.push(["reload path", s.reload_path]);
  if (s.rss_bytes) rows.push(["memory", `${mib(s.rss_bytes)} MiB${s.spare_rss_bytes ? ` + spare ${mib(s.spare_rss_bytes)} MiB` : ""}`]);
  if (s.spare) rows.push(["warm spare", s.spare]);
  if (s.state === "backoff") rows.push(["backoff", `${s.backoff_seconds} s`]);
  if (s.debug_port) rows.push(["debugger", `127.0.0.1:${s.debug_port} (debugpy)`]);
  const dl = document.createElement("dl");
  for (const [k, v] of rows) dl.append(text("dt", k), text("dd", String(v)));
  section.append(head, dl);
  if (s.history && s.history.length) section.append(chart(s.history));
  if (s.last_error) {
    const box = document.createElement("div");
    box.className = "error";
    box.append(text("h3", s.last_error), text("pre", s.error_trace || ""));
    section.append(box);
  }
  return section;
}

function audio(name, which, at) {
  // The replayed reply (new) beside the recorded one (old); `at` makes each replay's a fresh load.
  const player = document.createElement("audio");
  player.controls = true;
  player.preload = "metadata";
  player.src = `/v1/dev/replays/${encodeURIComponent(name)}/${which}.wav?at=${at}`;
  player.dataset.which = which;
  return player;
}

function verdict(v, at) {
  // One pinned conversation after the last reload: its verdict, what broke, old and new side by side.
  const section = document.createElement("section");
  section.className = "panel verdict";
  section.dataset.name = v.name;
  section.dataset.verdict = v.problems.length ? "fail" : "pass";
  const head = document.createElement("h3");
  const pill = text("span", v.problems.length ? "FAIL" : "PASS", "pill");
  pill.dataset.state = v.problems.length ? "failed" : "serving";
  head.append(text("span", v.name), pill);
  section.append(head);
  if (v.problems.length) {
    const list = document.createElement("ul");
    for (const problem of v.problems) list.append(text("li", problem, "problem"));
    section.append(list);
  }
  const r = v.result || {};
  if (r.differences && r.differences.length) {
    // Not a failure: the replay ran on other models than the recording, so it compares less than it seems.
    const notes = document.createElement("ul");
    for (const d of r.differences) notes.append(text("li", d, "difference"));
    section.append(notes);
  }
  const table = document.createElement("table");
  const row = (label, old, now, cls) => {
    const tr = document.createElement("tr");
    tr.append(text("th", label), text("td", old ?? "–", cls), text("td", now ?? "–", cls));
    table.append(tr);
  };
  row("", "recorded", "now");
  if (r.transcript && r.input === "audio") row("transcript", r.transcript.old, r.transcript.new, "said");
  if (r.reply) row("reply", r.reply.old, r.reply.new, "reply");
  for (const [stage, t] of Object.entries(r.timings || {})) {
    const s = (x) => (x == null ? "–" : `${x.toFixed(2)} s`);
    row(stage, s(t.old), s(t.new));
  }
  const players = document.createElement("tr");
  const cell = (el) => { const td = document.createElement("td"); td.append(el); return td; };
  players.append(text("th", "audio"), cell(audio(v.name, "old", at)), cell(audio(v.name, "new", at)));
  table.append(players);
  section.append(table);
  return section;
}

let shownReplay = -1;

function renderReplays(replays) {
  // Rebuilt only when a new replay came: a player the developer is listening to is left alone otherwise.
  if (!replays || !replays.verdicts || replays.at === shownReplay) return;
  shownReplay = replays.at;
  const box = $("replays");
  const passed = replays.verdicts.filter((v) => !v.problems.length).length;
  box.replaceChildren(
    text("h2", `Conversation tests: ${passed} of ${replays.verdicts.length} pass, ` +
      `${replays.seconds_after_save.toFixed(1)} s after the save`),
    ...replays.verdicts.map((v) => verdict(v, replays.at)),
  );
  box.hidden = false;
}

function render(snapshot, fresh = true) {
  if (fresh) {
    window.devState.snapshots += 1;
    window.devState.last = snapshot;
  }
  $("supervisor").textContent = snapshot.supervised
    ? `supervisor pid ${snapshot.supervisor_pid}, up ${ago(snapshot.now - snapshot.started)}`
    : "no supervisor: run `voxstack dev`";
  const now = Date.now() / 1000;
  for (const [name, s] of Object.entries(snapshot.services)) {
    const made = card(name, s, now);
    const old = cards.get(name);
    if (old) {
      if (old.dataset.generation !== made.dataset.generation || old.dataset.state !== made.dataset.state) {
        made.classList.add("flash");
      }
      old.replaceWith(made);
    } else {
      $("services").append(made);
    }
    cards.set(name, made);
  }
  renderReplays(snapshot.replays);
}

function listen() {
  const feed = new EventSource("/v1/dev/events");
  feed.onopen = () => {
    $("feed").dataset.state = "connected";
    $("feed").textContent = "live";
  };
  feed.onmessage = (e) => render(JSON.parse(e.data));
  feed.onerror = () => {
    // A core reload ends the stream; EventSource reconnects by itself.
    $("feed").dataset.state = "reconnecting";
    $("feed").textContent = "reconnecting";
  };
}

showMode("dashboard");
listen();
// Uptimes and "ago" keep counting between snapshots.
setInterval(() => window.devState.last && render(window.devState.last, false), 5000);
