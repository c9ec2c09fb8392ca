"""In Chromium: the dev dashboard shows the pinned conversations replayed after each reload, each verdict
with the recorded and the new reply side by side, both audios playable (the replays after code reloads,
without a browser: test_dev_replay)."""

from __future__ import annotations

import json

import pytest
from browser import require_browser
from devstack import DevRun
from test_dev_replay import QUESTION

from voxstack.recordings import Pcm, wav
from voxstack.registry import ALL_SERVICES
from voxstack.testing.browser import chromium, until, watch_errors
from voxstack.testing.fakes import loud, quiet

pytestmark = [pytest.mark.slow, pytest.mark.browser]

VERDICT = "document.querySelector('section.verdict[data-name=capital]')"
PLAYABLE = (
    "[...document.querySelectorAll('section.verdict audio')].length === 2 && "
    "[...document.querySelectorAll('section.verdict audio')].every(a => a.readyState >= 1 && a.duration > 0)"
)


def test_a_turn_spoken_in_the_console_is_pinned_and_replayed_after_a_prompt_change(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The loop end to end: speak in the console, pin the turn, change the system prompt in .env, see the new
    reply fail beside the old on the dashboard with both audios playable; revert, see it pass."""
    require_browser()
    tmp_path = tmp_path_factory.mktemp("pin")  # short: the control sockets' paths have a length limit
    conversations = tmp_path / "conversations"
    run = DevRun(tmp_path, tmp_path / "models", "dev", ("--replay", str(conversations)), fakes=True)
    run.script.update(
        asr={"utterances": [{"text": QUESTION}]},
        llm={"replies": [{"system": "pirate", "text": "Arr, I know not, matey."}],
             "default": {"text": "Paris is the capital of France."}},
    )  # fmt: skip
    question = tmp_path / "question.wav"
    question.write_bytes(wav(Pcm(quiet(0.3) + loud(1.2) + quiet(0.5), 16000, 1)))
    run.start()
    try:
        run.wait_for(lambda: run.serving(*ALL_SERVICES), 120, "the stack")
        url = f"http://127.0.0.1:{run.ports['core']}"
        with chromium() as context:
            console = context.new_page()
            errors = watch_errors(console)
            console.goto(f"{url}/console")
            until(console, "window.vox && window.vox.conn.state === 'connected'", 30, "the console connecting")
            console.set_input_files("#upload", str(question))
            until(console, "window.vox.replies.length === 1", 60, "the reply")
            console.fill("#history li.pin input", "capital")
            console.click("#history li.pin button")
            until(console, "window.vox.pins.length === 1", 30, "the pin")
            # The turn says which instance of each service answered it: the supervisor's first of each.
            pinned = conversations / "capital" / "turn.json"
            turn = json.loads(pinned.read_text())
            assert {s: i["generation"] for s, i in turn["served_by"].items()} == dict.fromkeys(ALL_SERVICES, "1")
            turn["settings"]["llm_preset"] = "elsewhere"  # as if recorded with another llm: said beside the verdict
            pinned.write_text(json.dumps(turn))
            expect_file = conversations / "capital" / "expect.json"
            expect = json.loads(expect_file.read_text())
            assert expect["transcript"]["text"] == QUESTION
            expect["reply"]["contains"] = ["Paris"]  # what the developer writes
            expect_file.write_text(json.dumps(expect))

            dashboard = context.new_page()
            errors += watch_errors(dashboard)
            dashboard.goto(f"{url}/dev")
            until(dashboard, "window.devState.snapshots > 0", 30, "the first snapshot")
            (tmp_path / ".env").write_text("VOXSTACK_LLM__SYSTEM_PROMPT=Talk like a pirate.\n")
            until(dashboard, f"{VERDICT} && {VERDICT}.dataset.verdict === 'fail'", 60, "the failing verdict")
            replies = dashboard.locator("section.verdict td.reply").all_inner_texts()
            assert replies == ["Paris is the capital of France.", "Arr, I know not, matey."], replies
            assert "lacks 'Paris'" in dashboard.locator("section.verdict .problem").inner_text()
            assert "0 of 1 pass" in dashboard.locator("#replays h2").inner_text()
            assert (
                "llm preset: recorded with 'elsewhere'" in dashboard.locator("section.verdict .difference").inner_text()
            )
            until(dashboard, PLAYABLE, 30, "both replies' audio loaded")

            (tmp_path / ".env").write_text("")  # reverted
            until(dashboard, f"{VERDICT}.dataset.verdict === 'pass'", 60, "the passing verdict")
            assert "1 of 1 pass" in dashboard.locator("#replays h2").inner_text()
            assert [e for e in errors if "WebSocket connection" not in e] == []
    finally:
        run.stop()
