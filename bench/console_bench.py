"""console: end of speech to first reply audio *played* in Chromium, beside the WebSocket client's first byte.

One prod stack with the console on. The same ten questions go both ways,
interleaved: the bench's own WebSocket client (the end of speech is when the
last speech chunk is sent, the first audio when its byte arrives), and the
console page in headless Chromium, which streams an uploaded WAV in real
time through its own audio path and reports, per turn, the end of the audible
speech (its level meter) to the first sample its playback worklet plays.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from bench.common import Inputs, Report, median, speech16k, whole_stack
from bench.core_bench import QUESTIONS, ws_turn
from voxstack.audio import float_to_pcm16, wav_bytes
from voxstack.testing.browser import CHROMIUM, chromium, until


def run(report: Report, inputs: Inputs) -> None:
    voice, models_dir = inputs.voice, inputs.models_dir
    if not Path(CHROMIUM).exists():
        report.add("console", "skipped", 0, "", "", f"no Chromium at {CHROMIUM}")
        return
    questions = [speech16k(voice, q) for q in QUESTIONS]
    with ExitStack() as stack, tempfile.TemporaryDirectory() as folder:
        env = {"VOXSTACK_LLM__MAX_TOKENS": "80", "VOXSTACK_CORE__CONSOLE": "true"}
        port = whole_stack(stack, models_dir, env)
        files = []
        for n, q in enumerate(questions):
            path = Path(folder) / f"q{n}.wav"
            audio = np.concatenate([np.zeros(4800, np.float32), q, np.zeros(16000, np.float32)])
            path.write_bytes(wav_bytes(float_to_pcm16(audio), 16000))
            files.append(path)
        context = stack.enter_context(chromium())
        page = context.new_page()
        # As the WebSocket client: no partial transcripts, and each question in a new session.
        page.goto(f"http://127.0.0.1:{port}/console?interim=0")
        until(page, "window.vox && window.vox.conn.state === 'connected'", 30)
        ws_turn(port, questions[0])  # warm-up, both ways
        page.set_input_files("#upload", str(files[0]))
        until(page, "window.vox.turns().filter(t => t.total !== null && t.server).length >= 1", 120)
        websocket, played, stages = [], [], []
        for n, path in enumerate(files):
            websocket.append(ws_turn(port, questions[n])["first_audio"])
            page.click("#new-session")
            until(page, "window.vox.conn.state === 'connected'", 30)
            page.set_input_files("#upload", str(path))
            until(page, f"window.vox.turns().filter(t => t.total !== null && t.server).length >= {n + 2}", 120)
            # Let the reply finish playing before the next question (no barge-in).
            until(page, "document.getElementById('speech-state').dataset.state !== 'speaking'", 120)
            turn = page.evaluate("() => window.vox.turns().filter(t => t.total !== null && t.server).at(-1)")
            played.append(turn["total"] / 1000)
            stages.append(turn["stages"])
    note = f"median of {len(questions)} questions, interleaved"
    ws_median, page_median = median(websocket), median(played)
    report.add("console", "WebSocket client: end of speech to first audio byte", ws_median, "s", "", note)
    report.add(
        "console", "console in Chromium: end of audible speech to first audio played", page_median, "s", "", note
    )
    report.add("console", "console / WebSocket client", page_median / ws_median, "ratio", "", "same run")
    for key in ("eou", "asr", "llm", "tts", "play"):
        report.add("console", f"console stage {key}", median([s[key] / 1000 for s in stages]), "s", "", "page-side")
