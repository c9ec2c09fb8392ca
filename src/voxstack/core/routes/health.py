"""``/livez`` (this instance is up) and ``/healthz`` (every service behind it is SERVING)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from voxstack.core.deps import BackendsDep, SettingsDep

router = APIRouter(tags=["health"])


@router.api_route("/livez", methods=["GET", "HEAD"], include_in_schema=False)
async def livez(settings: SettingsDep) -> dict[str, str]:
    """This instance is up (whatever the state of the services behind it)."""
    return {"status": "alive", "mode": settings.mode.value}


@router.api_route(
    "/healthz",
    methods=["GET", "HEAD"],
    responses={
        503: {"description": "A service is not SERVING (named in `failing`).", "content": {"application/json": {}}}
    },
)
async def healthz(settings: SettingsDep, backends: BackendsDep) -> JSONResponse:
    """200 when every service is SERVING; otherwise 503 naming the ones that are not."""
    services = await backends.health()
    if not settings.error_detail:  # where the services live is for the operator's logs, not for callers
        services = {name: {"status": info["status"]} for name, info in services.items()}
    failing = sorted(s for s, v in services.items() if v["status"] != "SERVING")
    body: dict[str, Any] = {
        "mode": settings.mode.value,
        "status": "ok" if not failing else "degraded",
        "services": services,
    }
    if failing:
        body["failing"] = failing
    return JSONResponse(body, status_code=503 if failing else 200)
