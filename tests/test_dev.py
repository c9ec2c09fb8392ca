"""Development mode and production mode, run for real: a supervisor over a copy of the source tree."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from devstack import DevRun

from voxstack.config import load_settings
from voxstack.core.clients import Backends
from voxstack.registry import MODEL_SERVICES
from voxstack.runstate import pid_alive
from voxstack.testing.processes import free_port
from voxstack.v1 import tts_pb2

pytestmark = pytest.mark.slow

# The test's own edits: blocks appended to a module (voxstack.testing.edits), never a match of its code.
TOUCH = "_TEST_EDIT = {n}\n"
BROKEN = "raise RuntimeError('broken on purpose')\n"


RESTART_BACKOFF = 0.1  # seconds before the first restart: a crash loop is seen in a second, not in ten


@pytest.fixture
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's folder: short, since the control sockets' paths have a length limit."""
    return tmp_path_factory.mktemp("dev")


def _dev_tts(root: Path, *, spares: bool) -> Iterator[DevRun]:
    run = DevRun(root, root / "models", "dev", ("--only", "tts"), fakes=True, spares=spares)
    run.env["VOXSTACK_SUPERVISOR_METRICS_PORT"] = str(free_port())
    run.env["VOXSTACK_RESTART_BACKOFF"] = str(RESTART_BACKOFF)
    run.start()
    try:
        run.wait_for(lambda: run.serving("tts"), what="tts serving")
        yield run
    finally:
        run.stop()


@pytest.fixture
def dev_tts(root: Path) -> Iterator[DevRun]:
    """`voxstack dev --only tts` over the fake tts, starting cold on each reload."""
    yield from _dev_tts(root, spares=False)


@pytest.fixture
def dev_tts_spares(root: Path) -> Iterator[DevRun]:
    """The same with warm spares: the reloads a developer gets."""
    yield from _dev_tts(root, spares=True)


def backends_for(run: DevRun) -> Backends:
    return Backends(load_settings(**{n: {"port": run.ports[n]} for n in MODEL_SERVICES}))


def test_twenty_reloads_with_zero_failed_calls(dev_tts_spares: DevRun) -> None:
    dev_tts = dev_tts_spares
    """Calls in a loop, through the core's own client, while a handler file is saved 20 times."""

    async def scenario() -> tuple[int, int, list[str], float]:
        backends = backends_for(dev_tts)
        calls = failures = 0
        seen: list[str] = []
        errors: list[str] = []
        longest = 0.0
        stop = asyncio.Event()

        async def hammer() -> None:
            nonlocal calls, failures, longest
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    reply = await backends.unary("tts", backends.tts.ListVoices, tts_pb2.ListVoicesRequest())
                    language = reply.voices[0].language
                    if not seen or seen[-1] != language:
                        seen.append(language)
                except Exception as exc:
                    failures += 1
                    errors.append(repr(exc))
                calls += 1
                longest = max(longest, time.perf_counter() - started)
                await asyncio.sleep(0.005)

        task = asyncio.create_task(hammer())
        for i in range(1, 21):
            dev_tts.mark("tts", f"v{i}")
            deadline = time.monotonic() + 30
            while not (seen and seen[-1].endswith(f"-v{i}")):
                assert time.monotonic() < deadline, f"reload {i} not served; output:\n{dev_tts.output()[-2000:]}"
                await asyncio.sleep(0.02)
        stop.set()
        await task
        await backends.close()
        return calls, failures, seen, errors

    calls, failures, seen, errors = asyncio.run(scenario())
    assert failures == 0, errors
    assert calls > 100
    assert [s for s in seen if "-v" in s] == [f"en_US-v{i}" for i in range(1, 21)]
    # The run record follows the adoption of the instance already serving: wait for it, do not race it.
    dev_tts.wait_for(lambda: dev_tts.generation("tts") == 21, 10, "the run record of the 20th reload")
    assert dev_tts.output().count("reloaded tts in") == 20
    figures = supervisor_metrics(dev_tts)
    assert figures['voxstack_supervisor_reloads_total{outcome="served",service="tts"}'] == 20
    assert figures['voxstack_supervisor_reload_seconds_count{service="tts"}'] == 20
    assert 0 < figures['voxstack_supervisor_reload_seconds_sum{service="tts"}'] / 20 < 30


