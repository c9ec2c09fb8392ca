# Shared by the scripts/dev-*.sh wrappers: which way the stack runs, and how to reach it.
#
# The way is picked by --compose / --embedded, else $VOXSTACK_RUNTIME
# (embedded or compose), else embedded (plain processes, no Docker).
set -euo pipefail

# The help text of the calling script (its header comment), printed by usage().
help_text() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNTIME="${VOXSTACK_RUNTIME:-embedded}"
ARGS=()
for arg in "$@"; do
    case "$arg" in
        --compose) RUNTIME=compose ;;
        --embedded) RUNTIME=embedded ;;
        -h|--help) usage; exit 0 ;;
        *) ARGS+=("$arg") ;;
    esac
done
case "$RUNTIME" in
    embedded|compose) ;;
    *) echo "VOXSTACK_RUNTIME must be embedded or compose (got '$RUNTIME')" >&2; exit 2 ;;
esac

# How to name this way in a hint: "" or " --compose".
FLAG=""
[ "$RUNTIME" = compose ] && FLAG=" --compose"
VOXSTACK="$ROOT/.venv/bin/voxstack"
COMPOSE_DEV=(docker compose -f "$ROOT/docker-compose.yml" -f "$ROOT/docker-compose.dev.yml")
CORE_URL="http://127.0.0.1:${VOXSTACK_PORT:-8080}"

need_venv() {
    [ -x "$VOXSTACK" ] || { echo "no $VOXSTACK: run 'make venv' (or 'make dev') first" >&2; exit 1; }
}

