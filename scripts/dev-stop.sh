#!/usr/bin/env bash
# Usage: scripts/dev-stop.sh [--compose|--embedded]
#
# Stop the development stack: `voxstack down`, or remove the Compose containers
# and networks (make compose-down). Production containers of the same project
# are stopped too: there is one project.
usage() { help_text; }
source "$(dirname "$0")/_common.sh"
cd "$ROOT"
if [ "$RUNTIME" = compose ]; then
    exec make compose-down
fi
need_venv
exec "$VOXSTACK" down
