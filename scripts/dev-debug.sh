#!/usr/bin/env bash
# Usage: scripts/dev-debug.sh [--compose|--embedded] SERVICE [--wait]
#
# Run SERVICE (core, asr, llm or tts) under debugpy and print where to attach.
#   embedded: `voxstack dev --debug SERVICE` in the foreground, debugpy on
#             127.0.0.1:5678; --wait holds the service until a client attaches.
#   --compose: recreates that one dev container with debugpy on; attach to
#             127.0.0.1:5678 (core), 5679 (asr), 5680 (llm) or 5681 (tts).
# Reloads of the debugged service stop the old instance before starting the new
# one, so the debugger keeps its port.
usage() { help_text; }
source "$(dirname "$0")/_common.sh"
cd "$ROOT"
service="${ARGS[0]:-}"
wait_flag=false
[ "${ARGS[1]:-}" = --wait ] && wait_flag=true
case "$service" in
    core) port=5678 ;; asr) port=5679 ;; llm) port=5680 ;; tts) port=5681 ;;
    *) echo "name a service: core, asr, llm or tts (see --help)" >&2; exit 2 ;;
esac
upper="$(echo "$service" | tr a-z A-Z)"
if [ "$RUNTIME" = compose ]; then
    export "VOXSTACK_DEBUG_$upper=1"
    $wait_flag && export VOXSTACK_DEV_DEBUG_WAIT=1
    "${COMPOSE_DEV[@]}" up --detach --no-deps "$service"
    port_var="VOXSTACK_DEBUG_PORT_$upper"
    echo "debugpy for $service: attach to 127.0.0.1:${!port_var:-$port} (remote root /app/src)"
    exit 0
fi
need_venv
extra=()
$wait_flag && extra+=(--debug-wait)
exec "$VOXSTACK" dev --debug "$service" "${extra[@]}"
