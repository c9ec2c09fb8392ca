"""A Docker Compose project of voxstack over a private copy of the repository, for the Compose tests.

Images are built once per test session from the repository itself (tag
``test``, so a user's own images are left alone); each project then runs from a
copy of the sources, so a test can edit files that the dev containers mount.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from voxstack import protogen
from voxstack.registry import ALL_SERVICES
from voxstack.testing.edits import set_marker, set_tail
from voxstack.testing.processes import free_port, free_ports

REPO = protogen.PROJECT_ROOT
TAG = "test"
# What the project copy needs: the compose files and what they mount.
COPIED = (
    "docker-compose.yml",
    "docker-compose.dev.yml",
    "docker-compose.watch.yml",
    "pyproject.toml",
    "src/voxstack",
    "scripts",
)
SERVICES = ALL_SERVICES
MARKER_PATH = "/test/marker"  # served by the core's marker block (voxstack.testing.edits)


def docker_problem() -> str | None:
    """Why Docker with Compose cannot be used here, or None when it can."""
    if shutil.which("docker") is None:
        return "no docker command"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        return f"no Docker engine: {info.stderr.strip()[-200:]}"
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode != 0:
        return "no docker compose plugin"
    return None


#: Seconds between container health checks in tests: `up --wait` waits at least one interval for the first
#: check (30 s in production), and each check is a short Python process, so not every second either.
HEALTHCHECK_INTERVAL = "3s"


#: The llm preset of the images tests build: what they check is the same for every model, and the smallest builds
#: and starts quickest.
LLM_PRESET = "tiny"


def compose_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXSTACK_") or k == "VOXSTACK_BASE_IMAGE"}
    fixed = {
        "VOXSTACK_TAG": TAG,
        "VOXSTACK_HEALTHCHECK_INTERVAL": HEALTHCHECK_INTERVAL,
        "VOXSTACK_LLM_PRESET": LLM_PRESET,
    }
    return env | fixed | extra


def build_images() -> None:
    """Build the production and dev images from the repository (cached layers make repeats quick)."""
    for overlay in (None, "dev"):
        result = subprocess.run(
            ["docker", "compose", *ComposeProject.files(overlay), "build"],
            cwd=REPO,
            env=compose_env(),
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        output = result.stdout + result.stderr
        # The compose plugin can exit 0 when one image's build failed (the old image then runs the tests).
        assert result.returncode == 0 and "failed to solve" not in output, output[-6000:]


class ComposeProject:
    """One compose project (its own name and ports) over a copy of the repository."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        for item in COPIED:
            source, target = REPO / item, root / item
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        # The scripts look for the virtualenv next to them.
        (root / ".venv").symlink_to(REPO / ".venv")
        self.port = free_port()
        self.debug_ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
        self.wyoming_ports = {"asr": free_port(), "tts": free_port()}
        self.env = compose_env(
            VOXSTACK_PORT=str(self.port),
            VOXSTACK_WYOMING_ASR_PORT=str(self.wyoming_ports["asr"]),
            VOXSTACK_WYOMING_TTS_PORT=str(self.wyoming_ports["tts"]),
            **{f"VOXSTACK_DEBUG_PORT_{s.upper()}": str(p) for s, p in self.debug_ports.items()},
        )
        self.url = f"http://127.0.0.1:{self.port}"

    @staticmethod
    def files(overlay: str | None) -> list[str]:
        """The production file, plus docker-compose.OVERLAY.yml (dev or watch)."""
        return ["-f", "docker-compose.yml", *(["-f", f"docker-compose.{overlay}.yml"] if overlay else [])]

    def compose(self, *args: str, overlay: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "compose", "-p", self.name, *self.files(overlay), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def up(self, overlay: str | None = None, profile: str | None = None, scale: dict[str, int] | None = None) -> None:
        chosen = ["--profile", profile] if profile else []
        scaled = [arg for service, n in (scale or {}).items() for arg in ("--scale", f"{service}={n}")]
        result = self.compose(
            *chosen, "up", *scaled, "--detach", "--no-build", "--remove-orphans", "--wait", overlay=overlay, timeout=600
        )
        assert result.returncode == 0, f"{result.stderr[-3000:]}\n{self.logs()[-5000:]}"

    def down(self) -> None:
        # With the profiles, so their containers go too.
        self.compose("--profile", "wyoming", "down", "--remove-orphans", "--timeout", "20", overlay="dev", timeout=300)

    def config(self) -> str:
        result = self.compose("config")
        assert result.returncode == 0, result.stderr
        return result.stdout

    def get(self, path: str, patience: float = 10.0) -> httpx.Response:
        """GET ``path`` from the published core, as a client would right after ``up``: a refused connection is
        tried again for ``patience`` seconds, then fails with what the core's container said and how it is."""
        deadline = time.monotonic() + patience
        while True:
            try:
                return httpx.get(f"{self.url}{path}", timeout=30)
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    states = self._docker("ps", "-a", "--filter", f"label=com.docker.compose.project={self.name}")
                    raise AssertionError(
                        f"the core refused {path} for {patience:g} s after up\n{states}\n{self.logs('core')[-4000:]}"
                    ) from None
                time.sleep(0.2)

    def logs(self, service: str = "", prefix: bool = False) -> str:
        args = ["logs", "--no-color", *([] if prefix else ["--no-log-prefix"]), *([service] if service else [])]
        result = self.compose(*args, overlay="dev")
        return result.stdout + result.stderr

    def _docker(self, *args: str) -> str:
        return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout

    def _labelled(self, *ls: str) -> list[str]:
        """IDs from a ``docker ... ls``-style command, filtered to this project."""
        return self._docker(*ls, "-q", "--filter", f"label=com.docker.compose.project={self.name}").split()

    def containers(self) -> list[dict[str, Any]]:
        """`docker inspect` of every container of this project, running or not."""
        ids = self._labelled("ps", "-a")
        return json.loads(self._docker("inspect", *ids)) if ids else []

    def replicas(self, service: str) -> list[dict[str, Any]]:
        """`docker inspect` of each container of ``service``."""
        return [c for c in self.containers() if c["Config"]["Labels"]["com.docker.compose.service"] == service]

    def container(self, service: str) -> dict[str, Any]:
        found = self.replicas(service)
        assert len(found) == 1, f"{len(found)} containers for {service}"
        return found[0]

    def script(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one of scripts/*.sh of the copy against this project."""
        return subprocess.run(
            [str(self.root / "scripts" / name), *args],
            cwd=self.root,
            env=self.env | {"COMPOSE_PROJECT_NAME": self.name},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def exec(self, service: str, *argv: str) -> subprocess.CompletedProcess[str]:
        # `docker exec`, not `compose exec`: Compose 2.40 reports 0 for a failed command on a 20.10 engine.
        container = self.container(service)["Id"]
        return subprocess.run(["docker", "exec", container, *argv], capture_output=True, text=True, timeout=60)

    def resources(self, kind: str) -> list[str]:
        """Names of this project's networks or volumes."""
        ids = self._labelled(kind, "ls")
        return sorted(self._docker(kind, "inspect", "--format", "{{.Name}}", *ids).split()) if ids else []

    def mark(self, service: str, mark: str) -> float:
        """Make the service's answers carry ``mark`` (a test-owned block in the copy); the wall time of the save."""
        set_marker(self.root / "src" / "voxstack", service, mark)
        return time.time()

    def append(self, relative: str, code: str) -> float:
        """Make ``code`` the test-owned block at the end of a module of the copy; the wall time of the save."""
        set_tail(self.root / "src" / "voxstack" / relative, code)
        return time.time()

    def restore(self, relative: str) -> None:
        """Put back the repository's version of a file under src/voxstack."""
        shutil.copy2(REPO / "src" / "voxstack" / relative, self.root / "src" / "voxstack" / relative)

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 60) -> float:
        """Poll until check() is true; return the wall time it first was."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    return time.time()
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.logs()[-4000:]}")
            time.sleep(0.05)


class CallLoop:
    """GET the core's marker (voxstack.testing.edits) and /v1/voices, back to back, on a thread.

    ``marker`` is what the core's marker block says ("" while the code has
    none: a 404 there is not a failure); ``language`` the first voice's.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.calls = 0
        self.failures: list[str] = []
        self.marker = ""
        self.language = ""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                for path in (MARKER_PATH, "/v1/voices"):
                    try:
                        response = client.get(path)
                        if path == MARKER_PATH and response.status_code == 404:
                            self.marker = ""
                            continue
                        response.raise_for_status()
                        body = response.json()
                    except (httpx.HTTPError, ValueError) as exc:
                        self.failures.append(f"{path}: {exc!r}")
                        continue
                    finally:
                        self.calls += 1
                    if path == MARKER_PATH:
                        self.marker = body["status"]
                    else:
                        self.language = body["voices"][0]["language"]
                time.sleep(0.01)

    def __enter__(self) -> CallLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
