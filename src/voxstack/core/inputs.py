"""Text that callers send: valid Unicode and within the core's length limit, checked before any other work."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from voxstack.codes import ErrorCode
from voxstack.errors import TooLarge


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text (it holds a lone surrogate)") from None
    return value


#: A string field that rejects what cannot be encoded as UTF-8 (lone surrogates from JSON escapes).
Text = Annotated[str, AfterValidator(_encodable)]


def check_length(field: str, value: str | None, limit: int) -> None:
    """TooLarge (413, TEXT_TOO_LONG) naming ``field`` when ``value`` is longer than ``limit`` characters."""
    if value is not None and len(value) > limit:
        raise TooLarge(f"{field} is {len(value)} characters; the limit is {limit}", reason=ErrorCode.TEXT_TOO_LONG)
