#!/bin/sh
# Fetch, assemble and verify the models each named service loads into
# /opt/models/SERVICE/ (build stage only), from /wheelhouse when it holds wheels;
# the llm's are those of the preset in $LLM_PRESET (default: quality).
# Needs only voxstack's models package, so this layer is rebuilt only when
# the pinned models change.
set -eu
if ls /wheelhouse/*.whl >/dev/null 2>&1; then
    export PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheelhouse
fi
for service in "$@"; do
    PYTHONPATH=/build/src python3 -c '
import logging, os, sys
from pathlib import Path
from voxstack.models import DEFAULT_PRESET, pull, service_models
logging.basicConfig(level=logging.INFO, format="%(message)s")
for spec in service_models(sys.argv[1], os.environ.get("LLM_PRESET") or DEFAULT_PRESET):
    pull(spec, Path(sys.argv[2]))
' "$service" "/opt/models/$service"
done
