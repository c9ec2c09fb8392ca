#!/usr/bin/env bash
# Usage: scripts/dev-restart.sh [--compose|--embedded] [SERVICE...]
#
# Restart development services from scratch (a save reloads on its own; this is
# for when state is stuck).
#   embedded: `voxstack dev --replace`: stops the running stack, starts a new one
#             in the foreground.
#   --compose: `docker compose restart [SERVICE...]` of the dev containers.
usage() { help_text; }
source "$(dirname "$0")/_common.sh"
cd "$ROOT"
if [ "$RUNTIME" = compose ]; then
    exec "${COMPOSE_DEV[@]}" restart "${ARGS[@]}"
fi
need_venv
if [ ${#ARGS[@]} -gt 0 ]; then
    exec "$VOXSTACK" dev --replace --only "$(IFS=,; echo "${ARGS[*]}")"
fi
exec "$VOXSTACK" dev --replace
