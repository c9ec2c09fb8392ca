"""The Wyoming text-to-speech server: ``synthesize`` in, ``audio-start``/``audio-chunk``/``audio-stop`` out.

Speech streams from the tts sentence by sentence, cut into ``samples_per_chunk``
pieces of 16-bit mono at the voice's own rate. Streaming text
(``synthesize-start``, ``synthesize-chunk``..., ``synthesize-stop``) is spoken a
sentence at a time as soon as each sentence is complete, each sentence its own
audio-start..audio-stop, then ``synthesize-stopped``; the ``synthesize`` a
streaming client also sends is ignored, as the protocol asks. A voice is chosen
by name and, for voices with several speakers, by speaker name or number.
"""

from __future__ import annotations

import logging

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped, SynthesizeVoice

from voxstack.codes import ErrorCode
from voxstack.core.clients import Backends
from voxstack.core.wyoming.info import tts_info
from voxstack.core.wyoming.protocol import Handler, parse
from voxstack.errors import InvalidInput
from voxstack.text import SentenceStream
from voxstack.v1 import common_pb2, tts_pb2

logger = logging.getLogger(__name__)

WIDTH = 2  # bytes a sample: the tts sends 16-bit PCM


def speaker_id(voice: tts_pb2.Voice, speaker: str) -> int:
    """The id of ``speaker`` (a name the voice lists, or a number below its speaker count)."""
    if speaker in voice.speakers:
        return list(voice.speakers).index(speaker)
    if speaker.isdigit() and int(speaker) < max(1, voice.num_speakers):
        return int(speaker)
    if voice.num_speakers <= 1:
        known = "it has one speaker: leave speaker empty or give 0"
    else:
        known = f"use {', '.join(voice.speakers) or f'0 to {voice.num_speakers - 1}'}"
    raise InvalidInput(
        f"unknown speaker {speaker[:100]!r} of voice {voice.name}: {known}", reason=ErrorCode.UNKNOWN_SPEAKER
    )


def _text(value: object, event: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{event} needs a text string", reason=ErrorCode.BAD_EVENT)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: JSON can carry it, UTF-8 (and so gRPC) cannot
        raise InvalidInput(
            f"{event} text is not valid Unicode (a lone surrogate)", reason=ErrorCode.BAD_EVENT
        ) from None
    return value


class TtsHandler(Handler):
    """One client of the text-to-speech server."""

    def __init__(self, backends: Backends, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.backends = backends
        # Between synthesize-start and synthesize-stop: the text so far and the voice.
        self.stream: SentenceStream | None = None
        self.voice: SynthesizeVoice | None = None

    async def handle(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event((await tts_info(self.backends)).event())
        elif Synthesize.is_type(event.type):
            if self.stream is None:  # inside a stream it only repeats the text, for older servers
                request = parse(Synthesize, event)
                await self.speak(_text(request.text, "synthesize"), request.voice)
        elif SynthesizeStart.is_type(event.type):
            self.voice = parse(SynthesizeStart, event).voice
            self.stream = SentenceStream()
        elif SynthesizeChunk.is_type(event.type):
            stream = self._streaming("synthesize-chunk")
            for sentence in stream.feed(_text(event.data.get("text"), "synthesize-chunk")):
                await self.speak(sentence, self.voice)
        elif SynthesizeStop.is_type(event.type):
            stream = self._streaming("synthesize-stop")
            for sentence in stream.flush():
                await self.speak(sentence, self.voice)
            self.reset()
            await self.write_event(SynthesizeStopped().event())
        else:
            logger.debug("ignoring a %s event", event.type)
        return True

    def _streaming(self, event: str) -> SentenceStream:
        if self.stream is None:
            raise InvalidInput(
                f"{event} outside a stream: send synthesize-start first", reason=ErrorCode.UNEXPECTED_EVENT
            )
        return self.stream

    def reset(self) -> None:
        self.stream = None
        self.voice = None

    async def speak(self, text: str, voice: SynthesizeVoice | None) -> None:
        """One text as audio-start, audio-chunks and audio-stop."""
        request = await self._request(text, voice)
        step = self.limits.samples_per_chunk * WIDTH
        started = False
        samples = rate = 0
        async for chunk in self.backends.stream("tts", self.backends.tts.SynthesizeStream, request):
            rate = chunk.format.sample_rate_hz
            if not started:
                await self.write_event(AudioStart(rate=rate, width=WIDTH, channels=1).event())
                started = True
            for start in range(0, len(chunk.audio), step):
                piece = chunk.audio[start : start + step]
                timestamp = samples * 1000 // rate
                await self.write_event(AudioChunk(rate, WIDTH, 1, piece, timestamp=timestamp).event())
                samples += len(piece) // WIDTH
        await self.write_event(AudioStop(timestamp=samples * 1000 // max(1, rate) if started else None).event())

    async def _request(self, text: str, voice: SynthesizeVoice | None) -> tts_pb2.SynthesizeRequest:
        options = tts_pb2.SynthesisOptions()
        name = ""
        if voice is not None and (voice.name or voice.speaker):
            name = voice.name or ""
            if not isinstance(name, str) or (voice.speaker is not None and not isinstance(voice.speaker, str)):
                raise InvalidInput("voice name and speaker must be strings", reason=ErrorCode.BAD_EVENT)
            if voice.speaker:
                voices = await self.backends.unary("tts", self.backends.tts.ListVoices, tts_pb2.ListVoicesRequest())
                chosen = next((v for v in voices.voices if v.name == name or (not name and v.is_default)), None)
                if chosen is not None:  # an unknown voice is named by the tts itself
                    options.speaker_id = speaker_id(chosen, voice.speaker)
        pcm = common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, channels=1)
        return tts_pb2.SynthesizeRequest(text=text, voice=name, format=pcm, options=options)
