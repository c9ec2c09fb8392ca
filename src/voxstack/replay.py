"""Replaying recorded turns through a running core: what `voxstack replay` and `voxstack dev --replay` do.

Each recorded turn (voxstack.recordings) goes to the core's WebSocket by the
path a live turn takes: a new session that starts with the turn's history,
the utterance's audio streamed in real time (``fast``: as fast as the core
takes it) and the silence that ends it, or the typed text. ``check`` replays
the pinned conversations of a folder against their expectations
(voxstack.expectations).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

from voxstack.codes import ErrorCode
from voxstack.expectations import broken, load_expect, pinned
from voxstack.recordings import Pcm, Recording, differences, load, wav

#: Silence after the utterance, so that the asr ends it as it did live (its longest wait is well below).
TRAILING_SILENCE = 2.0
CHUNK_SECONDS = 0.02
#: --fast sends bigger chunks: fewer messages for the core and the asr to handle, the same audio.
FAST_CHUNK_SECONDS = 0.2
#: Audio --fast sends at once before it paces itself (below the core's ws_burst_seconds default).
FAST_BURST = 8.0
FAST_FACTOR = 3.0
OVERLOADED = ErrorCode.OVERLOADED.value
STAGES = ("asr_decode", "llm_first_token", "first_sentence", "tts_first_chunk", "first_audio", "total")


class ReplayError(Exception):
    """The turn did not complete: the message says what the core answered (``code``: its error code)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


def run_turn(
    base: str, recording: Recording, *, fast: bool, timeout: float, api_key: str | None = None, record: bool = False
) -> dict[str, Any]:
    """Send one recorded turn; what the core answered: transcript, reply, timings, reply audio seconds
    (and, with ``record``, the id of the core's recording of it: a replay is not recorded otherwise)."""
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
        "record": record,
        "history": [
            {"user": u["content"], "assistant": a["content"]} for u, a in zip(history[::2], history[1::2], strict=False)
        ],
    }
    ws_url = "ws" + base.removeprefix("http") + "/v1/stream"
    try:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        with connect(ws_url, max_size=None, open_timeout=timeout, additional_headers=headers) as ws:
            ws.send(json.dumps(config))
            first = json.loads(ws.recv(timeout=timeout))
            if first.get("type") != "ready":
                message = f"the core refused the turn's config: {first.get('message', first)}"
                raise ReplayError(message, str(first.get("code", "")))
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
    """The utterance, then silence, in 20 ms chunks, paced as a microphone would (or faster, in bigger chunks)."""
    data = pcm + bytes(int(TRAILING_SILENCE * rate) * frame)
    step = int((FAST_CHUNK_SECONDS if fast else CHUNK_SECONDS) * rate) * frame
    began = time.monotonic()
    for offset in range(0, len(data), step):
        ws.send(data[offset : offset + step])
        sent = (offset + step) / frame / rate
        due = sent if not fast else max(0.0, sent - FAST_BURST) / FAST_FACTOR
        time.sleep(max(0.0, due - (time.monotonic() - began)))


