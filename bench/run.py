"""``make bench``: run the benchmarks, print a table, write bench/results/latest.json."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS_DIR, Report

from voxstack.config import load_settings
from voxstack.models import DEFAULT_MODELS, pull

BENCHES = (
    "asr",
    "endpoint",
    "llm",
    "assistant",
    "tts",
    "core",
    "preemption",
    "console",
    "openai",
    "telemetry",
    "reload",
    "compose",
    "replicas",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=BENCHES, action="append", help="run only these (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "latest.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    models_dir = load_settings().models_dir
    for name in DEFAULT_MODELS:
        pull(DEFAULT_MODELS[name], models_dir)
    from piper import PiperVoice

    voice = PiperVoice.load(str(DEFAULT_MODELS["tts"].path(models_dir) / "en_US-joe-medium.onnx"))
    report = Report()
    selected = args.only or list(BENCHES)
    if "asr" in selected:
        import asr_bench

        asr_bench.run(report, voice, models_dir)
    if "endpoint" in selected:
        import endpoint_bench

        endpoint_bench.run(report, voice, models_dir)
    if "llm" in selected:
        import llm_bench

        llm_bench.run(report, models_dir)
    if "assistant" in selected:
        import assistant_bench

        assistant_bench.run(report, voice, models_dir)
    if "tts" in selected:
        import tts_bench

        tts_bench.run(report, voice, models_dir)
    if "core" in selected:
        import core_bench

        core_bench.run(report, voice, models_dir)
    if "preemption" in selected:
        import preemption_bench

        preemption_bench.run(report, voice, models_dir)
    if "console" in selected:
        import console_bench

        console_bench.run(report, voice, models_dir)
    if "replicas" in selected:
        import replicas_bench

        replicas_bench.run(report, voice, models_dir)
    if "openai" in selected:
        import openai_bench

        openai_bench.run(report, voice, models_dir)
    if "telemetry" in selected:
        import telemetry_bench

        telemetry_bench.run(report, voice, models_dir)
    if "reload" in selected:
        import reload_bench

        reload_bench.run(report, models_dir)
    if "compose" in selected:
        import compose_bench

        compose_bench.run(report)
    report.print()
    report.save(args.out)
    print(f"results written to {args.out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
