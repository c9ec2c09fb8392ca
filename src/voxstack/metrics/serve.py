"""``/metrics`` over HTTP for a process that has no HTTP server of its own (the gRPC services, the supervisor).

A small threaded WSGI server from prometheus-client's exposition, bound with
SO_REUSEPORT when the service shares its gRPC port too (dev: the new instance
starts beside the old one, and a scrape reaches either).
"""

from __future__ import annotations

import logging
import socket
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

logger = logging.getLogger(__name__)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # a scrape every few seconds is not worth a log line


def _server_class(reuse_port: bool) -> type[WSGIServer]:
    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        address_family = socket.AF_INET

        def server_bind(self) -> None:
            if reuse_port:
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            super().server_bind()

    return Server


class MetricsServer:
    """Serves ``registry`` at ``http://host:port/metrics`` from a daemon thread until ``stop()``."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int, *, reuse_port: bool = False) -> None:
        server_class = _server_class(reuse_port)
        if ":" in host:
            server_class.address_family = socket.AF_INET6
        self.server = make_server(host, port, make_wsgi_app(registry), server_class, handler_class=_Quiet)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True)

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
