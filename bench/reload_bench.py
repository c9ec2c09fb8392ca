"""Dev mode: time from save to the new code answering, failed calls, and the longest call during reloads.

Each service gets SAVES saves of a block appended to one of its modules that
makes its answers carry a version marker (voxstack.testing.edits), on a
private copy of the source tree, while a client calls it in a
loop through the same kind of client the core uses (the core's own gRPC
client for asr, llm and tts; a new HTTP connection per call for the core).
The model services get SAVES more saves of their engine's module (the path
that cannot keep the warm spare's engine), and a second `voxstack dev
--no-spares` run gives the path without spares. For comparison in the same
run: `uvicorn --reload` serving the same core app, and `uvicorn --reload`
serving a trivial ASGI app (the floor).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import voxstack.protogen as protogen
from bench.common import Inputs, Report, median, wait_http
from voxstack.config import load_settings
from voxstack.core.clients import Backends, StageError
from voxstack.registry import ALL_SERVICES, MODEL_SERVICES
from voxstack.testing.edits import set_engine_marker, set_marker
from voxstack.testing.processes import child_env, free_port, free_ports
from voxstack.v1 import asr_pb2, llm_pb2

SAVES = 20
QUIET_SECONDS = 5.0


async def grpc_marker(backends: Backends, service: str) -> str:
    """The marker the service answers with now (an error message or a field)."""
    if service == "tts":
        from voxstack.v1 import tts_pb2

        reply = await backends.unary("tts", backends.tts.ListVoices, tts_pb2.ListVoicesRequest())
        return reply.voices[0].language
    request: llm_pb2.GenerateRequest | list[asr_pb2.StreamingRecognizeRequest]
    if service == "llm":
        method, request = backends.llm.Generate, llm_pb2.GenerateRequest()
    else:  # a stream whose first message is not a config; a list, so that a retry sends it again
        method, request = backends.asr.StreamingRecognize, [asr_pb2.StreamingRecognizeRequest(audio=b"\0\0")]
    try:
        async for _ in backends.stream(service, method, request):
            pass
    except StageError as exc:
        if exc.code.name != "INVALID_ARGUMENT":
            raise
        return exc.message
    raise AssertionError("expected an INVALID_ARGUMENT carrying the marker")


async def engine_marker(backends: Backends, service: str) -> str:
    """The marker the service's engine answers with now (see ENGINE_MARKER_TAILS)."""
    if service == "tts":
        from voxstack.v1 import tts_pb2

        reply = await backends.unary("tts", backends.tts.ListVoices, tts_pb2.ListVoicesRequest())
        return reply.voices[0].language.partition("+")[2].partition("-")[0]  # before the service's marker
    if service == "asr":
        models = await backends.unary("asr", backends.asr.ListModels, asr_pb2.ListModelsRequest())
        return models.models[0].languages[-1]
    request = llm_pb2.GenerateRequest(messages=[llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content="Hi")])
    deltas = [r.delta async for r in backends.stream("llm", backends.llm.Generate, request) if r.delta]
    return deltas[0] if deltas else ""  # the marked engine's first delta


async def http_marker(url: str) -> str:
    async with httpx.AsyncClient(timeout=10) as client:  # a new connection per call
        response = await client.get(url)
        response.raise_for_status()
        return response.json()["status"]


MARKER_PATH = "/test/marker"  # served by the core's marker block


