"""What routes receive through ``Depends``: the app's settings, pipeline and backends."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from voxstack.config import Settings
from voxstack.core.auth import OWNER
from voxstack.core.clients import Backends
from voxstack.core.pipeline import Pipeline


def get_settings(conn: HTTPConnection) -> Settings:
    settings: Settings = conn.app.state.settings
    return settings


def get_pipeline(conn: HTTPConnection) -> Pipeline:
    pipeline: Pipeline = conn.app.state.pipeline
    return pipeline


def get_backends(conn: HTTPConnection) -> Backends:
    backends: Backends = conn.app.state.backends
    return backends


def session_key(conn: HTTPConnection, session_id: str | None) -> str | None:
    """Where a session's history is kept: under the caller's key when there is one, so that a session
    belongs to the key that made it; without keys, the session id itself is the secret."""
    owner = conn.scope.get("state", {}).get(OWNER)
    if session_id is None or not owner:
        return session_id
    return f"{owner}/{session_id}"


SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
BackendsDep = Annotated[Backends, Depends(get_backends)]
