"""The services voxstack ships: name -> factory (imported only when served) and gRPC name."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    #: grpc: "module:callable" taking Settings and returning a voxstack.server.Service.
    #: http: "module:callable" taking (Settings, host, port) that serves until stopped.
    factory: str
    #: Full gRPC service name, checked by ``voxstack health NAME`` (grpc services).
    grpc_name: str = ""
    kind: str = "grpc"


# Each service adds its line here as it lands.
SERVICES: MappingProxyType[str, ServiceSpec] = MappingProxyType(
    {
        "core": ServiceSpec("core", "voxstack.core.server:run", kind="http"),
        "asr": ServiceSpec("asr", "voxstack.asr.service:create", "voxstack.v1.Asr"),
        "llm": ServiceSpec("llm", "voxstack.llm.service:create", "voxstack.v1.Llm"),
        "tts": ServiceSpec("tts", "voxstack.tts.service:create", "voxstack.v1.Tts"),
    }
)
