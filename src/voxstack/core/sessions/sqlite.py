"""Sessions in a SQLite file: they outlive the core (a dev reload, a restart), and every core
process on the machine shares them (WAL mode lets the old and new instance use it at once)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from voxstack.codes import ErrorCode
from voxstack.core.sessions.base import Bounds, Item, as_messages, new_secret, trim_items
from voxstack.errors import NotReady

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, turns TEXT NOT NULL, last_used REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_last_used ON sessions (last_used);
CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, items TEXT NOT NULL, last_used REAL NOT NULL);
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


class SqliteSessions:
    def __init__(self, path: Path, bounds: Bounds, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.bounds = bounds
        self.clock = clock  # wall time: it has to mean the same in the next process
        path.parent.mkdir(parents=True, exist_ok=True)
        # Conversation text: this user's only (SQLite gives its -wal and -shm files the same mode).
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        # One connection, used from worker threads one at a time.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _expire(self) -> None:
        db, bounds = self._db, self.bounds
        db.execute("DELETE FROM sessions WHERE last_used < ?", (self.clock() - bounds.idle_seconds,))
        db.execute(
            "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions ORDER BY last_used DESC LIMIT -1 OFFSET ?)",
            (bounds.max_sessions,),
        )
        db.execute("DELETE FROM conversations WHERE last_used < ?", (self.clock() - bounds.idle_seconds,))
        db.execute(
            "DELETE FROM conversations WHERE id IN "
            "(SELECT id FROM conversations ORDER BY last_used DESC LIMIT -1 OFFSET ?)",
            (bounds.max_sessions,),
        )
        self._count = db.execute("SELECT count(*) FROM sessions").fetchone()[0]

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction at a time, taking the write lock at once (another core may write too);
        a database that fails is a 503 naming the store, as an unreachable Redis is."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise NotReady(
                    f"the session store ({self.path}) failed: {exc}", reason=ErrorCode.SESSIONS_UNAVAILABLE
                ) from exc

    def _history(self, session_id: str) -> list[dict[str, str]]:
        with self._transaction() as db:
            self._expire()
            row = db.execute("SELECT turns FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return as_messages([tuple(t) for t in json.loads(row[0])]) if row else []

    def _append(self, session_id: str, user: str, assistant: str) -> None:
        with self._transaction() as db:
            row = db.execute("SELECT turns FROM sessions WHERE id = ?", (session_id,)).fetchone()
            turns = [tuple(t) for t in json.loads(row[0])] if row else []
            kept = self.bounds.trim([*turns, (user, assistant)])
            db.execute(
                "INSERT OR REPLACE INTO sessions (id, turns, last_used) VALUES (?, ?, ?)",
                (session_id, json.dumps(kept), self.clock()),
            )
            self._expire()

    def _items(self, session_id: str) -> list[Item]:
        with self._transaction() as db:
            self._expire()
            row = db.execute("SELECT items FROM conversations WHERE id = ?", (session_id,)).fetchone()
        return list(json.loads(row[0])) if row else []

    def _keep_items(self, session_id: str, items: Sequence[Item]) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO conversations (id, items, last_used) VALUES (?, ?, ?)",
                (session_id, json.dumps(trim_items(self.bounds, items)), self.clock()),
            )
            self._expire()

    async def items(self, session_id: str) -> list[Item]:
        return await asyncio.to_thread(self._items, session_id)

    async def keep_items(self, session_id: str, items: Sequence[Item]) -> None:
        await asyncio.to_thread(self._keep_items, session_id, items)

    def _shared_secret(self, name: str) -> bytes:
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)", (name, new_secret()))
            return bytes(db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()[0])

    async def shared_secret(self, name: str) -> bytes:
        return await asyncio.to_thread(self._shared_secret, name)

    async def history(self, session_id: str) -> list[dict[str, str]]:
        return await asyncio.to_thread(self._history, session_id)

    async def append(self, session_id: str, user: str, assistant: str) -> None:
        await asyncio.to_thread(self._append, session_id, user, assistant)

    async def close(self) -> None:
        with self._lock:
            self._db.close()
