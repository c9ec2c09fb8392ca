"""``python -m voxstack.server SERVICE [--host H] [--port P]``: the lean entry of one service.

A supervisor starts services this way rather than through ``voxstack serve``,
so a service process imports its own code and nothing of the command line
(and a saved command-line file reloads no service in ``voxstack dev``).
Settings come from the environment, as the supervisor set it.
"""

from __future__ import annotations

import argparse
import sys

from voxstack.config import SettingsError, load_settings
from voxstack.server.run import FactoryError, serve


def main(argv: list[str] | None = None, prepared: object = None) -> int:
    """``prepared``: the engine a warm spare loaded (supervisor/spare.py)."""
    parser = argparse.ArgumentParser(prog="python -m voxstack.server", description=__doc__.splitlines()[0])
    parser.add_argument("service", help="asr, llm, tts, core, or an import string module:factory")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    try:
        return serve(args.service, settings, host=args.host, port=args.port, prepared=prepared)
    except FactoryError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
