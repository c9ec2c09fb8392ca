"""Conversation history per session, bounded in turns and size, expiring when idle: in memory, in a
SQLite file (survives the core's restarts) or in Redis (shared by several cores)."""

from voxstack.core.sessions.base import SESSION_ID, SessionStore, check_session_id
from voxstack.core.sessions.memory import MemorySessions
from voxstack.core.sessions.open import open_sessions, store_url

__all__ = ["SESSION_ID", "MemorySessions", "SessionStore", "check_session_id", "open_sessions", "store_url"]
