"""Dev mode with ``--replay``: from a save that changes the reply to the new verdicts of the pinned turns.

`voxstack dev --replay conversations` (the project's three pinned turns, two
spoken, one typed) runs on a private copy of the source tree with the
default models. Each save is either a line of the core's pipeline code (the
reply gains a marker word) or the system prompt in `.env`; the time is from
the save to the dashboard's data (replays.json, which the dashboard streams
within its 0.1 s poll) holding the verdicts of that save. Saves alternate
between the two kinds and wait for the services' warm spares, as a
developer's saves seconds apart find them.

Then the replay path against the live one: a spoken question streamed in
real time as a live client would (and recorded by the core), alternating with
replays of that recording, also in real time; each stage's median, replayed
over live.

Last, the order ``check`` starts the pinned turns in (replay.start_order:
spoken and typed alternating) against the longest first, alternating on the
same running stack, two at a time as dev mode runs them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

from bench.common import Inputs, Report, median, speech16k
from bench.reload_bench import copy_tree, spares_ready
from voxstack import replay
from voxstack.models import DEFAULT_PRESET
from voxstack.recordings import INPUT_AUDIO, TURN_FILE, Pcm, Recording, load, save
from voxstack.registry import ALL_SERVICES
from voxstack.replay import run_turn
from voxstack.testing.edits import set_tail
from voxstack.testing.processes import child_env, free_ports

SAVES = 6
ORDER_ROUNDS = 6
PARITY_TURNS = 10
PARITY_STAGES = ("asr_decode", "llm_first_token", "first_audio")
CONVERSATIONS = Path(__file__).resolve().parents[1] / "conversations"
# Appended to the pipeline: every reply streamed through the core ends with " (vN)".
PIPELINE_TAIL = """
_test_reply = Pipeline.reply


async def _test_marked_reply(self, *args, **kwargs):
    async for event in _test_reply(self, *args, **kwargs):
        if isinstance(event, ReplyDone):
            event.text += " ({mark})"
        yield event


