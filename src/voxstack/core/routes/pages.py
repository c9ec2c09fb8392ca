"""The browser pages' files (``core/web/``): the voice console and the dev dashboard, with a strict CSP.

Everything a page loads comes from the core itself (no CDN: they work offline
and in the images). The policy lets a page run only its own scripts and
worklets, talk only to its own origin, and be framed by nobody.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

WEB = Path(__file__).resolve().parent.parent / "web"
ASSETS = "/console/assets"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "media-src 'self' blob:; worker-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A reload of the core (dev) may change them: always ask, answered 304 when unchanged.
    "Cache-Control": "no-cache",
}


class Assets(StaticFiles):
    """The pages' scripts, styles and icons, with the pages' headers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await super().__call__(scope, receive, with_headers)


def page(name: str) -> FileResponse:
    """One of the HTML pages, with the headers."""
    return FileResponse(WEB / name, media_type="text/html; charset=utf-8", headers=HEADERS)


def install_assets(app: FastAPI) -> None:
    app.mount(ASSETS, Assets(directory=WEB), name="page-assets")
