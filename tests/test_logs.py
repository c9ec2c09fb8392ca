from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from voxstack.config import load_settings
from voxstack.logs import configure_logging, request_id_var

logger = logging.getLogger("voxstack.test")


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_prod_lines_are_json_with_request_id_and_exception(clean_env: object) -> None:
    out = io.StringIO()
    configure_logging(load_settings(mode="prod"), "asr", stream=out)
    token = request_id_var.set("rid-123")
    try:
        logger.info("decoded %d seconds", 5, extra={"duration_ms": 12.5})
        try:
            raise ValueError("bad frame")
        except ValueError:
            logger.exception("decode failed")
    finally:
        request_id_var.reset(token)
    logger.debug("not shown at INFO")
    logger.warning("outside a call")

    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(entries) == 3
    first, second, third = entries
    assert first["message"] == "decoded 5 seconds"
    assert first["level"] == "INFO"
    assert first["service"] == "asr"
    assert first["mode"] == "prod"
    assert first["logger"] == "voxstack.test"
    assert first["request_id"] == "rid-123"
    assert first["duration_ms"] == 12.5
    assert first["time"].endswith("+00:00")
    assert second["request_id"] == "rid-123"
    assert "ValueError: bad frame" in second["exc"]
    assert "Traceback" in second["exc"]
    assert third["request_id"] is None


def test_dev_console_shows_prefix_and_traceback_locals(clean_env: object) -> None:
    out = io.StringIO()
    configure_logging(load_settings(mode="dev"), "tts", stream=out)

    def synthesise() -> None:
        voice_name = "joe-medium-" + str(7731 * 3)  # built, so only the locals show it
        raise KeyError(voice_name)

    logger.debug("a debug line")
    try:
        synthesise()
    except KeyError:
        logger.exception("synthesis failed")
    text = out.getvalue()
    assert "[dev tts] a debug line" in text
    assert "[dev tts] synthesis failed" in text
    assert "voice_name" in text
    assert "joe-medium-23193" in text  # the local's value, not only its name
    assert "\x1b[" not in text  # no colour codes off a terminal


def test_dev_console_without_locals_when_turned_off(clean_env: object) -> None:
    out = io.StringIO()
    configure_logging(load_settings(mode="dev", traceback_locals=False), "tts", stream=out)

    def synthesise() -> None:
        hidden_local = "should-not-appear-" + str(9911 * 3)
        raise KeyError(len(hidden_local))

    try:
        synthesise()
    except KeyError:
        logger.exception("synthesis failed")
    assert "KeyError" in out.getvalue()
    assert "should-not-appear-29733" not in out.getvalue()


def test_configuring_again_replaces_the_handler(clean_env: object) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(load_settings(mode="prod"), "llm", stream=first)
    configure_logging(load_settings(mode="prod"), "llm", stream=second)
    logger.warning("once")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["message"] == "once"


def test_credentials_in_query_strings_are_redacted(clean_env: object) -> None:
    out = io.StringIO()
    configure_logging(load_settings(mode="prod"), "core", stream=out)
    logging.getLogger("uvicorn.error").info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5", "/v1/stream?token=abc.def")
    logger.info("GET /x?a=1&api_key=sekret&b=2 and /y?Token=t0k")
    messages = [json.loads(line)["message"] for line in out.getvalue().splitlines()]
    assert messages == [
        '127.0.0.1:5 - "WebSocket /v1/stream?token=[redacted]" [accepted]',
        "GET /x?a=1&api_key=[redacted]&b=2 and /y?Token=[redacted]",
    ]


def test_websocket_audio_frames_stay_out_of_the_dev_log(clean_env: object) -> None:
    from websockets.frames import Frame, Opcode

    out = io.StringIO()
    configure_logging(load_settings(mode="dev"), "core", stream=out)
    uvicorn = logging.getLogger("uvicorn.error")  # the logger uvicorn hands websockets
    uvicorn.debug("< %s", Frame(Opcode.BINARY, bytes(640)))
    uvicorn.debug("> %s", Frame(Opcode.TEXT, b'{"type":"ready"}'))
    uvicorn.debug("= connection is %s", "OPEN")
    lines = out.getvalue()
    assert "BINARY" not in lines
    assert '> TEXT \'{"type":"ready"}\'' in lines and "connection is OPEN" in lines
