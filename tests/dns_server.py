"""A DNS server on loopback whose answers a test changes: replicas behind one name (``dns://HOST:PORT/NAME``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from voxstack.testing.processes import free_port


class Names(BaseResolver):  # type: ignore[misc]
    """A records by name; names are given without the trailing dot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, list[str]] = {}
        self.queries = 0

    def set(self, name: str, addresses: list[str]) -> None:
        with self._lock:
            self._records[name.rstrip(".")] = list(addresses)

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".")
        with self._lock:
            self.queries += 1
            addresses = list(self._records.get(name, ()))
        if request.q.qtype == QTYPE.A:
            for address in addresses:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=1))
        return reply


@contextmanager
def dns_server() -> Iterator[tuple[Names, int]]:
    """(the names it answers, its UDP port on 127.0.0.1) while the block runs."""
    names = Names()
    port = free_port()
    server = DNSServer(names, port=port, address="127.0.0.1", logger=DNSLogger(log="-request,-reply,-truncated"))
    server.start_thread()
    try:
        yield names, port
    finally:
        server.stop()
