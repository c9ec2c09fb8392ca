"""Metrics (issue 20): a real Prometheus scrapes a real stack on loopback while it answers real turns.

The stack is the run's shared real one, so every figure is checked as what these turns added to what the
processes had counted before them.

Prometheus is Debian's `prometheus` package (installed by `.ci/run`); without it
the test skips, except where VOXSTACK_REQUIRE_PROMETHEUS=1 says it must run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from stack import Stack

from voxstack.metrics.reference import render
from voxstack.testing.processes import eventually, free_port
from voxstack.testing.speech import pcm16, silence, spoken_turn, wav

pytestmark = pytest.mark.slow

SERVICES = ("asr", "llm", "tts")
TURNS = 3


def _prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        if os.environ.get("VOXSTACK_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("prometheus is not installed, and VOXSTACK_REQUIRE_PROMETHEUS=1")
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    return found


@pytest.fixture(scope="module")
def stack(real_stack: Stack) -> tuple[Stack, dict[str, int]]:
    return real_stack, real_stack.metrics_ports


@pytest.fixture(scope="module")
def prometheus(stack, tmp_path_factory) -> Iterator[str]:
    binary = _prometheus_binary()
    running, metrics_ports = stack
    folder = tmp_path_factory.mktemp("prometheus")
    targets = [{"targets": [f"127.0.0.1:{running.ports['core']}"], "labels": {"service": "core"}}]
    targets += [{"targets": [f"127.0.0.1:{port}"], "labels": {"service": name}} for name, port in metrics_ports.items()]
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{"job_name": "voxstack", "static_configs": targets}],
    }
    (folder / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(folder / "prometheus.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (folder / "prometheus.log").read_text()
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def query(prometheus: str, promql: str) -> list[dict]:
    reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert reply["status"] == "success", reply
    return reply["data"]["result"]


def value(prometheus: str, promql: str) -> float:
    result = query(prometheus, promql)
    assert len(result) == 1, (promql, result)
    return float(result[0]["value"][1])


def question(speech) -> bytes:  # type: ignore[no-untyped-def]
    audio = np.concatenate([silence(0.3), speech.say("What colour is the sky on a clear day?"), silence(1.2)])
    return pcm16(audio, to_rate=16000)


def test_prometheus_scrapes_every_service_and_the_figures_match_the_turns(stack, prometheus, speech) -> None:
    running, metrics_ports = stack

    def all_up() -> None:
        assert len(query(prometheus, 'up{job="voxstack"} == 1')) == 4

    eventually(all_up, "all four targets up")
    targets = [running.url] + [f"http://127.0.0.1:{port}" for port in metrics_ports.values()]
    before = Counts(targets)
    done = [spoken_turn(running.ports["core"], question(speech), interim=True) for _ in range(TURNS)]
    httpx.get(f"{running.url}/nothing-here")
    converse = httpx.post(
        f"{running.url}/v1/converse",
        content=wav(np.concatenate([silence(0.3), speech.say("Say hello."), silence(0.5)])),
        headers={"Content-Type": "audio/wav"},
        timeout=120,
    )
    assert converse.status_code == 200, converse.text

    def added(promql_selector: str) -> float:
        """What Prometheus has now for ``sum(selector)``, less what the processes had counted before."""
        return value(prometheus, f"sum({promql_selector})") - before.sum(promql_selector)

    def turns_counted() -> None:
        assert added('voxstack_core_turns_total{via="websocket",outcome="done"}') == TURNS
        assert added('voxstack_core_turns_total{via="converse",outcome="done"}') == 1
        assert added("voxstack_asr_utterances_total") >= TURNS
        assert added("voxstack_llm_replies_total") >= TURNS + 1
        # Requests are counted as their answer goes out, just after the turn: a scrape may fall between.
        assert added('voxstack_core_http_requests_total{route="other",status="404"}') >= 1
        assert added('voxstack_core_http_requests_total{route="/v1/converse",status="200"}') == 1

    eventually(turns_counted, "the turns in Prometheus")

    # The figures agree with what the turns themselves reported (the histogram's mean against the turns' own
    # timings: a quantile is only as fine as the buckets).
    reported = sum(d["timings"]["first_audio"] for d in done) / TURNS
    seconds = "voxstack_core_end_of_speech_to_first_audio_seconds"
    assert added(f"{seconds}_count") == TURNS
    mean = added(f"{seconds}_sum") / TURNS
    assert abs(mean - reported) <= 0.5 * reported + 0.3, (mean, reported)
    p95 = value(prometheus, f"histogram_quantile(0.95, sum by (le) (rate({seconds}_bucket[5m])))")
    assert 0 < p95 <= 30, p95
    generated = sum(d["completion_tokens"] for d in done)
    assert added("voxstack_llm_generated_tokens_total") >= generated
    assert added("voxstack_llm_time_to_first_token_seconds_count") >= TURNS + 1
    assert added("voxstack_tts_audio_seconds_total") > 1.0
    assert added('voxstack_asr_audio_seconds_total{kind="stream"}') > 3.0 * TURNS
    assert added("voxstack_asr_real_time_factor_count") >= TURNS
    for stage in ("llm_first_token", "first_audio", "total"):
        assert added(f'voxstack_core_turn_stage_seconds_count{{stage="{stage}"}}') >= TURNS
    # Calls by method and code, routes by template (unknown paths as one label), nothing unbounded.
    assert added('voxstack_grpc_server_handled_total{method="/voxstack.v1.Llm/Generate",code="OK"}') >= TURNS
    assert value(prometheus, "max(voxstack_core_websockets_open)") == 0
    for series in query(prometheus, '{__name__=~"voxstack_.*"}'):
        assert not any(len(v) > 64 for v in series["metric"].values()), series["metric"]
    # Every process exports the standard process metrics.
    assert len(query(prometheus, "process_resident_memory_bytes")) == 4


class Counts:
    """Every sample the targets export, read from each one's /metrics at one moment."""

    def __init__(self, urls: list[str]) -> None:
        self.samples = [
            sample
            for url in urls
            for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text)
            for sample in family.samples
        ]

    def sum(self, selector: str) -> float:
        """The sum over the targets of ``name{label="value",...}``, as PromQL's sum() would give it."""
        name, _, rest = selector.partition("{")
        labels = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        return sum(
            s.value for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )


