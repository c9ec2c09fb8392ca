"""The production stack the load harness and the replicas bench drive: four services, some with replicas."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from voxstack.registry import ALL_SERVICES
from voxstack.testing.processes import free_port, free_ports, served


def start_stack(
    stack: ExitStack, env: dict[str, str], logs: Path, replicas: dict[str, int] | None = None
) -> tuple[int, dict[str, int]]:
    """The four services in prod mode, ``replicas`` of some (the core balances over a list of their
    addresses); the core's port and each process's pid (``llm``, ``llm-2``, ...)."""
    ports = dict(zip(ALL_SERVICES, free_ports(len(ALL_SERVICES)), strict=True))
    full = env | {f"VOXSTACK_{n.upper()}__PORT": str(p) for n, p in ports.items()}
    pids = {}
    for name, count in (replicas or {}).items():
        extra = [free_port() for _ in range(count - 1)]
        full[f"VOXSTACK_CORE__{name.upper()}_ADDRESS"] = ",".join(f"127.0.0.1:{p}" for p in [ports[name], *extra])
        for i, port in enumerate(extra, start=2):
            log = logs / f"{name}-{i}.log"
            pids[f"{name}-{i}"] = stack.enter_context(served(name, port=port, mode="prod", env=full, log=log)).pid
    for name, port in ports.items():
        process = stack.enter_context(served(name, port=port, mode="prod", env=full, log=logs / f"{name}.log"))
        pids[name] = process.pid
    return ports["core"], pids
