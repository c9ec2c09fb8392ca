"""Scripted stand-ins for the model services, for tests of the core's and the supervisor's logic.

Each fake speaks its service's real proto and runs on the real service base
(``voxstack.server``: health, interceptor, error statuses, metrics), started
by the same ``module:factory`` path as the real services, for example
``python -m voxstack.server voxstack.testing.fakes:asr``. Only the model is
replaced: what it hears, says and how long it takes come from a script
(``voxstack.testing.fakes.script``). Tests of what a model produces use the
real services.
"""

from __future__ import annotations

from voxstack.config import Settings
from voxstack.testing.fakes.asr import FakeAsrService
from voxstack.testing.fakes.llm import FakeLlmService
from voxstack.testing.fakes.script import SCRIPT_ENV, Script
from voxstack.testing.fakes.sound import loud, quiet, utterance
from voxstack.testing.fakes.tts import FakeTtsService

#: The factory of each model service's fake, by service name.
FACTORIES = {
    "asr": "voxstack.testing.fakes:asr",
    "llm": "voxstack.testing.fakes:llm",
    "tts": "voxstack.testing.fakes:tts",
}


def asr(settings: Settings) -> FakeAsrService:
    return FakeAsrService(settings)


def llm(settings: Settings) -> FakeLlmService:
    return FakeLlmService(settings)


def tts(settings: Settings) -> FakeTtsService:
    return FakeTtsService(settings)


__all__ = ["FACTORIES", "SCRIPT_ENV", "Script", "asr", "llm", "loud", "quiet", "tts", "utterance"]