def test_metrics_ports_are_optional_and_the_core_serves_its_own(stack) -> None:
    running, ports = stack
    text = httpx.get(f"{running.url}/metrics", timeout=10).text
    assert "voxstack_core_http_requests_total" in text and "process_cpu_seconds_total" in text
    asr = httpx.get(f"http://127.0.0.1:{ports['asr']}/metrics", timeout=10).text
    assert "voxstack_asr_audio_seconds_total" in asr and "voxstack_grpc_server_handled_total" in asr


def test_the_metrics_reference_is_current() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "OBSERVABILITY.md").read_text()
    assert render() in doc, "docs/OBSERVABILITY.md is stale: run `make docs`"


def test_the_dashboard_and_the_documented_queries_name_only_exported_metrics() -> None:
    import re

    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics import MetricWrapperBase

    from voxstack.metrics.catalog import CATALOG

    exported = set()
    for kind in CATALOG.values():
        for metric in vars(kind(CollectorRegistry())).values():
            if isinstance(metric, MetricWrapperBase):
                name = metric._name
                exported |= {name, f"{name}_total", f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    root = Path(__file__).parent.parent / "docs"
    dashboard = json.loads((root / "grafana" / "voxstack.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queries.append((root / "OBSERVABILITY.md").read_text().split("## Reference")[0])
    named = {n for q in queries for n in re.findall(r"\bvoxstack_[a-z_]+", q)}
    assert named and named <= exported, named - exported
