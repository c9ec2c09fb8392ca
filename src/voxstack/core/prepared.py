"""What a dev warm spare of the core loads ahead of a reload: the layers under the core (settings, errors,
audio, text, logging, metrics, tracing, health checks, the gRPC stubs), about half of its import time.

Not the core's own modules: they are what a developer edits. The core holds
no engine, so ``prepare`` returns None; the spare records these modules' files,
and a change to any of them discards it (the core starts cold), as an edited
engine does for a model service.
"""

# ruff: noqa: F401  (imported for their side effect: being loaded before the reload)
from __future__ import annotations

import voxstack.audio
import voxstack.errors
import voxstack.health
import voxstack.logs
import voxstack.metrics.catalog
import voxstack.models
import voxstack.registry
import voxstack.rpc_status
import voxstack.runstate
import voxstack.runtime
import voxstack.server.feed
import voxstack.text
import voxstack.tls
import voxstack.tracing
import voxstack.v1.asr_pb2_grpc
import voxstack.v1.llm_pb2_grpc
import voxstack.v1.tts_pb2_grpc
from voxstack.config import Settings


def prepare(settings: Settings) -> None:
    """Nothing to load: importing this module was the preparation."""
    return None
