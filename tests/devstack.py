"""A copy of the source tree and a `voxstack dev`/`up` supervisor over it, for the dev-mode tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from stack import TEST_ENV

from voxstack import protogen
from voxstack.registry import ALL_SERVICES, MODEL_SERVICES
from voxstack.testing.edits import FAKE_MARKER_TAILS, MARKER_TAILS, set_marker, set_tail
from voxstack.testing.fakes import FACTORIES, Script
from voxstack.testing.processes import child_env, free_ports, voxstack_command


class DevRun:
    """`python -m voxstack dev|up ...` running on a private copy of src/voxstack.

    With ``fakes=True`` the supervisor serves the scripted fakes for asr, llm and tts (their ``factory``
    settings), and ``script`` says what they do: the supervisor and the core are the real ones. ``dev``
    keeps no warm spares unless ``spares=True`` (or the arguments say): a spare is a process importing a
    whole service, which only the tests of reloads through spares need.
    """

    def __init__(
        self,
        root: Path,
        models_dir: Path,
        command: str = "dev",
        args: tuple[str, ...] = (),
        *,
        fakes: bool = False,
        spares: bool = False,
    ) -> None:
        self.root = root
        self.src = root / "src"
        if not (self.src / "voxstack").exists():
            shutil.copytree(
                protogen.PROJECT_ROOT / "src" / "voxstack",
                self.src / "voxstack",
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        self.state = root / "state"
        self.out = root / f"{command}-{time.monotonic_ns()}.log"
        self.ports = dict(zip(ALL_SERVICES, free_ports(len(ALL_SERVICES)), strict=True))
        self.env = child_env(
            {
                "PYTHONPATH": str(self.src),
                "XDG_STATE_HOME": str(self.state),
                "VOXSTACK_MODELS_DIR": str(models_dir),
                "VOXSTACK_GRACE_PERIOD": "5",
                **TEST_ENV,
                **{f"VOXSTACK_{n.upper()}__PORT": str(p) for n, p in self.ports.items()},
            }
        )
        self.script = Script(root / "script.json")
        self.fakes = fakes
        if fakes:
            self.env |= self.script.env
            self.env |= {f"VOXSTACK_{n.upper()}__FACTORY": FACTORIES[n] for n in MODEL_SERVICES}
        if command == "dev" and not spares and not {"--spares", "--no-spares"} & set(args):
            args = (*args, "--no-spares")
        self.command = command
        self.argv = voxstack_command(command, *args)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DevRun:
        with self.out.open("wb") as out:
            # In its own folder: the settings file it reads (.env) is the test's.
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def record(self) -> dict:
        try:
            return json.loads((self.state / "voxstack" / "run.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_for(self, predicate, timeout: float = 120, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            assert self.proc is None or self.proc.poll() is None, f"supervisor exited:\n{self.output()[-3000:]}"
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.output()[-3000:]}")

    def serving(self, *names: str) -> bool:
        """All named services serve (and, for dev, the watcher runs)."""
        services = self.record().get("services", {})
        watching = self.command != "dev" or "] watching " in self.output()
        return watching and all(services.get(n, {}).get("state") == "serving" for n in names)

    def pid(self, name: str) -> int:
        return self.record()["services"][name]["pid"]

    def generation(self, name: str) -> int:
        return self.record()["services"][name]["generation"]

    def append(self, relative: str, code: str) -> None:
        """Make ``code`` the test's own block at the end of a module of the copy (see voxstack.testing.edits)."""
        set_tail(self.src / "voxstack" / relative, code)

    def mark(self, service: str, mark: str) -> None:
        """Make ``service``'s answers carry ``mark`` (a block appended to its module, or to its fake's)."""
        set_marker(self.src / "voxstack", service, mark, self.marker_tails)

    def marked_file(self, service: str) -> str:
        """The module ``mark`` appends to (relative to the package): a test's other block there is replaced."""
        return self.marker_tails[service][0]

    @property
    def marker_tails(self) -> dict[str, tuple[str, str]]:
        return FAKE_MARKER_TAILS if self.fakes else MARKER_TAILS

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Another `voxstack` command with this run's environment (state dir, ports)."""
        return subprocess.run(
            voxstack_command(*args), env=self.env, cwd=self.root, capture_output=True, text=True, timeout=60
        )

    def stop(self, signum: int = signal.SIGINT, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise
