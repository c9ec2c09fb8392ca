"""Faults under `voxstack up` (real processes): a killed llm, asr or core, a hung tts, a client that stops
reading. Calls wait for a service being brought back, fail within their deadline naming the stage when it
hangs, and nothing piles up; conversations go on or reconnect.

What is under test is the supervisor's and the core's handling, so the model services are the scripted
fakes (served by the supervisor through their ``factory`` settings): a reply is as long and as slow as the
script says, whatever the machine's speed."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conversation import open_conversation, read_until, typed_turn
from devstack import DevRun
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response
from websockets.uri import parse_uri

from voxstack.errors import EXIT_STARTUP
from voxstack.testing.fakes import loud, quiet

SEND_TIMEOUT = 3  # seconds a reply waits for a client that does not read
# A reply that takes a while to write (and to speak: a sentence every ten words).
STORY = {"text": "Once upon a time a dragon met a knight by the river. " * 8, "token_delay": 0.03}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    root = tmp_path_factory.mktemp("faults")
    running = DevRun(root, root, "up", fakes=True)
    running.env |= {
        "VOXSTACK_CORE__TTS_TIMEOUT": "4",
        "VOXSTACK_CORE__WS_SEND_TIMEOUT": str(SEND_TIMEOUT),
        "VOXSTACK_HEALTH_INTERVAL": "0.5",
    }
    running.start()
    try:
        running.wait_for(lambda: running.serving("asr", "llm", "tts", "core"), 240, "voxstack up")
        yield running
        running.script.clear()
    finally:
        running.stop()
    assert leftovers(running.state) == []


def core(run: DevRun) -> str:
    return f"http://127.0.0.1:{run.ports['core']}"


def test_a_call_sent_while_the_supervisor_restarts_a_killed_llm_waits_for_it(run: DevRun) -> None:
    killed = run.pid("llm")
    os.kill(killed, signal.SIGKILL)
    # At once: the llm is dead, the supervisor has not restarted it yet.
    reply = httpx.post(f"{core(run)}/v1/chat", json={"message": "Hi"}, timeout=90)
    assert reply.status_code == 200, reply.text
    assert "event: done" in reply.text, reply.text
    run.wait_for(lambda: run.serving("llm") and run.pid("llm") != killed, 60, "the llm restarted")
    # The core's lines reach the dev output through the supervisor, a moment after they are written.
    run.wait_for(lambda: "llm is back: sending the call again" in run.output(), 10, "the core's 'is back' line")
    assert "llm is unreachable: waiting up to" in run.output(), run.output()[-3000:]


def test_an_asr_killed_mid_utterance_costs_that_utterance_and_the_conversation_goes_on(run: DevRun) -> None:
    run.script.update(asr={"utterances": [{"text": "What is the capital of France?"}]})
    ws = open_conversation(run.ports["core"], session="faults-asr")
    stop = threading.Event()
    audio: list[bytes] = [loud(2.0)]

    def microphone() -> None:
        """20 ms frames in real time: what is queued in ``audio``, else silence, until ``stop``."""
        pending = b""
        while not stop.is_set():
            if not pending and audio:
                pending = audio.pop(0)
            frame, pending = (pending[:640], pending[640:]) if pending else (bytes(640), b"")
            try:
                ws.send(frame.ljust(640, b"\0"))
            except ConnectionClosed:
                return
            time.sleep(0.02)

    sender = threading.Thread(target=microphone, daemon=True)
    sender.start()
    try:
        events = read_until(ws, lambda e: e["type"] == "speech_started")
        killed = run.pid("asr")
        os.kill(killed, signal.SIGKILL)  # in the middle of the utterance
        events = read_until(ws, lambda e: e["type"] == "error")
        assert events[-1]["code"] == "ASR_RESTARTED", events
        assert events[-1]["stage"] == "asr"
        # The supervisor brought it back (its record may be written just after the core's new stream opened).
        run.wait_for(lambda: run.serving("asr") and run.pid("asr") != killed, 60, "the asr restarted")
        # The same socket, no reconnect: the next question is heard and answered.
        audio.append(loud(0.6) + quiet(1.0))
        events = read_until(ws, lambda e: e["type"] == "reply_done")
        transcripts = [e["text"] for e in events if e["type"] == "transcript"]
        assert any("france" in t.lower() for t in transcripts), events
        assert not [e for e in events if e["type"] == "error"], events
    finally:
        stop.set()
        sender.join()
        ws.close()
    assert "asr stream broke" in run.output()


@pytest.mark.parametrize("service", ["llm", "tts"])
def test_a_service_killed_mid_reply_ends_that_turn_and_the_next_turn_works(run: DevRun, service: str) -> None:
    run.script.update(llm={"default": STORY}, tts={"chunk_delay": 0.2})
    ws = open_conversation(run.ports["core"], session=f"faults-{service}")
    try:
        ws.send(json.dumps({"type": "text", "text": "Tell me a long story about a dragon and a knight."}))
        read_until(ws, lambda e: e["type"] == "audio")  # the reply is being written and spoken
        killed = run.pid(service)
        os.kill(killed, signal.SIGKILL)
        end = read_until(ws, lambda e: e["type"] in ("error", "reply_done"))[-1]
        if service == "llm":  # its stream broke after deltas were sent: the turn fails, naming the llm
            assert end["type"] == "error" and end["stage"] == "llm", end
        else:  # a sentence's synthesis failed (named), or the next one waited for the restarted tts
            assert end["type"] == "reply_done" or end.get("stage") == "tts", end
        run.wait_for(lambda: run.serving(service) and run.pid(service) != killed, 90, f"{service} restarted")
        # The same socket, no reconnect.
        assert typed_turn(ws, "What is the capital of France?")[-1]["type"] == "reply_done"
    finally:
        ws.close()


def test_a_hung_tts_fails_calls_within_their_deadline_and_recovers_after_sigcont(run: DevRun) -> None:
    pid = run.pid("tts")
    os.kill(pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(lambda _: httpx.post(f"{core(run)}/v1/speak", json={"text": "Hello."}, timeout=60), range(4))
            )
        for answer in answers:  # each ends at its deadline (tts_timeout 4 s), named; none waits for the others
            assert answer.status_code == 504, answer.text
            assert "tts" in answer.json()["error"]["message"], answer.text
        run.wait_for(lambda: run.record()["services"]["tts"]["state"] == "unhealthy", 30, "tts unhealthy")
        status = run.cli("status")
        assert status.returncode == 1, status.stdout
        assert any(line.split()[:2] == ["tts", "unhealthy"] for line in status.stdout.splitlines()), status.stdout
        health = httpx.get(f"{core(run)}/healthz", timeout=30)
        assert health.status_code == 503
        assert health.json()["services"]["tts"]["status"] != "SERVING", health.text
    finally:
        os.kill(pid, signal.SIGCONT)
    run.wait_for(lambda: run.serving("tts"), 30, "tts serving again")
    assert run.pid("tts") == pid  # recovered, not replaced
    assert httpx.post(f"{core(run)}/v1/speak", json={"text": "Hello."}, timeout=60).status_code == 200


class SilentClient:
    """A WebSocket client that writes but never reads: websockets' sans-I/O protocol over a raw socket with
    a small receive buffer (the library's own clients read in the background, whatever the caller does)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: the window
        self.sock.connect(("127.0.0.1", port))
        self.protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/v1/stream"))
        self.protocol.send_request(self.protocol.connect())
        self.flush()
        self.protocol.receive_data(self.sock.recv(4096))
        assert isinstance(self.protocol.events_received()[0], Response)
        assert self.protocol.handshake_exc is None, self.protocol.handshake_exc

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            self.sock.sendall(data)

    def send_text(self, text: str) -> bool:
        """One text frame; False once the server has closed the connection."""
        self.protocol.send_text(text.encode())
        try:
            self.flush()
            return True
        except OSError:
            return False


def test_a_client_that_stops_reading_is_dropped_and_holds_up_nobody(run: DevRun) -> None:
    # Long replies spoken slowly: megabytes of audio each, so the socket buffers fill within a few turns.
    run.script.update(
        llm={"replies": [{"match": "dragon", **STORY, "token_delay": 0.0}]}, tts={"seconds_per_char": 0.2}
    )
    url = core(run)
    core_pid = run.pid("core")
    rss_before = rss_mib(core_pid)
    silent = SilentClient(run.ports["core"])
    assert silent.send_text(json.dumps({"type": "config", "sample_rate": 16000}))
    dropped = False
    for _ in range(20):  # long replies until the socket buffers are full and the server's send stalls
        if not silent.send_text(json.dumps({"type": "text", "text": "Tell me a long story about a dragon."})):
            break
        deadline = time.monotonic() + 5
        while not dropped and time.monotonic() < deadline:
            dropped = "voxstack_core_slow_clients_dropped_total 1.0" in httpx.get(f"{url}/metrics", timeout=10).text
            time.sleep(0.2)
        if dropped:
            break
        # Meanwhile another conversation is answered as usual.
        ws = open_conversation(run.ports["core"], session="faults-reader")
        assert typed_turn(ws, "What is two plus two?")[-1]["type"] == "reply_done"
        ws.close()
    assert dropped, run.output()[-3000:]
    assert "the client read nothing for 3 s: dropping the conversation" in run.output()
    assert rss_mib(core_pid) - rss_before < 64  # what it could not send was not kept
    # Its reply was cancelled: the llm is free for the next caller.
    assert httpx.post(f"{url}/v1/chat", json={"message": "Hi"}, timeout=60).status_code == 200
    silent.sock.close()


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_a_killed_core_is_restarted_and_its_clients_reconnect(run: DevRun) -> None:
    ws = open_conversation(run.ports["core"], session="faults-core")
    killed = run.pid("core")
    os.kill(killed, signal.SIGKILL)
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=30)
    # The client reconnects (with back-off, as the docs ask after a 1006) until the new core answers.
    deadline = time.monotonic() + 90
    while True:
        try:
            ws = open_conversation(run.ports["core"], session="faults-core")
            break
        except (OSError, ConnectionClosed, TimeoutError):
            assert time.monotonic() < deadline, run.output()[-3000:]
            time.sleep(0.5)
    assert typed_turn(ws, "What is the capital of France?")[-1]["type"] == "reply_done"
    ws.close()
    assert run.pid("core") != killed
    assert run.record()["services"]["core"]["restarts"] >= 1


