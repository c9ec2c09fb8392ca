"""``GET /console``: the voice console, a page to talk to the stack and see each turn's timing.

On by default in dev; in prod only with ``VOXSTACK_CORE__CONSOLE=true``. The
page and its assets are open (they hold no data); with API keys set, the page
asks for one and uses it for its calls and a WebSocket token.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from voxstack.core.routes.pages import page

router = APIRouter(include_in_schema=False)


@router.get("/console")
async def console() -> FileResponse:
    return page("console.html")
