"""``make load``: the production stack under rising load, on loopback, bounded in time; the knee.

Starts asr, llm, tts and core (prod mode, free ports, default models), then:

1. **ramp**: N spoken WebSocket conversations at once (bench/load/client.py),
   N = 1, 2, 3, ... for ``--step-seconds`` each, until ``--max-conversations``
   or two steps past the knee: the most conversations at once whose p95 end of
   speech -> first audio stays within twice that of one conversation alone, measured
   in the same run, with no errors. Per step: turns/s, p50/p95/p99 of end of speech
   -> first reply audio and of each server stage, failures by kind, CPU and RSS
   of each service.
2. **sweeps**: each HTTP route at ``--concurrency`` for ``--calls`` calls.
3. **overload**: a burst of conversations and of /v1/chat and /v1/converse
   calls well past capacity, all at once: how fast each refusal comes.

Prints a table, writes JSON and a plot to bench/results/ (``--name``).
``--soak MINUTES`` instead runs ``--conversations`` for that long and checks
that no process grows after its warm-up (bench/load/soak.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import time
from contextlib import ExitStack

import httpx
import numpy as np

from bench.common import RESULTS_DIR, speech16k
from bench.core_bench import QUESTIONS
from bench.load.client import CallResult, LoadConversation, TurnResult, conversations, sweep
from bench.load.probe import Probe
from bench.load.report import Summary, step_summary, sweep_summary, write
from bench.load.stack import start_stack
from voxstack.audio import float_to_pcm16, wav_bytes
from voxstack.config import load_settings
from voxstack.core.openai.models import served as served_models
from voxstack.models import VOICE, pull, service_models
from voxstack.registry import MODEL_SERVICES
from voxstack.testing.loadstats import Step, knee, knee_limit

logger = logging.getLogger("load")


async def ramp(url: str, questions: list[np.ndarray], probe: Probe, args: argparse.Namespace) -> list[Summary]:
    steps: list[Summary] = []
    past = 0
    for n in range(1, args.max_conversations + 1):
        started = time.perf_counter()
        results = await conversations(url, questions, n, args.step_seconds)
        summary = step_summary(n, results, probe.between(started, time.perf_counter()), time.perf_counter() - started)
        logger.warning("step %d: %s", n, summary.line())
        steps.append(summary)
        measured = [Step(s.conversations, s.p95, s.answered, s.errors) for s in steps]
        good = knee(measured, knee_limit(measured))
        past = past + 1 if good < n else 0
        if past >= 2:
            break
        await asyncio.sleep(3)  # let queues empty between steps
    return steps


async def sweeps(base: str, questions: list[np.ndarray], args: argparse.Namespace) -> dict[str, list[CallResult]]:
    wav = wav_bytes(float_to_pcm16(np.concatenate([questions[0], np.zeros(4800, np.float32)])), 16000)
    text = "The quick brown fox jumps over the lazy dog, and then it runs back home."
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        chat_model = next(m for m, kind in served_models(load_settings()).items() if kind == "llm")

        async def status(method: str, path: str, **kwargs: object) -> int:
            return (await client.request(method, path, **kwargs)).status_code  # type: ignore[arg-type]

        calls = {
            "/v1/transcribe": lambda: status(
                "POST", "/v1/transcribe", content=wav, headers={"Content-Type": "audio/wav"}
            ),
            "/v1/speak": lambda: status("POST", "/v1/speak", json={"text": text}),
            "/v1/chat": lambda: status("POST", "/v1/chat", json={"message": "What is the capital of France?"}),
            "/v1/audio/transcriptions": lambda: status(
                "POST",
                "/v1/audio/transcriptions",
                files={"file": ("q.wav", wav, "audio/wav")},
                data={"model": "whisper-1"},
            ),
            "/v1/audio/speech": lambda: status(
                "POST", "/v1/audio/speech", json={"model": "tts-1", "input": text, "voice": "alloy"}
            ),
            "/v1/chat/completions": lambda: status(
                "POST",
                "/v1/chat/completions",
                json={"model": chat_model, "messages": [{"role": "user", "content": "What is two plus two?"}]},
            ),
        }
        results = {}
        for route, call in calls.items():
            results[route] = await sweep(call, args.concurrency, args.calls)
            logger.warning("sweep %s: %s", route, sweep_summary(route, results[route]).line())
        return results


async def overload(
    url: str, base: str, questions: list[np.ndarray], burst: int
) -> dict[str, list[TurnResult | CallResult]]:
    """``burst`` conversations, chats and converse calls at once: the refusals, how fast they came, and
    whether one conversation is served normally once the burst is over."""
    wav = wav_bytes(float_to_pcm16(np.concatenate([questions[1], np.zeros(16000, np.float32)])), 16000)
    turns: list[TurnResult] = []
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=httpx.Limits(max_connections=4 * burst)) as client:

        async def post(path: str, **kwargs: object) -> int:
            return (await client.post(path, **kwargs)).status_code  # type: ignore[arg-type]

        chats, converses, _ = await asyncio.gather(
            sweep(lambda: post("/v1/chat", json={"message": "Tell me a long story about a dragon."}), burst, burst),
            sweep(lambda: post("/v1/converse", content=wav, headers={"Content-Type": "audio/wav"}), burst, burst),
            asyncio.gather(
                *(LoadConversation(url, questions, turns, offset=i).run(time.perf_counter() + 20) for i in range(burst))
            ),
        )
    # Load drops: the stack recovers by itself (one conversation, as in the ramp's first step).
    await asyncio.sleep(5)
    after = await conversations(url, questions, 1, 30)
    return {
        "WebSocket conversation": list(turns),
        "/v1/chat": list(chats),
        "/v1/converse": list(converses),
        "one conversation, 5 s after the burst": list(after),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step-seconds", type=float, default=60.0)
    parser.add_argument("--max-conversations", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4, help="callers at once in the HTTP sweeps")
    parser.add_argument("--calls", type=int, default=16, help="calls per route in the HTTP sweeps")
    parser.add_argument("--burst", type=int, default=16, help="callers at once in the overload phase")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="a setting of every service")
    parser.add_argument("--name", default=time.strftime("load-%Y-%m-%d"), help="file name of the results")
    parser.add_argument("--soak", type=float, default=0.0, metavar="MINUTES", help="soak instead of the ramp")
    parser.add_argument("--conversations", type=int, default=2, help="conversations at once in the soak")
    parser.add_argument("--skip", action="append", default=[], choices=("ramp", "sweeps", "overload"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    models_dir = load_settings().models_dir
    for service in MODEL_SERVICES:
        for spec in service_models(service):
            pull(spec, models_dir)
    from piper import PiperVoice

    voice = PiperVoice.load(str(VOICE.path(models_dir) / "en_US-joe-medium.onnx"))
    questions = [speech16k(voice, q) for q in QUESTIONS]
    env = {"VOXSTACK_MODELS_DIR": str(models_dir)}  # the default settings: what the knee is stated for
    for item in args.env:
        key, equals, value = item.partition("=")
        if not equals or not key.startswith("VOXSTACK_"):
            parser.error(f"--env {item!r}: expected VOXSTACK_...=VALUE")
        env[key] = value
    logs = RESULTS_DIR / f"{args.name}-logs"
    shutil.rmtree(logs, ignore_errors=True)  # this run's logs only
    logs.mkdir(parents=True)
    with ExitStack() as stack:
        port, pids = start_stack(stack, env, logs)
        url, base = f"ws://127.0.0.1:{port}/v1/stream", f"http://127.0.0.1:{port}"
        if args.soak:
            from bench.load.soak import soak

            return soak(url, base, questions, pids, args)
        return asyncio.run(measure(url, base, questions, pids, args))


async def measure(
    url: str, base: str, questions: list[np.ndarray], pids: dict[str, int], args: argparse.Namespace
) -> int:
    probe = Probe(pids)
    sampling = asyncio.create_task(probe.run())
    await conversations(url, questions, 1, 10)  # warm-up: first decodes, caches
    steps = [] if "ramp" in args.skip else await ramp(url, questions, probe, args)
    swept = {} if "sweeps" in args.skip else await sweeps(base, questions, args)
    burst = {} if "overload" in args.skip else await overload(url, base, questions, args.burst)
    sampling.cancel()
    write(args.name, steps, swept, burst, vars(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
