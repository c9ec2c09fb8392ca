"""Recording WebSocket turns for `voxstack replay` (``core.record_turns``: on in dev, off in prod).

``Tape`` keeps the audio sent on the current asr stream, so that an
utterance can be cut out by the asr's offsets; ``TurnRecorder`` writes a
turn (voxstack.recordings) off the event loop once its reply is done. A
recording that cannot be written is logged, never a failed turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from voxstack import provenance
from voxstack.config import Mode, Settings
from voxstack.core.pipeline import ReplyDone, ReplyEvent, SentenceAudio
from voxstack.core.turn import Turn
from voxstack.recordings import INPUT_AUDIO, REPLY_AUDIO, Pcm, new_id, save

logger = logging.getLogger(__name__)

#: Audio kept before an utterance's start offset (the asr's VAD starts a little late).
LEAD_SECONDS = 0.2


class Tape:
    """The PCM16 audio sent on the current asr stream; the newest ``keep_seconds`` of it."""

    def __init__(self, sample_rate: int, channels: int, keep_seconds: float) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame = 2 * channels
        self.keep = int(keep_seconds * sample_rate) * self.frame
        self.data = bytearray()
        self.start = 0  # bytes of the stream before ``data``

    def new_stream(self) -> None:
        """A new asr stream: its offsets count from here."""
        self.data.clear()
        self.start = 0

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > 2 * self.keep:  # trimmed in steps: not a copy per chunk
            cut = len(self.data) - self.keep
            cut -= cut % self.frame
            del self.data[:cut]
            self.start += cut

    def cut(self, begin: float, end: float) -> Pcm:
        """The audio between two offsets of the stream (seconds), as far as it is still kept."""
        first = max(0, self._byte(max(0.0, begin - LEAD_SECONDS)) - self.start)
        last = max(first, self._byte(end) - self.start)
        return Pcm(bytes(self.data[first:last]), self.sample_rate, self.channels)

    def _byte(self, seconds: float) -> int:
        return int(seconds * self.sample_rate) * self.frame


def enabled(settings: Settings) -> bool:
    wanted = settings.core.record_turns
    return settings.mode is Mode.DEV if wanted is None else wanted


class TurnRecorder:
    """Writes the turns of one core's conversations."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        core = settings.core
        self.folder = settings.recordings_dir
        self.bounds = {"max_count": core.recordings_max_count, "max_bytes": core.recordings_max_bytes}
        self.instance = provenance.this_instance()
        self._tasks: set[asyncio.Task[None]] = set()

    def record(self, session_id: str, number: int, turn: dict[str, Any], heard: Pcm | None, reply: Pcm | None) -> str:
        """Write a turn in the background; its id."""
        turn = {"id": new_id(session_id, number), "recorded_at": time.time(), "session_id": session_id, **turn}
        turn["served_by"] = {"core": self.instance, **turn.get("served_by", {})}
        audio = {name: pcm for name, pcm in ((INPUT_AUDIO, heard), (REPLY_AUDIO, reply)) if pcm is not None}
        task = asyncio.create_task(self._write(turn, audio))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return str(turn["id"])

    async def _write(self, turn: dict[str, Any], audio: dict[str, Pcm]) -> None:
        try:
            path = await asyncio.to_thread(save, self.folder, turn, audio, **self.bounds)
        except OSError as exc:
            logger.warning("turn %s not recorded: %s", turn["id"], exc)
            return
        logger.debug("recorded turn %s in %s", turn["id"], path)


class TakenTurn:
    """What a turn produced, as it streams: its reply's text, audio and timings, for its recording."""

    def __init__(self, turn: Turn, history: list[dict[str, str]]) -> None:
        self.turn = turn
        self.history = history
        self.audio: list[bytes] = []
        self.sample_rate = 0
        self.done: ReplyDone | None = None
        self.served_by: dict[str, dict[str, str]] = {}  # each stage's instance that answered (provenance)

    def add(self, event: ReplyEvent) -> None:
        if isinstance(event, SentenceAudio):
            self.audio.append(event.pcm16)
            self.sample_rate = event.sample_rate
        elif isinstance(event, ReplyDone):
            self.done = event

    def reply(self) -> Pcm | None:
        return Pcm(b"".join(self.audio), self.sample_rate, 1) if self.sample_rate else None

    def summary(self, settings: dict[str, Any]) -> dict[str, Any]:
        turn, done = self.turn, self.done
        heard = turn.heard
        kind: dict[str, Any] = {"kind": "text", "text": turn.text}
        if heard is not None and not turn.typed:
            kind = {"kind": "audio", "sample_rate": heard.sample_rate, "channels": heard.channels}
        return {
            "turn": turn.number,
            "input": kind,
            "transcript": "" if turn.typed else turn.text,
            "reply": done.text if done else "",
            "reply_audio_seconds": round(sum(map(len, self.audio)) / 2 / self.sample_rate, 3)
            if self.sample_rate
            else 0.0,
            "reply_sample_rate": self.sample_rate,
            "timings": done.timings.as_dict() if done else {},
            "history": self.history,
            "settings": settings,
            "served_by": self.served_by,
        }
