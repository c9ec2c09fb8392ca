"""Docker Compose dev mode: save to the new code served, inside the containers, against `docker compose watch`.

On a private copy of the repository (the tests' ComposeProject), calls run in a
loop through the core (GET /test/marker and /v1/voices, which reaches tts)
while a marker block (voxstack.testing.edits) is saved SAVES times in the
core's and in the tts's code. First with
docker-compose.dev.yml (`voxstack dev --only SERVICE` in each container), then,
in the same run, with docker-compose.watch.yml under `docker compose watch`
(sync+restart) as the reference.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path

from bench.common import Inputs, Report, median
from voxstack.testing.compose import CallLoop, ComposeProject, build_images, docker_problem

SAVES = 10


def served_marker(loop: CallLoop, marker: str) -> bool:
    return loop.marker == marker


def served_language(loop: CallLoop, language: str) -> bool:
    return loop.language == language


def edit_loop(project: ComposeProject, loop: CallLoop, tag: str) -> dict[str, list[float]]:
    """SAVES edits of core and tts each, alternating; seconds from each save to its marker being served."""
    times: dict[str, list[float]] = {"core": [], "tts": []}
    for i in range(1, SAVES + 1):
        marker = f"{tag}{i}"
        saved = project.mark("core", marker)
        done = project.wait_for(partial(served_marker, loop, marker), f"core {marker}", timeout=120)
        times["core"].append(done - saved)

        saved = project.mark("tts", marker)
        done = project.wait_for(partial(served_language, loop, f"en_US-{marker}"), f"tts {marker}", timeout=120)
        times["tts"].append(done - saved)
        time.sleep(0.5)
    return times


def run_dev(project: ComposeProject) -> tuple[dict[str, list[float]], CallLoop]:
    project.mark("core", "d0")
    project.up("dev")
    with CallLoop(project.url) as loop:
        project.wait_for(lambda: bool(loop.marker and loop.language), "first answers")
        times = edit_loop(project, loop, "d")
    project.down()
    return times, loop


def run_watch(project: ComposeProject) -> tuple[dict[str, list[float]], CallLoop]:
    # Back to the code the images hold, so both runs start from the same state.
    project.restore("core/routes/health.py")
    project.restore("tts/service.py")
    project.up("watch")
    watcher = subprocess.Popen(
        ["docker", "compose", "-p", project.name, *project.files("watch"), "watch", "--no-up"],
        cwd=project.root,
        env=project.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(3)  # let watch start its file watcher
        with CallLoop(project.url) as loop:
            project.wait_for(lambda: bool(loop.language), "first answers")
            times = edit_loop(project, loop, "w")
    finally:
        watcher.terminate()
        watcher.wait(30)
        project.down()
    return times, loop


def run(report: Report, inputs: Inputs) -> None:
    problem = docker_problem()
    if problem:
        report.add("compose", "skipped", 0, "", note=problem)
        return
    build_images()
    with tempfile.TemporaryDirectory(prefix="voxstack-bench-compose-") as tmp:
        project = ComposeProject(Path(tmp), f"voxstack-bench-{int(time.time())}")
        try:
            dev, dev_loop = run_dev(project)
            watch, watch_loop = run_watch(project)
        finally:
            project.down()
    for service in ("core", "tts"):
        d, w = median(dev[service]), median(watch[service])
        report.add("compose", f"{service}: save to served, voxstack dev in the container", d, "s", "<= watch / 2")
        report.add("compose", f"{service}: save to served, docker compose watch sync+restart", w, "s")
        report.add("compose", f"{service}: voxstack dev / compose watch", d / w, "x", "<= 0.5")
    for name, loop, target in (("voxstack dev", dev_loop, "0"), ("compose watch", watch_loop, "")):
        first = f"; first: {loop.failures[0][:120]}" if loop.failures else ""
        report.add(
            "compose", f"failed calls, {name}", len(loop.failures), "calls", target, note=f"of {loop.calls}{first}"
        )
