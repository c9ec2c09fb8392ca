"""The load harness's callers: spoken WebSocket conversations in real time, and HTTP calls at fixed concurrency.

A conversation is what a person at a microphone does: it streams a question
in 20 ms frames as it would be spoken, keeps streaming silence (a microphone
does not stop) while it waits for the reply, listens to the reply for as long
as its audio lasts, thinks for a moment (0.5-3 s, random: conversations that
moved in lockstep would always ask at the same time), then asks the next. Each turn records the
seconds from the last speech frame sent to the first reply audio byte, the
server's stage timings, or what went wrong, by kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from voxstack.audio import float_to_pcm16

FRAME = 320  # samples: 20 ms at 16 kHz
RATE = 16000
LEAD_SILENCE = 0.3  # seconds of room noise before each question
TURN_TIMEOUT = 30.0
THINK = (0.5, 3.0)  # seconds between hearing a reply and asking the next question


@dataclass
class TurnResult:
    """One turn: its latency and stages, or the error that ended it."""

    started: float  # perf_counter at the end of speech
    first_audio: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""  # "" = answered; else a kind: an error code, "close 1013", "timeout", ...
    refused_after: float | None = None  # for a refusal: seconds from asking (connecting, or the end of speech)
    at_connect: bool = False  # refused before the conversation began


class LoadConversation:
    """One spoken conversation on its own WebSocket until ``stop_at``; its turns land in ``results``."""

    def __init__(self, url: str, questions: list[np.ndarray], results: list[TurnResult], offset: int = 0) -> None:
        self.url = url
        self.questions = [float_to_pcm16(q) for q in questions]
        self.results = results
        self.offset = offset
        self.silence = bytes(2 * FRAME)
        self.rng = random.Random(offset)  # the same pauses in every run

    async def run(self, stop_at: float) -> None:
        asked = time.perf_counter()
        try:
            async with connect(self.url, max_size=None, open_timeout=10) as ws:
                await ws.send(json.dumps({"type": "config", "sample_rate": RATE, "interim_results": False}))
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if first["type"] != "ready":
                    self.refused(first.get("code", first["type"]), asked)
                    return
                n = self.offset
                while time.perf_counter() < stop_at:
                    result = await self.turn(ws, self.questions[n % len(self.questions)])
                    self.results.append(result)
                    n += 1
                    if result.error:
                        return  # a conversation that failed starts again, as a client would
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            self.refused(f"close {code}", asked)
        except InvalidStatus as exc:
            self.refused(f"http {exc.response.status_code}", asked)
        except (OSError, asyncio.TimeoutError) as exc:
            self.refused(type(exc).__name__, asked)

    def refused(self, kind: str, asked: float) -> None:
        now = time.perf_counter()
        self.results.append(TurnResult(started=now, error=kind, refused_after=now - asked, at_connect=True))

    async def turn(self, ws: ClientConnection, pcm: bytes) -> TurnResult:
        done = asyncio.Event()
        marks: dict[str, float] = {}
        sender = asyncio.create_task(self.speak(ws, pcm, marks, done))
        result = TurnResult(started=0.0)
        heard = {"audio_seconds": 0.0, "rate": 22050.0}  # the reply's rate until an audio event says it

        async def listen() -> None:
            while True:
                message = await ws.recv()
                if isinstance(message, bytes):
                    if result.first_audio is None and "speech_end" in marks:
                        result.first_audio = time.perf_counter() - marks["speech_end"]
                    heard["audio_seconds"] += len(message) / 2 / heard["rate"]
                    continue
                event = json.loads(message)
                if event["type"] == "audio":
                    heard["rate"] = event["sample_rate"]
                elif event["type"] == "reply_done":
                    result.timings = event["timings"]
                    return
                elif event["type"] == "error":
                    result.error = event.get("code", "error")
                    return

        try:
            await asyncio.wait_for(listen(), TURN_TIMEOUT)
        except asyncio.TimeoutError:
            result.error = "timeout"
        except ConnectionClosed as exc:
            result.error = f"close {exc.rcvd.code if exc.rcvd is not None else 1006}"
        result.started = marks.get("speech_end", time.perf_counter())
        if result.error:  # how long after the end of speech the turn was refused or failed
            result.refused_after = time.perf_counter() - result.started
        if not result.error and result.first_audio is None:
            result.error = "no audio"
        # Listen to the reply and think (streaming silence, as a microphone would), then the next question.
        listening = max(0.0, heard["audio_seconds"] - 0.5) + self.rng.uniform(THINK[0], THINK[1])
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(sender), listening)
        done.set()
        with contextlib.suppress(Exception):
            await sender
        return result

    async def speak(self, ws: ClientConnection, pcm: bytes, marks: dict[str, float], done: asyncio.Event) -> None:
        """Silence, the question, then silence until ``done``, each frame at its time."""
        lead = bytes(int(2 * RATE * LEAD_SILENCE))
        frames = lead + pcm
        speech_end = len(frames)
        start = time.perf_counter()
        n = 0
        while not done.is_set():
            at = start + n * FRAME / RATE
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            offset = 2 * FRAME * n
            chunk = frames[offset : offset + 2 * FRAME] if offset < len(frames) else self.silence
            try:
                await ws.send(chunk.ljust(2 * FRAME, b"\0"))
            except ConnectionClosed:
                return
            if offset < speech_end <= offset + 2 * FRAME:
                marks["speech_end"] = time.perf_counter()
            n += 1


@dataclass
class CallResult:
    at: float  # perf_counter when it was sent
    seconds: float
    status: int  # HTTP status; 0 = no answer (connection error, timeout)


async def sweep(call: Callable[[], Awaitable[int]], concurrency: int, count: int) -> list[CallResult]:
    """``count`` calls of ``call`` (returning an HTTP status), ``concurrency`` at a time."""
    results: list[CallResult] = []
    queue: asyncio.Queue[None] = asyncio.Queue()
    for _ in range(count):
        queue.put_nowait(None)

    async def caller() -> None:
        while not queue.empty():
            queue.get_nowait()
            started = time.perf_counter()
            try:
                status = await call()
            except Exception:
                status = 0
            results.append(CallResult(started, time.perf_counter() - started, status))

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return results


async def conversations(url: str, questions: list[np.ndarray], n: int, seconds: float) -> list[TurnResult]:
    """``n`` conversations for ``seconds``; one that fails starts again after a second, as a client would."""
    results: list[TurnResult] = []
    stop_at = time.perf_counter() + seconds

    async def slot(i: int) -> None:
        await asyncio.sleep(i * 0.7)  # staggered: people do not all start talking at once
        while time.perf_counter() < stop_at:
            before = len(results)
            await LoadConversation(url, questions, results, offset=i).run(stop_at)
            if any(r.error for r in results[before:]):
                await asyncio.sleep(1.0)

    await asyncio.gather(*(slot(i) for i in range(n)))
    return results
