"""Derive the Docker Swarm stack file from the production Compose file (``make docs``).

docker-compose.yml stays the one description of the production services; this
writes deploy/swarm/docker-stack.yml from it with what `docker stack deploy`
needs instead:
- replicas per model service (``VOXSTACK_{ASR,LLM,TTS}_REPLICAS``, 2 by default)
  with ``endpoint_mode: dnsrr``: the service name resolves to every task, and the
  core balances per call over them (``dns:///``). Swarm's virtual IPs need IPVS
  in the kernel, which some hosts lack; the core needs the task addresses anyway.
- the core's port published in ``host`` mode (the routing mesh needs IPVS too),
  on every interface of the node: keys are required (no anonymous default).
- overlay networks; /tmp as a tmpfs mount; restart policy in ``deploy``.
- dropped, as Swarm ignores or rejects them: ``build``, ``restart``,
  ``depends_on`` (the core waits for its services itself), ``cpu_shares``,
  the top-level ``name``, and the services of optional profiles (wyoming).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "docker-compose.yml"
TARGET = ROOT / "deploy" / "swarm" / "docker-stack.yml"
MODEL_SERVICES = ("asr", "llm", "tts")
DROPPED = ("build", "restart", "depends_on", "cpu_shares", "profiles", "tmpfs", "ports")

HEADER = """\
# voxstack on Docker Swarm. GENERATED from docker-compose.yml by `make docs`
# (deploy/swarm/derive.py): edit the Compose file, then regenerate.
#
#   docker swarm init --advertise-addr 127.0.0.1       (a single-node swarm, if you have none)
#   VOXSTACK_API_KEYS='["a-long-random-key"]' docker stack deploy --resolve-image never \\
#       -c deploy/swarm/docker-stack.yml voxstack
#
# The images must be on every node (make images here; a registry for several nodes).
# Replicas: VOXSTACK_ASR_REPLICAS, VOXSTACK_LLM_REPLICAS, VOXSTACK_TTS_REPLICAS (2 each).
# The core publishes VOXSTACK_PORT (8080) on every interface of its node: set keys.
"""


def service(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in spec.items() if key not in DROPPED}
    deploy = dict(out.get("deploy", {}))
    deploy["restart_policy"] = {"condition": "any", "delay": "1s"}
    deploy["endpoint_mode"] = "dnsrr"
    if name in MODEL_SERVICES:
        deploy["replicas"] = f"${{VOXSTACK_{name.upper()}_REPLICAS:-2}}"
        deploy["update_config"] = {"parallelism": 1, "order": "start-first"}
    out["deploy"] = deploy
    for mount in spec.get("tmpfs", ()):
        path = mount.split(":")[0]
        out.setdefault("volumes", []).append({"type": "tmpfs", "target": path, "tmpfs": {"size": 64 * 1024 * 1024}})
    for port in spec.get("ports", ()):
        # BIND:PUBLISHED:TARGET, each maybe a ${VARIABLE:-default}: Swarm cannot bind one address.
        rest, target = port.rsplit(":", 1)
        match = re.search(r"(\$\{[^}]*\}|\d+)$", rest)
        assert match is not None, port
        published = match.group(1)
        out.setdefault("ports", []).append(
            {"target": int(target), "published": published, "protocol": "tcp", "mode": "host"}
        )
    environment = out.get("environment")
    if isinstance(environment, dict) and "VOXSTACK_CORE__ALLOW_ANONYMOUS" in environment:
        environment = dict(environment, VOXSTACK_CORE__ALLOW_ANONYMOUS="${VOXSTACK_ALLOW_ANONYMOUS:-false}")
        out["environment"] = environment
    return out


def derive(compose: dict[str, Any]) -> dict[str, Any]:
    services = {name: service(name, spec) for name, spec in compose["services"].items() if not spec.get("profiles")}
    networks = {name: {**(spec or {}), "driver": "overlay"} for name, spec in compose.get("networks", {}).items()}
    return {"version": "3.8", "services": services, "networks": networks}


class _Plain(yaml.SafeDumper):
    """Writes shared values out in full: no YAML anchors in the stack file."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render() -> str:
    compose = yaml.safe_load(SOURCE.read_text())
    body = yaml.dump(derive(compose), Dumper=_Plain, sort_keys=False, default_flow_style=False, width=120)
    return HEADER + body


def main() -> int:
    TARGET.write_text(render())
    sys.stderr.write(f"wrote {TARGET.relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
