"""The services voxstack ships: name -> factory (imported only when served) and gRPC name."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    #: "module:callable" taking Settings and returning a voxstack.server.Service.
    factory: str
    #: Full gRPC service name, checked by ``voxstack health NAME``.
    grpc_name: str


# Each service adds its line here as it lands.
SERVICES: MappingProxyType[str, ServiceSpec] = MappingProxyType(
    {
        "asr": ServiceSpec("asr", "voxstack.asr.service:create", "voxstack.v1.Asr"),
        "llm": ServiceSpec("llm", "voxstack.llm.service:create", "voxstack.v1.Llm"),
        "tts": ServiceSpec("tts", "voxstack.tts.service:create", "voxstack.v1.Tts"),
    }
)
