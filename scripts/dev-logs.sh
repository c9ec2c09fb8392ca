#!/usr/bin/env bash
# Usage: scripts/dev-logs.sh [--compose|--embedded] [SERVICE] [-f]
#
# Show logs of one service or all: `voxstack logs`, or `docker compose logs`.
# -f keeps following.
usage() { help_text; }
source "$(dirname "$0")/_common.sh"
cd "$ROOT"
if [ "$RUNTIME" = compose ]; then
    exec "${COMPOSE_DEV[@]}" logs "${ARGS[@]}"
fi
need_venv
exec "$VOXSTACK" logs "${ARGS[@]}"
