"""Conversation history: bounded in turns and characters, forgotten when idle, least recent dropped first,
the same in memory, in SQLite and in Redis; the persistent stores outlive the store object."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from redis_server import redis_server

from voxstack.config import Mode, Settings
from voxstack.core.sessions import MemorySessions, SessionStore, check_session_id, open_sessions, store_url
from voxstack.core.sessions.base import Bounds
from voxstack.core.sessions.redis import RedisSessions
from voxstack.core.sessions.sqlite import SqliteSessions
from voxstack.errors import InvalidInput, NotReady


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


Make = Callable[[Bounds, Clock], SessionStore]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as (url, _):
        yield url


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def make(request, tmp_path: Path) -> AsyncIterator[Make]:
    made: list[SessionStore] = []
    prefixes = (f"t{n}:" for n in itertools.count())  # one Redis, a key space per store

    def build(bounds: Bounds, clock: Clock) -> SessionStore:
        store: SessionStore
        if request.param == "memory":
            store = MemorySessions(bounds, clock)
        elif request.param == "sqlite":
            store = SqliteSessions(tmp_path / f"s{len(made)}.sqlite3", bounds, clock)
        else:
            url = request.getfixturevalue("redis_url")
            store = RedisSessions(url, bounds, prefix=f"{request.node.name}:{next(prefixes)}", clock=clock)
        made.append(store)
        return store

    yield build
    for store in made:
        await store.close()


async def contents(store: SessionStore, session_id: str) -> list[str]:
    return [m["content"] for m in await store.history(session_id)]


async def test_history_is_bounded_in_turns_and_characters(make: Make) -> None:
    store = make(Bounds(max_turns=2, max_chars=30, idle_seconds=60, max_sessions=10), Clock())
    for i in range(3):
        await store.append("s", f"q{i}", f"a{i}")
        if i == 1:
            assert await contents(store, "s") == ["q0", "a0", "q1", "a1"]
    # Past the bound the oldest go until half is left: the front then stays put for a turn.
    assert await contents(store, "s") == ["q2", "a2"]
    await store.append("s", "q3", "a3")
    assert await contents(store, "s") == ["q2", "a2", "q3", "a3"]
    await store.append("s", "a long question " * 2, "ok")  # 34 characters: older turns go, this one too
    assert await store.history("s") == []
    await store.append("s", "short", "reply")
    assert await store.history("s") == [
        {"role": "user", "content": "short"},
        {"role": "assistant", "content": "reply"},
    ]
    assert len(store) == 1


async def test_sessions_expire_when_idle_and_the_least_recent_goes_first(make: Make) -> None:
    clock = Clock()
    store = make(Bounds(max_turns=5, max_chars=1000, idle_seconds=10, max_sessions=2), clock)
    await store.append("a", "hi", "hello")
    clock.now += 5
    await store.append("b", "hi", "hello")
    clock.now += 0.5
    await store.append("c", "hi", "hello")  # three sessions, room for two: "a" goes
    assert await store.history("a") == []
    assert await store.history("b") and await store.history("c")
    assert len(store) == 2
    clock.now += 10.2  # "b" idle for 10.7 s, "c" for 10.2 s
    assert await store.history("b") == []
    assert await store.history("c") == []
    assert len(store) == 0


async def test_no_history_is_kept_with_max_turns_0(make: Make) -> None:
    store = make(Bounds(max_turns=0, max_chars=1000, idle_seconds=60, max_sessions=10), Clock())
    await store.append("s", "q", "a")
    assert await store.history("s") == []


async def test_sessions_are_separate_and_unicode_survives(make: Make) -> None:
    store = make(Bounds(max_turns=5, max_chars=1000, idle_seconds=60, max_sessions=10), Clock())
    await store.append("one", 'Grüße, 你好 "quoted" \n', "😀")
    await store.append("two", "other", "reply")
    assert await contents(store, "one") == ['Grüße, 你好 "quoted" \n', "😀"]
    assert await contents(store, "two") == ["other", "reply"]


async def test_a_realtime_conversation_is_kept_whole_and_bounded(make: Make) -> None:
    store = make(Bounds(max_turns=2, max_chars=40, idle_seconds=60, max_sessions=10), Clock())
    said = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"q{n} é"}]} for n in range(9)
    ]
    call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a": 1}'}
    await store.keep_items("rt", [*said, call])
    kept = await store.items("rt")
    assert kept == [*said[-7:], call]  # four items a turn, the newest last, unicode intact
    await store.keep_items(
        "rt", [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x" * 50}]}]
    )
    assert await store.items("rt") == []  # more text than the bound: nothing fits
    assert await store.items("other") == [] and await store.history("rt") == []


async def test_sqlite_history_outlives_the_store(tmp_path: Path) -> None:
    """What a core restart (a dev reload) sees: a new process opens the same file."""
    bounds = Bounds(max_turns=5, max_chars=1000, idle_seconds=60, max_sessions=10)
    first = SqliteSessions(tmp_path / "s.sqlite3", bounds)
    await first.append("s", "my name is Ada", "hello Ada")
    assert (tmp_path / "s.sqlite3").stat().st_mode & 0o777 == 0o600  # conversation text: this user's only
    second = SqliteSessions(tmp_path / "s.sqlite3", bounds)  # both open at once, as old and new instance are
    assert await contents(second, "s") == ["my name is Ada", "hello Ada"]
    await second.append("s", "and yours?", "voxstack")
    assert len(await first.history("s")) == 4
    await first.close()
    await second.close()


async def test_a_broken_sqlite_file_is_a_named_503_and_nothing_half_written(tmp_path: Path) -> None:
    store = SqliteSessions(tmp_path / "s.sqlite3", Bounds(5, 1000, 60, 10))
    await store.append("s", "q", "a")
    store._db.execute("DROP TABLE sessions")  # what a damaged or foreign file looks like to it
    with pytest.raises(NotReady, match="session store") as caught:
        await store.append("s", "q2", "a2")
    assert caught.value.reason == "SESSIONS_UNAVAILABLE"
    with pytest.raises(NotReady):
        await store.history("s")
    await store.close()


async def test_redis_history_is_shared_and_bounded_in_redis(redis_url: str) -> None:
    import redis.asyncio

    bounds = Bounds(max_turns=2, max_chars=1000, idle_seconds=30, max_sessions=10)
    one, two = (RedisSessions(redis_url, bounds, prefix="shared:") for _ in range(2))  # two core replicas
    for i in range(3):
        await (one if i % 2 else two).append("s", f"q{i}", f"a{i}")
    assert await contents(one, "s") == await contents(two, "s") == ["q2", "a2"]
    client = redis.asyncio.from_url(redis_url)
    assert await client.llen("shared:session:s") == 1  # trimmed in Redis, not in a process
    assert 0 < await client.ttl("shared:session:s") <= 30  # Redis expires it even with no core running
    await client.aclose()
    await one.close()
    await two.close()


async def test_an_unreachable_redis_is_a_named_503(tmp_path: Path) -> None:
    from voxstack.testing.processes import free_port

    store = RedisSessions(f"redis://127.0.0.1:{free_port()}/0", Bounds(5, 1000, 60, 10))
    with pytest.raises(NotReady, match="session store"):
        await store.history("s")
    with pytest.raises(NotReady, match="session store") as caught:
        await store.append("s", "q", "a")
    assert caught.value.reason == "SESSIONS_UNAVAILABLE" and caught.value.http_status == 503
    await store.close()


def test_the_store_follows_the_mode_unless_set(tmp_path: Path) -> None:
    dev = Settings(mode=Mode.DEV, state_dir=tmp_path)
    assert store_url(dev) == f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
    assert store_url(Settings(mode=Mode.PROD, state_dir=tmp_path)) == "memory"
    chosen = Settings(mode=Mode.PROD, state_dir=tmp_path, core={"session_store": "redis://cache:6379/1"})
    assert store_url(chosen) == "redis://cache:6379/1"
    assert isinstance(open_sessions(Settings(mode=Mode.PROD, core={"session_store": "memory"})), MemorySessions)


@pytest.mark.parametrize("bad", ["mysql://x", "sqlite:relative", "redis", "file.db"])
def test_a_bad_session_store_is_refused_naming_the_choices(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a session store: use memory, sqlite"):
        Settings(core={"session_store": bad})


@pytest.mark.parametrize("good", ["abc", "user-1.session_2", "x" * 64])
def test_good_session_ids(good: str) -> None:
    assert check_session_id(good) == good


@pytest.mark.parametrize("bad", ["", "has space", "x" * 65, "semi;colon", "ümlaut"])
def test_bad_session_ids(bad: str) -> None:
    with pytest.raises(InvalidInput, match="session_id"):
        check_session_id(bad)


def test_trimming_in_steps_keeps_the_front_of_the_history_for_half_the_bound() -> None:
    """What the llm's prompt cache needs: the oldest turn kept changes once per max_turns/2 turns, not at
    every turn."""
    bounds = Bounds(max_turns=10, max_chars=100_000, idle_seconds=60, max_sessions=10)
    history: list[tuple[str, str]] = []
    fronts = []
    for i in range(40):
        history = bounds.trim([*history, (f"q{i}", f"a{i}")])
        assert 1 <= len(history) <= 10
        assert history[-1] == (f"q{i}", f"a{i}")
        fronts.append(history[0])
    changes = sum(1 for a, b in itertools.pairwise(fronts) if a != b)
    assert changes == 5  # at turns 10, 16, 22, 28 and 34 (a sliding window: at every turn from 10, 30 times)


async def test_a_shared_secret_is_random_and_the_same_for_every_store_on_the_same_place(
    tmp_path: Path, redis_url: str
) -> None:
    bounds = Bounds(max_turns=2, max_chars=30, idle_seconds=60, max_sessions=10)
    pairs: list[tuple[SessionStore, SessionStore]] = [
        (SqliteSessions(tmp_path / "a.sqlite3", bounds), SqliteSessions(tmp_path / "a.sqlite3", bounds)),
        (RedisSessions(redis_url, bounds, prefix="secret:"), RedisSessions(redis_url, bounds, prefix="secret:")),
    ]
    made = []
    for first, second in pairs:
        secret = await first.shared_secret("ws-token")
        assert len(secret) == 32 and await second.shared_secret("ws-token") == secret  # another core, same secret
        assert await first.shared_secret("other") != secret
        made.append(secret)
        await first.close()
        await second.close()
    assert made[0] != made[1]  # random, not derived from anything
    memory = MemorySessions(bounds)
    assert await memory.shared_secret("ws-token") == await memory.shared_secret("ws-token")
    assert await memory.shared_secret("ws-token") != await MemorySessions(bounds).shared_secret("ws-token")
