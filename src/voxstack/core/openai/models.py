"""``GET /v1/models``: the models this stack serves, with the ids the OpenAI-compatible routes accept.

Ids come from the settings the services run with (the core reads the same
settings): the asr's model folder, the llm's GGUF file (or its upstream
model), and ``piper`` for speech. OpenAI's own model names for transcription
and speech are accepted as aliases, so apps configured for OpenAI work as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import APIRouter

from voxstack.codes import OpenAICode
from voxstack.config import Settings
from voxstack.core.deps import SettingsDep
from voxstack.core.openai.errors import OPENAI_ERRORS, NotFound, OpenAIRoute
from voxstack.models import WHISPER

Kind = Literal["asr", "llm", "tts"]
ALIASES: dict[str, Kind] = {
    "whisper-1": "asr",
    "gpt-4o-transcribe": "asr",
    "gpt-4o-mini-transcribe": "asr",
    "tts-1": "tts",
    "tts-1-hd": "tts",
    "gpt-4o-mini-tts": "tts",
}
CREATED = 1_700_000_000  # a fixed time: the SDK wants one, and a model's age means nothing here

router = APIRouter(tags=["openai"], route_class=OpenAIRoute, responses=OPENAI_ERRORS)


def served(settings: Settings) -> dict[str, Kind]:
    """The served models' ids."""
    asr = Path(settings.asr.model).name if settings.asr.model else WHISPER.folder
    llm = settings.llm
    if llm.engine == "openai":
        chat = llm.upstream_model or "upstream"
    else:
        chat = Path(llm.model).stem if llm.model else Path(llm.llm_preset.gguf).stem
    return {asr: "asr", chat: "llm", "piper": "tts"}


def resolve(settings: Settings, model: str, kind: Kind) -> str:
    """The id of the model ``model`` names for ``kind`` (its own id, or an alias); NotFound otherwise."""
    ids = served(settings)
    if ids.get(model) == kind or ALIASES.get(model) == kind:
        return model
    wanted = [i for i, k in ids.items() if k == kind]
    raise NotFound(
        f"The model `{model[:100]}` does not exist or is not served here; use {', '.join(wanted)}",
        reason=OpenAICode.MODEL_NOT_FOUND,
    )


def _card(model_id: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": "voxstack"}


@router.get("/v1/models")
async def list_models(settings: SettingsDep) -> dict[str, object]:
    """The served models (OpenAI's model list)."""
    return {"object": "list", "data": [_card(i) for i in served(settings)]}


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str, settings: SettingsDep) -> dict[str, object]:
    """One served model, by id or alias; 404 for any other."""
    kind = served(settings).get(model_id) or ALIASES.get(model_id)
    if kind is None:
        raise NotFound(f"The model `{model_id[:100]}` does not exist", reason=OpenAICode.MODEL_NOT_FOUND)
    return _card(model_id)
