"""Which code served a call: each instance's generation and a digest of its source.

Every service sends both with each reply (gRPC initial metadata,
``GENERATION_KEY`` and ``CODE_KEY``); the core notes them per
stage in ``served_by_var``, so that a recorded turn says which code of each
service answered it. The generation is the supervisor's count of an
instance (``registry.GENERATION_ENV``; empty where nothing counts them).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from contextvars import ContextVar
from pathlib import Path

import voxstack
from voxstack.registry import GENERATION_ENV

GENERATION_KEY = "voxstack-generation"
CODE_KEY = "voxstack-code"
_FIELDS = {GENERATION_KEY: "generation", CODE_KEY: "code"}

#: The stages that served the current turn: {stage: {"generation": ..., "code": ...}}; set per turn.
served_by_var: ContextVar[dict[str, dict[str, str]] | None] = ContextVar("served_by", default=None)


def source_digest() -> str:
    """A digest of voxstack's source files as they are on disk (this instance imported them at start)."""
    root = Path(voxstack.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def this_instance() -> dict[str, str]:
    """This process's generation and code digest."""
    return {"generation": os.environ.get(GENERATION_ENV, ""), "code": source_digest()}


def as_metadata(instance: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return ((GENERATION_KEY, instance["generation"]), (CODE_KEY, instance["code"]))


def note(stage: str, metadata: Iterable[tuple[str, str | bytes]] | None) -> None:
    """Record in the current turn (if one is being recorded) which instance of ``stage`` answered it,
    from the call's initial metadata."""
    served = served_by_var.get()
    if served is None or not metadata:
        return
    found = {_FIELDS[k]: v for k, v in metadata if k in _FIELDS and isinstance(v, str)}
    if found:
        served[stage] = found
