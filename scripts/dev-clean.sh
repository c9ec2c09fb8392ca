#!/usr/bin/env bash
# Usage: scripts/dev-clean.sh [--compose|--embedded]
#
# Remove what development leaves behind.
#   embedded: stop a running stack, then remove its run state and logs and the
#             __pycache__ folders of the source tree.
#   --compose: remove the containers and networks, and the dev images
#             (voxstack-*-dev); production images are kept.
usage() { help_text; }
source "$(dirname "$0")/_common.sh"
cd "$ROOT"
if [ "$RUNTIME" = compose ]; then
    "${COMPOSE_DEV[@]}" down --remove-orphans
    images=$(docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^voxstack-(core|asr|llm|tts)-dev:' || true)
    [ -z "$images" ] || docker image rm $images
    exit 0
fi
need_venv
"$VOXSTACK" down || true
state="$("$ROOT/.venv/bin/python" -c 'from voxstack.config import load_settings; print(load_settings().state_dir)')"
rm -rf "$state/logs" "$state/run.json"
find "$ROOT/src" "$ROOT/tests" -name __pycache__ -type d -prune -exec rm -rf {} +
echo "removed run state in $state and __pycache__ folders"