def supervisor_metrics(run: DevRun) -> dict[str, float]:
    """The supervisor's /metrics as {series: value}."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{run.env['VOXSTACK_SUPERVISOR_METRICS_PORT']}/metrics", timeout=10).text
    figures = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            figures[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return figures


def test_core_reloads_lose_no_request_on_a_keep_alive_connection(root: Path) -> None:
    """One client, one keep-alive connection, requests back to back: the stopping instance answers with
    `Connection: close` instead of closing the connection under a request."""
    run = DevRun(root, root / "models", "dev", ("--only", "core"), fakes=True)
    run.mark("core", "v0")
    run.start()
    try:
        run.wait_for(lambda: run.serving("core"), what="core serving")
        seen: list[str] = []
        failures: list[str] = []
        calls = 0
        with httpx.Client(base_url=f"http://127.0.0.1:{run.ports['core']}", timeout=10) as client:
            for i in range(1, 6):
                run.mark("core", f"v{i}")
                deadline = time.monotonic() + 30
                while not seen or seen[-1] != f"v{i}":
                    assert time.monotonic() < deadline, f"reload {i} not served:\n{run.output()[-2000:]}"
                    calls += 1
                    try:
                        status = client.get("/test/marker").json()["status"]
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                        continue
                    if not seen or seen[-1] != status:
                        seen.append(status)
    finally:
        run.stop()
    assert failures == [], failures[:3]
    assert seen == [f"v{i}" for i in range(6)]
    assert calls > 50


def test_only_the_services_that_import_a_file_restart(root: Path) -> None:
    run = DevRun(root, root / "models", "dev", ("--only", "tts,core"), fakes=True).start()
    try:
        run.wait_for(lambda: run.serving("tts", "core"), what="tts and core serving")
        core_pid, tts_pid = run.pid("core"), run.pid("tts")
        run.append("tts/engine.py", TOUCH.format(n=1))
        run.wait_for(lambda: run.generation("tts") == 2 and run.serving("tts"), what="tts reload")
        # The reloader names what it reloads when it decides: tts alone.
        assert re.search(r"change in src/voxstack/tts/engine.py: reloading tts\s*$", run.output(), re.M), run.output()
        assert run.pid("core") == core_pid and run.generation("core") == 1
        assert run.pid("tts") != tts_pid
        # Shared code that both import: both restart.
        run.append("text.py", TOUCH.format(n=1))
        run.wait_for(
            lambda: run.generation("tts") == 3 and run.generation("core") == 2 and run.serving("tts", "core"),
            what="both reload",
        )
        assert "change in src/voxstack/text.py: reloading core, tts" in run.output()
        # Code no running service imports: nothing restarts.
        run.append("asr/vad.py", TOUCH.format(n=1))
        run.wait_for(lambda: "nothing to reload" in run.output(), what="the edit seen")
        assert run.generation("tts") == 3 and run.generation("core") == 2
    finally:
        assert run.stop() == 0


def said(run: DevRun) -> str:
    """The run's output with its whitespace runs made single spaces (wrapped lines joined)."""
    return " ".join(run.output().split())


def test_a_syntax_error_keeps_the_old_instance(dev_tts: DevRun) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{dev_tts.ports['tts']}") as channel:
        from voxstack.v1 import tts_pb2_grpc

        stub = tts_pb2_grpc.TtsStub(channel)
        module = dev_tts.marked_file("tts")  # the mark below replaces the broken block
        dev_tts.append(module, "def broken(:\n")
        # Whitespace aside: a log line longer than the console's 200 columns wraps (a long temporary path).
        dev_tts.wait_for(lambda: "the old instance keeps serving" in said(dev_tts), what="failed reload")
        output = said(dev_tts)
        assert "SyntaxError" in output
        assert module in output
        assert stub.ListVoices(tts_pb2.ListVoicesRequest(), timeout=5).voices[0].language == "en_US"
        dev_tts.mark("tts", "fixed")

        def fixed() -> bool:
            # A plain stub, no retries: a call may meet the old instance as it goes (the core's client
            # retries those; test_twenty_reloads_with_zero_failed_calls holds it to that).
            try:
                return stub.ListVoices(tts_pb2.ListVoicesRequest(), timeout=5).voices[0].language == "en_US-fixed"
            except grpc.RpcError:
                return False

        dev_tts.wait_for(fixed, what="fixed code served")


