"""A conversation outlives the core: a reload or a restart hands the WebSocket over (close 1012 at a pause,
the client reconnects with its session id) and the history is still there: SQLite in dev (the default),
Redis for any core, a killed core included.

The hand-over is the supervisor's and the core's, so the model services are the scripted fakes: the llm's
prompt size (its word count) shows whether the history reached it."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from conversation import close_code, open_conversation, spoken_turn, typed_turn
from devstack import DevRun
from openai.types.websocket_reconnection import ReconnectingEvent, ReconnectingOverrides
from redis_server import redis_server
from stack import Stack

from voxstack.testing.edits import clear_tail, set_tail
from voxstack.testing.fakes import utterance
from voxstack.testing.processes import ServiceProcess


def remembers(first: dict, later: dict) -> bool:
    """The later turn's prompt holds the first turn (the history went to the llm)."""
    return later["prompt_tokens"] > first["prompt_tokens"] + first["completion_tokens"]


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    root = tmp_path_factory.mktemp("handover")
    run = DevRun(root, root, "dev", ("--no-spares",), fakes=True)
    # A story still being written when the reload comes, and ending within the grace period.
    run.script.update(
        llm={"replies": [{"match": "dragon", "text": "Once upon a time a dragon slept. " * 6, "token_delay": 0.03}]},
        asr={"utterances": [{"text": "What is my name?"}]},
    )
    run.start()
    run.wait_for(lambda: run.serving("asr", "llm", "tts", "core"), 240, "the dev stack")
    yield run
    run.stop()


def test_a_conversation_spans_two_core_reloads_and_an_asr_reload_with_its_history(dev: DevRun) -> None:
    try:
        converse_across_reloads(dev, dev.src / "voxstack" / "core" / "routes" / "console.py")
    finally:
        clear_tail(dev.src / "voxstack" / "core" / "routes" / "console.py")
        clear_tail(dev.src / "voxstack" / "testing" / "fakes" / "asr.py")


def converse_across_reloads(dev: DevRun, target: Path) -> None:
    port = dev.ports["core"]
    ws = open_conversation(port)
    first = typed_turn(ws, "My name is Ada.")[-1]
    # A reply in progress when the reload comes: it is finished, then the socket is handed over.
    generation = dev.generation("core")
    ws.send(json.dumps({"type": "text", "text": "Tell me a long story about a dragon."}))
    set_tail(target, "# touched by test_handover\n")
    dev.wait_for(lambda: dev.generation("core") > generation, 60, "a core reload")
    code, reason, events = close_code(ws)
    assert (code, reason) == (1012, "the core is restarting: reconnect with the same session_id")
    assert [e["type"] for e in events][-1] == "reply_done", events  # the reply was not cut off
    assert "core stopping: handing the conversation over" in dev.output()

    # The client reconnects with its session id: the new instance has the history (in SQLite).
    ws = open_conversation(port)
    later = typed_turn(ws, "What is my name?")[-1]
    assert remembers(first, later), (first, later)
    assert (dev.state / "voxstack" / "sessions.sqlite3").exists()

    # An asr reload under the open conversation: the next spoken turn goes to the new asr, same socket.
    generation = dev.generation("asr")
    set_tail(dev.src / "voxstack" / "testing" / "fakes" / "asr.py", "# touched by test_handover\n")
    dev.wait_for(lambda: dev.generation("asr") > generation and dev.serving("asr"), 120, "an asr reload")
    spoken = spoken_turn(ws, utterance(0.8))
    assert any(e["type"] == "transcript" and "name" in e["text"].lower() for e in spoken), spoken
    assert remembers(later, spoken[-1]), (later, spoken[-1])

    # A second core reload: handed over again, and the history goes on.
    generation = dev.generation("core")
    set_tail(target, "# touched again by test_handover\n")
    dev.wait_for(lambda: dev.generation("core") > generation, 60, "a second core reload")
    code, _, _ = close_code(ws)
    assert code == 1012
    ws = open_conversation(port)
    last = typed_turn(ws, "Say my name once more.")[-1]
    assert remembers(spoken[-1], last), (spoken[-1], last)
    ws.close()


