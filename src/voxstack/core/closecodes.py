"""The WebSocket close codes the core sends (RFC 6455 and IANA's registry), in one place."""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL_CLOSURE = 1000  # the conversation is over (the client's end, an idle timeout)
    INVALID_PAYLOAD = 1007  # audio that cannot be (a frame of partial samples)
    POLICY_VIOLATION = 1008  # a refused handshake or config, a client that broke a limit
    MESSAGE_TOO_BIG = 1009  # a frame over ws_max_frame_bytes (sent by uvicorn)
    INTERNAL_ERROR = 1011  # the server failed unexpectedly (the error event says what the client may know)
    SERVICE_RESTART = 1012  # the core is restarting: reconnect with the same session id
    TRY_AGAIN_LATER = 1013  # overloaded: come back after the error event's retry_after seconds
