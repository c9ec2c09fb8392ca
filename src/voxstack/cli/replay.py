"""``voxstack replay``: recorded turns again, through the running stack, and what changed.

Each recorded turn (voxstack.recordings) goes to the core's WebSocket by the
path a live turn takes: a new session that starts with the turn's history,
the utterance's audio streamed in real time (``--fast``: as fast as the core
takes it) and the silence that ends it, or the typed text. Printed per turn:
the transcript old -> new with its word error rate, the reply as a word
diff, each stage's time, the reply audio's length. Exit status 0 when every
turn was answered, 1 when one failed, 2 for recordings that cannot be used.
"""

from __future__ import annotations

import difflib
import json
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from voxstack.cli.options import CoreUrlOption, core_url, fail, settings_from_flags

#: Silence after the utterance, so that the asr ends it as it did live (its longest wait is well below).
TRAILING_SILENCE = 2.0
CHUNK_SECONDS = 0.02
#: Audio --fast sends at once before it paces itself (below the core's ws_burst_seconds default).
FAST_BURST = 8.0
FAST_FACTOR = 3.0
STAGES = ("asr_decode", "llm_first_token", "first_sentence", "tts_first_chunk", "first_audio", "total")


def replay(
    recordings: Annotated[
        list[str] | None,
        typer.Argument(help="Recording ids or folders (default: the newest; see --last); `pin ID` pins one."),
    ] = None,
    last: Annotated[int, typer.Option("--last", "-n", min=0, help="The newest N recordings.")] = 0,
    fast: Annotated[bool, typer.Option("--fast", help="Stream the audio as fast as the core takes it.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per turn, for tools.")] = False,
    folder: Annotated[
        Path | None, typer.Option("--recordings", help="Where the recordings are (default: where the core records).")
    ] = None,
    url: CoreUrlOption = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds a turn may take.")] = 120.0,
    check: Annotated[
        Path | None, typer.Option("--check", help="Replay the pinned conversations in this folder; fail on any broken.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="pin: the conversation's name.")] = None,
    into: Annotated[Path, typer.Option("--dir", help="pin: the folder of conversation tests.")] = Path("conversations"),
) -> None:
    """Re-run recorded turns through the running stack; print old -> new for each.

    `voxstack replay pin ID --name NAME` copies a recording into conversations/NAME with expectations to
    edit (expect.json); `voxstack replay --check conversations` replays them all and fails on any broken.
    """
    from voxstack.recordings import RecordingError, select

    where = (folder or settings_from_flags().recordings_dir).expanduser()
    try:
        if recordings and recordings[0] == "pin":
            pin_one(where, recordings[1:], name, into)
            return
        if check is not None:
            raise typer.Exit(check_all(check, core_url(url), fast=fast, timeout=timeout))
        chosen = select(where, recordings or (), last)
    except RecordingError as exc:
        raise fail(str(exc)) from None
    base = core_url(url)
    failed = 0
    for recording in chosen:
        try:
            now = run_turn(base, recording, fast=fast, timeout=timeout)
        except ReplayError as exc:
            now = {"error": str(exc)}
        result = compare(recording.turn, now, recording.id)
        failed += "error" in now
        typer.echo(json.dumps(result, ensure_ascii=False) if as_json else render(result))
    raise typer.Exit(1 if failed else 0)


def pin_one(folder: Path, ids: list[str], name: str | None, into: Path) -> None:
    from voxstack.expectations import pin
    from voxstack.recordings import select

    if len(ids) != 1 or not name:
        raise fail("usage: voxstack replay pin ID --name NAME [--dir conversations]")
    target = pin(select(folder, ids)[0], name, into)
    typer.echo(f"pinned as {target}: edit {target / 'expect.json'} to say what its replay must do")


def check_all(folder: Path, base: str, *, fast: bool, timeout: float) -> int:
    """Replay every pinned conversation under ``folder``; a line per conversation, 1 if any broke."""
    from voxstack.expectations import broken, load_expect, pinned
    from voxstack.recordings import load

    failures = 0
    conversations = pinned(folder)
    for path in conversations:
        expect = load_expect(path)
        try:
            now = run_turn(base, load(path), fast=fast, timeout=timeout)
        except ReplayError as exc:
            now = {"error": str(exc)}
        problems = broken(expect, now, word_error_rate)
        failures += bool(problems)
        typer.echo(f"{'FAIL' if problems else 'PASS'}  {path.name}")
        for problem in problems:
            typer.echo(f"      {problem}")
    typer.echo(f"{len(conversations) - failures} of {len(conversations)} conversations pass")
    return 1 if failures else 0


class ReplayError(Exception):
    """The turn did not complete: the message says what the core answered."""


def run_turn(base: str, recording: Any, *, fast: bool, timeout: float) -> dict[str, Any]:
    """Send one recorded turn; what the core answered: transcript, reply, timings, reply audio seconds."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake
    from websockets.sync.client import connect

    turn = recording.turn
    spoken = recording.spoken
    audio = recording.input_audio() if spoken else None
    history = turn.get("history") or []
    config = {
        "type": "config",
        "sample_rate": audio.sample_rate if audio else 16000,
        "channels": audio.channels if audio else 1,
        "session_id": f"replay-{uuid.uuid4().hex[:12]}",
        "language": turn["settings"].get("language", ""),
        "voice": turn["settings"].get("voice", ""),
        "interim_results": False,
        "history": [
            {"user": u["content"], "assistant": a["content"]} for u, a in zip(history[::2], history[1::2], strict=False)
        ],
    }
    ws_url = "ws" + base.removeprefix("http") + "/v1/stream"
    try:
        with connect(ws_url, max_size=None, open_timeout=timeout) as ws:
            ws.send(json.dumps(config))
            first = json.loads(ws.recv(timeout=timeout))
            if first.get("type") != "ready":
                raise ReplayError(f"the core refused the turn's config: {first.get('message', first)}")
            if audio is not None:
                _stream(ws, audio.data, audio.sample_rate, 2 * audio.channels, fast)
            else:
                ws.send(json.dumps({"type": "text", "text": turn["input"]["text"]}))
            return _answer(ws, timeout)
    except (OSError, InvalidHandshake) as exc:
        raise ReplayError(f"the core at {base} is unreachable: {exc}") from None
    except ConnectionClosed as exc:
        raise ReplayError(f"the core closed the conversation ({exc})") from None
    except TimeoutError:
        raise ReplayError(f"no reply within {timeout:g} s") from None


def _stream(ws: Any, pcm: bytes, rate: int, frame: int, fast: bool) -> None:
    """The utterance, then silence, in 20 ms chunks, paced as a microphone would (or faster)."""
    data = pcm + bytes(int(TRAILING_SILENCE * rate) * frame)
    step = int(CHUNK_SECONDS * rate) * frame
    began = time.monotonic()
    for offset in range(0, len(data), step):
        ws.send(data[offset : offset + step])
        sent = (offset + step) / frame / rate
        due = sent if not fast else max(0.0, sent - FAST_BURST) / FAST_FACTOR
        time.sleep(max(0.0, due - (time.monotonic() - began)))


def _answer(ws: Any, timeout: float) -> dict[str, Any]:
    transcripts: list[str] = []
    audio_bytes = 0
    rate = 0
    deadline = time.monotonic() + timeout
    while True:
        message = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        if isinstance(message, bytes):
            continue
        event = json.loads(message)
        kind = event.get("type")
        if kind == "transcript" and event.get("text", "").strip():
            transcripts.append(event["text"])
        elif kind == "audio":
            audio_bytes += event.get("bytes", 0)
            rate = event.get("sample_rate", rate)
        elif kind == "error":
            raise ReplayError(f"{event.get('code')}: {event.get('message')}")
        elif kind == "reply_done":
            return {
                "transcript": " ".join(transcripts),
                "reply": event.get("text", ""),
                "timings": event.get("timings", {}),
                "reply_audio_seconds": audio_bytes / 2 / rate if rate else 0.0,
            }


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer

    if not reference.strip():
        return 0.0 if not hypothesis.strip() else 1.0
    transform = jiwer.Compose(
        [jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip(),
         jiwer.ReduceToListOfListOfWords()]
    )  # fmt: skip
    return float(jiwer.wer(reference, hypothesis, reference_transform=transform, hypothesis_transform=transform))


def word_diff(old: str, new: str) -> str:
    """``new`` against ``old`` by words: removed words as [-...-], added ones as {+...+}."""
    a, b = old.split(), new.split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out += a[i1:i2]
            continue
        if i2 > i1:
            out.append("[-" + " ".join(a[i1:i2]) + "-]")
        if j2 > j1:
            out.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(out)


def compare(old: dict[str, Any], new: dict[str, Any], recording_id: str) -> dict[str, Any]:
    """One turn's old and new side by side."""
    result: dict[str, Any] = {"id": recording_id, "input": old["input"]["kind"]}
    if "error" in new:
        return result | {"error": new["error"]}
    audio = old.get("reply_audio_seconds")
    result |= {
        "transcript": {"old": old["transcript"], "new": new["transcript"]},
        "reply": {"old": old["reply"], "new": new["reply"], "same": old["reply"].split() == new["reply"].split()},
        "timings": {
            s: {"old": old["timings"].get(s), "new": new["timings"].get(s)}
            for s in STAGES
            if s in old["timings"] or s in new["timings"]
        },
        "reply_audio_seconds": {"old": audio, "new": new["reply_audio_seconds"]},
    }
    if old["input"]["kind"] == "audio":
        result["transcript"]["wer"] = round(word_error_rate(old["transcript"], new["transcript"]), 3)
    return result


def render(result: dict[str, Any]) -> str:
    lines = [f"{result['id']} ({'spoken' if result['input'] == 'audio' else 'typed'})"]
    if "error" in result:
        return "\n".join([*lines, f"  FAILED      {result['error']}"])
    said = result["transcript"]
    if result["input"] == "audio":
        same = "same" if said["old"] == said["new"] else f"{said['new']!r}"
        lines.append(f"  transcript  {said['old']!r} -> {same} (WER {said['wer']:.2f})")
    reply = result["reply"]
    lines.append(f"  reply       {'same' if reply['same'] else word_diff(reply['old'], reply['new'])}")
    timings = ", ".join(f"{s} {_seconds(t['old'])} -> {_seconds(t['new'])}" for s, t in result["timings"].items())
    lines.append(f"  timings     {timings}")
    audio = result["reply_audio_seconds"]
    lines.append(f"  reply audio {_seconds(audio['old'])} -> {_seconds(audio['new'])}")
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
