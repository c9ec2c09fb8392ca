"""The whole stack as real processes on free ports, for end-to-end tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voxstack.models import LLM_PRESETS
from voxstack.registry import ALL_SERVICES, MODEL_SERVICES
from voxstack.testing.fakes import FACTORIES, Script
from voxstack.testing.processes import ServiceProcess, free_ports

# The suite's services run the fastest llm preset: the code is the same for every preset, and
# tests/test_presets.py runs the default preset's model end to end.
TEST_PRESET = "tiny"
TEST_LLM = LLM_PRESETS[TEST_PRESET]


def paused_question() -> dict[str, Any]:
    """The fakes' script of a question with a pause for thought: the asr's turn model ends "What is the best
    way", the llm judges those words unfinished; the speaker goes on, and a JoinPrevious gets the whole."""
    return {
        "asr": {
            "utterances": [
                {"text": "What is the best way", "rule": "turn_model"},
                {"text": "to cook rice?", "joined_text": "What is the best way to cook rice?", "rule": "turn_model"},
            ]
        },
        "llm": {
            "replies": [
                {"match": "cook rice", "text": "Boil it in salted water.", "end_of_turn": 0.9},
                {"match": "best way$", "text": "The best way to do what?", "end_of_turn": 0.001},
            ]
        },
    }


TEST_ENV = {"VOXSTACK_LLM__PRESET": TEST_PRESET}


class Stack:
    """asr, llm, tts and core as service processes; each can be stopped and started again.

    With ``fakes=True`` the model services are the scripted fakes (``voxstack.testing.fakes``) and
    ``script`` says what they hear, answer and say; the core is always the real one.
    """

    def __init__(self, models_dir: Path, logs: Path, env: dict[str, str] | None = None, *, fakes: bool = False) -> None:
        self.logs = logs
        self.fakes = fakes
        self.script = Script(logs / "script.json")
        self.ports = dict(zip(ALL_SERVICES, free_ports(len(ALL_SERVICES)), strict=True))
        # Its own state directory: a dev core keeps sessions there, which must not outlive the run.
        self.env = {"VOXSTACK_MODELS_DIR": str(models_dir), "VOXSTACK_STATE_DIR": str(logs / "state"), **TEST_ENV}
        for name, port in self.ports.items():
            self.env[f"VOXSTACK_{name.upper()}__PORT"] = str(port)
        if fakes:
            self.env |= self.script.env
        self.env |= env or {}
        self.procs: dict[str, ServiceProcess] = {}
        #: Each model service's metrics port, where the creator set one.
        self.metrics_ports: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['core']}"

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def start(self, name: str) -> None:
        factory = FACTORIES[name] if self.fakes and name in MODEL_SERVICES else None
        log = self.logs / f"{name}.log"
        process = ServiceProcess(name, port=self.ports[name], env=self.env, log=log, factory=factory)
        self.procs[name] = process.start()

    def wait(self, name: str, timeout: float = 120) -> None:
        self.procs[name].wait_serving(timeout)

    def up(self) -> Stack:
        """Every service started and SERVING; a stack that does not come up is stopped, not left running."""
        try:
            for name in ALL_SERVICES:
                self.start(name)
            for name in ALL_SERVICES:
                self.wait(name)
        except BaseException:
            self.down()
            raise
        return self

    def stop(self, name: str) -> None:
        process = self.procs.pop(name, None)
        if process is not None:
            process.stop()

    def down(self) -> None:
        for name in list(self.procs):
            self.stop(name)