def test_a_killed_service_comes_back_and_a_crash_loop_backs_off(dev_tts: DevRun) -> None:
    first = dev_tts.pid("tts")
    os.kill(first, signal.SIGKILL)
    dev_tts.wait_for(lambda: dev_tts.serving("tts") and dev_tts.pid("tts") not in (0, first), what="restart")
    assert f"restarting tts in {RESTART_BACKOFF:.1f} s" in dev_tts.output()
    # Now make every start crash, and kill the running one.
    dev_tts.append("tts/engine.py", BROKEN)
    dev_tts.wait_for(lambda: "reload of tts failed" in dev_tts.output(), what="failed reload")
    os.kill(dev_tts.pid("tts"), signal.SIGKILL)
    # No tight loop: each crash in a row doubles the wait before the next start.
    dev_tts.wait_for(lambda: dev_tts.record()["services"]["tts"]["restarts"] >= 4, what="a crash loop")
    state = dev_tts.record()["services"]["tts"]
    assert state["backoff_seconds"] >= RESTART_BACKOFF * 2 ** (state["restarts"] - 2), state
    assert "broken on purpose" in state["last_error"]
    figures = supervisor_metrics(dev_tts)
    assert figures['voxstack_supervisor_restarts_total{service="tts"}'] >= 1  # the first kill's restart
    assert figures['voxstack_supervisor_reloads_total{outcome="failed",service="tts"}'] >= 1


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    members.append(int(entry))
            except OSError:
                continue
    return members


def test_ctrl_c_leaves_no_process_behind(root: Path) -> None:
    run = DevRun(root, root / "models", "dev", ("--only", "tts,core"), fakes=True).start()
    run.wait_for(lambda: run.serving("tts", "core"), what="serving")
    children = [run.pid("tts"), run.pid("core")]
    assert run.stop(signal.SIGINT) == 0
    for pid in children:
        assert not pid_alive(pid) or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        assert _group_members(pid) == []
    assert "all services stopped" in run.output()
    assert not (run.state / "voxstack" / "run.json").exists()


def test_polling_mode_when_forced(root: Path) -> None:
    run = DevRun(
        root, root / "models", "dev", ("--only", "tts", "--poll", "--poll-interval", "100"), fakes=True
    ).start()
    try:
        run.wait_for(lambda: run.serving("tts"), what="serving")
        assert "(polling)" in run.output()
        run.append("tts/engine.py", TOUCH.format(n=1))
        run.wait_for(lambda: run.generation("tts") == 2 and run.serving("tts"), what="reload by polling")
    finally:
        run.stop()


