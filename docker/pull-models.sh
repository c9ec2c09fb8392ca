#!/bin/sh
# Fetch, assemble and verify each service's default model into
# /opt/models/SERVICE/ (build stage only), from /wheelhouse when it holds wheels.
# Needs only voxstack's models module, so this layer is rebuilt only when
# the pinned models change.
set -eu
if ls /wheelhouse/*.whl >/dev/null 2>&1; then
    export PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheelhouse
fi
for service in "$@"; do
    PYTHONPATH=/build/src python3 -c '
import logging, sys
from pathlib import Path
from voxstack.models import DEFAULT_MODELS, pull
logging.basicConfig(level=logging.INFO, format="%(message)s")
pull(DEFAULT_MODELS[sys.argv[1]], Path(sys.argv[2]))
' "$service" "/opt/models/$service"
done
