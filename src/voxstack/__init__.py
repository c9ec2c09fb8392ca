"""voxstack: a voice-assistant backend of gRPC microservices with a hot-reload development mode."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """The installed voxstack's version ("unknown" in a source tree that is not installed)."""
    try:
        return version("voxstack")
    except PackageNotFoundError:
        return "unknown"
