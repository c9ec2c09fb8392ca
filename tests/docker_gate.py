"""The Docker tests' gate: skip without an engine, fail instead where CI says one must be there."""

from __future__ import annotations

import os

import pytest

from voxstack.testing.compose import docker_problem


def require_docker() -> None:
    """Skip when there is no Docker engine, unless VOXSTACK_REQUIRE_DOCKER is set (CI): then fail."""
    problem = docker_problem()
    if problem:
        if os.environ.get("VOXSTACK_REQUIRE_DOCKER"):
            pytest.fail(f"Docker is required here (VOXSTACK_REQUIRE_DOCKER is set): {problem}")
        pytest.skip(problem)
