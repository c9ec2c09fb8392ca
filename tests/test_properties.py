"""Property tests (hypothesis): whatever a caller sends, a clear error or a result, never a crash or a hang."""

from __future__ import annotations

import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxstack import audio
from voxstack.config import SettingsError, load_settings
from voxstack.core import events
from voxstack.errors import VoxError
from voxstack.rpc_status import clean_request_id
from voxstack.text import SentenceStream, sentence_spans
from voxstack.v1 import common_pb2

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=4096), st.sampled_from([audio.WAV, audio.PCM16, 0, 9]), st.integers(-5, 200_000),
       st.integers(-2, 10))  # fmt: skip
def test_decoding_any_bytes_gives_audio_or_a_typed_error(data: bytes, encoding: int, rate: int, channels: int) -> None:
    fmt = common_pb2.AudioFormat(encoding=encoding, sample_rate_hz=max(rate, 0), channels=max(channels, 0))
    try:
        decoded = audio.decode(data, fmt, max_seconds=60)
    except VoxError as exc:
        assert exc.message and exc.reason
        return
    assert decoded.samples.ndim == 2 and decoded.samples.shape[0] > 0
    assert audio.MIN_RATE <= decoded.sample_rate <= audio.MAX_RATE


@FAST
@given(st.binary(min_size=0, max_size=512))
def test_a_wav_header_followed_by_anything_never_crashes(tail: bytes) -> None:
    try:
        audio.decode_wav(b"RIFF" + len(tail).to_bytes(4, "little") + b"WAVE" + tail)
    except VoxError as exc:
        assert exc.reason in ("BAD_WAV", "BAD_SAMPLE_RATE", "BAD_CHANNELS", "EMPTY_AUDIO") and exc.message


@FAST
@given(st.text(max_size=600), st.integers(20, 300))
def test_sentences_cover_the_text_in_order_within_the_limit(text: str, max_chars: int) -> None:
    spans = sentence_spans(text, max_chars=max_chars)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        assert end - start <= max_chars
        previous_end = end
    covered = "".join(text[a:b] for a, b in spans)
    assert "".join(covered.split()) == "".join(text.split())  # nothing but whitespace is lost


@FAST
@given(st.lists(st.text(max_size=40), max_size=30), st.booleans(), st.integers(0, 4))
def test_streamed_sentences_are_the_text_however_it_is_cut(deltas: list[str], first_clause: bool, words: int) -> None:
    stream = SentenceStream(first_clause=first_clause, first_phrase_words=words)
    out = [piece for delta in deltas for piece in stream.feed(delta)] + stream.flush()
    assert "".join("".join(out).split()) == "".join("".join(deltas).split())


@FAST
@given(st.dictionaries(st.sampled_from(["VOXSTACK_ASR__PORT", "VOXSTACK_MODE", "VOXSTACK_LOG_LEVEL",
                                        "VOXSTACK_CORE__MAX_TEXT_CHARS", "VOXSTACK_LLM__TEMPERATURE"]),
                       st.text(max_size=12)))  # fmt: skip
def test_settings_from_any_environment_load_or_name_the_variable(env: dict[str, str]) -> None:
    overrides = {}
    for key, value in env.items():
        parts = key.removeprefix("VOXSTACK_").lower().split("__")
        if len(parts) == 1:
            overrides[parts[0]] = value
        else:
            overrides.setdefault(parts[0], {})[parts[1]] = value
    try:
        load_settings(**overrides)
    except SettingsError as exc:
        assert any(name in str(exc) for name in env)


@FAST
@given(st.one_of(st.none(), st.text(max_size=300), st.text(alphabet=string.ascii_letters + "._:-", max_size=200)))
def test_request_ids_are_kept_only_when_safe(value: str | None) -> None:
    cleaned = clean_request_id(value)
    assert 1 <= len(cleaned) <= 128 and all(c.isascii() and (c.isalnum() or c in "._:-") for c in cleaned)
    if value and len(value) <= 128 and all(c in string.ascii_letters + string.digits + "._:-" for c in value):
        assert cleaned == value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)


@FAST
@given(st.one_of(st.none(), st.text(max_size=200), json_values.map(json.dumps),
                 st.dictionaries(st.sampled_from(["type", "sample_rate", "channels", "session_id", "language",
                                                  "interim_results"]), json_values).map(
                     lambda d: json.dumps({"type": "config", **d}))))  # fmt: skip
def test_any_first_websocket_message_is_a_config_or_a_named_error(message: str | None) -> None:
    try:
        config, session = events.parse_config(message)
    except VoxError as exc:
        assert exc.reason in ("CONFIG_FIRST", "BAD_CONFIG", "BAD_SAMPLE_RATE", "BAD_CHANNELS", "BAD_SESSION_ID")
        return
    assert audio.MIN_RATE <= config.sample_rate <= audio.MAX_RATE and config.channels in (1, 2) and session
