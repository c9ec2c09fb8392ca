"""Traces (issue 20): the real stack exports over OTLP to a receiver the test runs on loopback.

The receiver is a real gRPC OTLP TraceService (the protocol's own generated
stubs); the services use the OpenTelemetry SDK's OTLP exporter, turned on by
the standard OTEL_* variables only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pytest
from stack import Stack

from voxstack.testing.otlp import Receiver, exporting_env
from voxstack.testing.processes import eventually
from voxstack.testing.speech import pcm16, silence, spoken_turn, wav

pytestmark = pytest.mark.slow

SERVICES = {"voxstack-core", "voxstack-asr", "voxstack-llm", "voxstack-tts"}


@pytest.fixture(scope="module")
def receiver(otlp_receiver) -> tuple[Receiver, int]:
    return otlp_receiver


@pytest.fixture(scope="module")
def stack(models_dir, receiver, tmp_path_factory) -> Iterator[Stack]:
    from stack import TEST_LLM

    from voxstack.models import pull

    pull(TEST_LLM.model, models_dir)
    env = exporting_env(receiver[1]) | {"VOXSTACK_LLM__MAX_TOKENS": "16", "VOXSTACK_LLM__TEMPERATURE": "0"}
    running = Stack(models_dir, tmp_path_factory.mktemp("tracing"), env).up()
    yield running
    running.down()


def check_tree(spans: list[tuple[str, object]]) -> object:
    """One root, every other span's parent in the trace; the root."""
    ids = {s.span_id for _, s in spans}  # type: ignore[attr-defined]
    roots = [s for _, s in spans if not s.parent_span_id]  # type: ignore[attr-defined]
    assert len(roots) == 1, [s.name for s in roots]  # type: ignore[attr-defined]
    orphans = [s.name for _, s in spans if s.parent_span_id and s.parent_span_id not in ids]  # type: ignore[attr-defined]
    assert not orphans, orphans
    return roots[0]


def whole_tree(spans_of: Callable[[], list[tuple[str, object]]]) -> Callable[[], list[tuple[str, object]]]:
    """``spans_of`` once they form a tree: each service exports in batches, so a span may come before its
    parent has."""

    def check() -> list[tuple[str, object]]:
        spans = spans_of()
        check_tree(spans)
        return spans

    return check


def test_a_websocket_turn_is_one_trace_across_the_four_services(stack: Stack, receiver, speech) -> None:
    collected, _ = receiver
    audio = pcm16(np.concatenate([silence(0.3), speech.say("What colour is the sky?"), silence(1.2)]), to_rate=16000)
    rid = "trace-turn-1"
    spoken_turn(stack.ports["core"], audio, headers={"X-Request-Id": rid})

    turn = eventually(lambda: _one(with_request_id(collected.named("core turn"), rid)), "the core's turn span")
    trace_id = turn[1].trace_id

    def whole() -> list[tuple[str, object]]:
        spans = collected.trace(trace_id)
        assert {service for service, _ in spans} == SERVICES, {service for service, _ in spans}
        names = {s.name for _, s in spans}  # type: ignore[attr-defined]
        for wanted in ("asr utterance", "asr decode", "core receive audio", "core wait for asr final", "core turn",
                       "llm queue", "llm generate", "tts synthesize", "core send audio"):  # fmt: skip
            assert wanted in names, (wanted, sorted(names))
        return spans

    spans = eventually(whole_tree(whole), "the turn's spans from every service")
    root = check_tree(spans)
    assert root.name == "asr utterance"  # type: ignore[attr-defined]
    attributes = {a.key: a.value.string_value for a in turn[1].attributes}
    assert attributes.get("voxstack.request_id") == rid
    # The llm's and tts's server spans hang under the core's client calls, inside the turn.
    by_id = {s.span_id: s for _, s in spans}  # type: ignore[attr-defined]
    generate = next(s for service, s in spans if service == "voxstack-llm" and s.name == "llm generate")  # type: ignore[attr-defined]
    chain = []
    node = generate
    while node.parent_span_id:  # type: ignore[attr-defined]
        node = by_id[node.parent_span_id]  # type: ignore[attr-defined]
        chain.append(node.name)  # type: ignore[attr-defined]
    assert "core turn" in chain and chain[-1] == "asr utterance", chain


def test_an_http_turn_is_one_trace_and_logs_carry_its_id(stack: Stack, receiver, speech) -> None:
    collected, _ = receiver
    rid = "trace-converse-1"
    response = httpx.post(
        f"{stack.url}/v1/converse",
        content=wav(np.concatenate([silence(0.3), speech.say("Say hello."), silence(0.5)])),
        headers={"Content-Type": "audio/wav", "X-Request-Id": rid},
        timeout=120,
    )
    assert response.status_code == 200, response.text

    def whole() -> list[tuple[str, object]]:
        roots = [
            (service, s)
            for service, s in with_request_id(collected.spans, rid)
            if service == "voxstack-core" and not s.parent_span_id and "/v1/converse" in s.name  # type: ignore[attr-defined]
        ]
        assert len(roots) == 1, roots
        spans = collected.trace(roots[0][1].trace_id)  # type: ignore[attr-defined]
        assert {service for service, _ in spans} == SERVICES
        return spans

    spans = eventually(whole_tree(whole), "the converse trace")
    root = check_tree(spans)
    trace_id = root.trace_id.hex()  # type: ignore[attr-defined]
    # Every service's log line for its call names the trace.
    for service in ("asr", "llm", "tts"):
        log = (stack.logs / f"{service}.log").read_text()
        assert f"trace={trace_id}" in log, service


def with_request_id(spans: list[tuple[str, object]], rid: str) -> list[tuple[str, object]]:
    """The spans that carry request id ``rid`` (the shared stack serves other tests' turns too)."""
    return [
        (service, s)
        for service, s in spans
        if any(a.key == "voxstack.request_id" and a.value.string_value == rid for a in s.attributes)  # type: ignore[attr-defined]
    ]


def _one(found: list) -> tuple[str, object]:  # type: ignore[type-arg]
    assert len(found) == 1, len(found)
    return found[0]
