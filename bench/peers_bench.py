"""peers: a turn on voxstack against the same turn on Pipecat, with the same models, on this machine, in one run.

Pipecat (pinned below) runs in a virtualenv of its own that this bench makes
under the cache folder beside the models (``pip`` from the package index),
as ``bench/peers/pipecat_bot.py``: faster-whisper base int8 at beam size 1,
llama-cpp-python's OpenAI-compatible server with the default preset's GGUF,
system prompt, sampling and threads,
and the piper voice en_US-joe-medium, over its FastAPI WebSocket transport.
Two of its turn-taking setups: its recommended one (Silero VAD with a 0.2 s
stop, then Smart Turn v3), and silence alone (0.5 s). voxstack runs with its
defaults (``/v1/stream``), and beside them with each of ``VARIANTS`` (a stack
of its own), so a setting's effect shows in the same run.

Each utterance is streamed in real time in 20 ms pieces to each stack in
turn (the order rotating per utterance, so a slow moment of the machine falls
on all), a fresh session each, and timed from the piece holding the last
audible sample to the first reply audio byte. Utterances: questions of
bench/data/questions.json said by the piper voice and by espeak-ng's UK voice
(when installed), and the endpoint bench's sentences with a 600 ms pause
after a word where a person might stop to think. A stack "cut off" the
speaker when it took more than one turn for the sentence (voxstack: a final
transcript; Pipecat: its user aggregator asking the LLM), whenever the turn
came: a slow stack may ask its LLM about the first part after the speaker
has finished the second. What
the hesitating speaker then gets is counted too: reply audio before they
finished (talked over), and whether the turn the first reply audio answers
holds the whole sentence (its text within a word error rate of WHOLE of it:
voxstack's last transcript, Pipecat's user messages since its last reply).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from websockets.sync.client import ClientConnection, connect

from bench.common import (
    DATA_DIR,
    Inputs,
    Report,
    median,
    p90,
    realtime_chunks,
    speech16k,
    stack_ports,
    trimmed,
    wait_http,
)
from bench.endpoint_bench import RATES, SENTENCES, Paced, hesitation
from bench.hearing_bench import espeak
from voxstack.asr.engine import WhisperEngine
from voxstack.audio import float_to_pcm16
from voxstack.config import load_settings
from voxstack.models import VOICE, WHISPER
from voxstack.testing.processes import free_port
from voxstack.testing.speech import wer

logger = logging.getLogger(__name__)

PIPECAT = ("pipecat-ai[websocket,silero,whisper,openai,piper]==1.14.0", "uvicorn==0.55.0")
BOT = Path(__file__).resolve().parent / "peers" / "pipecat_bot.py"
QUESTIONS = DATA_DIR / "questions.json"
COUNT = 10  # questions per voice
PAUSE = 0.6  # seconds of hesitation
WHOLE = 0.35  # word error rate against the whole sentence under which the answered turn holds it
RATE = 16_000
LEAD = 0.3  # seconds of silence before the speech
LONGEST_WAIT = 8.0  # seconds after the speech with no reply audio: the stack did not answer
#: voxstack with settings changed, beside its defaults in the same run (``stack_ports``).
VARIANTS = {"voxstack, tiny preset": {"VOXSTACK_LLM__PRESET": "tiny"}}
HELLO = {"type": "config", "sample_rate": RATE, "interim_results": False}  # voxstack's session config


@dataclass
class Stack:
    name: str
    url: str
    hello: dict[str, Any] | None  # sent first (voxstack's config)
    turn_text: Callable[[dict[str, Any]], str | None]  # the text of an event that takes a turn, else None


@dataclass
class Turn:
    first_audio: float | None  # seconds from the last audible sample; None: no reply
    early: list[str] = field(default_factory=list)  # turns taken before the utterance ended
    heard: list[str] = field(default_factory=list)  # the text of every turn taken
    talked_over: bool = False  # reply audio came before the utterance ended


def answered_whole(said: str, result: Turn) -> bool:
    """Whether the reply the speaker first heard, after they finished, answers all of ``said``."""
    if result.talked_over or result.first_audio is None or not result.heard:
        return False
    return wer(said, result.heard[-1]) <= WHOLE


def _voxstack_turn(event: dict[str, Any]) -> str | None:
    return event.get("text") or None if event.get("type") == "transcript" else None


def _pipecat_turn(event: dict[str, Any]) -> str | None:
    return str(event.get("text", "")) if event.get("type") == "turn" else None


def turn(stack: Stack, audio: np.ndarray) -> Turn:
    """Stream ``audio`` to ``stack`` in real time, a fresh session; what the stack did with it."""
    lead = int(LEAD * RATE)
    pcm = float_to_pcm16(
        np.concatenate([np.zeros(lead, np.float32), audio, np.zeros(int(LONGEST_WAIT * RATE), np.float32)])
    )
    marks: dict[str, float] = {}
    done = threading.Event()
    result = Turn(None)
    with connect(stack.url, max_size=None) as ws:
        if stack.hello is not None:
            ws.send(json.dumps(stack.hello))
        ws.recv(timeout=30)  # voxstack's config answer, Pipecat's "ready"

        def send() -> None:
            for piece in realtime_chunks(pcm, lead + audio.size, marks):
                if done.is_set():
                    return
                ws.send(piece)
            done.set()

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            _receive(ws, stack, marks, done, result)
        finally:
            done.set()
            sender.join()
    time.sleep(1.0)  # the stack finishes or cancels the reply before the next session
    return result


def _receive(ws: ClientConnection, stack: Stack, marks: dict[str, float], done: threading.Event, result: Turn) -> None:
    while not done.is_set():
        try:
            message = ws.recv(timeout=0.2)
        except TimeoutError:
            continue
        now = time.perf_counter()
        ended = marks.get("speech_end")
        if isinstance(message, bytes):
            if ended is not None:
                result.first_audio = now - ended
                return
            result.talked_over = True
            continue
        text = stack.turn_text(json.loads(message))
        if text is not None:
            result.heard.append(text)
            if ended is None:
                result.early.append(text)


def _pipecat_python(root: Path) -> Path:
    """Pipecat's own virtualenv under ``root``, made (or remade when the pins change) with pip."""
    venv = root / "pipecat-venv"
    stamp = venv / "voxstack-requirements.txt"
    wanted = "\n".join(PIPECAT) + "\n"
    python = venv / "bin" / "python"
    if not stamp.exists() or stamp.read_text() != wanted:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PIPECAT], check=True)
        stamp.write_text(wanted)
    return python


