#!/usr/bin/env bash
# Usage: scripts/dev-test.sh [--compose|--embedded] [PYTEST ARGS...]
#
# Run the tests.
#   embedded: the whole suite as `make test` runs it (lint, pytest, coverage),
#             PYTEST ARGS passed on (e.g. -k core, -m "not slow").
#   --compose: only the Docker Compose tests (tests/test_compose.py), which
#             build the images, run production and dev stacks and switch.
usage() { help_text; }
source "$(dirname "$0")/_common.sh"
cd "$ROOT"
if [ "$RUNTIME" = compose ]; then
    make venv >/dev/null
    exec env VOXSTACK_REQUIRE_DOCKER=1 "$ROOT/.venv/bin/python" -m pytest tests/test_compose.py "${ARGS[@]}"
fi
exec make test PYTEST_ARGS="${ARGS[*]}"
