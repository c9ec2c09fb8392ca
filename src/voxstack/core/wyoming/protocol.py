"""Wyoming's framing read with limits, and the connection handler both voxstack servers share.

An event is a JSON header line, then ``data_length`` bytes of JSON data, then
``payload_length`` bytes of payload. The ``wyoming`` package's own reader
trusts both lengths; here the whole event is bounded before any of it is
read, a header that is not a JSON object is refused, and a client that sends
nothing for ``idle_seconds`` is closed. A refusal is an ``error`` event (text
and a stable code); a broken frame also closes the connection, since the next
event's start can no longer be found. A request the services refuse (unknown
voice, bad audio) gets an ``error`` event and the connection stays usable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any, TypeVar

from wyoming.error import Error
from wyoming.event import Event, Eventable
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler

from voxstack.codes import ErrorCode
from voxstack.config import WyomingSettings
from voxstack.core.clients import StageError
from voxstack.errors import InvalidInput, VoxError
from voxstack.logs import request_id_var

logger = logging.getLogger(__name__)

# asyncio's StreamReader refuses a longer line; headers are a few hundred bytes.
HEADER_LIMIT = 64 * 1024


class ProtocolError(Exception):
    """The stream is not Wyoming any more (bad framing, too big an event): answer and close."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def _length(header: dict[str, Any], key: str) -> int:
    value = header.get(key) or 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"{key} must be a non-negative integer, not {value!r}"[:200], ErrorCode.BAD_EVENT)
    return value


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProtocolError(f"the event {what} is not JSON", ErrorCode.BAD_EVENT) from None
    if not isinstance(value, dict):
        raise ProtocolError(f"the event {what} must be a JSON object", ErrorCode.BAD_EVENT)
    return value


async def read_event(reader: asyncio.StreamReader, max_bytes: int) -> Event | None:
    """The next event, None at the end of the stream; ProtocolError when the framing is broken."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise ProtocolError("the stream ended inside an event header", ErrorCode.BAD_EVENT) from None
        return None
    except asyncio.LimitOverrunError:
        raise ProtocolError(f"an event header is longer than {HEADER_LIMIT} bytes", ErrorCode.EVENT_TOO_LARGE) from None
    header = _json_object(line, "header")
    kind = header.get("type")
    if not isinstance(kind, str) or not kind:
        raise ProtocolError("the event header has no type", ErrorCode.BAD_EVENT)
    data_length, payload_length = _length(header, "data_length"), _length(header, "payload_length")
    size = len(line) + data_length + payload_length
    if size > max_bytes:
        raise ProtocolError(
            f"a {kind} event of {size} bytes is over the limit of {max_bytes}", ErrorCode.EVENT_TOO_LARGE
        )
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise ProtocolError("the event data must be a JSON object", ErrorCode.BAD_EVENT)
    try:
        if data_length:
            data = {**data, **_json_object(await reader.readexactly(data_length), "data")}
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        raise ProtocolError(f"the stream ended inside a {kind} event", ErrorCode.BAD_EVENT) from None
    return Event(type=kind, data=data, payload=payload)


E = TypeVar("E", bound=Eventable)


def parse(kind: type[E], event: Event) -> E:
    """The ``wyoming`` package's reading of an event, or InvalidInput when its data is not what the type needs."""
    try:
        return kind.from_event(event)  # type: ignore[return-value]  # each type returns itself
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InvalidInput(f"malformed {event.type} event: {exc!r}"[:300], reason=ErrorCode.BAD_EVENT) from None


class Gate:
    """Counts a server's open connections against its cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def enter(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def leave(self) -> None:
        self.open -= 1


class Handler(AsyncEventHandler):
    """One client connection: bounded reads, errors as ``error`` events, ``ping`` answered."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limits: WyomingSettings, gate: Gate
    ) -> None:
        super().__init__(reader, writer)
        self.limits = limits
        self.gate = gate
        self.id = uuid.uuid4().hex[:12]

    async def handle(self, event: Event) -> bool:
        """Answer one event; False ends the connection."""
        raise NotImplementedError

    async def handle_event(self, event: Event) -> bool:
        if Ping.is_type(event.type):
            await self.write_event(Pong(text=parse(Ping, event).text).event())
            return True
        return await self.handle(event)

    def reset(self) -> None:
        """Forget a request that failed, so the next one starts clean."""

    async def fail(self, message: str, code: str) -> None:
        logger.info("wyoming error sent to the client: %s (%s)", message, code)
        await self.write_event(Error(text=message, code=code).event())

    async def run(self) -> None:
        request_id_var.set(f"wyoming-{self.id}")
        if not self.gate.enter():
            try:
                await self.fail(
                    f"too many connections: this server takes {self.gate.limit}", ErrorCode.TOO_MANY_CONNECTIONS
                )
            finally:
                self.writer.close()
            return
        try:
            await self._serve()
        except ConnectionError:
            logger.debug("the client went away")
        finally:
            self.gate.leave()
            await self.disconnect()
            self.writer.close()

    async def _serve(self) -> None:
        while True:
            try:
                event = await asyncio.wait_for(
                    read_event(self.reader, self.limits.max_event_bytes), self.limits.idle_seconds
                )
            except ProtocolError as exc:
                await self.fail(str(exc), exc.code)
                return
            except asyncio.TimeoutError:  # not the builtin TimeoutError before 3.11
                logger.debug("closing a connection idle for %.0f s", self.limits.idle_seconds)
                return
            if event is None:
                return
            try:
                if not await self.handle_event(event):
                    return
            except StageError as exc:
                self.reset()
                await self.fail(exc.public_message, exc.cause or exc.reason)
            except VoxError as exc:
                self.reset()
                await self.fail(exc.message, exc.reason)
            except ConnectionError:
                raise
            except Exception:
                logger.exception("a %s event failed", event.type)
                await self.fail(f"internal error handling {event.type}", ErrorCode.INTERNAL)
                return
