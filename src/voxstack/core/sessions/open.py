"""The session store the settings ask for."""

from __future__ import annotations

from pathlib import Path

from voxstack.config import Mode, Settings
from voxstack.core.sessions.base import Bounds, SessionStore
from voxstack.core.sessions.memory import MemorySessions

SQLITE_FILE = "sessions.sqlite3"


def store_url(settings: Settings) -> str:
    """``core.session_store``, or the mode's default: a SQLite file in the state directory in dev
    (a conversation outlives the reloads), memory in prod."""
    url = settings.core.session_store
    if not url:
        url = "sqlite" if settings.mode is Mode.DEV else "memory"
    if url == "sqlite":
        url = f"sqlite:///{settings.state_dir / SQLITE_FILE}"
    return url


def open_sessions(settings: Settings) -> SessionStore:
    core = settings.core
    bounds = Bounds(core.session_max_turns, core.session_max_chars, core.session_idle_seconds, core.max_sessions)
    url = store_url(settings)
    if url == "memory":
        return MemorySessions(bounds)
    if url.startswith("sqlite://"):
        from voxstack.core.sessions.sqlite import SqliteSessions

        return SqliteSessions(Path(url.removeprefix("sqlite://")), bounds)
    from voxstack.core.sessions.redis import RedisSessions

    return RedisSessions(url, bounds)
