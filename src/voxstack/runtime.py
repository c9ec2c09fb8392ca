"""How a supervisor and the service processes it starts talk, through the environment and files."""

from __future__ import annotations

import json
import os
import sys

# A unix socket path on which this instance alone answers (health, /livez).
CONTROL_SOCKET_ENV = "VOXSTACK_CONTROL_SOCKET"
# For the core: an inherited listening socket to serve on.
LISTEN_FD_ENV = "VOXSTACK_LISTEN_FD"


# Modules listed by the report: ours, and the development tools prod must never load.
REPORTED = ("voxstack", "debugpy", "watchfiles")


def report_loaded_modules() -> None:
    """Under a supervisor, list this process's voxstack (and dev tool) modules next to its control socket.

    The dev reloader reads it to know which services a changed file really affects.
    """
    control = os.environ.get(CONTROL_SOCKET_ENV)
    if not control:
        return
    names = sorted(n for n in list(sys.modules) if n.split(".")[0] in REPORTED)
    tmp = f"{control}.modules.tmp"
    with open(tmp, "w") as f:
        json.dump(names, f)
    os.replace(tmp, f"{control}.modules")
