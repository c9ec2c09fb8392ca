#!/usr/bin/env bash
# Usage: scripts/dev-status.sh [--compose|--embedded]
#
# Show each service's state: `voxstack status` (state, pid, generation, last
# reload, last error), or the Compose containers with their health; then the
# core's /healthz either way.
usage() { help_text; }
source "$(dirname "$0")/_common.sh"
cd "$ROOT"
if [ "$RUNTIME" = compose ]; then
    "${COMPOSE_DEV[@]}" ps
    echo
    curl -sS --max-time 5 "$CORE_URL/healthz" || true
    echo
    exit 0
fi
need_venv
exec "$VOXSTACK" status
