"""core/server.py subclasses uvicorn.Server and reads some of its internals: fail here, not in a reload, when they move.

uvicorn is pinned in pyproject.toml to the releases this was written against;
a new release that passes these may widen the pin.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from voxstack.core.server import _server_class


def test_the_server_methods_the_core_overrides_have_the_shape_it_expects() -> None:
    assert list(inspect.signature(uvicorn.Server.shutdown).parameters) == ["self", "sockets"]
    assert inspect.iscoroutinefunction(uvicorn.Server.shutdown)
    assert list(inspect.signature(uvicorn.Server.handle_exit).parameters) == ["self", "sig", "frame"]
    assert "capture_signals" in uvicorn.Server.__dict__
    with uvicorn.Server(uvicorn.Config(app=None)).capture_signals() as captured:  # type: ignore[arg-type]
        assert captured is None  # a context manager
    assert "sockets" in inspect.signature(uvicorn.Server.run).parameters


def test_a_started_server_has_the_attributes_the_drain_reads() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        pass

    async def scenario() -> None:
        server = _server_class()(uvicorn.Config(app, port=0, log_config=None, lifespan="off"), app)  # type: ignore[arg-type]
        config = server.config
        config.load()
        server.lifespan = config.lifespan_class(config)
        await server.startup()
        try:
            assert isinstance(server.servers, list) and server.servers
            assert isinstance(server.server_state.connections, set)
        finally:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await server.shutdown()

    asyncio.run(scenario())


def test_http_protocols_keep_their_request_cycle_in_an_attribute_named_cycle() -> None:
    # The drain waits while any open connection has a request in flight (`hasattr(c, "cycle")`).
    assert "self.cycle" in inspect.getsource(H11Protocol)
    with contextlib.suppress(ImportError):
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        assert "self.cycle" in inspect.getsource(HttpToolsProtocol)
