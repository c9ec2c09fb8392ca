"""The voice console and the dev dashboard (issue 16), in headless Chromium against a real `voxstack dev`.

The "microphone" is a WAV made for each test (Chromium's fake capture device);
uploads and typing use the page's own controls. Screenshots of both pages go
to docs/images/ (the README shows them).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from browser import require_browser
from devstack import DevRun

from voxstack.testing.browser import chromium, until, watch_errors
from voxstack.testing.edits import clear_tail, set_tail
from voxstack.testing.processes import ServiceProcess
from voxstack.testing.speech import SpeechMaker, silence, wav, wer

pytestmark = [pytest.mark.slow, pytest.mark.browser]

QUESTION = "What is the capital of France?"
SECOND = "Please tell me a short joke."
#: Where the pages' screenshots go: docs/images when `make docs` asks for them, else the run's temporary folder
#: (tests write nothing into the tracked tree).
DOC_IMAGES_ENV = "VOXSTACK_DOC_IMAGES"


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get(DOC_IMAGES_ENV)
    return Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def stack(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    require_browser()
    run = DevRun(tmp_path_factory.mktemp("console"), models_dir, "dev", ("--no-spares",))
    run.env["VOXSTACK_LLM__MAX_TOKENS"] = "40"
    run.env["VOXSTACK_LLM__TEMPERATURE"] = "0"
    run.start()
    run.wait_for(lambda: run.serving("asr", "llm", "tts", "core"), 240, "the dev stack")
    yield run
    run.stop()


@pytest.fixture(scope="module")
def url(stack: DevRun) -> str:
    return f"http://127.0.0.1:{stack.ports['core']}"


def _wav_file(folder: Path, name: str, samples: np.ndarray) -> Path:
    path = folder / name
    path.write_bytes(wav(samples, to_rate=48_000))
    return path


def _open_console(context: Any, url: str) -> tuple[Any, list[str]]:
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{url}/console")
    until(page, "window.vox && window.vox.conn.state === 'connected'", 30, "the console connecting")
    return page, errors


def _finished_turns(page: Any, count: int = 1, timeout: float = 120) -> list[dict[str, Any]]:
    """The page's turns once ``count`` of them have played audio and have the server's timings."""
    try:
        until(page, f"window.vox.turns().filter(t => t.total !== null && t.server).length >= {count}", timeout)
    except AssertionError:
        log = page.evaluate("() => window.vox.log.entries.slice(-40).map(e => `${e.direction} ${e.type} ${e.text}`)")
        turns = page.evaluate("() => window.vox.turns()")
        raise AssertionError(f"{count} finished turn(s) not within {timeout} s: {turns}\n" + "\n".join(log)) from None
    return page.evaluate("() => window.vox.turns()")  # type: ignore[no-any-return]


def test_the_console_hears_a_question_and_plays_the_reply(
    stack: DevRun, url: str, speech: SpeechMaker, tmp_path: Path, screenshots: Path
) -> None:
    mic = _wav_file(tmp_path, "question.wav", np.concatenate([silence(1.0), speech.say(QUESTION), silence(9.0)]))
    with chromium(mic) as context:
        page, errors = _open_console(context, url)
        assert page.title() == "[DEV] voxstack console"
        page.click("#mic")
        turn = _finished_turns(page)[0]
        transcripts = page.evaluate("() => window.vox.transcripts")
        assert wer(QUESTION, transcripts[0]) <= 0.2, transcripts
        assert page.evaluate("() => window.vox.replies[0]").strip()
        # The reply was played: more than half a second of samples at the page's own rate.
        until(page, "window.vox.played() > window.vox.audio.ctx.sampleRate / 2", 30, "half a second played")
        # Every number of the turn's timeline is there, and they add up.
        assert turn["kind"] == "spoken" and set(turn["stages"]) == {"eou", "asr", "llm", "tts", "play"}
        assert all(v >= 0 for v in turn["stages"].values())
        assert abs(sum(turn["stages"].values()) - turn["total"]) < 1.0
        assert turn["tokens"]["completion"] > 0 and turn["audioSeconds"] > 0.5
        assert {"llm_first_token", "first_audio"} <= set(turn["server"])
        row = page.locator("#turns li[data-turn='1']")
        # The page rounds as JavaScript's Math.round does (halves up), not as Python's round (halves to even).
        assert row.get_attribute("data-total") == str(math.floor(turn["total"] + 0.5))
        assert page.locator("#medians tbody td").count() == 6
        # The event log has the turn's events and filters them.
        page.fill("#log-filter", "reply_done")
        assert page.locator("#log li").count() == 1
        screenshots.mkdir(parents=True, exist_ok=True)
        page.fill("#log-filter", "")
        page.screenshot(path=str(screenshots / "console.png"))
        assert errors == []


def test_an_uploaded_wav_gives_a_turn_and_speaking_over_the_reply_stops_it(
    url: str, speech: SpeechMaker, tmp_path: Path
) -> None:
    first = _wav_file(
        tmp_path, "first.wav", np.concatenate([silence(0.3), speech.say("Tell me a long story."), silence(0.2)])
    )
    second = _wav_file(tmp_path, "second.wav", np.concatenate([silence(0.2), speech.say(SECOND), silence(0.2)]))
    with chromium() as context:
        page, errors = _open_console(context, url)
        page.set_input_files("#upload", str(first))
        # Heard for a while: speech right as the reply starts goes on with the question (core.continuation).
        until(page, "window.vox.played() > 0.8 * window.vox.audio.ctx.sampleRate", 120, "the reply playing")
        page.set_input_files("#upload", str(second))  # spoken over the reply
        until(page, "window.vox.flushes.length > 0", 30, "playback stopping")
        flush = page.evaluate("() => window.vox.flushes[0]")
        # The page stops playing as soon as the server hears the speech begin (its barge_in, or
        # speech_started), before that question is transcribed (how soon is the console bench's to say).
        assert flush["reason"] in ("barge_in", "speech_started") and flush["heard"] == 1, flush
        played = page.evaluate("() => window.vox.played()")
        time.sleep(0.5)
        assert page.evaluate("() => window.vox.played()") - played < 0.1 * page.evaluate(
            "() => window.vox.audio.ctx.sampleRate"
        )  # nothing of the old reply plays on
        # The server cancels the old reply if it was still making it (its barge_in); a reply it had sent whole
        # (its reply_done came) is only cut short on the page. Either way the new question gets its turn.
        until(page, "window.vox.bargeIns >= 1 || window.vox.replies.length >= 1", 30, "the server's barge_in")
        # Both may come: a reply_done sent as the speech began, then the barge_in for its turn. So wait for the
        # second turn itself to finish.
        finished = "t => t.turn === 2 && t.total !== null && t.server"
        until(page, f"window.vox.turns().some({finished})", 120, "the second turn finished")
        second_turn = page.evaluate(f"() => window.vox.turns().find({finished})")
        transcripts = page.evaluate("() => window.vox.transcripts.filter(t => t.trim())")
        assert wer(SECOND, transcripts[-1]) <= 0.25, transcripts
        assert second_turn["turn"] == 2 and second_turn["total"] > 0
        assert errors == []


def test_a_typed_message_gets_a_spoken_reply(url: str) -> None:
    with chromium() as context:
        page, errors = _open_console(context, url)
        page.fill("#type-text", "What is the capital of France?")
        page.click("#type-form button")
        turn = _finished_turns(page)[0]
        assert turn["kind"] == "typed" and set(turn["stages"]) == {"llm", "tts", "play"}
        assert "Paris" in page.evaluate("() => window.vox.replies[0]")
        assert page.locator("#history li.user").inner_text() == "What is the capital of France?"
        # A new conversation is a new session (and an empty history on the page).
        session = page.evaluate("() => window.vox.conn.sessionId")
        page.click("#new-session")
        until(page, f"window.vox.conn.state === 'connected' && window.vox.conn.sessionId !== '{session}'", 30)
        assert page.locator("#history li").count() == 0
        assert errors == []


def test_the_console_reconnects_when_the_core_reloads(stack: DevRun, url: str) -> None:
    with chromium() as context:
        page, errors = _open_console(context, url)
        session = page.evaluate("() => window.vox.conn.sessionId")
        generation = stack.record()["services"]["core"]["generation"]
        target = stack.src / "voxstack" / "core" / "routes" / "console.py"
        # Two reloads: the edit, and putting the file back.
        for reload, edit in enumerate(
            (lambda: set_tail(target, "# touched by test_console\n"), lambda: clear_tail(target)), 1
        ):
            edit()
            stack.wait_for(
                lambda n=reload: stack.record()["services"]["core"]["generation"] >= generation + n, 60, "a core reload"
            )
            until(page, f"window.vox.conn.reconnects >= {reload} && window.vox.conn.state === 'connected'", 30)
        assert page.evaluate("() => window.vox.conn.sessionId") == session
        assert "session resumed" in page.inner_text("#status")
        page.fill("#type-text", "Say hello.")
        page.click("#type-form button")
        assert _finished_turns(page)[0]["total"] > 0
        # The reload's close is not an error the page shows (the browser may note a refused reconnect attempt).
        assert [e for e in errors if "WebSocket connection" not in e] == []
        assert page.evaluate("() => window.vox.errors") == []


def test_the_dev_dashboard_follows_reloads_and_errors_live(stack: DevRun, url: str, screenshots: Path) -> None:
    target = stack.src / "voxstack" / "tts" / "service.py"
    with chromium() as context:
        page = context.new_page()
        errors = watch_errors(page)
        page.goto(f"{url}/dev")
        until(page, "window.devState.snapshots > 0", 30, "the first snapshot")
        assert page.title() == "[DEV] voxstack dashboard"
        cards = page.locator("section.card")
        assert cards.count() == 4
        until(page, "[...document.querySelectorAll('section.card')].every(c => c.dataset.health === 'SERVING')", 30)
        page.evaluate("() => { window.notReloaded = true; }")  # gone if the page reloads
        tts = page.locator("section.card[data-service='tts']")
        before = int(tts.get_attribute("data-generation") or 0)

        saved = time.monotonic()
        set_tail(target, "# touched by test_console\n")
        try:
            until(page, f"Number(document.querySelector(\"[data-service='tts']\").dataset.generation) > {before}", 60)
            shown = time.monotonic() - saved
            assert "tts/service.py" in tts.inner_text()  # what changed
            # A syntax error: its file and line on the page, the old instance still serving.
            set_tail(target, "def broken(:\n")
            until(page, "document.querySelector(\"[data-service='tts'] .error\") !== null", 60, "the error shown")
            error = tts.locator(".error").inner_text()
            assert "SyntaxError" in error and "service.py:" in error, error
            screenshots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshots / "dev-dashboard.png"))
        finally:
            clear_tail(target)
        until(page, "document.querySelector(\"[data-service='tts'] .error\") === null", 60, "the error cleared")
        assert page.evaluate("() => window.notReloaded") is True
        assert page.locator("section.card[data-service='tts'] svg rect").count() >= 2  # the reload history chart
        assert errors == []
    # From the save to the page, through the reload: well within the reload itself plus a second.
    record = stack.record()["services"]["tts"]
    assert shown < record["history"][0]["seconds"] + 5


def test_the_pages_are_strict_and_the_dev_feed_streams(url: str) -> None:
    page = httpx.get(f"{url}/console")
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    for asset, kind in [("console.js", "javascript"), ("capture-worklet.js", "javascript"), ("common.css", "text/css")]:
        answer = httpx.get(f"{url}/console/assets/{asset}")
        assert answer.status_code == 200 and kind in answer.headers["content-type"]
        assert answer.headers["x-content-type-options"] == "nosniff"
    state = httpx.get(f"{url}/v1/dev/state").json()
    assert state["supervised"] and set(state["services"]) == {"asr", "llm", "tts", "core"}
    with httpx.stream("GET", f"{url}/v1/dev/events", timeout=30) as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        data = next(line for line in events.iter_lines() if line.startswith("data: "))
    assert json.loads(data[6:])["services"]["asr"]["health"] == "SERVING"


def test_the_api_docs_render_under_their_content_security_policy(url: str) -> None:
    """/docs and /redoc run only their own scripts (inline ones by hash), and still render the API."""
    for path, scripts in (("/docs", "script-src 'self' 'sha256-"), ("/redoc", "script-src 'self';")):
        csp = httpx.get(f"{url}{path}").headers["content-security-policy"]
        assert scripts in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp.split("style-src")[0], csp
    with chromium() as context:
        page = context.new_page()
        errors = watch_errors(page)
        page.goto(f"{url}/docs")
        until(page, "document.querySelectorAll('.opblock').length > 5", 30, "Swagger UI listing the routes")
        page.goto(f"{url}/redoc")
        until(page, "document.body.innerText.includes('/v1/converse')", 30, "ReDoc listing the routes")
    # ReDoc's footer asks a CDN for its logo: the policy blocks that (nothing leaves the machine), and nothing else.
    blocked = [e for e in errors if "Content Security Policy" in e and "cdn.redoc.ly/redoc/logo" not in e]
    assert not blocked and not [e for e in errors if e.startswith("pageerror")], errors


def test_the_websocket_takes_typed_turns_and_checks_the_voice(url: str) -> None:
    from websockets.sync.client import connect

    ws_url = url.replace("http", "ws") + "/v1/stream"
    with connect(ws_url) as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000, "voice": "en_GB-nobody"}))
        error = json.loads(ws.recv(timeout=30))
        assert error["code"] == "UNKNOWN_VOICE"
    with connect(ws_url) as ws:
        ws.send(json.dumps({"type": "config", "sample_rate": 16000, "voice": "en_US-joe-medium"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        ws.send(json.dumps({"type": "text", "text": "  "}))
        assert json.loads(ws.recv(timeout=30))["code"] == "EMPTY_TEXT"
        ws.send(json.dumps({"type": "text", "text": "Hello."}))
        kinds = []
        while "reply_done" not in kinds:
            message = ws.recv(timeout=60)
            if isinstance(message, str):
                kinds.append(json.loads(message)["type"])
        assert kinds[0] == "reply_delta" and "audio" in kinds


@pytest.mark.parametrize("console", [None, "true"])
def test_prod_serves_no_dev_pages_and_the_console_only_when_enabled(tmp_path: Path, console: str | None) -> None:
    env = {"VOXSTACK_CORE__CONSOLE": console} if console else {}
    process = ServiceProcess("core", mode="prod", env=env, log=tmp_path / "core.log").start()
    try:
        process.wait_live(60)  # no model services behind it: these pages need none
        base = process.url
        for path in ("/dev", "/v1/dev/events", "/v1/dev/state"):
            assert httpx.get(f"{base}{path}").status_code == 404
        page = httpx.get(f"{base}/console")
        assert page.status_code == (200 if console else 404)
        if console:
            assert page.headers["x-voxstack-mode"] == "prod" and "content-security-policy" in page.headers
    finally:
        process.stop()
