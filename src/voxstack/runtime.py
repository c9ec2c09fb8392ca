"""What a service process tells its supervisor through files: the modules it has loaded."""

from __future__ import annotations

import json
import os
import sys

from voxstack.registry import CONTROL_SOCKET_ENV

# Modules listed by the report: ours, and the development tools prod must never load.
REPORTED = ("voxstack", "debugpy", "watchfiles")


def report_loaded_modules() -> None:
    """Under a supervisor, list this process's voxstack (and dev tool) modules next to its control socket.

    The dev reloader reads it to know which services a changed file really affects.
    """
    control = os.environ.get(CONTROL_SOCKET_ENV)
    if not control:
        return
    loaded = sorted(sys.modules)
    _write_json(f"{control}.modules", [n for n in loaded if n.split(".")[0] in REPORTED])
    # Everything else: what a warm spare of this service imports ahead of the next reload.
    _write_json(f"{control}.imports", [n for n in loaded if n.split(".")[0] not in REPORTED])


def _write_json(path: str, value: object) -> None:
    # Replaced atomically: the supervisor may read it at any moment.
    with open(f"{path}.tmp", "w") as f:
        json.dump(value, f)
    os.replace(f"{path}.tmp", path)
