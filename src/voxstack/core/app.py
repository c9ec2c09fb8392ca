"""The core's HTTP app: settings, backends and pipeline in ``app.state``, the routers, one error shape."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from voxstack import tracing
from voxstack.config import Mode, Settings
from voxstack.core import errors
from voxstack.core.auth import OPEN_PATHS, TOKEN_SECRET, ApiKeys, RequireKey
from voxstack.core.clients import Backends
from voxstack.core.drain import Drain
from voxstack.core.limits import BodyLimit
from voxstack.core.openai import chat as openai_chat
from voxstack.core.openai import models as openai_models
from voxstack.core.openai import speech as openai_speech
from voxstack.core.openai import transcription as openai_transcription
from voxstack.core.origins import CheckOrigin
from voxstack.core.pipeline import Pipeline
from voxstack.core.ratelimit import RateLimit
from voxstack.core.recorder import TurnRecorder
from voxstack.core.recorder import enabled as recording_enabled
from voxstack.core.requestlog import RequestLog
from voxstack.core.routes import auth as auth_routes
from voxstack.core.routes import chat, conversation, health, pages, realtime, speech
from voxstack.core.routes import console as console_page
from voxstack.core.routes import dev as dev_pages
from voxstack.core.routes import docs as docs_pages
from voxstack.core.routes import metrics as metrics_route
from voxstack.core.sessions import open_sessions, store_url
from voxstack.errors import NotReady
from voxstack.metrics.catalog import CoreMetrics
from voxstack.runtime import report_loaded_modules

logger = logging.getLogger(__name__)

#: Response headers a page from another origin may read.
EXPOSED_HEADERS = [
    "X-Request-Id",
    "Retry-After",
    "X-Voxstack-Mode",
    "X-Voxstack-Transcript",
    "X-Voxstack-Reply",
]


def create_app(settings: Settings, api_keys: ApiKeys | None = None) -> FastAPI:
    """The app; ``api_keys`` when the caller has loaded them already, else from the settings."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backends = Backends(settings, metrics)
        sessions = open_sessions(settings)
        if app.state.api_keys.enabled and not app.state.api_keys.secret_is_set:
            try:
                app.state.api_keys.adopt_secret(await sessions.shared_secret(TOKEN_SECRET))
            except NotReady as exc:
                logger.warning("%s: WebSocket tokens are signed with this process's own secret", exc)
        metrics.sessions.set_function(lambda: len(sessions))
        loop = asyncio.get_running_loop()
        metrics.tasks.set_function(lambda: len(asyncio.all_tasks(loop)))
        app.state.backends = backends
        app.state.pipeline = Pipeline(settings, backends, sessions)
        lag_watch = asyncio.create_task(watch_loop_lag(metrics))
        report_loaded_modules()
        logger.info(
            "core %s mode; %s",
            settings.mode.value.upper(),
            ", ".join(f"{name} {address}" for name, address in backends.addresses.items()),
        )
        logger.info("sessions in %s", re.sub(r"//[^@/]*@", "//", store_url(settings)))  # no password in the log
        yield
        lag_watch.cancel()
        await backends.close()
        await sessions.close()

    metrics = CoreMetrics()
    dev = settings.mode is Mode.DEV
    docs = settings.core.api_docs if settings.core.api_docs is not None else dev
    app = FastAPI(
        title=f"voxstack core ({settings.mode.value})",
        description="Voice assistant API: speech to text, chat, text to speech, and whole spoken turns.",
        version="1",
        lifespan=lifespan,
        openapi_url="/openapi.json" if docs else None,
        docs_url=None,  # served by docs_pages, with local assets
        redoc_url=None,
    )
    if docs:
        docs_pages.install(app, "/openapi.json")
    app.state.settings = settings
    app.state.drain = Drain()
    app.state.recorder = TurnRecorder(settings) if recording_enabled(settings) else None
    app.state.metrics = metrics
    app.state.api_keys = api_keys or ApiKeys.from_settings(settings.core)
    errors.install(app, detail=settings.error_detail)
    core = settings.core
    # Innermost first: a body is read only once the request is admitted; the origin is checked before
    # the key, preflights answered before either; all run inside the request log, which sets the
    # request id their refusals carry.
    app.add_middleware(
        BodyLimit,
        audio_limit=core.max_upload_bytes,
        other_limit=core.max_json_bytes,
        idle_seconds=core.body_timeout,
    )
    app.add_middleware(RateLimit, rate=core.rate_limit, burst=core.rate_burst, concurrency=core.client_concurrency)
    open_paths = OPEN_PATHS | {"/metrics"} if core.metrics_public else OPEN_PATHS
    app.add_middleware(RequireKey, keys=app.state.api_keys, open_paths=open_paths)
    app.add_middleware(CheckOrigin, origins=core.cors_origins, hosts=core.allowed_hosts, bound_to=core.host)
    if core.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=core.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    app.add_middleware(RequestLog, settings=settings, metrics=metrics)
    if tracing.enabled():
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        # Outermost: a request's span covers all of it. The WebSocket's turns are traces of their own
        # (core/websocket.py); probes and scrapes are not worth one.
        app.add_middleware(
            OpenTelemetryMiddleware,
            excluded_urls="/v1/stream,/livez,/healthz,/metrics",
            exclude_spans=["receive", "send"],  # one span per body chunk says nothing
        )
    for module in (
        health,
        speech,
        chat,
        conversation,
        realtime,
        auth_routes,
        openai_chat,
        openai_models,
        openai_speech,
        openai_transcription,
    ):
        app.include_router(module.router)
    if core.metrics:
        app.include_router(metrics_route.router)
    console = core.console if core.console is not None else dev
    if console or dev:
        pages.install_assets(app)
    if console:
        app.include_router(console_page.router)
    if dev:
        app.include_router(dev_pages.router)
    return app


async def watch_loop_lag(metrics: CoreMetrics, every: float = 0.02) -> None:
    """Observe how late the loop wakes for a timer, until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(every)
        metrics.loop_lag.observe(max(0.0, loop.time() - started - every))


def app_from_env() -> FastAPI:
    """The core app with settings from the environment: for ``uvicorn --factory voxstack.core.app:app_from_env``."""
    from voxstack.config import load_settings
    from voxstack.logs import configure_logging

    settings = load_settings()
    configure_logging(settings, "core")
    return create_app(settings)
