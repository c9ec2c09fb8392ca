"""What ``describe`` answers: the asr's model and languages, the tts's voices and speakers, asked of the services.

Asked again on every ``describe`` (two small calls), so a service restarted
with another model or more voices is reported as it is now.
"""

from __future__ import annotations

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker

from voxstack import package_version
from voxstack.core.clients import Backends
from voxstack.v1 import asr_pb2, tts_pb2

VOXSTACK = Attribution(name="voxstack", url="")  # no public home yet
WHISPER = Attribution(name="OpenAI Whisper via faster-whisper", url="https://github.com/SYSTRAN/faster-whisper")
PIPER = Attribution(name="Piper", url="https://github.com/OHF-Voice/piper1-gpl")


async def asr_info(backends: Backends) -> Info:
    reply = await backends.unary("asr", backends.asr.ListModels, asr_pb2.ListModelsRequest())
    models = [
        AsrModel(
            name=m.name,
            description=f"{m.name} (faster-whisper)",
            attribution=WHISPER,
            installed=True,
            version=None,
            languages=list(m.languages),
        )
        for m in reply.models
    ]
    program = AsrProgram(
        name="voxstack-asr",
        description="voxstack speech to text (faster-whisper)",
        attribution=VOXSTACK,
        installed=True,
        version=package_version(),
        models=models,
        supports_transcript_streaming=True,
        # The transcript is final at audio-stop: the client decides when the command ends.
        requires_external_vad=True,
    )
    return Info(asr=[program])


def voice(v: tts_pb2.Voice) -> TtsVoice:
    return TtsVoice(
        name=v.name,
        description=f"{v.name} ({v.sample_rate_hz} Hz{', default' if v.is_default else ''})",
        attribution=PIPER,
        installed=True,
        version=None,
        languages=[v.language],
        speakers=[TtsVoiceSpeaker(name=s) for s in v.speakers] or None,
    )


async def tts_info(backends: Backends) -> Info:
    reply = await backends.unary("tts", backends.tts.ListVoices, tts_pb2.ListVoicesRequest())
    # The default voice first: clients that take the first voice get the one the stack speaks with.
    voices = sorted(reply.voices, key=lambda v: not v.is_default)
    program = TtsProgram(
        name="voxstack-tts",
        description="voxstack text to speech (piper)",
        attribution=VOXSTACK,
        installed=True,
        version=package_version(),
        voices=[voice(v) for v in voices],
        supports_synthesize_streaming=True,
    )
    return Info(tts=[program])