Pipeline.reply = _test_marked_reply
"""


def run(report: Report, inputs: Inputs) -> None:
    for preset in (DEFAULT_PRESET, "tiny"):  # the default, and the fastest llm as the reference
        times, passes, parity, orders = _run(inputs, preset)
        each = " ".join(f"{t:.2f}" for t in times)
        note = f"{len(times)} saves, code and .env alternating: {each} s; passes {passes}"
        metric = f"llm preset {preset}: save -> verdicts of 3 pinned turns on the dashboard, median"
        report.add("replay", metric, median(times), "s", "<= 3", note)
        for stage, (live, replayed) in parity.items():
            metric = f"llm preset {preset}: {stage} of a replayed turn / of the live turn, medians"
            note = f"live {median(live):.3f} s, replayed {median(replayed):.3f} s, {len(live)} turns each, real time"
            report.add("replay", metric, median(replayed) / median(live), "x", "0.9-1.1", note)
        alternating, longest = orders
        metric = f"llm preset {preset}: replay of the 3 turns, start order alternating kinds / longest first, medians"
        note = f"{median(alternating):.2f} / {median(longest):.2f} s, {ORDER_ROUNDS} rounds each, 2 at a time"
        report.add("replay", metric, median(alternating) / median(longest), "x", "< 1", note)


Times = list[float]


def _run(inputs: Inputs, preset: str) -> tuple[Times, str, dict[str, tuple[Times, Times]], tuple[Times, Times]]:
    with TemporaryDirectory(prefix="voxstack-replay-") as tmp:
        root = Path(tmp)
        src = copy_tree(root)
        ports = dict(zip(ALL_SERVICES, free_ports(len(ALL_SERVICES)), strict=True))
        env = child_env() | {
            "PYTHONPATH": str(src), "XDG_STATE_HOME": str(root / "state"),
            "VOXSTACK_MODELS_DIR": str(inputs.models_dir), "VOXSTACK_LLM__TEMPERATURE": "0",
            "VOXSTACK_LLM__PRESET": preset,
            **{f"VOXSTACK_{n.upper()}__PORT": str(p) for n, p in ports.items()},
        }  # fmt: skip
        log = (root / "dev.log").open("w")
        argv = [sys.executable, "-m", "voxstack", "dev", "--replay", str(CONVERSATIONS)]
        proc = subprocess.Popen(argv, env=env, cwd=root, stdout=log, stderr=log, start_new_session=True)
        state = root / "state" / "voxstack"
        try:
            times, passes = asyncio.run(_saves(root, src, state, proc))
            base = f"http://127.0.0.1:{ports['core']}"
            return times, passes, _parity(inputs, base, root, state / "recordings"), _orders(base)
        finally:
            proc.terminate()
            proc.wait(60)


async def _saves(root: Path, src: Path, state: Path, proc: subprocess.Popen[bytes]) -> tuple[list[float], str]:
    record, replays = state / "run.json", state / "replays.json"
    deadline = time.monotonic() + 300
    while not _serving(record):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"voxstack dev did not start: see {root / 'dev.log'}")
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)  # the watcher's start-up probe
    times, passes = [], []
    for n in range(1, SAVES + 1):
        for name in ALL_SERVICES:
            await spares_ready(record, name, True)
        last = _replayed_at(replays)
        saved = time.time()
        if n % 2:
            set_tail(src / "voxstack" / "core" / "pipeline.py", PIPELINE_TAIL.replace("{mark}", f"v{n}"))
        else:
            (root / ".env").write_text(f"VOXSTACK_LLM__SYSTEM_PROMPT=You are a helpful assistant. Reply {n}.\n")
        while _replayed_at(replays) == last:
            if time.time() - saved > 120:
                raise RuntimeError(f"no replay after save {n}: see {root / 'dev.log'}")
            await asyncio.sleep(0.02)
        data = json.loads(replays.read_text())
        times.append(data["at"] - saved)
        passes.append(f"{sum(not v['problems'] for v in data['verdicts'])}/{len(data['verdicts'])}")
    return times, " ".join(passes)


def _parity(inputs: Inputs, base: str, root: Path, recordings: Path) -> dict[str, tuple[list[float], list[float]]]:
    """Each stage's times: live turns of a spoken question, and replays of the first one's recording."""
    clip = np.concatenate([np.zeros(4800, np.float32), speech16k(inputs.voice, "What is the capital of Italy?")])
    pcm = (np.clip(clip, -1, 1) * 32767).astype("<i2").tobytes()
    turn = {"id": "question", "input": {"kind": "audio", "sample_rate": 16000, "channels": 1}, "transcript": "",
            "reply": "", "timings": {}, "settings": {}, "history": []}  # fmt: skip
    live = load(save(root / "clips", turn, {INPUT_AUDIO: Pcm(pcm, 16000, 1)}, max_count=1, max_bytes=2**24))
    times: dict[str, tuple[list[float], list[float]]] = {s: ([], []) for s in PARITY_STAGES}
    recorded = None
    for _ in range(PARITY_TURNS):
        said = run_turn(base, live, fast=False, timeout=60, record=True)
        if recorded is None:
            recorded = _recording(recordings / str(said["recording"]))
        again = run_turn(base, recorded, fast=False, timeout=60)
        for stage, (a, b) in times.items():
            a.append(said["timings"][stage])
            b.append(again["timings"][stage])
    return times


def _orders(base: str) -> tuple[Times, Times]:
    """The pinned turns replayed two at a time, in check()'s start order and longest first, alternating."""

    def longest_first(recordings: list[Recording]) -> list[int]:
        return sorted(range(len(recordings)), key=lambda n: -replay.expected_seconds(recordings[n]))

    times: tuple[Times, Times] = ([], [])
    for _ in range(ORDER_ROUNDS):
        for order, into in ((replay.start_order, times[0]), (longest_first, times[1])):
            began = time.monotonic()
            verdicts = replay.check(CONVERSATIONS, base, fast=True, timeout=60, at_once=2, order=order)
            into.append(time.monotonic() - began)
            if not all(v.passed for v in verdicts):
                raise RuntimeError(f"a pinned turn failed: {[v.problems for v in verdicts]}")
            time.sleep(0.5)  # the core forgets the closed conversations
    return times


def _recording(path: Path) -> Recording:
    deadline = time.monotonic() + 30  # written just after the reply
    while not (path / TURN_FILE).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the live turn was not recorded in {path}")
        time.sleep(0.05)
    return load(path)


def _serving(record: Path) -> bool:
    try:
        services = json.loads(record.read_text())["services"]
    except (OSError, ValueError, KeyError):
        return False
    return len(services) == 4 and all(s["state"] == "serving" for s in services.values())


def _replayed_at(replays: Path) -> float:
    try:
        return float(json.loads(replays.read_text())["at"])
    except (OSError, ValueError, KeyError):
        return 0.0
