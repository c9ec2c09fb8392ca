"""Conversation history: bounded in turns and characters, forgotten when idle, least recent dropped first."""

from __future__ import annotations

import pytest

from voxstack.core.sessions import SessionStore, check_session_id
from voxstack.errors import InvalidInput


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_history_is_bounded_in_turns_and_characters() -> None:
    store = SessionStore(max_turns=2, max_chars=30, idle_seconds=60, max_sessions=10, clock=Clock())
    for i in range(3):
        store.append("s", f"q{i}", f"a{i}")
    assert [m["content"] for m in store.history("s")] == ["q1", "a1", "q2", "a2"]
    store.append("s", "a long question " * 2, "ok")  # 34 characters: older turns go, this one too
    assert store.history("s") == []
    store.append("s", "short", "reply")
    assert store.history("s") == [{"role": "user", "content": "short"}, {"role": "assistant", "content": "reply"}]


def test_sessions_expire_when_idle_and_the_least_recent_goes_first() -> None:
    clock = Clock()
    store = SessionStore(max_turns=5, max_chars=1000, idle_seconds=10, max_sessions=2, clock=clock)
    store.append("a", "hi", "hello")
    clock.now = 5
    store.append("b", "hi", "hello")
    store.append("c", "hi", "hello")  # three sessions, room for two: "a" goes
    assert store.history("a") == [] and store.history("b") and store.history("c")
    clock.now = 16  # "b" idle for 11 s
    assert store.history("b") == []
    assert store.history("c") == []  # idle 11 s too


@pytest.mark.parametrize("good", ["abc", "user-1.session_2", "x" * 64])
def test_good_session_ids(good: str) -> None:
    assert check_session_id(good) == good


@pytest.mark.parametrize("bad", ["", "has space", "x" * 65, "semi;colon", "ümlaut"])
def test_bad_session_ids(bad: str) -> None:
    with pytest.raises(InvalidInput, match="session_id"):
        check_session_id(bad)
