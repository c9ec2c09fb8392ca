"""``make bench`` (``python -m bench.run``): run the benchmarks, print a table, write bench/results/latest.json."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from types import MappingProxyType

from bench.common import RESULTS_DIR, Inputs, Report
from voxstack.config import load_settings
from voxstack.models import pull, service_models
from voxstack.registry import MODEL_SERVICES

#: Every bench by name, in the order a whole run takes them: the module whose ``run(report, inputs)`` it is.
BENCHES = MappingProxyType(
    {
        name: f"bench.{name}_bench"
        for name in (
            "asr",
            "endpoint",
            "hearing",
            "llm",
            "assistant",
            "tools",
            "tts",
            "core",
            "preemption",
            "turn",
            "console",
            "replicas",
            "openai",
            "realtime",
            "peers",
            "telemetry",
            "reload",
            "replay",
            "compose",
        )
    }
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=list(BENCHES), action="append", help="run only these (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bench").setLevel(logging.INFO)  # what each bench says of its progress
    models_dir = load_settings().models_dir
    for service in MODEL_SERVICES:
        for spec in service_models(service):
            pull(spec, models_dir)
    report = Report()
    inputs = Inputs(models_dir)
    for name in args.only or list(BENCHES):
        importlib.import_module(BENCHES[name]).run(report, inputs)
    report.print()
    report.save(args.out)
    print(f"results written to {args.out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