def test_a_realtime_session_spans_a_core_reload_with_its_settings_and_conversation(dev: DevRun) -> None:
    """The `openai` SDK reconnects on 1012; with ``?session_id=`` the new core has the session's settings and
    its items, and the next response's prompt holds them."""
    target = dev.src / "voxstack" / "core" / "routes" / "pages.py"
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{dev.ports['core']}/v1", api_key="unused", max_retries=0)
    resumed: dict[str, str] = {}

    def on_reconnecting(event: ReconnectingEvent) -> ReconnectingOverrides:
        assert event.close_code == 1012
        return {"extra_query": resumed}

    try:
        with client.realtime.connect(model="gpt-realtime", on_reconnecting=on_reconnecting) as connection:
            events = iter(connection)
            session = next(events)
            assert session.type == "session.created"
            resumed["session_id"] = session.session.id
            connection.session.update(session={"type": "realtime", "instructions": "Call me Ada."})
            connection.conversation.item.create(
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello."}]}
            )
            connection.response.create()
            while next(events).type != "response.done":
                pass
            generation = dev.generation("core")
            set_tail(target, "# touched by test_handover\n")
            dev.wait_for(lambda: dev.generation("core") > generation, 60, "a core reload")
            again = next(e for e in events if e.type != "rate_limits.updated")  # on the new core, reconnected
            assert again.type == "session.created" and again.session.id == session.session.id
            assert again.session.instructions == "Call me Ada."
            connection.conversation.item.create(
                item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Who am I?"}]}
            )
            connection.response.create()
            while (event := next(events)).type != "response.done":
                pass
            assert event.response.status == "completed"
    finally:
        clear_tail(target)
        client.close()
    messages = dev.script.calls("llm")[-1]["request"]["messages"]
    assert messages[0] == {"role": "system", "content": "Call me Ada."}
    assert [m["content"] for m in messages if m["role"] == "user"] == ["Hello.", "Who am I?"]


@pytest.fixture(scope="module")
def redis_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with redis_server(tmp_path_factory.mktemp("redis")) as (url, _):
        logs = tmp_path_factory.mktemp("redis-stack")
        running = Stack(logs, logs, {"VOXSTACK_CORE__SESSION_STORE": url}, fakes=True).up()
        yield running
        running.down()


def test_with_redis_a_restarted_or_killed_core_keeps_the_conversation(redis_stack: Stack) -> None:
    port = redis_stack.ports["core"]
    ws = open_conversation(port)
    first = typed_turn(ws, "My name is Ada.")[-1]

    # A graceful stop (a rolling restart): an idle conversation is handed over at once.
    stopping = threading.Thread(target=redis_stack.stop, args=("core",))
    stopping.start()
    code, _, _ = close_code(ws)
    stopping.join(60)
    assert code == 1012
    redis_stack.start("core")
    redis_stack.wait("core")
    ws = open_conversation(port)
    second = typed_turn(ws, "What is my name?")[-1]
    assert remembers(first, second), (first, second)

    # A killed core hands nothing over; the history is in Redis all the same.
    redis_stack.procs["core"].send_signal(signal.SIGKILL)
    code, _, _ = close_code(ws)
    assert code == 1006  # the connection dropped
    redis_stack.procs["core"].wait(30)
    redis_stack.start("core")
    redis_stack.wait("core")
    ws = open_conversation(port)
    third = typed_turn(ws, "Say my name again.")[-1]
    assert remembers(second, third), (second, third)
    ws.close()
    assert "sessions in redis://127.0.0.1" in (redis_stack.logs / "core.log").read_text()


def test_two_core_replicas_at_once_continue_each_others_conversations(redis_stack: Stack) -> None:
    """Several core processes behind one address (a load balancer, a Kubernetes Service): any turn may land on
    any replica, and each has the whole history from Redis."""
    other = ServiceProcess("core", env=redis_stack.env, log=redis_stack.logs / "core-2.log").start()
    try:
        other.wait_live()
        ws = open_conversation(redis_stack.ports["core"], session="two-replicas")
        first = typed_turn(ws, "My name is Grace.")[-1]
        ws.close()
        ws = open_conversation(other.port, session="two-replicas")
        second = typed_turn(ws, "What is my name?")[-1]
        ws.close()
        assert remembers(first, second), (first, second)
        ws = open_conversation(redis_stack.ports["core"], session="two-replicas")
        third = typed_turn(ws, "Say my name again.")[-1]
        ws.close()
        assert remembers(second, third), (second, third)
    finally:
        other.stop()