def test_switching_between_up_and_dev(root: Path) -> None:
    up = DevRun(root, root / "models", "up", ("--only", "tts"), fakes=True).start()
    up.wait_for(lambda: up.serving("tts"), what="prod serving")
    assert up.record()["mode"] == "prod"
    # Production serves without any development code or debugger.
    up.wait_for(lambda: up.record()["services"]["tts"]["modules"], what="the modules tts said it loaded")
    loaded = up.record()["services"]["tts"]["modules"]
    assert "voxstack.server.host" in loaded
    assert not [m for m in loaded if m.startswith(("voxstack.dev", "debugpy", "watchfiles"))]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", 5678)) != 0
    assert '"mode": "prod"' in up.output()

    refused = DevRun(root, root / "models", "dev", ("--only", "tts"), fakes=True)
    refused.ports, refused.env = up.ports, up.env
    result = subprocess.run(refused.argv, env=refused.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "voxstack up is already running" in result.stderr and "--replace" in result.stderr

    dev = DevRun(root, root / "models", "dev", ("--only", "tts", "--replace"), fakes=True)
    dev.ports, dev.env = up.ports, up.env
    dev.start()
    try:
        dev.wait_for(lambda: dev.record().get("mode") == "dev" and dev.serving("tts"), what="dev after replace")
        assert up.proc.wait(30) == 0
        down = dev.cli("down")
        assert down.returncode == 0 and "stopped voxstack dev" in down.stdout
        assert dev.proc.wait(30) == 0
    finally:
        if dev.proc.poll() is None:
            dev.stop()


def test_a_stale_record_is_recovered(root: Path) -> None:
    state = root / "state" / "voxstack"
    state.mkdir(parents=True)
    (state / "run.json").write_text('{"mode": "prod", "supervisor_pid": 999999, "services": {}}')
    run = DevRun(root, root / "models", "dev", ("--only", "tts"), fakes=True).start()
    try:
        run.wait_for(lambda: run.serving("tts"), what="serving despite a stale record")
        assert run.record()["supervisor_pid"] == run.proc.pid
        status = run.cli("status", "--url", "http://127.0.0.1:1")
        assert "voxstack dev running" in status.stdout and "generation 1" in status.stdout
    finally:
        run.stop()
    down = run.cli("down")
    assert "nothing is running" in down.stdout


def test_debugger_listens_on_loopback_and_survives_reloads(root: Path) -> None:

    port = free_port()
    run = DevRun(
        root, root / "models", "dev", ("--only", "tts", "--debug", "tts", "--debug-port", str(port)), fakes=True
    ).start()
    try:
        run.wait_for(lambda: run.serving("tts"), what="serving under debugpy")
        # The banner comes once all serve; the watcher's line can come first.
        banner = f"debugger  tts on 127.0.0.1:{port}"
        run.wait_for(lambda: banner in run.output(), timeout=10, what="the debugger's address in the banner")
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        run.append("tts/engine.py", TOUCH.format(n=1))
        run.wait_for(lambda: run.generation("tts") == 2 and run.serving("tts"), what="reload under debugpy")
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        run.stop()


def test_logs_command(dev_tts: DevRun) -> None:
    result = dev_tts.cli("logs", "tts", "-n", "5")
    assert result.returncode == 0 and "[dev tts]" in result.stdout


def test_up_detached_then_down(root: Path) -> None:
    run = DevRun(root, root / "models", "up", ("--only", "tts", "--detach"), fakes=True)
    started = subprocess.run(run.argv, env=run.env, capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    assert "running in the background" in started.stdout
    try:
        assert run.record()["mode"] == "prod" and run.serving("tts")
        logs = run.cli("logs", "-n", "3")
        assert logs.returncode == 0 and '"service": "tts"' in logs.stdout
    finally:
        down = run.cli("down")
    assert down.returncode == 0 and "stopped voxstack up" in down.stdout
    assert run.record() == {}


def test_services_load_no_command_line_code_and_a_command_line_edit_reloads_nothing(root: Path) -> None:
    run = DevRun(root, root / "models", "dev", ("--only", "tts,core"), fakes=True).start()
    try:
        run.wait_for(lambda: run.serving("tts", "core"), what="serving")
        assert (run.state / "voxstack" / "sockets").stat().st_mode & 0o777 == 0o700  # control sockets: this user's
        for name in ("tts", "core"):
            run.wait_for(lambda n=name: run.record()["services"][n]["modules"], what=f"the modules {name} loaded")
            loaded = run.record()["services"][name]["modules"]
            assert "voxstack.server.run" in loaded  # started by the lean entry (run as __main__)
            assert [m for m in loaded if m.startswith(("voxstack.cli", "voxstack.commands"))] == [], name
        run.append("cli/chat.py", TOUCH.format(n=1))
        run.append("cli/stack.py", TOUCH.format(n=1))
        run.wait_for(lambda: "nothing to reload" in run.output(), timeout=10, what="the edit seen")
        assert run.generation("tts") == 1 and run.generation("core") == 1
        assert "reloading" not in run.output()
    finally:
        assert run.stop() == 0


def test_a_hung_service_shows_unhealthy_and_a_killed_one_says_so(root: Path) -> None:
    run = DevRun(root, root / "models", "dev", ("--only", "tts"), fakes=True)
    run.env["VOXSTACK_HEALTH_INTERVAL"] = "0.5"
    run.start()
    try:
        run.wait_for(lambda: run.serving("tts"), what="serving")
        pid = run.pid("tts")
        os.kill(pid, signal.SIGSTOP)
        try:
            run.wait_for(lambda: run.record()["services"]["tts"]["state"] == "unhealthy", what="unhealthy")
            assert re.search(r"tts\s+unhealthy", run.cli("status", "--url", "http://127.0.0.1:1").stdout)
        finally:
            os.kill(pid, signal.SIGCONT)
        run.wait_for(lambda: run.serving("tts") and run.pid("tts") == pid, what="serving again after SIGCONT")
        sockets = run.state / "voxstack" / "sockets"
        os.kill(pid, signal.SIGKILL)
        run.wait_for(lambda: run.serving("tts") and run.pid("tts") != pid, what="restarted")
        assert run.record()["services"]["tts"]["last_error"] == "killed by SIGKILL"
        assert not list(sockets.glob("tts-*-1.sock*")), list(sockets.iterdir())  # the dead one's files are gone
    finally:
        assert run.stop() == 0
    assert not list((run.state / "voxstack" / "sockets").iterdir())  # nothing left after the stop