def _answer(ws: Any, timeout: float) -> dict[str, Any]:
    transcripts: list[str] = []
    audio = bytearray()
    rate = 0
    deadline = time.monotonic() + timeout
    while True:
        message = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        if isinstance(message, bytes):
            audio += message  # each audio event's frame
            continue
        event = json.loads(message)
        kind = event.get("type")
        if kind == "transcript" and event.get("text", "").strip():
            transcripts.append(event["text"])
        elif kind == "audio":
            rate = event.get("sample_rate", rate)
        elif kind == "error":
            raise ReplayError(f"{event.get('code')}: {event.get('message')}")
        elif kind == "reply_done":
            return {
                "transcript": " ".join(transcripts),
                "reply": event.get("text", ""),
                "timings": event.get("timings", {}),
                "reply_audio_seconds": len(audio) / 2 / rate if rate else 0.0,
                "reply_sample_rate": rate,
                "reply_audio": Pcm(bytes(audio), rate, 1) if rate else None,
                "recording": event.get("recording"),
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


def warm_up() -> None:
    """Load the code judging a turn runs (jiwer and rapidfuzz load theirs at the first word error rate)."""
    word_error_rate("warm up", "warm up")


def compare(
    old: dict[str, Any], new: dict[str, Any], recording_id: str, stack: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One turn's old and new side by side; ``differences``: how the recording's models and reply audio
    differ from the stack's (``stack``: the stack's turn settings, recordings.turn_settings)."""
    result: dict[str, Any] = {"id": recording_id, "input": old["input"]["kind"]}
    found = differences(old.get("settings", {}), stack) if stack is not None else []
    if "error" in new:
        return result | {"error": new["error"], "differences": found}
    rates = (old.get("reply_sample_rate"), new.get("reply_sample_rate"))
    if all(rates) and rates[0] != rates[1]:
        found.append(f"reply sample rate: recorded at {rates[0]} Hz, the stack speaks at {rates[1]} Hz")
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
        "differences": found,
    }
    if old["input"]["kind"] == "audio":
        result["transcript"]["wer"] = round(word_error_rate(old["transcript"], new["transcript"]), 3)
    return result


def expected_seconds(recording: Recording) -> float:
    """About how long a replay of ``recording`` takes: its audio (a spoken turn's asr works through it) and
    the recorded reply's time."""
    total = recording.turn.get("timings", {}).get("total") or 0.0
    return (recording.input_audio().seconds if recording.spoken else 0.0) + float(total)


def start_order(recordings: list[Recording]) -> list[int]:
    """The order to start ``recordings`` in: spoken and typed turns alternating, the longest of each first.

    A spoken turn's audio goes through the asr, one decode at a time, before its reply; a typed turn needs
    the llm only. Two spoken turns started together wait for each other at the asr and then share the llm;
    a spoken turn started beside a typed one decodes while the typed reply is written. The longest first:
    a short turn started last finishes with the others rather than after them.
    """
    kinds = [
        sorted(
            (n for n, r in enumerate(recordings) if r.spoken == spoken), key=lambda n: -expected_seconds(recordings[n])
        )
        for spoken in (True, False)
    ]
    order: list[int] = []
    for pair in zip_longest(*kinds):
        order += [n for n in pair if n is not None]
    return order


@dataclass
class Verdict:
    """One pinned conversation's replay: what broke (nothing: it passes), and old against new."""

    name: str
    problems: list[str]
    result: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems


def check(
    folder: Path,
    base: str,
    *,
    fast: bool,
    timeout: float,
    audio_dir: Path | None = None,
    at_once: int = 1,
    stack: dict[str, Any] | None = None,
    api_key: str | None = None,
    order: Callable[[list[Recording]], list[int]] | None = None,
) -> list[Verdict]:
    """Replay every pinned conversation under ``folder`` against its expectations, ``at_once`` at a time
    (RecordingError for a folder or conversation that cannot be used); each new reply's audio to
    ``audio_dir/NAME.wav`` if given; ``stack`` as for ``compare``. They start in ``order`` (default
    ``start_order``); the verdicts come in the folder's order."""
    cases = [(path, load_expect(path), load(path)) for path in pinned(folder)]

    def one(case: tuple[Path, dict[str, Any], Recording]) -> Verdict:
        path, expect, recording = case
        began = time.monotonic()
        try:
            now = run_turn(base, recording, fast=fast, timeout=timeout, api_key=api_key)
        except ReplayError as exc:
            if exc.code == OVERLOADED and at_once > 1:
                return Verdict(path.name, [OVERLOADED])  # others took the core's room: again, alone
            now = {"error": str(exc)}
        problems = broken(expect, now, word_error_rate)
        reply = now.pop("reply_audio", None)
        if audio_dir is not None and reply is not None:
            audio_dir.mkdir(parents=True, exist_ok=True)
            (audio_dir / f"{path.name}.wav").write_bytes(wav(reply))
        result = compare(recording.turn, now, path.name, stack)
        return Verdict(path.name, problems, result, time.monotonic() - began)

    with ThreadPoolExecutor(max(1, at_once)) as pool:
        starts = (order or start_order)([case[2] for case in cases])
        started = {n: pool.submit(one, cases[n]) for n in starts}
        verdicts = [started[n].result() for n in range(len(cases))]
    at_once = 1
    return [one(case) if v.problems == [OVERLOADED] else v for case, v in zip(cases, verdicts, strict=True)]
