"""Edits a test owns: code appended to a module of a copied source tree, replaced on each save.

Tests of hot reload must change code and see the change served. Rewriting a
line of production code by exact match breaks whenever that line is
reworded; instead a test appends its own block after a marker comment (a
constant, a function, a wrapper of a servicer method) and replaces only that
block on later saves, so production code is never matched.
"""

from __future__ import annotations

from pathlib import Path

TAIL_MARK = "\n# ---- appended by a test: everything below is the test's own ----\n"


def _tagged_errors(servicer: str, method: str) -> str:
    """Code that wraps a streaming method so its INVALID_ARGUMENT messages end in " {mark}"."""
    return f"""
from voxstack.errors import InvalidInput as _TestInvalidInput

_test_method = {servicer}.{method}


async def _test_tagged(self, request, context):
    try:
        async for reply in _test_method(self, request, context):
            yield reply
    except _TestInvalidInput as exc:
        exc.message += " {{mark}}"
        raise


{servicer}.{method} = _test_tagged
"""


# Code that makes each service's answers carry a version marker, keyed by the
# file it is appended to. ``{mark}`` is replaced by the marker (e.g. "v3").
MARKER_TAILS: dict[str, tuple[str, str]] = {
    # ListVoices: every voice's language ends in "-{mark}".
    "tts": (
        "tts/service.py",
        """
_test_list_voices = TtsServicer.ListVoices


async def _test_marked_voices(self, request, context):
    reply = await _test_list_voices(self, request, context)
    for voice in reply.voices:
        voice.language += "-{mark}"
    return reply


TtsServicer.ListVoices = _test_marked_voices
""",
    ),
    # A stream's INVALID_ARGUMENT messages end in " {mark}".
    "asr": ("asr/service.py", _tagged_errors("AsrServicer", "StreamingRecognize")),
    "llm": ("llm/service.py", _tagged_errors("LlmServicer", "Generate")),
    # GET /test/marker answers {"status": "{mark}"}.
    "core": (
        "core/routes/health.py",
        """
@router.get("/test/marker", include_in_schema=False)
async def _test_marker() -> dict[str, str]:
    return {"status": "{mark}"}
""",
    ),
}


# The same marks where the scripted fakes (voxstack.testing.fakes) serve instead of the services' servicers.
FAKE_MARKER_TAILS: dict[str, tuple[str, str]] = {
    **MARKER_TAILS,
    "tts": ("testing/fakes/tts.py", MARKER_TAILS["tts"][1].replace("TtsServicer", "FakeTtsServicer")),
}


# Code that marks what each model service's *engine* serves (appended to its engine module, which a dev warm
# spare has loaded ahead of a reload: an edit here must start the service cold).
ENGINE_MARKER_TAILS: dict[str, tuple[str, str]] = {
    # ListModels: the languages end with "{mark}".
    "asr": (
        "asr/engine.py",
        """
_test_languages = WhisperEngine.languages


def _test_marked_languages(self):
    return [*_test_languages.fget(self), "{mark}"]


WhisperEngine.languages = property(_test_marked_languages)
""",
    ),
    # Generate: the first delta is "{mark}".
    "llm": (
        "llm/llama_engine.py",
        """
from voxstack.llm.engine import Delta as _TestDelta

_test_stream = LlamaCppEngine.stream


async def _test_marked_stream(self, conversation):
    yield _TestDelta("{mark}")
    async for event in _test_stream(self, conversation):
        yield event


LlamaCppEngine.stream = _test_marked_stream
""",
    ),
    # ListVoices: every voice's language gains "+{mark}" (the engine's voice info).
    "tts": (
        "tts/engine.py",
        """
import dataclasses as _test_dataclasses

_test_load = PiperEngine.load


def _test_marked_load(self):
    _test_load(self)
    self.infos = {n: _test_dataclasses.replace(v, language=v.language + "+{mark}") for n, v in self.infos.items()}


PiperEngine.load = _test_marked_load
""",
    ),
}


def set_tail(path: Path, code: str) -> None:
    """Make ``code`` the test's block at the end of ``path`` (replacing the block an earlier call left)."""
    text = path.read_text()
    original = text.split(TAIL_MARK, 1)[0]
    path.write_text(original + TAIL_MARK + code.lstrip("\n"))


def clear_tail(path: Path) -> None:
    """Remove the test's block from ``path``."""
    path.write_text(path.read_text().split(TAIL_MARK, 1)[0])


def set_marker(package_dir: Path, service: str, mark: str, tails: dict[str, tuple[str, str]] = MARKER_TAILS) -> Path:
    """Append (or replace) ``service``'s marker block from ``tails`` in the source tree at ``package_dir``;
    the file edited."""
    relative, template = tails[service]
    path = package_dir / relative
    set_tail(path, template.replace("{mark}", mark))
    return path


def set_engine_marker(package_dir: Path, service: str, mark: str) -> Path:
    """Append (or replace) the marker block of ``service``'s engine module; the file edited."""
    return set_marker(package_dir, service, mark, ENGINE_MARKER_TAILS)
