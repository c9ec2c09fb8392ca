"""In Chromium: the dev dashboard shows the pinned conversations replayed after each reload, each verdict
with the recorded and the new reply side by side, both audios playable."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import require_browser
from devstack import DevRun
from test_dev_replay import QUESTION, pinned_conversation

from voxstack.registry import ALL_SERVICES
from voxstack.testing.browser import chromium, until, watch_errors

pytestmark = [pytest.mark.slow, pytest.mark.browser]

VERDICT = "document.querySelector('section.verdict[data-name=capital]')"
PLAYABLE = (
    "[...document.querySelectorAll('section.verdict audio')].length === 2 && "
    "[...document.querySelectorAll('section.verdict audio')].every(a => a.readyState >= 1 && a.duration > 0)"
)


def test_the_dashboard_shows_each_replays_verdict_with_both_replies(tmp_path: Path, models_dir: Path) -> None:
    require_browser()
    conversations = tmp_path / "conversations"
    pinned_conversation(conversations, reply_audio=True)
    run = DevRun(tmp_path, models_dir, "dev", ("--replay", str(conversations)), fakes=True)
    run.script.update(asr={"utterances": [{"text": QUESTION}]}, llm={"default": {"text": "Paris, of course."}})
    run.start()
    try:
        run.wait_for(lambda: run.serving(*ALL_SERVICES), 120, "the stack")
        with chromium() as context:
            page = context.new_page()
            errors = watch_errors(page)
            page.goto(f"http://127.0.0.1:{run.ports['core']}/dev")
            until(page, "window.devState.snapshots > 0", 30, "the first snapshot")

            run.mark("llm", "v1")
            until(page, f"{VERDICT} && {VERDICT}.dataset.verdict === 'pass'", 60, "a passing verdict")
            until(page, PLAYABLE, 30, "both replies' audio loaded")
            replies = page.locator("section.verdict td.reply").all_inner_texts()
            assert replies == ["Paris is the capital of France.", "Paris, of course."], replies

            run.script.update(llm={"default": {"text": "Madrid, of course."}})
            run.mark("llm", "v2")
            until(page, f"{VERDICT}.dataset.verdict === 'fail'", 60, "the failing verdict")
            assert "lacks 'Paris'" in page.locator("section.verdict .problem").inner_text()
            assert "0 of 1 pass" in page.locator("#replays h2").inner_text()
            until(page, PLAYABLE, 30, "the new reply's audio loaded")
            assert page.evaluate("() => document.querySelector('section.verdict audio[data-which=new]').duration > 0")
            assert [e for e in errors if "WebSocket connection" not in e] == []
    finally:
        run.stop()
