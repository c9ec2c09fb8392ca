#!/usr/bin/env bash
# Usage: scripts/dev-start.sh [--compose|--embedded] [ARGS...]
#
# Start the stack in development mode (hot reload, DEBUG logs, error details).
#   embedded (default): `voxstack dev ARGS` in the foreground; Ctrl-C stops it.
#   --compose:          the dev containers, in the background (make compose-dev).
# VOXSTACK_RUNTIME=compose picks Compose without the flag.
usage() { help_text; }
source "$(dirname "$0")/_common.sh"
cd "$ROOT"
if [ "$RUNTIME" = compose ]; then
    exec make compose-dev
fi
need_venv
"$VOXSTACK" models pull all
exec "$VOXSTACK" dev "${ARGS[@]}"
