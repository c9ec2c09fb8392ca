"""Scripted stand-ins for the model services, for tests of the core's and the supervisor's logic.

Each fake speaks its service's real proto and runs on the real service base
(``voxstack.server``: health, interceptor, error statuses, metrics), started
by the same ``module:factory`` path as the real services, for example
``python -m voxstack.server voxstack.testing.fakes.asr:create``, or by the
supervisor when a service's ``factory`` setting names it. Only the model is
replaced: what it hears, says and how long it takes come from a script
(``voxstack.testing.fakes.script``). Tests of what a model produces use the
real services.

This package imports none of the fakes: each service process imports its own
fake alone, so a dev reload of one (an edit to its module) restarts that one.
"""

from __future__ import annotations

from voxstack.testing.fakes.script import SCRIPT_ENV, Script
from voxstack.testing.fakes.sound import loud, quiet, utterance

#: The factory of each model service's fake, by service name.
FACTORIES = {name: f"voxstack.testing.fakes.{name}:create" for name in ("asr", "llm", "tts")}

__all__ = ["FACTORIES", "SCRIPT_ENV", "Script", "loud", "quiet", "utterance"]