def test_the_llm_starts_with_openmp_threads_that_sleep_soon(run: DevRun) -> None:
    """A core taken by another process made a niced llm's spinning OpenMP threads wait on each other: replies of
    a second took over a minute. The supervisor starts the llm with a short spin (registry: the llm's env)."""
    environ = Path(f"/proc/{run.pid('llm')}/environ").read_bytes().split(b"\0")
    assert b"GOMP_SPINCOUNT=1000" in environ
    assert not any(
        v.startswith(b"GOMP_SPINCOUNT=") for v in Path(f"/proc/{run.pid('tts')}/environ").read_bytes().split(b"\0")
    )


def test_the_run_record_is_this_users_only(run: DevRun) -> None:
    assert stat.S_IMODE((run.state / "voxstack" / "run.json").stat().st_mode) == 0o600


def test_stopping_while_a_restart_is_under_way_leaves_no_process(run: DevRun) -> None:
    os.kill(run.pid("llm"), signal.SIGKILL)
    run.wait_for(lambda: run.record()["services"]["llm"]["state"] in ("backoff", "starting"), 30, "a restart")
    run.stop()  # the fixture checks that nothing of this run is left


def leftovers(state: Path) -> list[str]:
    """Processes still running with this run's state directory in their environment."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            environ = (proc / "environ").read_bytes()
            if f"XDG_STATE_HOME={state}".encode() in environ.split(b"\0"):
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append(f"{proc.name}: {command}")
        except (OSError, ValueError):
            continue
    return found


def test_up_stops_when_a_setting_keeps_a_service_from_starting(tmp_path: Path) -> None:
    """A prod core told to listen on every address without keys exits with EXIT_STARTUP; restarting it
    cannot help, so `voxstack up` stops the stack and says why instead of retrying forever."""
    up = DevRun(tmp_path, tmp_path, "up", fakes=True)
    up.env |= {"VOXSTACK_CORE__HOST": "0.0.0.0", "VOXSTACK_RESTART_BACKOFF": "0.05"}
    up.start()
    assert up.proc is not None
    try:
        assert up.proc.wait(120) == EXIT_STARTUP, up.output()[-3000:]
    finally:
        up.stop()
    output = up.output()
    assert "no API keys" in output and "Not restarting it" in output, output[-3000:]
    assert output.count("restarting core in") == 0, output[-3000:]
    # What it wrote is this user's only: logs quote what callers sent.
    logs = up.state / "voxstack" / "logs"
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700 and stat.S_IMODE(logs.parent.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in logs.glob("*.log")} == {0o600}
    # With a key the same setting serves, and the banner says where the core listens.
    keyed = DevRun(tmp_path, tmp_path, "up", ("--only", "core"), fakes=True)
    keyed.env |= {"VOXSTACK_CORE__HOST": "0.0.0.0", "VOXSTACK_CORE__API_KEYS": '["faults-key-0123456789"]'}
    keyed.start()
    try:
        keyed.wait_for(lambda: "(listening on 0.0.0.0)" in keyed.output(), 60, "the banner")
        assert f"http://127.0.0.1:{keyed.ports['core']} (listening on 0.0.0.0)" in keyed.output()
    finally:
        assert keyed.stop() == 0
