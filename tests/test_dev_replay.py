"""`voxstack dev --replay DIR`: after every reload the pinned conversations are replayed through what now
serves, and their verdicts logged and written for the dashboard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from devstack import DevRun

from voxstack.expectations import EXPECT_FILE
from voxstack.recordings import Pcm, save
from voxstack.registry import ALL_SERVICES
from voxstack.testing.fakes import loud, quiet

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France?"


def pinned_conversation(folder: Path) -> None:
    turn = {
        "id": "capital",
        "input": {"kind": "audio", "sample_rate": 16000, "channels": 1},
        "transcript": QUESTION,
        "reply": "Paris is the capital of France.",
        "timings": {"first_audio": 0.5},
        "settings": {"voice": "", "language": "", "llm_preset": "elsewhere"},
        "history": [],
    }
    audio = {"input.wav": Pcm(quiet(0.2) + loud(1.0), 16000, 1)}
    path = save(folder, turn, audio, max_count=10, max_bytes=2**24)
    expect = {"transcript": {"text": QUESTION, "max_wer": 0.15}, "reply": {"contains": ["Paris"]}}
    (path / EXPECT_FILE).write_text(json.dumps(expect))


def test_dev_replays_the_pinned_conversations_after_each_reload(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("replay")  # short: the control sockets' paths have a length limit
    conversations = root / "conversations"
    pinned_conversation(conversations)
    run = DevRun(root, root / "models", "dev", ("--replay", str(conversations)), fakes=True)
    run.env["VOXSTACK_CORE__API_KEYS"] = '["replay-key-0123456789"]'  # the replays must present it
    run.script.update(asr={"utterances": [{"text": QUESTION}]}, llm={"default": {"text": "Paris, of course."}})
    run.start()
    try:
        run.wait_for(lambda: run.serving(*ALL_SERVICES), 120, "the stack")
        # The banner comes once every service serves (a moment after the record says so).
        run.wait_for(lambda: "after every reload" in run.output(), 30, "the banner")
        assert f"replaying {conversations}" in run.output()

        run.mark("llm", "v1")
        run.wait_for(lambda: "replay: 1 of 1 conversations pass" in run.output(), 60, "the replay after the reload")
        assert "replay: PASS capital" in run.output()
        # Recorded with another llm preset: said, not failed.
        assert "replay: capital differs from the stack: llm preset: recorded with 'elsewhere'" in run.output()

        run.script.update(llm={"default": {"text": "Madrid, of course."}})  # what a change to the code would do
        run.mark("llm", "v2")
        run.wait_for(lambda: "replay: 0 of 1 conversations pass" in run.output(), 60, "the failing replay")
        assert "replay: FAIL capital: reply 'Madrid, of course.' lacks 'Paris'" in run.output()
        replays = json.loads((run.state / "voxstack" / "replays.json").read_text())
        verdict = replays["verdicts"][0]
        assert verdict["name"] == "capital" and verdict["problems"] and replays["seconds_after_save"] > 0
        assert verdict["result"]["reply"] == {"old": "Paris is the capital of France.", "new": "Madrid, of course.",
                                              "same": False}  # fmt: skip
    finally:
        run.stop()