def _versions(python: Path) -> str:
    frozen = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    keep = ("pipecat-ai", "faster-whisper", "piper-tts", "onnxruntime", "openai", "llama_cpp_python")
    lines = [line for line in frozen.splitlines() if line.lower().split("==")[0].replace("_", "-") in keep]
    import llama_cpp

    return ", ".join([*lines, f"llama-cpp-python=={llama_cpp.__version__} (server)"])


@contextmanager
def _process(command: list[str], log: Path, ready: str, timeout: float = 300) -> Iterator[None]:
    """Run ``command`` (output to ``log``) until the block ends, once GET ``ready`` answers 200."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(ready, process, timeout, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _peers(stack: ExitStack, inputs: Inputs, logs: Path) -> tuple[list[Stack], str]:
    """Start llama.cpp's server and the Pipecat bot; the Pipecat stacks and the versions they run."""
    python = _pipecat_python(inputs.models_dir.parent / "bench")
    llm = load_settings().llm
    llm_port, bot_port = free_port(), free_port()
    model = llm.model or llm.llm_preset.model.path(inputs.models_dir) / llm.llm_preset.model.files[0].name
    server = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--n_ctx", str(llm.context_size)]
    threads = str(llm.threads or os.cpu_count() or 1)  # as the llm takes them
    server += ["--n_threads", threads, "--n_threads_batch", threads, "--host", "127.0.0.1", "--port", str(llm_port)]
    stack.enter_context(_process(server, logs / "llama-server.log", f"http://127.0.0.1:{llm_port}/v1/models"))
    voice = VOICE.path(inputs.models_dir) / "en_US-joe-medium.onnx"
    bot = [str(python), str(BOT), "--port", str(bot_port), "--whisper", str(WHISPER.path(inputs.models_dir))]
    bot += ["--voice", str(voice), "--llm-url", f"http://127.0.0.1:{llm_port}/v1"]
    bot += ["--system-prompt", llm.system_prompt, "--temperature", str(llm.temperature), "--top-p", str(llm.top_p)]
    bot += ["--max-tokens", str(llm.max_tokens), "--beam-size", "1"]
    stack.enter_context(_process(bot, logs / "pipecat-bot.log", f"http://127.0.0.1:{bot_port}/ready"))
    base = f"ws://127.0.0.1:{bot_port}/ws"
    return [
        Stack("Pipecat, Smart Turn v3 on Silero VAD 0.2 s", base, None, _pipecat_turn),
        Stack("Pipecat, 0.5 s silence", f"{base}?turn=silence&silence=0.5", None, _pipecat_turn),
    ], _versions(python)


