"""The services voxstack ships, and the contract between a supervisor and the processes it starts.

One home for these facts: names, kinds, default ports, gRPC names, factories
(imported only when served) and the environment variables a supervisor sets.
Everything that lists services, starts them or checks them reads them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    kind: Literal["grpc", "http"]
    default_port: int
    #: grpc: "module:callable" taking Settings and returning a voxstack.server.host.Service.
    #: http: "module:callable" taking (Settings, host, port) that serves until stopped.
    factory: str
    #: Full gRPC service name, asked by health checks (grpc services).
    grpc_name: str = ""
    #: "module:callable" taking Settings and returning the service's loaded, warmed engine (or None),
    #: which the factory takes as its second argument: what a dev warm spare prepares for the next reload.
    #: The module and what it imports from voxstack are the engine's code: a change there discards the spare.
    engine: str = ""
    #: Environment the service's process starts with, where the user has not set it.
    env: tuple[tuple[str, str], ...] = ()
    #: Settings it reads besides its own section, the top-level ones and ``tls`` ("section" or
    #: "section.field"): a change there reloads it in dev.
    reads: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        """The module that holds the factory: what a process of this service imports first."""
        return self.factory.partition(":")[0]


SERVICES: MappingProxyType[str, ServiceSpec] = MappingProxyType(
    {
        "asr": ServiceSpec(
            "asr", "grpc", 50051, "voxstack.asr.service:create", "voxstack.v1.Asr", "voxstack.asr.prepared:prepare"
        ),
        "llm": ServiceSpec(
            "llm",
            "grpc",
            50052,
            "voxstack.llm.service:create",
            "voxstack.v1.Llm",
            "voxstack.llm.prepared:prepare",
            # llama.cpp's OpenMP threads spin between steps (300,000 rounds by default) before they sleep. With a
            # core taken by another process, a niced llm's threads spin while waiting for one that lost its core:
            # a 60-token reply took over a minute instead of a second. Read when the library loads.
            env=(("GOMP_SPINCOUNT", "1000"),),
        ),
        "tts": ServiceSpec(
            "tts", "grpc", 50053, "voxstack.tts.service:create", "voxstack.v1.Tts", "voxstack.tts.prepared:prepare"
        ),
        "core": ServiceSpec(
            "core",
            "http",
            8080,
            "voxstack.core.server:run",
            # Where the model services are and what they take (its calls and its limits), which llm serves
            # (/v1/models), and the Wyoming server it runs.
            reads=(
                "wyoming",
                *(f"{s}.{f}" for s in ("asr", "llm", "tts") for f in ("host", "port", "max_message_bytes")),
                "asr.model",
                "asr.max_audio_seconds",
                *(f"llm.{f}" for f in ("engine", "model", "preset", "upstream_model", "parallel", "max_concurrency")),
                "llm.max_queue",
            ),
        ),
    }
)
#: Every service, in start order.
ALL_SERVICES: tuple[str, ...] = tuple(SERVICES)
#: The gRPC model services the core calls (its pipeline's stages).
MODEL_SERVICES: tuple[str, ...] = tuple(n for n, s in SERVICES.items() if s.kind == "grpc")

# ---- how a supervisor and the service processes it starts talk -------------
#: The lean entry a supervisor runs: ``python -m voxstack.server SERVICE``; it imports only that service.
SERVER_ENTRY = "voxstack.server"
#: The mode the child runs in.
MODE_ENV = "VOXSTACK_MODE"
#: A unix socket path on which this instance alone answers (health, /livez).
CONTROL_SOCKET_ENV = "VOXSTACK_CONTROL_SOCKET"
#: The descriptor of the pipe an instance tells its supervisor things on (JSON lines: supervisor/spare.py, runtime.py).
SUPERVISOR_FD_ENV = "VOXSTACK_SUPERVISOR_FD"
#: For the core: an inherited listening socket to serve on.
LISTEN_FD_ENV = "VOXSTACK_LISTEN_FD"
#: A client's API key for the core (`voxstack replay --api-key`).
API_KEY_ENV = "VOXSTACK_API_KEY"
#: The supervisor's count of this service's instances (voxstack.provenance).
GENERATION_ENV = "VOXSTACK_GENERATION"
#: `voxstack dev --replay DIR`: the folder of pinned conversations (where the console's "pin" puts a turn).
REPLAY_DIR_ENV = "VOXSTACK_DEV_REPLAY"
#: `voxstack dev`'s options from the environment (VOXSTACK_DEV_SPARES, VOXSTACK_DEV_DEBUG, ...): not settings.
DEV_OPTION_PREFIX = "VOXSTACK_DEV_"
#: Names of ours that are not settings: a .env may hold the commands' ones, and they are no typo there.
NOT_SETTINGS = frozenset({CONTROL_SOCKET_ENV, LISTEN_FD_ENV, GENERATION_ENV, API_KEY_ENV, REPLAY_DIR_ENV})


def is_setting_name(name: str) -> bool:
    """Whether an environment name of ours (VOXSTACK_...) names a setting rather than a command's option."""
    upper = name.upper()
    return upper not in NOT_SETTINGS and not upper.startswith(DEV_OPTION_PREFIX)


def parse_services(only: str | None) -> list[str]:
    """A comma-separated subset of the services (all of them when empty); ValueError names the unknown."""
    if not only:
        return list(ALL_SERVICES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVICES]
    if unknown or not names:
        raise ValueError(f"--only takes a comma-separated list of {', '.join(ALL_SERVICES)} (got {only!r})")
    return names
