"""Model-preserving reloads: a dev warm spare holds a loaded engine; a reload that leaves the engine's code
alone serves with it, one that edits it starts cold; either way the new code is what serves."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from devstack import DevRun

from voxstack.config import load_settings
from voxstack.core.clients import Backends, StageError
from voxstack.registry import MODEL_SERVICES
from voxstack.testing.edits import set_engine_marker, set_tail
from voxstack.v1 import asr_pb2, llm_pb2, tts_pb2

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dev(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    from stack import TEST_LLM

    from voxstack.models import pull

    pull(TEST_LLM.model, models_dir)
    run = DevRun(
        tmp_path_factory.mktemp("engines"), models_dir, "dev", ("--only", ",".join(MODEL_SERVICES)), spares=True
    )
    run.env["VOXSTACK_LLM__MAX_TOKENS"] = "4"
    run.start()
    run.wait_for(lambda: run.serving(*MODEL_SERVICES), 240, "the model services")
    yield run
    run.stop()


async def served(run: DevRun) -> dict[str, str]:
    """What each service answers now, where the markers of its service code and its engine code show."""
    backends = Backends(load_settings(**{n: {"port": run.ports[n]} for n in MODEL_SERVICES}))
    try:
        voices = await backends.unary("tts", backends.tts.ListVoices, tts_pb2.ListVoicesRequest())
        models = await backends.unary("asr", backends.asr.ListModels, asr_pb2.ListModelsRequest())
        request = llm_pb2.GenerateRequest(messages=[llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content="Hi")])
        first = ""
        async for reply in backends.stream("llm", backends.llm.Generate, request):
            first = first or reply.delta
        errors = {}
        for name, method, bad in (
            ("asr", backends.asr.StreamingRecognize, [asr_pb2.StreamingRecognizeRequest(audio=b"\0\0")]),
            ("llm", backends.llm.Generate, llm_pb2.GenerateRequest()),
        ):
            try:
                async for _ in backends.stream(name, method, bad):
                    pass
            except StageError as exc:
                errors[name] = exc.message
        return {
            "tts": voices.voices[0].language,
            "asr": " ".join(models.models[0].languages) + " | " + errors["asr"],
            "llm": first + " | " + errors["llm"],
        }
    finally:
        await backends.close()


def spares_ready(run: DevRun) -> bool:
    """Every service's warm spare holds its loaded engine."""
    services = run.record().get("services", {})
    return all(services.get(n, {}).get("spare") == "engine ready" for n in MODEL_SERVICES)


def reload_all(run: DevRun, edit) -> dict[str, str]:
    """Wait for the spares, ``edit()``, wait for every service's reload; each one's reload path."""
    run.wait_for(lambda: spares_ready(run), 120, "warm spares with engines")
    before = {n: run.generation(n) for n in MODEL_SERVICES}
    edit()
    run.wait_for(
        lambda: all(run.generation(n) > before[n] for n in MODEL_SERVICES) and run.serving(*MODEL_SERVICES),
        120,
        "the reloads",
    )
    return {n: run.record()["services"][n]["reload_path"] for n in MODEL_SERVICES}


def test_a_service_edit_keeps_the_engine_and_an_engine_edit_starts_cold(dev: DevRun) -> None:
    package = dev.src / "voxstack"

    # Service code only: every spare's engine is kept, and the new service code serves.
    paths = reload_all(dev, lambda: [dev.mark(n, "v1") for n in MODEL_SERVICES])
    assert paths == {n: "engine kept" for n in MODEL_SERVICES}, paths
    now = asyncio.run(served(dev))
    assert now["tts"].endswith("-v1") and now["asr"].endswith(" v1") and now["llm"].endswith(" v1"), now
    assert "engine kept from the warm spare" in dev.output()

    # Engine code: each spare is discarded, the service starts cold, and the edited engine serves.
    paths = reload_all(dev, lambda: [set_engine_marker(package, n, "e1") for n in MODEL_SERVICES])
    for name, path in paths.items():
        assert path.startswith("cold start: engine code changed (") and "engine.py" in path, (name, path)
    now = asyncio.run(served(dev))
    assert "+e1-v1" in now["tts"], now  # the engine's mark inside, the service's outside
    assert "e1 |" in now["asr"] and now["asr"].endswith(" v1"), now
    assert now["llm"].startswith("e1 | ") and now["llm"].endswith(" v1"), now

    # Service code again: the spares loaded the edited engine, and keep it.
    paths = reload_all(dev, lambda: [dev.mark(n, "v2") for n in MODEL_SERVICES])
    assert paths == {n: "engine kept" for n in MODEL_SERVICES}, paths
    now = asyncio.run(served(dev))
    assert "+e1-v2" in now["tts"] and "e1 |" in now["asr"] and now["llm"].startswith("e1 | "), now
    assert all(now[n].endswith("v2") for n in MODEL_SERVICES), now

    # The spares' memory is counted: a second copy of each model.
    dev.wait_for(lambda: spares_ready(dev), 120, "warm spares with engines")
    services = dev.record()["services"]
    for name in MODEL_SERVICES:
        assert services[name]["rss_bytes"] > 50 * 2**20, (name, services[name])
        assert services[name]["spare_rss_bytes"] > 50 * 2**20, (name, services[name])
    status = dev.cli("status")
    assert status.stdout.count("MiB + spare ") == len(MODEL_SERVICES), status.stdout
    assert "engine kept" in status.stdout, status.stdout