async def measure(edit, probe, saves: int, mark: str = "v", settle=None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Edit ``saves`` times; after each, time until ``probe`` returns the new marker; call in a loop meanwhile.

    The same loop first runs QUIET_SECONDS without edits: its median is the
    normal call, its longest call the jitter callers see anyway. ``settle()``
    runs before each save (the warm spare loading its engine: a developer's
    saves are seconds apart; a save sooner waits for that load, at most a cold start).
    """
    failures = 0
    latest = ""
    errors: list[str] = []
    stop = asyncio.Event()
    quiet: list[float] = []
    reloading: list[float] = []
    durations = quiet  # the loop's current phase

    async def loop() -> None:
        nonlocal failures, latest
        while not stop.is_set():
            started = time.perf_counter()
            try:
                latest = await probe()
            except Exception as exc:
                failures += 1
                errors.append(repr(exc)[:160])
            durations.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)

    if settle is not None:
        await settle()  # the quiet phase is the steady state: no spare loading its engine
    task = asyncio.create_task(loop())
    await asyncio.sleep(QUIET_SECONDS)
    durations = reloading
    times = []
    for n in range(1, saves + 1):
        if settle is not None:
            await settle()
        saved = time.perf_counter()
        edit(n)
        while not latest.endswith(f"{mark}{n}"):
            if time.perf_counter() - saved > 60:
                raise RuntimeError(f"save {n} not served within 60 s")
            await asyncio.sleep(0.005)
        times.append(time.perf_counter() - saved)
        await asyncio.sleep(0.3)
    stop.set()
    await task
    return {
        "median": median(times), "max": max(times), "failures": failures, "calls": len(reloading),
        "longest": max(reloading, default=0), "normal": median(quiet), "quiet_longest": max(quiet, default=0),
        "errors": errors,
    }  # fmt: skip


def editor(package_dir: Path, service: str):  # type: ignore[no-untyped-def]
    """Save n: the service's marker block says v{n}."""

    def edit(n: int) -> None:
        set_marker(package_dir, service, f"v{n}")

    return edit


def engine_editor(package_dir: Path, service: str):  # type: ignore[no-untyped-def]
    """Save n: the service's engine module's marker block says e{n}."""

    def edit(n: int) -> None:
        set_engine_marker(package_dir, service, f"e{n}")

    return edit


def trivial_editor(path: Path):  # type: ignore[no-untyped-def]
    def edit(n: int) -> None:
        path.write_text(TRIVIAL.replace('"v0"', f'"v{n}"'))

    return edit


def copy_tree(root: Path) -> Path:
    shutil.copytree(protogen.PROJECT_ROOT / "src" / "voxstack", root / "src" / "voxstack",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return root / "src"


def voxstack_dev(report: Report, models_dir: Path, tmp: Path, spares: bool = True) -> float:
    """Reload each service SAVES times under `voxstack dev` (its engine too, with spares); the core's median."""
    tmp = tmp / ("dev" if spares else "dev-no-spares")
    src = copy_tree(tmp)
    set_marker(src / "voxstack", "core", "v0")
    ports = dict(zip(ALL_SERVICES, free_ports(len(ALL_SERVICES)), strict=True))
    env = child_env() | {
        "PYTHONPATH": str(src), "XDG_STATE_HOME": str(tmp / "state"), "VOXSTACK_MODELS_DIR": str(models_dir),
        "VOXSTACK_LLM__MAX_TOKENS": "1",  # the llm's probe: the marked engine's first delta, then one token
        **{f"VOXSTACK_{n.upper()}__PORT": str(p) for n, p in ports.items()},
    }  # fmt: skip
    log = (tmp / "dev.log").open("w")
    argv = [sys.executable, "-m", "voxstack", "dev", *([] if spares else ["--no-spares"])]
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        record = tmp / "state" / "voxstack" / "run.json"
        deadline = time.monotonic() + 300
        while True:
            try:
                services = json.loads(record.read_text())["services"]
                if len(services) == 4 and all(s["state"] == "serving" for s in services.values()):
                    break
            except (OSError, ValueError, KeyError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("voxstack dev did not start")
            time.sleep(0.2)
        time.sleep(2)  # the watcher's start-up probe
        settings = load_settings(**{n: {"port": ports[n]} for n in MODEL_SERVICES})

        async def run_all() -> dict[str, dict[str, Any]]:
            backends = Backends(settings)
            results = {}
            for service in ("core", "tts", "llm", "asr") if spares else MODEL_SERVICES:
                edit = editor(src / "voxstack", service)
                if service == "core":
                    url = f"http://127.0.0.1:{ports['core']}{MARKER_PATH}"

                    async def all_ready() -> None:  # not while the spares load their engines and code
                        for name in ALL_SERVICES:
                            await spares_ready(record, name, spares)

                    results[service] = await measure(edit, lambda url=url: http_marker(url), SAVES, settle=all_ready)
                    continue
                settle = lambda s=service: spares_ready(record, s, spares)  # noqa: E731
                probe = lambda s=service: grpc_marker(backends, s)  # noqa: E731
                results[service] = await measure(edit, probe, SAVES, settle=settle)
                if spares:
                    edit = engine_editor(src / "voxstack", service)
                    probe = lambda s=service: engine_marker(backends, s)  # noqa: E731
                    results[f"{service} engine"] = await measure(edit, probe, SAVES, mark="e", settle=settle)
            await backends.close()
            return results

        results = asyncio.run(run_all())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        log.close()
    run = "voxstack dev" if spares else "voxstack dev --no-spares"
    for service, r in results.items():
        if service == "core":
            target = "<= 0.3, <= uvicorn same app"
        elif spares and not service.endswith("engine"):
            target = "<= 0.5"
        else:
            target = ""
        what = f"{run} {service}{'' if service.endswith('engine') or service == 'core' else ' service code'}"
        report.add("reload", f"{what}: save to new code, median", r["median"], "s", target,
                   f"max {r['max']:.2f} s over {SAVES} saves")  # fmt: skip
        seen = "; ".join(sorted(set(r["errors"])))[:300]
        report.add("reload", f"{what}: failed calls", r["failures"], "calls", "0",
                   f"of {r['calls']}" + (f": {seen}" if seen else ""))  # fmt: skip
        report.add("reload", f"{what}: longest call during reloads", r["longest"], "s", "",
                   f"normal call {r['normal'] * 1000:.1f} ms")  # fmt: skip
        report.add("reload", f"{what}: longest call, reloads / {QUIET_SECONDS:.0f} s without",
                   r["longest"] / r["quiet_longest"], "ratio", "a few",
                   f"longest without reloads {r['quiet_longest'] * 1000:.1f} ms")  # fmt: skip
    return results["core"]["median"] if "core" in results else float("nan")


TRIVIAL = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status": "v0"}'})
"""


def uvicorn_reload(report: Report, models_dir: Path, tmp: Path) -> dict[str, dict[str, Any]]:
    """`uvicorn --reload` on the same core app, and on a trivial app: each case's figures."""
    cases = {}
    src = copy_tree(tmp / "uvicorn")
    set_marker(src / "voxstack", "core", "v0")
    trivial = tmp / "trivial"
    trivial.mkdir()
    (trivial / "trivial_app.py").write_text(TRIVIAL)
    for label, target, cwd, edit in (
        ("same core app", "voxstack.core.app:app_from_env", src, editor(src / "voxstack", "core")),
        ("trivial ASGI app", "trivial_app:app", trivial, trivial_editor(trivial / "trivial_app.py")),
    ):
        port = free_port()
        env = child_env() | {
            "PYTHONPATH": str(cwd), "VOXSTACK_MODELS_DIR": str(models_dir), "VOXSTACK_LOG_LEVEL": "WARNING",
        }  # fmt: skip
        argv = [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--reload", "--reload-dir", str(cwd),
                "--log-level", "warning"]  # fmt: skip
        if target.endswith("app_from_env"):
            argv.insert(4, "--factory")
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
        url = f"http://127.0.0.1:{port}{MARKER_PATH}"
        try:
            wait_http(url, proc)
            cases[label] = asyncio.run(measure(edit, lambda url=url: http_marker(url), SAVES))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    for label, r in cases.items():
        report.add("reload", f"uvicorn --reload, {label}: save to new code, median", r["median"], "s", "",
                   f"max {r['max']:.2f} s over {SAVES} saves")  # fmt: skip
        report.add("reload", f"uvicorn --reload, {label}: failed calls", r["failures"], "calls", "", f"of {r['calls']}")
        report.add("reload", f"uvicorn --reload, {label}: longest call during reloads", r["longest"], "s", "",
                   f"normal call {r['normal'] * 1000:.1f} ms")  # fmt: skip
    return cases


def run(report: Report, inputs: Inputs) -> None:
    models_dir = inputs.models_dir
    with tempfile.TemporaryDirectory(prefix="voxstack-reload-") as name:
        tmp = Path(name)
        core_median = voxstack_dev(report, models_dir, tmp)
        voxstack_dev(report, models_dir, tmp, spares=False)
        cases = uvicorn_reload(report, models_dir, tmp)
        report.add("reload", "core: voxstack dev / uvicorn --reload (same app)",
                   core_median / cases["same core app"]["median"], "ratio", "<= 1.0")  # fmt: skip


async def spares_ready(record: Path, service: str, spares: bool, timeout: float = 120) -> None:
    """Until the service's warm spare is ready: its engine loaded, or its code imported for the core (at once
    without spares)."""
    deadline = time.monotonic() + timeout
    ready = ("engine ready", "code ready")
    while spares and time.monotonic() < deadline:
        try:
            if json.loads(record.read_text())["services"][service].get("spare") in ready:
                return
        except (OSError, ValueError, KeyError):
            pass
        await asyncio.sleep(0.1)
