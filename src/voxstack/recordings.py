"""Recorded turns on disk: what the core keeps of each WebSocket turn (in dev), for `voxstack replay`.

A recording is a folder named by its id, which sorts by time
(``20261206-093012-123456-SESSION-3``), holding ``turn.json`` and its audio as
PCM16 WAV: ``input.wav`` (the utterance as the asr segmented it; none for a
typed turn) and ``reply.wav``. ``turn.json`` carries ``format`` (this
module's FORMAT): a reader refuses another. A recording is written whole into
a hidden folder and then renamed, so a reader never sees half of one; the
oldest go first past a count or a size.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import time
import wave
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxstack.config import Settings

FORMAT = 1
TURN_FILE = "turn.json"
INPUT_AUDIO = "input.wav"
REPLY_AUDIO = "reply.wav"
_PARTIAL = ".partial-"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class RecordingError(ValueError):
    """A recording that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Pcm:
    data: bytes
    sample_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return len(self.data) / (2 * self.channels * self.sample_rate) if self.sample_rate else 0.0


@dataclass(frozen=True)
class Recording:
    path: Path
    turn: dict[str, Any]

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def spoken(self) -> bool:
        return self.turn["input"]["kind"] == "audio"

    def input_audio(self) -> Pcm:
        return read_wav(self.path / INPUT_AUDIO)

    def reply_audio(self) -> Pcm | None:
        path = self.path / REPLY_AUDIO
        return read_wav(path) if path.exists() else None


def turn_settings(settings: Settings, voice: str = "", language: str = "") -> dict[str, Any]:
    """The settings a turn runs with, as far as they shape its transcript and reply (a recording's ``settings``)."""
    llm = settings.llm
    return {
        "voice": voice or settings.core.voice,
        "language": language,
        "asr_model": str(settings.asr.model or "default"),
        "llm_preset": llm.preset,
        "llm_model": str(llm.model or ""),
        "system_prompt": llm.system_prompt,
        "temperature": llm.temperature,
        "top_p": llm.top_p,
        "max_tokens": llm.max_tokens,
        "speculative_reply": settings.core.speculative_reply,
    }


#: The settings whose difference makes a replay a different experiment, not a check of the code.
MODEL_SETTINGS = {"asr_model": "asr model", "llm_preset": "llm preset", "llm_model": "llm model"}


def differences(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between a recording's settings and the stack's, among MODEL_SETTINGS."""
    return [
        f"{what}: recorded with {recorded[key]!r}, the stack runs {now[key]!r}"
        for key, what in MODEL_SETTINGS.items()
        if key in recorded and key in now and recorded[key] != now[key]
    ]


def new_id(session_id: str, turn: int, now: float | None = None) -> str:
    now = time.time() if now is None else now
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now % 1 * 1e6):06d}"
    return f"{stamp}-{_UNSAFE.sub('_', session_id)[:40]}-{turn}"


def wav(pcm: Pcm) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(pcm.channels)
        w.setsampwidth(2)
        w.setframerate(pcm.sample_rate)
        w.writeframes(pcm.data)
    return out.getvalue()


def read_wav(path: Path) -> Pcm:
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise RecordingError(f"{path}: {8 * w.getsampwidth()}-bit audio; recordings hold 16-bit PCM")
            return Pcm(w.readframes(w.getnframes()), w.getframerate(), w.getnchannels())
    except FileNotFoundError:
        raise RecordingError(f"{path}: missing") from None
    except (wave.Error, EOFError, OSError) as exc:
        raise RecordingError(f"{path}: not a readable WAV file ({exc})") from None


def save(folder: Path, turn: Mapping[str, Any], audio: Mapping[str, Pcm], *, max_count: int, max_bytes: int) -> Path:
    """Write a recording (``turn`` gains ``format``), then drop the oldest past the bounds; its folder."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / str(turn["id"])
    partial = folder / f"{_PARTIAL}{final.name}"
    partial.mkdir()
    try:
        for name, pcm in audio.items():
            (partial / name).write_bytes(wav(pcm))
        (partial / TURN_FILE).write_text(json.dumps({"format": FORMAT, **turn}, indent=1, ensure_ascii=False))
        os.replace(partial, final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    prune(folder, max_count, max_bytes)
    return final


def prune(folder: Path, max_count: int, max_bytes: int) -> list[str]:
    """Drop the oldest recordings until at most ``max_count`` and ``max_bytes`` remain; the ids dropped."""
    kept = listed(folder)
    sizes = {p: sum(f.stat().st_size for f in p.iterdir() if f.is_file()) for p in kept}
    total = sum(sizes.values())
    dropped = []
    while kept and (len(kept) > max_count or total > max_bytes):
        oldest = kept.pop(0)
        total -= sizes[oldest]
        shutil.rmtree(oldest, ignore_errors=True)
        dropped.append(oldest.name)
    return dropped


def listed(folder: Path) -> list[Path]:
    """The recordings in ``folder``, oldest first."""
    with contextlib.suppress(FileNotFoundError):
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    return []


def load(path: Path) -> Recording:
    """The recording in folder ``path`` (or whose ``turn.json`` is ``path``), checked: RecordingError names
    the file and what is wrong."""
    folder = path.parent if path.name == TURN_FILE else path
    meta = folder / TURN_FILE
    try:
        turn = json.loads(meta.read_text())
    except FileNotFoundError:
        raise RecordingError(f"{meta}: missing (is {folder} a recording?)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RecordingError(f"{meta}: not readable JSON ({exc})") from None
    if not isinstance(turn, dict):
        raise RecordingError(f"{meta}: not a recorded turn (a JSON object)")
    if turn.get("format") != FORMAT:
        raise RecordingError(f"{meta}: format {turn.get('format')!r}; this voxstack reads format {FORMAT}")
    problems = [k for k in ("input", "transcript", "reply", "timings", "settings") if k not in turn]
    kind = turn.get("input", {}).get("kind") if isinstance(turn.get("input"), dict) else None
    if kind not in ("audio", "text"):
        problems.append("input.kind")
    elif kind == "text" and not isinstance(turn["input"].get("text"), str):
        problems.append("input.text")
    if problems:
        raise RecordingError(f"{meta}: missing or invalid {', '.join(problems)}")
    recording = Recording(folder, turn)
    if recording.spoken:
        recording.input_audio()  # readable, or RecordingError naming it
    return recording


def select(folder: Path, names: Iterable[str] = (), last: int = 0) -> list[Recording]:
    """Recordings by id or path, or the ``last`` few in ``folder`` (the newest if neither), oldest first."""
    paths = []
    for name in names:
        path = Path(name)
        paths.append(path if path.exists() or os.sep in name else folder / name)
    if not paths:
        paths = listed(folder)[-max(1, last) :]
        if not paths:
            raise RecordingError(f"{folder}: no recordings (voxstack dev records each WebSocket turn)")
    return [load(p) for p in paths]
