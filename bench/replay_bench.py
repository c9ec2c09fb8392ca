"""Dev mode with ``--replay``: from a save that changes the reply to the new verdicts of the pinned turns.

`voxstack dev --replay conversations` (the project's three pinned turns, two
spoken, one typed) runs on a private copy of the source tree with the
default models. Each save is either a line of the core's pipeline code (the
reply gains a marker word) or the system prompt in `.env`; the time is from
the save to the dashboard's data (replays.json, which the dashboard streams
within its 0.1 s poll) holding the verdicts of that save. Saves alternate
between the two kinds and wait for the services' warm spares, as a
developer's saves seconds apart find them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.common import Inputs, Report, median
from bench.reload_bench import copy_tree, spares_ready
from voxstack.models import DEFAULT_PRESET
from voxstack.registry import ALL_SERVICES
from voxstack.testing.edits import set_tail
from voxstack.testing.processes import child_env, free_port

SAVES = 6
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
        times, passes = _run(inputs, preset)
        note = f"max {max(times):.2f} s over {len(times)} saves (code and .env alternating); passes {passes}"
        metric = f"llm preset {preset}: save -> verdicts of 3 pinned turns on the dashboard, median"
        report.add("replay", metric, median(times), "s", "<= 3", note)


def _run(inputs: Inputs, preset: str) -> tuple[list[float], str]:
    with TemporaryDirectory(prefix="voxstack-replay-") as tmp:
        root = Path(tmp)
        src = copy_tree(root)
        ports = {n: free_port() for n in ALL_SERVICES}
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
            return asyncio.run(_saves(root, src, state, proc))
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
