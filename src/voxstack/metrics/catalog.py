"""Every metric voxstack exports, in one place: names, types, units, labels and meanings.

Each process builds the set for what it runs on a registry of its own (no
global state): a gRPC service gets ``ServiceMetrics`` (calls, engine queue) plus
its own (``AsrMetrics``, ...), the core ``CoreMetrics``, a supervisor
``SupervisorMetrics``; all add the standard process and Python collectors.
Names follow the Prometheus conventions (base units, ``_seconds``, ``_total``);
labels are bounded (no request ids, no text). ``docs/OBSERVABILITY.md`` is
generated from these classes (``voxstack config --metrics-docs``).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# Latency buckets: fine below a second, where a voice turn lives.
FAST = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
TOKEN = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
RATIO = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


def new_registry() -> CollectorRegistry:
    """A registry with the standard process, platform and garbage-collector metrics."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class ServiceMetrics:
    """What every gRPC service exports: its calls, and its engine's queue."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry()
        r = self.registry
        self.calls = Counter(
            "voxstack_grpc_server_handled",
            "gRPC calls completed, by method and status code.",
            ["method", "code"],
            registry=r,
        )
        self.call_seconds = Histogram(
            "voxstack_grpc_server_handling_seconds",
            "Seconds from a call's arrival to its last response, by method.",
            ["method"],
            buckets=FAST,
            registry=r,
        )
        self.queue_seconds = Histogram(
            "voxstack_engine_queue_wait_seconds",
            "Seconds a job waited for an engine slot.",
            ["engine"],
            buckets=FAST,
            registry=r,
        )
        self.running = Gauge("voxstack_engine_jobs_running", "Jobs the engine runs now.", ["engine"], registry=r)
        self.waiting = Gauge(
            "voxstack_engine_jobs_waiting", "Jobs waiting for an engine slot now.", ["engine"], registry=r
        )
        self.refused = Counter(
            "voxstack_engine_jobs_refused", "Jobs refused because the queue was full.", ["engine"], registry=r
        )


class AsrMetrics(ServiceMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.audio_seconds = Counter(
            "voxstack_asr_audio_seconds",
            "Seconds of audio received, by call kind (recognize, stream).",
            ["kind"],
            registry=r,
        )
        self.decode_seconds = Histogram(
            "voxstack_asr_decode_seconds",
            "Seconds one decode took, by kind (recognize, final, partial).",
            ["kind"],
            buckets=FAST,
            registry=r,
        )
        self.real_time_factor = Histogram(
            "voxstack_asr_real_time_factor",
            "Decode seconds per second of audio (below 1 is faster than real time), by kind (recognize, final).",
            ["kind"],
            buckets=RATIO,
            registry=r,
        )
        self.final_seconds = Histogram(
            "voxstack_asr_end_of_speech_to_final_seconds",
            "Seconds from the end of an utterance (the VAD's speech_ended) to its final transcript, in streams.",
            buckets=FAST,
            registry=r,
        )
        self.partials = Counter("voxstack_asr_partials", "Interim transcripts sent in streams.", registry=r)
        self.utterances = Counter("voxstack_asr_utterances", "Utterances finalised in streams.", registry=r)
        self.speculative = Counter(
            "voxstack_asr_speculative_results", "Speculative transcripts sent at a pause in streams.", registry=r
        )
        self.speech_resumed = Counter(
            "voxstack_asr_speech_resumed", "Pauses after a speculative transcript that speech went on from.", registry=r
        )
        self.joins = Counter(
            "voxstack_asr_joins",
            "Utterances decoded as one with the previous one (JoinPrevious: the caller's turn for it was unheard).",
            registry=r,
        )
        self.streams = Gauge("voxstack_asr_streams_open", "StreamingRecognize calls open now.", registry=r)
        self.utterance_ends = Counter(
            "voxstack_asr_utterance_ends",
            "Utterances ended in streams, by the rule that ended them: turn_model, silence, words, stream_end, "
            "max_length.",
            ["rule"],
            registry=r,
        )
        self.turn_probability = Histogram(
            "voxstack_asr_end_of_turn_probability",
            "The turn model's answers: probability that the speaker had finished, at each pause it was asked about.",
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=r,
        )


class LlmMetrics(ServiceMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.first_token_seconds = Histogram(
            "voxstack_llm_time_to_first_token_seconds",
            "Seconds from the start of generation (after the queue) to the first token.",
            buckets=FAST,
            registry=r,
        )
        self.inter_token_seconds = Histogram(
            "voxstack_llm_inter_token_latency_seconds",
            "Seconds between consecutive streamed pieces of a reply.",
            buckets=TOKEN,
            registry=r,
        )
        self.prompt_tokens = Counter("voxstack_llm_prompt_tokens", "Prompt tokens processed.", registry=r)
        self.generated_tokens = Counter("voxstack_llm_generated_tokens", "Tokens generated.", registry=r)
        self.draft_tokens = Counter(
            "voxstack_llm_draft_tokens",
            "Drafted tokens a reply checked (llm.draft_tokens), by outcome: kept (the model wrote them too, in "
            "the same step) or dropped.",
            ["outcome"],
            registry=r,
        )
        self.replies = Counter(
            "voxstack_llm_replies",
            "Replies finished, by reason (stop, length, cancelled, tool_calls).",
            ["reason"],
            registry=r,
        )
        self.end_of_turn_probability = Histogram(
            "voxstack_llm_end_of_turn_probability",
            "How likely the last user message's words were a whole turn, for each request that asked.",
            buckets=(0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=r,
        )


class TtsMetrics(ServiceMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.first_audio_seconds = Histogram(
            "voxstack_tts_time_to_first_audio_seconds",
            "Seconds from a call's arrival to its first audio.",
            buckets=FAST,
            registry=r,
        )
        self.audio_seconds = Counter("voxstack_tts_audio_seconds", "Seconds of audio produced.", registry=r)
        self.real_time_factor = Histogram(
            "voxstack_tts_real_time_factor",
            "Synthesis seconds per second of audio produced (below 1 is faster than real time).",
            buckets=RATIO,
            registry=r,
        )


#: The stages of a turn, as the WebSocket's ``reply_done`` timings name them.
TURN_STAGES = ("asr_decode", "llm_first_token", "first_sentence", "tts_first_chunk", "first_audio", "total")


class CoreMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry()
        r = self.registry
        self.requests = Counter(
            "voxstack_core_http_requests",
            "HTTP requests answered, by route (its template; `other` for unknown paths), method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.loop_lag = Histogram(
            "voxstack_core_event_loop_lag_seconds",
            "How late the core's event loop woke for a timer (sampled every 20 ms): work that blocks the loop "
            "delays every request and conversation by this much.",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.responses_cut = Counter(
            "voxstack_core_http_responses_cut",
            "HTTP responses whose body could not be completed after the status was sent (a backend failed "
            "mid-stream): the connection ends mid-body, so the client sees the cut. By route.",
            ["route"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "voxstack_core_http_request_duration_seconds",
            "Seconds to answer an HTTP request (to the start of a streamed body), by route and method.",
            ["route", "method"],
            buckets=FAST,
            registry=r,
        )
        self.turns = Counter(
            "voxstack_core_turns",
            "Turns answered, by how (websocket, converse, chat) and outcome (done, error, cancelled).",
            ["via", "outcome"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "voxstack_core_turn_stage_seconds",
            "Seconds from the start of a turn (a spoken one: the end of speech) to each stage: "
            + ", ".join(TURN_STAGES)
            + " (asr_decode and tts_first_chunk: that stage alone).",
            ["stage"],
            buckets=FAST,
            registry=r,
        )
        self.first_audio_seconds = Histogram(
            "voxstack_core_end_of_speech_to_first_audio_seconds",
            "Seconds from the end of the user's speech to the first reply audio sent, on the WebSocket.",
            buckets=FAST,
            registry=r,
        )
        self.barge_ins = Counter("voxstack_core_barge_ins", "Replies cut short by the user speaking.", registry=r)
        self.speculations = Counter(
            "voxstack_core_speculative_replies",
            "Replies started at a pause, before the end of the utterance, by outcome (used; wasted: the speaker "
            "went on; redone: the final transcript differed).",
            ["outcome"],
            registry=r,
        )
        self.websockets = Gauge("voxstack_core_websockets_open", "WebSocket conversations open now.", registry=r)
        self.sessions = Gauge("voxstack_core_sessions", "Sessions with history kept now.", registry=r)
        self.tasks = Gauge(
            "voxstack_core_tasks",
            "asyncio tasks in the core's event loop now: under steady load, growth is a leak.",
            registry=r,
        )
        self.slow_clients = Counter(
            "voxstack_core_slow_clients_dropped",
            "WebSocket conversations dropped because the client stopped reading replies for ws_send_timeout.",
            registry=r,
        )
        self.refused = Counter(
            "voxstack_core_conversations_refused",
            "WebSocket conversations refused at once because max_conversations were open.",
            registry=r,
        )
        self.retries = Counter(
            "voxstack_core_upstream_retries", "Calls to a service retried, by stage.", ["stage"], registry=r
        )
        self.upstream_calls = Counter(
            "voxstack_core_upstream_calls",
            "Calls a service answered, by stage and the replica that answered (HOSTNAME/HOST:PORT): the spread of a "
            "balanced target.",
            ["stage", "replica"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "voxstack_core_upstream_errors",
            "Calls to a service that failed, by stage and gRPC status code.",
            ["stage", "code"],
            registry=r,
        )

    def turn_done(self, via: str, timings: Mapping[str, float]) -> None:
        """A completed turn and its stage timings (stages that did not happen, at 0, are left out)."""
        self.turns.labels(via, "done").inc()
        for stage in TURN_STAGES:
            seconds = timings.get(stage, 0.0)
            if seconds > 0:
                self.stage_seconds.labels(stage).observe(seconds)


class SupervisorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry()
        r = self.registry
        self.reloads = Counter(
            "voxstack_supervisor_reloads",
            "Reloads after a code change, by service and outcome (served, failed).",
            ["service", "outcome"],
            registry=r,
        )
        self.reload_seconds = Histogram(
            "voxstack_supervisor_reload_seconds",
            "Seconds from a saved change to the new instance SERVING, by service.",
            ["service"],
            buckets=FAST,
            registry=r,
        )
        self.restarts = Counter(
            "voxstack_supervisor_restarts",
            "Restarts after a service exited or crashed, by service.",
            ["service"],
            registry=r,
        )


#: Every metrics set, by the process that exports it (for the reference in docs/OBSERVABILITY.md).
CATALOG: dict[str, type[ServiceMetrics] | type[CoreMetrics] | type[SupervisorMetrics]] = {
    "every gRPC service": ServiceMetrics,
    "asr": AsrMetrics,
    "llm": LlmMetrics,
    "tts": TtsMetrics,
    "core": CoreMetrics,
    "supervisor (`voxstack up`/`dev`)": SupervisorMetrics,
}
