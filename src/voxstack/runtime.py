"""What a service process tells its supervisor on their channel: the modules it has loaded."""

from __future__ import annotations

import json
import os
import sys

from voxstack.registry import SUPERVISOR_FD_ENV

# Modules listed by the report: ours, and the development tools prod must never load.
REPORTED = ("voxstack", "debugpy", "watchfiles")


def report_loaded_modules() -> None:
    """Under a supervisor, tell it this process's voxstack (and dev tool) modules, and the rest.

    The dev reloader reads the first to know which services a changed file really affects; a warm spare
    of this service imports the rest ahead of the next reload.
    """
    fd = os.environ.get(SUPERVISOR_FD_ENV, "")
    if not fd.isdigit():
        return
    loaded = sorted(sys.modules)
    message = {
        "event": "loaded",
        "modules": [n for n in loaded if n.split(".")[0] in REPORTED],
        "imports": [n for n in loaded if n.split(".")[0] not in REPORTED],
    }
    data = (json.dumps(message) + "\n").encode()
    try:
        while data:  # a pipe may take a long line in parts
            data = data[os.write(int(fd), data) :]
    except OSError:  # the supervisor is gone, or this is not its pipe: nobody to tell
        return
