"""core/events.py: the WebSocket's messages, validated on the way in and sent as their JSON."""

from __future__ import annotations

import json

import pytest

from voxstack.core import events
from voxstack.errors import InvalidInput


def test_a_config_gives_its_values_and_a_new_session_when_none_is_named() -> None:
    config, session = events.parse_config(json.dumps({"type": "config", "sample_rate": 16000, "extra": 1}))
    assert (config.sample_rate, config.channels, config.interim_results, config.language) == (16000, 1, True, "")
    assert len(session) == 32
    _, named = events.parse_config(json.dumps({"type": "config", "sample_rate": 8000, "session_id": "s-1"}))
    assert named == "s-1"


@pytest.mark.parametrize(
    ("message", "reason", "says"),
    [
        (None, "CONFIG_FIRST", "JSON text frame"),
        ("not json", "BAD_CONFIG", "not JSON"),
        (json.dumps([1, 2]), "CONFIG_FIRST", '"type": "config"'),
        (json.dumps({"type": "end"}), "CONFIG_FIRST", '"type": "config"'),
        (json.dumps({"type": "config"}), "BAD_SAMPLE_RATE", "sample_rate"),
        (json.dumps({"type": "config", "sample_rate": 5}), "BAD_SAMPLE_RATE", "sample_rate"),
        (json.dumps({"type": "config", "sample_rate": "16000"}), "BAD_SAMPLE_RATE", "sample_rate"),
        (json.dumps({"type": "config", "sample_rate": 16000, "channels": 3}), "BAD_CHANNELS", "channels"),
        (json.dumps({"type": "config", "sample_rate": 16000, "session_id": 7}), "BAD_SESSION_ID", "session_id"),
        (json.dumps({"type": "config", "sample_rate": 16000, "session_id": "a b"}), "BAD_SESSION_ID", "session_id"),
        (json.dumps({"type": "config", "sample_rate": 16000, "interim_results": "yes"}), "BAD_CONFIG", "interim"),
    ],
)
def test_a_bad_config_is_refused_naming_the_field(message: str | None, reason: str, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        events.parse_config(message)
    assert refused.value.reason == reason
    assert says in refused.value.message


def test_end_frames_are_recognised_and_other_text_is_not() -> None:
    assert events.is_end('{"type": "end"}')
    assert not events.is_end('{"type": "config"}') and not events.is_end("end") and not events.is_end("[]")


def test_events_are_sent_as_their_json_without_unset_fields() -> None:
    assert events.Ready(session_id="s").payload() == {"type": "ready", "session_id": "s"}
    assert events.Error(code="ASR_UNAVAILABLE", message="m").payload() == {
        "type": "error",
        "code": "ASR_UNAVAILABLE",
        "message": "m",
    }
    audio = events.Audio(turn=1, index=0, text="Hi.", sample_rate=22050, bytes=4)
    assert audio.payload()["type"] == "audio" and audio.payload()["bytes"] == 4
    assert {e.value for e in events.EventType} >= {"ready", "reply_done", "barge_in", "error"}
