"""End of turn by model: the turn model's input pipeline, and the rule that ended each utterance."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from voxstack.asr.streaming import RecognitionStream
from voxstack.asr.turn import TurnModel
from voxstack.asr.vad import SileroStream, load_silero_session
from voxstack.audio import float_to_pcm16, resample
from voxstack.config import load_settings
from voxstack.models import TURN, ModelError
from voxstack.server.worker import Worker
from voxstack.testing.speech import VOICE_RATE, silence
from voxstack.v1 import asr_pb2, asr_pb2_grpc, common_pb2

pytestmark = pytest.mark.models

REFERENCE = Path(__file__).parent / "data" / "turn_reference.json"


def clip16k(speech, text: str, tail: float) -> np.ndarray:  # type: ignore[no-untyped-def]
    """As tests/data/make_turn_reference.py makes the clips."""
    return resample(np.concatenate([speech.say(text), silence(tail)]), VOICE_RATE, 16_000).astype(np.float32)


@pytest.fixture(scope="module")
def turn(models_dir: Path) -> TurnModel:
    return TurnModel(TURN.path(models_dir) / TURN.files[0].name)


def test_the_input_pipeline_gives_the_probabilities_of_the_models_own_feature_code(speech, turn) -> None:  # type: ignore[no-untyped-def]
    reference = json.loads(REFERENCE.read_text())["clips"]
    for clip in reference:
        audio = clip16k(speech, clip["text"], clip["tail_seconds"])
        # Else the voice, not the pipeline, changed: remake the reference (tests/data/make_turn_reference.py).
        assert hashlib.sha256(audio.tobytes()).hexdigest() == clip["audio_sha256"], clip["text"]
        assert turn.probability(audio) == pytest.approx(clip["probability"], abs=2e-3), clip["text"]
    assert len(reference) >= 5 and any(len(c["text"].split()) > 20 for c in reference)  # one is longer than 8 s


def test_a_missing_or_broken_turn_model_is_a_startup_error_naming_it(tmp_path: Path, models_dir: Path) -> None:
    settings = load_settings(models_dir=str(tmp_path)).asr
    with pytest.raises(ModelError, match=r"run `voxstack models pull asr`"):
        TurnModel.for_settings(settings, tmp_path)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    with pytest.raises(ModelError, match=r"turn model .*broken\.onnx could not be loaded"):
        TurnModel.for_settings(settings.model_copy(update={"turn_model": broken}), tmp_path)
    from faster_whisper.vad import get_assets_path

    with pytest.raises(ModelError, match=r"silero_vad_v6\.onnx does not take Smart Turn v3's input"):
        TurnModel(Path(get_assets_path()) / "silero_vad_v6.onnx")  # an ONNX model, not a turn model
    with pytest.raises(ModelError, match=r"nothing\.onnx does not exist"):
        TurnModel.for_settings(settings.model_copy(update={"turn_model": tmp_path / "nothing.onnx"}), tmp_path)
    assert TurnModel.for_settings(settings.model_copy(update={"turn_detection": "silence"}), tmp_path) is None


def stream(address: str, audio: np.ndarray) -> list[asr_pb2.StreamingRecognizeResponse]:
    pcm = float_to_pcm16(audio)
    config = asr_pb2.RecognitionConfig(
        format=common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=16_000, channels=1),
        speculative_results=True,
    )

    def requests() -> Iterator[asr_pb2.StreamingRecognizeRequest]:
        yield asr_pb2.StreamingRecognizeRequest(config=config)
        for i in range(0, len(pcm), 3200):
            yield asr_pb2.StreamingRecognizeRequest(audio=pcm[i : i + 3200])

    with grpc.insecure_channel(address) as channel:
        return list(asr_pb2_grpc.AsrStub(channel).StreamingRecognize(requests(), timeout=60))


def test_a_finished_question_ends_by_the_model_without_waiting_the_longest_silence(speech, real_stack) -> None:  # type: ignore[no-untyped-def]
    question = clip16k(speech, "What is the capital of France?", 0.0)
    voiced = np.nonzero(np.abs(question) > 1e-3)[0]
    speech_end = (voiced[-1] + 1) / 16_000
    # The shared stack's asr has the default turn settings.
    events = stream(real_stack.address("asr"), np.concatenate([question, np.zeros(2 * 16_000, np.float32)]))
    ended = [e.speech_ended for e in events if e.WhichOneof("event") == "speech_ended"]
    finals = [e.final.result.text for e in events if e.WhichOneof("event") == "final"]
    assert len(ended) == 1 and len(finals) == 1
    assert ended[0].rule == asr_pb2.END_RULE_TURN_MODEL
    assert ended[0].end_of_turn_probability >= load_settings().asr.turn_threshold
    # Ended in audio time within the turn silence plus the padding, far from the 1 s of silence alone.
    settings = load_settings().asr
    assert ended[0].offset_seconds - speech_end < (settings.turn_silence_ms + settings.vad_pad_ms + 100) / 1000
    assert "capital of france" in finals[0].lower()


def trimmed(audio: np.ndarray) -> np.ndarray:
    voiced = np.nonzero(np.abs(audio) > 1e-3)[0]
    return audio[voiced[0] : voiced[-1] + 1]


class ScriptedTurn:
    """Stands in for the turn model: says 'not finished' for the first ``unfinished`` pauses it is asked about."""

    def __init__(self, unfinished: int) -> None:
        self.unfinished = unfinished
        self.asked = 0

    def probability(self, audio: np.ndarray) -> float:
        self.asked += 1
        return 0.1 if self.asked <= self.unfinished else 0.99


@contextlib.asynccontextmanager
async def in_process(  # type: ignore[no-untyped-def]
    settings, engine, turn, events: list[asr_pb2.StreamingRecognizeResponse], speculative: bool = False
) -> AsyncIterator[RecognitionStream]:
    """An in-process RecognitionStream whose events go to ``events``; finished and closed on the way out."""
    config = asr_pb2.RecognitionConfig(
        format=common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_PCM16, sample_rate_hz=16_000, channels=1),
        speculative_results=speculative,
    )
    worker = Worker("asr", 1, 4, job="decode")
    recognition = RecognitionStream(
        config,
        engine=engine,
        vad=SileroStream(load_silero_session()),
        turn=turn,
        settings=settings.asr,
        worker=worker,
        emit=events.append,
    )
    try:
        yield recognition
        await recognition.finish()
    finally:
        await recognition.close()
        worker.close()


def recognised(  # type: ignore[no-untyped-def]
    settings, engine, audio: np.ndarray, turn=None, join_second=False, chunk=3200
) -> list[asr_pb2.StreamingRecognizeResponse]:
    """The events of an in-process RecognitionStream fed ``audio`` (16 kHz) in ``chunk``-byte pieces; with
    ``join_second``, a JoinPrevious once the second utterance has started (what the core sends then)."""
    events: list[asr_pb2.StreamingRecognizeResponse] = []

    async def run() -> None:
        async with in_process(settings, engine, turn, events) as recognition:
            pcm = float_to_pcm16(audio)
            joined = False
            for i in range(0, len(pcm), chunk):
                await recognition.feed(pcm[i : i + chunk])
                started = sum(e.WhichOneof("event") == "speech_started" for e in events)
                if join_second and not joined and started == 2:
                    recognition.join_previous()
                    joined = True

    asyncio.run(run())
    return events


def test_a_hesitation_the_model_calls_unfinished_is_one_utterance_with_the_whole_question(speech, asr) -> None:  # type: ignore[no-untyped-def]
    """The stream's rules with a scripted model: the pause is held past turn_silence_ms, speech resumes, the
    question ends by the model after its last word, and there is one final with all of it."""
    settings, engine = load_settings(), asr
    # Exactly 600 ms between the words: piper's own silence at either end of each part trimmed.
    first, second = (trimmed(clip16k(speech, text, 0.0)) for text in ("What is the capital", "of France?"))
    first = np.concatenate([np.zeros(4800, np.float32), first, np.zeros(9600, np.float32)])
    second = np.concatenate([second, np.zeros(24_000, np.float32)])
    turn = ScriptedTurn(unfinished=1)
    events = recognised(settings, engine, np.concatenate([first, second]), turn)
    ended = [e.speech_ended for e in events if e.WhichOneof("event") == "speech_ended"]
    finals = [e.final.result.text for e in events if e.WhichOneof("event") == "final"]
    assert turn.asked == 2
    assert [e.rule for e in ended] == [asr_pb2.END_RULE_TURN_MODEL]
    assert len(finals) == 1 and {"capital", "france"} <= set(finals[0].lower().replace("?", " ").split())


def test_an_utterance_joined_to_the_previous_one_is_decoded_with_it(speech, asr) -> None:  # type: ignore[no-untyped-def]
    """The model takes the hesitation for the end; the speaker goes on, the caller asks for a join: the second
    final is the whole question, decoded as one, and says so."""
    first, second = (trimmed(clip16k(speech, text, 0.0)) for text in ("What is the capital", "of France?"))
    audio = np.concatenate([np.zeros(4800, np.float32), first, np.zeros(9600, np.float32), second])
    audio = np.concatenate([audio, np.zeros(24_000, np.float32)])
    # In 20 ms pieces, as a microphone sends them: the first utterance's padding reaches before the audio held.
    events = recognised(load_settings(), asr, audio, ScriptedTurn(unfinished=0), join_second=True, chunk=640)
    finals = [e.final.result for e in events if e.WhichOneof("event") == "final"]
    assert len(finals) == 2 and not finals[0].joins_previous and finals[1].joins_previous
    whole = set(finals[1].text.lower().replace("?", " ").replace(".", " ").split())
    assert {"what", "capital", "france"} <= whole, finals[1].text


def ended_by_the_caller(  # type: ignore[no-untyped-def]
    engine, parts: list[np.ndarray], end_at: int, end_after: int | None = None
) -> list[asr_pb2.StreamingRecognizeResponse]:
    """The events of an in-process stream fed ``parts`` (16 kHz) in turn, the turn model saying 'not finished'
    at every pause. After part ``end_at``, once its pause has a speculative result, the caller ends the
    utterance there (EndUtterance): at once, or after part ``end_after`` (the speaker having gone on)."""
    events: list[asr_pb2.StreamingRecognizeResponse] = []

    async def speculated() -> asr_pb2.StreamingRecognizeResponse:
        for _ in range(3000):
            found = [e for e in events if e.WhichOneof("event") == "speculative"]
            if found:
                return found[-1]
            await asyncio.sleep(0.01)
        raise AssertionError(f"no speculative result: {events}")

    async def run() -> None:
        async with in_process(load_settings(), engine, ScriptedTurn(unfinished=99), events, True) as recognition:
            judged = None
            for index, part in enumerate(parts):
                pcm = float_to_pcm16(part)
                for i in range(0, len(pcm), 640):
                    await recognition.feed(pcm[i : i + 640])
                if index == end_at:
                    judged = await speculated()
                if judged is not None and index == (end_at if end_after is None else end_after):
                    await recognition.end_utterance(judged.utterance_index, judged.speculative.result.end_seconds)

    asyncio.run(run())
    return events


def test_the_caller_ends_an_utterance_at_a_pause_whose_words_it_judged_whole(speech, asr) -> None:  # type: ignore[no-untyped-def]
    """The turn model says 'not finished'; the caller, having judged the speculative result's words whole,
    ends the utterance at that pause: rule words, the final is that result, no longer silence is waited for.
    An end for a pause the speaker went on after is ignored: one final with the whole question."""
    question = trimmed(clip16k(speech, "What is frozen water called?", 0.0))
    pause = np.zeros(3200, np.float32)  # 200 ms: the pause decode has started, the silence rule is far off
    rest = np.zeros(int(1.5 * 16_000), np.float32)
    events = ended_by_the_caller(asr, [np.concatenate([np.zeros(4800, np.float32), question, pause]), rest], 0)
    ended = [e.speech_ended for e in events if e.WhichOneof("event") == "speech_ended"]
    finals = [e.final.result.text for e in events if e.WhichOneof("event") == "final"]
    spoken = [e.speculative.result.text for e in events if e.WhichOneof("event") == "speculative"]
    assert [e.rule for e in ended] == [asr_pb2.END_RULE_WORDS] and finals == spoken[-1:], events
    # In audio time: at the pause, before the 200 ms fed after it and the padding, not at the silence rule.
    assert ended[0].offset_seconds <= (4800 + question.size + 3200) / 16_000 + 0.01

    first, second = (trimmed(clip16k(speech, text, 0.0)) for text in ("What is the capital", "of France?"))
    # The end comes at the pause after the second part (its own not yet speculated), naming the first pause.
    again = np.concatenate([second, np.zeros(1600, np.float32)])
    parts = [np.concatenate([np.zeros(4800, np.float32), first, pause]), np.zeros(6400, np.float32), again, rest]
    events = ended_by_the_caller(asr, parts, 0, end_after=2)
    ended = [e.speech_ended for e in events if e.WhichOneof("event") == "speech_ended"]
    finals = [e.final.result.text for e in events if e.WhichOneof("event") == "final"]
    assert [e.rule for e in ended] == [asr_pb2.END_RULE_SILENCE] and len(finals) == 1, events
    assert {"capital", "france"} <= set(finals[0].lower().replace("?", " ").replace(".", " ").split())


def test_with_silence_alone_the_turn_ends_at_the_silence_and_says_so(speech, asr, models_dir) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(asr={"turn_detection": "silence", "vad_min_silence_ms": 500})
    assert TurnModel.for_settings(settings.asr, models_dir) is None
    events = recognised(settings, asr, clip16k(speech, "Turn on the lights.", 1.0))
    ended = [e.speech_ended for e in events if e.WhichOneof("event") == "speech_ended"]
    assert [e.rule for e in ended] == [asr_pb2.END_RULE_SILENCE]
    assert not ended[0].HasField("end_of_turn_probability")


class BrokenTurn:
    def probability(self, audio: np.ndarray) -> float:
        raise RuntimeError("onnxruntime failed")


def test_a_turn_model_that_fails_mid_stream_leaves_the_silence_rule(speech, asr) -> None:  # type: ignore[no-untyped-def]
    events = recognised(load_settings(), asr, clip16k(speech, "Turn on the lights.", 1.5), BrokenTurn())
    ended = [e.speech_ended for e in events if e.WhichOneof("event") == "speech_ended"]
    finals = [e.final.result.text for e in events if e.WhichOneof("event") == "final"]
    assert [e.rule for e in ended] == [asr_pb2.END_RULE_SILENCE] and len(finals) == 1
    assert "lights" in finals[0].lower()