def questions(inputs: Inputs) -> list[tuple[str, np.ndarray]]:
    """(text, audio) of the finished questions: piper's voice, then espeak-ng's UK voice when it is installed."""
    plain = json.loads(QUESTIONS.read_text())["plain"]
    texts = [item["q"] for item in plain[:: len(plain) // COUNT][:COUNT]]
    said = [(text, speech16k(inputs.voice, text)) for text in texts]
    if shutil.which("espeak-ng"):
        said += [(text, trimmed(espeak(text, "en-gb", 160))) for text in texts]
    return said


def utterances(inputs: Inputs) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """(text, audio) of the finished questions and of the hesitating sentences."""
    settings = load_settings(models_dir=str(inputs.models_dir))
    engine = WhisperEngine(settings.asr, inputs.models_dir)
    engine.load()
    paused = []
    for scale in RATES:
        paced = Paced(inputs.voice, scale)
        for first, second in SENTENCES:
            cut = hesitation(engine, speech16k(paced, f"{first} {second}"), first, PAUSE)
            if cut is not None:
                paused.append((f"{first} {second}", cut[0]))
    return questions(inputs), paused


def run(report: Report, inputs: Inputs) -> None:
    questions, paused = utterances(inputs)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="peers-") as logs:
        # Each variant on services of its own: on a shared llm the second core to ask a question would find its
        # whole prompt in the cache, which no conversation does.
        ports = stack_ports(stack, inputs.models_dir, variants=VARIANTS, share=False)
        peers, versions = _peers(stack, inputs, Path(logs))
        stacks = [
            Stack("voxstack, defaults", f"ws://127.0.0.1:{ports['core']}/v1/stream", HELLO, _voxstack_turn),
            *(Stack(name, f"ws://127.0.0.1:{ports[name]}/v1/stream", HELLO, _voxstack_turn) for name in VARIANTS),
            *peers,
        ]
        for each in stacks:  # warm-up: the first decode and the first prompt are slower
            turn(each, questions[0][1])
        asked: dict[str, list[tuple[str, Turn]]] = {s.name: [] for s in stacks}
        hesitated: dict[str, list[tuple[str, Turn]]] = {s.name: [] for s in stacks}
        for i, (text, audio) in enumerate(questions):
            for each in stacks[i % len(stacks) :] + stacks[: i % len(stacks)]:
                asked[each.name].append((text, turn(each, audio)))
                logger.info("%s: %r -> %s", each.name, text, asked[each.name][-1][1])
        for i, (text, audio) in enumerate(paused):
            for each in stacks[i % len(stacks) :] + stacks[: i % len(stacks)]:
                hesitated[each.name].append((text, turn(each, audio)))
                logger.info("%s: hesitation %r -> %s", each.name, text, hesitated[each.name][-1][1])
    voices = "piper, espeak-ng en-gb" if shutil.which("espeak-ng") else "piper; espeak-ng not installed"
    note = (
        f"{len(questions)} questions ({voices}), {len(paused)} with a {PAUSE * 1000:.0f} ms pause, "
        "real time, fresh session each, stacks alternating"
    )
    medians = {}
    for each in stacks:
        firsts = [t.first_audio for _, t in asked[each.name] if t.first_audio is not None and not t.early]
        medians[each.name] = median(firsts)
        unanswered = sum(t.first_audio is None for _, t in asked[each.name])
        cut = sum(len(t.heard) > 1 for _, t in hesitated[each.name])
        whole = sum(answered_whole(text, t) for text, t in hesitated[each.name])
        over = sum(t.talked_over for _, t in hesitated[each.name])
        wrong = [wer(text, " ".join(t.heard)) for text, t in asked[each.name]]
        report.add("peers", f"{each.name}: end of speech -> first audio byte", medians[each.name], "s", "", note)
        report.add("peers", f"{each.name}: same, p90", p90(firsts), "s", "", "")
        report.add(
            "peers",
            f"{each.name}: {PAUSE * 1000:.0f} ms hesitations cut off",
            cut / max(1, len(paused)),
            "share",
            "<= 0.1" if each is stacks[0] else "",
            f"{cut} of {len(paused)}; finished questions cut off or unanswered: "
            f"{sum(bool(t.early) for _, t in asked[each.name])}, {unanswered}",
        )
        report.add(
            "peers",
            f"{each.name}: {PAUSE * 1000:.0f} ms hesitations answered as a whole",
            whole / max(1, len(paused)),
            "share",
            "",
            f"{whole} of {len(paused)}: the first reply heard answers the whole sentence; talked over: {over}",
        )
        report.add("peers", f"{each.name}: word error rate of the turns", float(np.mean(wrong)), "", "", "")
        note = ""
    best = min(medians[s.name] for s in peers)
    report.add(
        "peers", "voxstack over Pipecat's best, medians", medians[stacks[0].name] / best, "x", "<= 0.5", versions
    )
