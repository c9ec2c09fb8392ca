"""Recorded turns and `voxstack replay`: a WebSocket turn is recorded (audio as the asr segmented it, history,
settings, outputs); replay sends it through the running stack again and says what changed; bad recordings
are refused by name; the bounds hold; prod records nothing unless told to."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conversation import open_conversation, read_until, typed_turn
from stack import Stack

from voxstack.config import load_settings
from voxstack.core.recorder import enabled
from voxstack.recordings import FORMAT, Pcm, listed, load, save
from voxstack.testing.fakes import loud, quiet
from voxstack.testing.processes import child_env, voxstack_command

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("replay")
    env = {"VOXSTACK_CORE__RECORD_TURNS": "true", "VOXSTACK_CORE__RECORDINGS_DIR": str(logs / "recordings")}
    running = Stack(logs, logs, env, fakes=True).up()
    yield running
    running.down()


def recordings_dir(stack: Stack) -> Path:
    return Path(stack.env["VOXSTACK_CORE__RECORDINGS_DIR"])


def replay(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env(stack.env)  # the stack's settings, as a developer's .env gives both
    command = voxstack_command("replay", "--url", stack.url, *args)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.iterdir()))).hexdigest()


def recorded(stack: Stack, count: int) -> Path:
    """The newest recording once there are ``count`` (they are written just after the reply)."""
    deadline = time.monotonic() + 30
    while len(listed(recordings_dir(stack))) < count:
        assert time.monotonic() < deadline, f"{count} recordings expected: {listed(recordings_dir(stack))}"
        time.sleep(0.05)
    return listed(recordings_dir(stack))[-1]


def spoken_turn(stack: Stack, session: str) -> list[dict]:
    ws = open_conversation(stack.ports["core"], session=session)
    try:
        ws.send(quiet(0.3) + loud(1.2) + quiet(0.6))
        return read_until(ws, lambda e: e["type"] == "reply_done", no_errors=True)
    finally:
        ws.close()


def test_a_spoken_turn_is_recorded_and_replayed_and_a_changed_reply_shows(stack: Stack) -> None:
    stack.script.update(
        asr={"utterances": [{"text": QUESTION}]},
        llm={"default": {"text": "Paris is the capital of France."}},
    )
    count = len(listed(recordings_dir(stack)))
    ws = open_conversation(stack.ports["core"], session="replay-history")
    typed_turn(ws, "Hello there.")  # history the spoken turn runs with
    ws.close()
    events = spoken_turn(stack, "replay-history")
    assert events[-1]["text"] == "Paris is the capital of France."

    folder = recordings_dir(stack)
    newest = recorded(stack, count + 2)
    recording = load(newest)
    turn = recording.turn
    assert turn["format"] == FORMAT and turn["input"]["kind"] == "audio"
    assert turn["transcript"] == QUESTION and turn["reply"] == "Paris is the capital of France."
    assert [m["content"] for m in turn["history"]] == ["Hello there.", "Paris is the capital of France."]
    assert set(turn["timings"]) >= {"first_audio", "total"}
    # Which code of each service answered (no supervisor here counts generations).
    assert {s: set(i) for s, i in turn["served_by"].items()} == {
        s: {"generation", "code"} for s in ("core", "asr", "llm", "tts")
    }, turn["served_by"]
    assert len({i["code"] for i in turn["served_by"].values()}) == 1  # one source tree
    heard = recording.input_audio()
    # The utterance as the asr segmented it: its 1.2 s of speech (and a little before), not the whole stream.
    assert heard.sample_rate == 16000 and 1.0 < heard.seconds < 2.0, heard.seconds
    assert turn["reply_audio_seconds"] > 0 and recording.reply_audio() is not None
    before = digest(newest)

    # Replayed unchanged: the same transcript (WER 0) and reply; exit 0.
    done = replay(stack, newest.name, "--json", "--fast")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["transcript"] == {"old": QUESTION, "new": QUESTION, "wer": 0.0}
    assert result["reply"]["same"] and result["timings"]["first_audio"]["new"] > 0 and result["differences"] == []
    assert len(listed(folder)) == count + 2  # a replay is not recorded

    # The code (here: the script) answers otherwise: the reply's word diff says how.
    stack.script.update(
        asr={"utterances": [{"text": "What is the capital of Spain?"}]},
        llm={"default": {"text": "Madrid is the capital of Spain."}},
    )
    done = replay(stack, newest.name, "--fast")
    assert done.returncode == 0, done.stderr
    assert "(WER 0.17)" in done.stdout, done.stdout
    assert "[-Paris-] {+Madrid+} is the capital of [-France.-] {+Spain.+}" in done.stdout, done.stdout
    assert digest(newest) == before  # replay never changes a recording

    # A recording made with a voice this tts does not have: the turn fails, naming the voice; exit 1.
    changed = json.loads((newest / "turn.json").read_text())
    changed["settings"]["voice"] = "no-such-voice"
    other = folder.parent / "other" / newest.name
    other.mkdir(parents=True)
    for f in newest.iterdir():
        other.joinpath(f.name).write_bytes(f.read_bytes())
    (other / "turn.json").write_text(json.dumps(changed))
    done = replay(stack, str(other))
    assert done.returncode == 1 and "FAILED" in done.stdout and "no-such-voice" in done.stdout, done.stdout

    # Recorded with another llm and at another reply rate: replayed, with the differences said.
    changed = json.loads((newest / "turn.json").read_text())
    changed["settings"]["llm_preset"] = "elsewhere"
    changed["reply_sample_rate"] = 8000
    (other / "turn.json").write_text(json.dumps(changed))
    done = replay(stack, str(other), "--fast")
    assert done.returncode == 0, done.stdout
    assert "differs     llm preset: recorded with 'elsewhere', the stack runs " in done.stdout, done.stdout
    assert "differs     reply sample rate: recorded at 8000 Hz, the stack speaks at 22050 Hz" in done.stdout


def test_a_typed_turn_is_replayed_as_text(stack: Stack) -> None:
    stack.script.update(llm={"default": {"text": "Hi to you."}})
    count = len(listed(recordings_dir(stack)))
    ws = open_conversation(stack.ports["core"], session="replay-typed")
    typed_turn(ws, "Hi!")
    ws.close()
    newest = recorded(stack, count + 1)
    assert load(newest).turn["input"] == {"kind": "text", "text": "Hi!"}
    done = replay(stack, "--last", "1")
    assert done.returncode == 0, done.stderr
    assert "(typed)" in done.stdout and "reply       same" in done.stdout, done.stdout


def test_check_alternates_spoken_and_typed_turns_and_reports_in_the_folders_order(stack: Stack, tmp_path: Path) -> None:
    stack.script.update(asr={"utterances": [{"text": QUESTION}]}, llm={"default": {"text": "Paris."}})
    count = len(listed(recordings_dir(stack)))
    spoken_turn(stack, "replay-order-spoken")
    spoken = recorded(stack, count + 1)
    ws = open_conversation(stack.ports["core"], session="replay-order-typed")
    typed_turn(ws, "Hi!")
    ws.close()
    typed = recorded(stack, count + 2)
    tests = tmp_path / "conversations"
    for name, recording in (("a-typed", typed), ("b-spoken", spoken), ("c-spoken", spoken)):
        assert replay(stack, "pin", recording.name, "--name", name, "--dir", str(tests)).returncode == 0
    stack.script.clear()
    stack.script.update(asr={"utterances": [{"text": QUESTION}]}, llm={"default": {"text": "Paris."}})

    done = replay(stack, "--check", str(tests), "--fast")  # one at a time: the order is the start order
    assert done.returncode == 0, done.stdout + done.stderr
    asked = [c["request"]["messages"][-1]["content"] for c in stack.script.calls("llm")]
    # A spoken turn (the longer kind) first, then a typed one: two spoken turns do not start together.
    assert asked == [QUESTION, "Hi!", QUESTION]
    report = done.stdout
    assert report.index("PASS  a-typed") < report.index("PASS  b-spoken") < report.index("PASS  c-spoken")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "turn.json").write_text("{not json"), "turn.json: not readable JSON"),
        (lambda d: (d / "turn.json").write_text(json.dumps({"format": 99})), "turn.json: format 99"),
        (lambda d: (d / "turn.json").unlink(), "turn.json: missing"),
        (lambda d: (d / "input.wav").write_bytes(b"RIFF....WAVE"), "input.wav: not a readable WAV file"),
    ],
)
def test_a_damaged_recording_is_refused_by_name(tmp_path: Path, damage, message: str) -> None:
    turn = {
        "id": "20261206-000000-000000-s-1",
        "input": {"kind": "audio", "sample_rate": 16000, "channels": 1},
        "transcript": "Hi.",
        "reply": "Hello.",
        "timings": {},
        "settings": {},
    }
    folder = save(tmp_path, turn, {"input.wav": Pcm(bytes(3200), 16000, 1)}, max_count=10, max_bytes=2**20)
    damage(folder)
    env = child_env({"VOXSTACK_CORE__RECORDINGS_DIR": str(tmp_path)})
    done = subprocess.run(
        voxstack_command("replay", folder.name, "--url", "http://127.0.0.1:9"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and message in done.stderr and str(folder) in done.stderr, done.stderr


def test_recordings_keep_to_their_count_and_size(tmp_path: Path) -> None:
    def record(n: int, seconds: float) -> None:
        turn = {"id": f"20261206-00000{n}-000000-s-{n}", "input": {"kind": "text", "text": "x"}}
        pcm = Pcm(bytes(int(seconds * 16000) * 2), 16000, 1)
        save(tmp_path, turn, {"reply.wav": pcm}, max_count=3, max_bytes=200_000)

    for n in range(5):
        record(n, 1.0)  # 32 kB each
    assert [p.name[-1] for p in listed(tmp_path)] == ["2", "3", "4"]  # the oldest went first
    record(5, 5.0)  # 160 kB: the size bound drops two more
    assert [p.name[-1] for p in listed(tmp_path)] == ["4", "5"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing half-written


def test_prod_records_nothing_unless_told_to() -> None:
    assert not enabled(load_settings(mode="prod"))
    assert enabled(load_settings(mode="dev"))
    assert enabled(load_settings(mode="prod", core={"record_turns": True}))
    assert not enabled(load_settings(mode="dev", core={"record_turns": False}))


def test_a_pinned_turn_is_a_conversation_test_that_fails_when_the_reply_changes(stack: Stack, tmp_path: Path) -> None:
    stack.script.update(
        asr={"utterances": [{"text": QUESTION}]}, llm={"default": {"text": "Paris is the capital of France."}}
    )
    count = len(listed(recordings_dir(stack)))
    spoken_turn(stack, "replay-pin")
    newest = recorded(stack, count + 1)
    tests = tmp_path / "conversations"
    done = replay(stack, "pin", newest.name, "--name", "capital", "--dir", str(tests))
    assert done.returncode == 0 and "pinned as" in done.stdout, done.stderr
    expect_file = tests / "capital" / "expect.json"
    expect = json.loads(expect_file.read_text())
    assert expect["transcript"] == {"text": QUESTION, "max_wer": 0.15}
    expect["reply"]["contains"] = ["Paris"]  # what a person writes
    expect_file.write_text(json.dumps(expect))

    passed = replay(stack, "--check", str(tests), "--fast")
    assert passed.returncode == 0 and "PASS  capital" in passed.stdout, passed.stdout + passed.stderr

    stack.script.update(
        asr={"utterances": [{"text": "What is the capital of Spain?"}]},
        llm={"default": {"text": "Madrid is the capital of Spain."}},
    )
    failed = replay(stack, "--check", str(tests), "--fast")
    assert failed.returncode == 1 and "FAIL  capital" in failed.stdout, failed.stdout
    assert "reply 'Madrid is the capital of Spain.' lacks 'Paris'" in failed.stdout
    assert "WER 0.17 against 'What is the capital of France?' (at most 0.15)" in failed.stdout
    assert "0 of 1 conversations pass" in failed.stdout

    stack.script.update(
        asr={"utterances": [{"text": QUESTION}]}, llm={"default": {"text": "Paris is the capital of France."}}
    )
    assert replay(stack, "--check", str(tests), "--fast").returncode == 0  # reverted: it passes again
    again = replay(stack, "pin", newest.name, "--name", "capital", "--dir", str(tests))
    assert again.returncode == 2 and "exists already" in again.stderr
