"""The peer in ``bench --only peers``: a Pipecat voice bot with the models voxstack serves, over a WebSocket.

Run by the bench in Pipecat's own virtualenv (``bench/peers/__init__.py``
makes it), never imported by voxstack. One FastAPI app; each WebSocket
connection at ``/ws`` is a fresh session with a pipeline of its own, built as
Pipecat's examples build theirs; ``?turn=silence&silence=0.5`` ends turns on
silence alone, otherwise Pipecat's default, Smart Turn v3 on Silero VAD's 0.2 s
stop, ends them:

    transport in -> Whisper STT -> user aggregator (Silero VAD + turn strategy)
    -> turn marker -> OpenAI-compatible LLM (llama.cpp's server) -> Piper TTS
    -> transport out -> assistant aggregator

The wire is what a custom Pipecat integration would use: binary messages are
16-bit PCM at 16 kHz each way; text messages are JSON: ``{"type": "ready"}``
once the pipeline runs, and ``{"type": "turn", "text": ...}`` each time the
user's turn ends and the LLM is asked (what the bench counts cut-offs by).
The models are loaded once per process and shared by the sessions, which
run one at a time: loading them is not part of a turn.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    LLMContextFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair, LLMUserAggregatorParams
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.piper import tts as piper_tts
from pipecat.services.whisper import stt as whisper_stt
from pipecat.transcriptions.language import Language
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

RATE = 16_000
VAD_STOP = 0.2  # seconds: Pipecat's recommended Silero stop time


class RawSerializer(FrameSerializer):
    """PCM16 mono at 16 kHz as binary messages; transport messages as JSON text."""

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, OutputAudioRawFrame):
            return frame.audio
        if isinstance(frame, (OutputTransportMessageFrame, OutputTransportMessageUrgentFrame)):
            return json.dumps(frame.message)
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if isinstance(data, bytes):
            return InputAudioRawFrame(audio=data, sample_rate=RATE, num_channels=1)
        return None


class TurnMarker(FrameProcessor):
    """Tells the client each time the user's turn ends and the LLM is asked, with what the user said since the
    last reply (the messages the LLM answers now)."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            said: list[str] = []
            for message in frame.context.get_messages():
                if message.get("role") == "assistant":
                    said = []
                elif message.get("role") == "user":
                    said.append(str(message.get("content", "")))
            text = " ".join(said)
            await self.push_frame(OutputTransportMessageUrgentFrame(message={"type": "turn", "text": str(text)}))
        await self.push_frame(frame, direction)


def _share_models(beam_size: int) -> None:
    """Load Whisper and Piper once per process, and decode with ``beam_size`` (Pipecat's service uses 5)."""
    whisper_class = whisper_stt.WhisperModel

    @functools.cache
    def whisper(path: str, device: str = "cpu", compute_type: str = "int8") -> Any:
        model = whisper_class(path, device=device, compute_type=compute_type)
        model.transcribe = functools.partial(model.transcribe, beam_size=beam_size)
        return model

    voice_class = piper_tts.PiperVoice

    class SharedVoice:
        load = staticmethod(functools.cache(lambda path, use_cuda=False: voice_class.load(path, use_cuda=use_cuda)))

    whisper_stt.WhisperModel = whisper
    piper_tts.PiperVoice = SharedVoice


def app(args: argparse.Namespace) -> FastAPI:
    api = FastAPI()

    @api.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    @api.websocket("/ws")
    async def session(websocket: WebSocket) -> None:
        await websocket.accept()
        turn = websocket.query_params.get("turn", "smart-turn")
        silence = float(websocket.query_params.get("silence", "0.5"))
        transport = FastAPIWebsocketTransport(
            websocket,
            FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                audio_in_sample_rate=RATE,
                audio_out_sample_rate=RATE,
                serializer=RawSerializer(),
            ),
        )
        stt = whisper_stt.WhisperSTTService(
            device="cpu",
            compute_type="int8",
            settings=whisper_stt.WhisperSTTService.Settings(model=args.whisper, language=Language.EN),
        )
        llm = OpenAILLMService(
            api_key="unused",
            base_url=args.llm_url,
            settings=OpenAILLMService.Settings(
                model="local",
                system_instruction=args.system_prompt,
                temperature=args.temperature,
                top_p=args.top_p,
                max_tokens=args.max_tokens,
            ),
        )
        tts = piper_tts.PiperTTSService(
            download_dir=Path(args.voice).parent,
            settings=piper_tts.PiperTTSService.Settings(voice=Path(args.voice).stem),
        )
        stop = None  # Pipecat's default: Smart Turn v3 on Silero VAD's 0.2 s stop
        if turn == "silence":
            stop = [SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=max(0.0, silence - VAD_STOP))]
        context = LLMContext()
        aggregators = LLMContextAggregatorPair(
            context,
            user_params=LLMUserAggregatorParams(
                vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=VAD_STOP)),
                user_turn_strategies=UserTurnStrategies(stop=stop),
            ),
        )
        pipeline = Pipeline(
            [
                transport.input(),
                stt,
                aggregators.user(),
                TurnMarker(),
                llm,
                tts,
                transport.output(),
                aggregators.assistant(),
            ]
        )
        worker = PipelineWorker(
            pipeline,
            params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
            enable_rtvi=False,
            idle_timeout_secs=None,
        )

        @transport.event_handler("on_client_connected")
        async def connected(_transport: Any, _client: Any) -> None:
            await worker.queue_frame(OutputTransportMessageUrgentFrame(message={"type": "ready"}))

        @transport.event_handler("on_client_disconnected")
        async def disconnected(_transport: Any, _client: Any) -> None:
            await worker.cancel()

        await WorkerRunner(handle_sigint=False).run(worker)

    return api


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--whisper", required=True, help="faster-whisper model folder")
    parser.add_argument("--voice", required=True, help="piper voice .onnx (its .onnx.json beside it)")
    parser.add_argument("--llm-url", required=True, help="OpenAI-compatible base URL")
    parser.add_argument("--system-prompt", required=True)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--beam-size", type=int, default=1)
    args = parser.parse_args()
    # Pipecat logs every frame's step at DEBUG; a deployment would not, and neither does voxstack's prod mode.
    logger.remove()
    logger.add(sys.stderr, level="INFO")
    _share_models(args.beam_size)
    uvicorn.run(app(args), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