def test_no_spares_keeps_starting_cold(tmp_path: Path, models_dir: Path) -> None:
    run = DevRun(tmp_path, models_dir, "dev", ("--only", "tts", "--no-spares"))
    run.start()
    try:
        run.wait_for(lambda: run.serving("tts"), 120, "tts serving")
        run.mark("tts", "v1")
        run.wait_for(lambda: run.generation("tts") == 2 and run.serving("tts"), 60, "tts reload")
        state = run.record()["services"]["tts"]
        assert state["reload_path"] == "cold start" and state["spare_rss_bytes"] == 0, state
        assert not list((run.state / "voxstack" / "sockets").glob("*.engine"))
    finally:
        run.stop()


def test_the_core_spare_imports_its_code_ahead_and_imports_again_only_what_a_save_changed(
    tmp_path: Path, models_dir: Path
) -> None:
    run = DevRun(tmp_path, models_dir, "dev", ("--only", "core"), spares=True)
    run.env.pop("PYTHONDONTWRITEBYTECODE", None)  # the bytecode cache, as a developer's machine has it
    run.start()
    health = run.src / "voxstack" / "core" / "routes" / "health.py"
    try:
        run.wait_for(lambda: run.serving("core"), 120, "core serving")

        def reload(edit, edited: str, path: str, answer: str) -> str:
            """``edit()``, then what the spare said it imported again for the edit of ``edited``, once the new
            code answers ``answer`` at ``path`` (a save can reach the watcher as more than one event)."""
            run.wait_for(lambda: run.record()["services"]["core"]["spare"] == "code ready", 60, "the core's spare")
            saved = time.time()
            before = run.output().count("warm spare: ")
            edit()

            def caused() -> list[dict]:
                history = run.record()["services"]["core"].get("history", [])
                return [h for h in history if h["at"] >= saved and edited in h["files"] and h["ok"]]

            run.wait_for(lambda: caused() and run.serving("core"), 60, f"a core reload for {edited}")
            url = f"http://127.0.0.1:{run.ports['core']}{path}"
            run.wait_for(lambda: httpx.get(url, timeout=10).json()["status"] == answer, 60, f"{path}: {answer}")
            assert caused()[0]["path"] == "warm spare", caused()
            said = [line for line in run.output().splitlines() if line.startswith("warm spare: ")][before:]
            assert said, run.output()[-3000:]
            return said[0]

        said = reload(lambda: run.mark("core", "v1"), "health.py", "/test/marker", "v1")
        # The route's module and the app that includes it, not the rest of the core: both were imported ahead.
        assert said == "warm spare: imported again: voxstack.core.routes.health and 1 module importing it", said
        assert not list((run.state / "voxstack" / "sockets").glob("core-*.code"))  # said on the channel, no file

        # A layer under the core: a constant the route imports by name (only the source shows that link).
        reload(
            lambda: (run.append("text.py", 'TEST_LAYER = "layer-1"\n'), set_tail(health, LAYER_ROUTE)),
            "health.py",
            "/test/layer",
            "layer-1",
        )
        said = reload(lambda: run.append("text.py", 'TEST_LAYER = "layer-2"\n'), "text.py", "/test/layer", "layer-2")
        importing = int(said.partition(" and ")[2].split()[0])
        assert said.startswith("warm spare: imported again: voxstack.text and ") and importing > 5, said

        # Same size, same second as the save before: Python's bytecode cache cannot tell them apart.
        text = run.src / "voxstack" / "text.py"
        stamp = text.stat().st_mtime

        def same_second() -> None:
            run.append("text.py", 'TEST_LAYER = "layer-3"\n')
            os.utime(text, (stamp, stamp))

        reload(same_second, "text.py", "/test/layer", "layer-3")
    finally:
        run.stop()


LAYER_ROUTE = """
from voxstack.text import TEST_LAYER as _test_layer


@router.get("/test/layer", include_in_schema=False)
async def _test_layer_route() -> dict[str, str]:
    return {"status": _test_layer}
"""
