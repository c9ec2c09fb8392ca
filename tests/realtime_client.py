"""The official `openai` SDK's Realtime client for the tests: each server event read raw and checked
against the SDK's own type for it."""

from __future__ import annotations

import base64
import json
import time
import typing
from collections.abc import Callable, Iterator
from typing import Any

import openai
from openai.types.realtime import RealtimeServerEvent

SERVER_EVENTS = {
    member.model_fields["type"].annotation.__args__[0]: member
    for member in typing.get_args(typing.get_args(RealtimeServerEvent)[0])
}
Event = dict[str, Any]


class Session:
    """One Realtime connection of the SDK, its events read raw and checked against the SDK's types."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.seen: list[Event] = []

    def next(self, timeout: float = 20) -> Event:
        event = json.loads(self.connection.recv_bytes())
        assert event["type"] in SERVER_EVENTS, event
        SERVER_EVENTS[event["type"]].model_validate(event)  # the SDK's type for it takes it, field by field
        assert event["event_id"].startswith("event_")
        self.seen.append(event)
        return event

    def until(self, kind: str, limit: int = 400) -> list[Event]:
        """The events up to and with the first of ``kind``."""
        got = []
        for _ in range(limit):
            got.append(self.next())
            if got[-1]["type"] == kind:
                return got
        raise AssertionError(f"no {kind} in {[e['type'] for e in got]}")

    def speak(
        self, pcm16: bytes, rate: int = 24_000, encode: Callable[[bytes], bytes] = lambda b: b, live: bool = False
    ) -> None:
        """Append ``pcm16`` as 100 ms chunks: at once, or ``live`` as a microphone sends them."""
        step = rate // 10 * 2
        for at in range(0, len(pcm16), step):
            self.connection.input_audio_buffer.append(audio=base64.b64encode(encode(pcm16[at : at + step])).decode())
            if live:
                time.sleep(0.1)


def realtime_sessions(base_url: str) -> Iterator[Callable[..., Session]]:
    """Opens sessions on the core at ``base_url``; closes them all at the end."""
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)
    opened = []

    def open_session(**options: Any) -> Session:
        manager = client.realtime.connect(model="gpt-realtime", **options)
        opened.append(manager)
        session = Session(manager.enter())
        created = session.next()
        assert created["type"] == "session.created" and created["session"]["id"]
        return session

    yield open_session
    for manager in opened:
        manager.__exit__(None, None, None)
    client.close()


def audio_of(events: list[Event]) -> bytes:
    return b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")


def kinds(events: list[Event]) -> list[str]:
    return [e["type"] for e in events]
