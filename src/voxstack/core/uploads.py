"""Audio uploaded in a request body: its declared format, and the body read within a limit."""

from __future__ import annotations

from fastapi import Request
from starlette.requests import ClientDisconnect

from voxstack.audio import check_channels, check_rate
from voxstack.codes import ErrorCode
from voxstack.errors import InvalidInput, VoxError
from voxstack.v1 import common_pb2

WAV_TYPES = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})


class UnsupportedMedia(VoxError):
    http_status = 415
    default_reason = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class ClientGone(VoxError):
    """The client closed the connection before its request was read: nobody to answer, nothing to log loudly."""

    http_status = 499  # nginx's "client closed request": never seen by the client
    default_reason = ErrorCode.CLIENT_CLOSED_REQUEST


def audio_format(content_type: str | None) -> common_pb2.AudioFormat:
    """The declared format of an uploaded body: WAV, or raw PCM16 as ``audio/L16; rate=16000; channels=1``."""
    if not content_type:
        raise UnsupportedMedia("no Content-Type: send audio/wav or audio/L16; rate=N; channels=N")
    media, *params = [p.strip() for p in content_type.split(";")]
    media = media.lower()
    if media in WAV_TYPES:
        return common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_WAV)
    if media == "audio/l16":
        values = dict(p.split("=", 1) for p in params if "=" in p)
        try:
            rate = int(values.get("rate", "0"))
            channels = int(values.get("channels", "1"))
        except ValueError:
            raise InvalidInput(
                f"bad audio/L16 parameters in {content_type[:100]!r}", reason=ErrorCode.BAD_CONTENT_TYPE
            ) from None
        if rate <= 0:
            raise InvalidInput(
                "audio/L16 needs a rate parameter, e.g. audio/L16; rate=16000", reason=ErrorCode.BAD_SAMPLE_RATE
            )
        check_rate(rate, "audio/L16 rate")
        check_channels(channels)
        return common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=rate, channels=channels)
    raise UnsupportedMedia(
        f"Content-Type {media[:100]} is not audio this API takes: send audio/wav or audio/L16; rate=N"
    )


async def read_body(request: Request) -> bytes:
    """The request body (``limits.BodyLimit`` refuses one past the upload limit while it streams in)."""
    chunks = []
    try:
        async for chunk in request.stream():
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone("the client went away during the upload") from None
    body = b"".join(chunks)
    if not body:
        raise InvalidInput("the request body is empty: send the audio", reason=ErrorCode.EMPTY_BODY)
    return body
