"""The free ports a test stack's servers are given."""

from __future__ import annotations

import socket

from voxstack.testing.processes import free_ports


def test_the_ports_of_one_stack_differ_and_are_free() -> None:
    ports = free_ports(40)
    assert len(set(ports)) == 40
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # each one can be taken
