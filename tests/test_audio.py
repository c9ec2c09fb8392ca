"""Decoding, validating, resampling and encoding audio."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from voxstack import audio
from voxstack.errors import InvalidInput, TooLarge
from voxstack.testing.speech import wav
from voxstack.v1 import common_pb2


def fmt(encoding: int, rate: int = 0, channels: int = 0) -> common_pb2.AudioFormat:
    return common_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate, channels=channels)


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_pcm16_mono_and_stereo() -> None:
    samples = tone(0.5, 16000)
    mono = audio.decode(audio.float_to_pcm16(samples), fmt(audio.PCM16, 16000, 1))
    assert mono.sample_rate == 16000 and mono.channels == 1
    assert np.allclose(mono.mono(), samples, atol=1e-4)
    stereo_bytes = audio.float_to_pcm16(np.stack([samples, -samples], axis=1).reshape(-1))
    stereo = audio.decode(stereo_bytes, fmt(audio.PCM16, 16000, 2))
    assert stereo.channels == 2 and stereo.seconds == pytest.approx(0.5)
    assert np.allclose(stereo.mono(), 0, atol=1e-4)  # left and right cancel out


def test_wav_round_trip_and_widths() -> None:
    samples = tone(0.25, 22050)
    decoded = audio.decode(wav(samples, 22050, 22050, 2), fmt(audio.WAV))
    assert (decoded.sample_rate, decoded.channels) == (22050, 2)
    assert np.allclose(decoded.mono(), samples, atol=1e-4)
    # 8-, 24- and 32-bit integer WAV decode to the same signal.
    for width in (1, 3, 4):
        ints = np.round(samples * (2 ** (8 * width - 1) - 1)).astype(np.int64)
        if width == 1:
            raw = (ints + 128).astype(np.uint8).tobytes()
        elif width == 3:
            raw = b"".join(struct.pack("<i", int(v))[:3] for v in ints)
        else:
            raw = ints.astype("<i4").tobytes()
        header = _wav_header(len(raw), 22050, 1, width)
        got = audio.decode_wav(header + raw)
        assert np.allclose(got.mono(), samples, atol=2 / 2 ** (8 * width - 1) + 1e-4), width


def _wav_header(data_len: int, rate: int, channels: int, width: int) -> bytes:
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_len)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * width, channels * width, 8 * width)
        + b"data"
        + struct.pack("<I", data_len)
    )


@pytest.mark.parametrize(
    ("data", "format_", "error", "message"),
    [
        (
            b"\0\0",
            fmt(common_pb2.AUDIO_ENCODING_UNSPECIFIED),
            InvalidInput,
            "audio encoding AUDIO_ENCODING_UNSPECIFIED is not supported",
        ),
        (b"\0\0", fmt(99), InvalidInput, "audio encoding 99 is not supported"),
        (b"\0\0", fmt(audio.PCM16), InvalidInput, "sample_rate_hz is required for PCM16 audio"),
        (b"\0\0", fmt(audio.PCM16, 7), InvalidInput, "sample_rate_hz 7 is impossible"),
        (b"\0\0", fmt(audio.PCM16, 16000, 9), InvalidInput, "channels 9 is not supported"),
        (
            b"\0\0\0",
            fmt(audio.PCM16, 16000),
            InvalidInput,
            "PCM16 audio must have an even number of bytes (got 3)",
        ),
        (
            b"\0\0",
            fmt(audio.PCM16, 16000, 2),
            InvalidInput,
            "PCM16 audio of 2 channels must be a multiple of 4 bytes",
        ),
        (b"", fmt(audio.PCM16, 16000), InvalidInput, "audio is empty"),
        (b"", fmt(audio.WAV), InvalidInput, "audio is empty"),
        (b"RIFF\0\0\0\0WAVX", fmt(audio.WAV), InvalidInput, "corrupt WAV: no RIFF/WAVE header"),
        (b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01", fmt(audio.WAV), InvalidInput, "corrupt WAV"),
        (_wav_header(0, 16000, 1, 2), fmt(audio.WAV), InvalidInput, "audio is empty"),
        (
            _wav_header(4, 1000, 1, 2) + b"\0" * 4,
            fmt(audio.WAV),
            InvalidInput,
            "WAV sample rate 1000 is impossible",
        ),
        (
            _wav_header(4, 16000, 1, 2) + b"\0" * 4,
            fmt(audio.WAV, 8000),
            InvalidInput,
            "declared sample_rate_hz 8000 disagrees",
        ),
        (
            _wav_header(4, 16000, 1, 2) + b"\0" * 4,
            fmt(audio.WAV, 0, 2),
            InvalidInput,
            "declared channels 2 disagrees",
        ),
        (b"\0\0" * 16000 * 3, fmt(audio.PCM16, 16000), TooLarge, "audio is 3.0 s long; the limit is 2 s"),
    ],
)
def test_bad_audio_names_the_problem(data: bytes, format_, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        audio.decode(data, format_, max_seconds=2)
    assert message in str(info.value)


def test_unsupported_wav_width() -> None:
    header = _wav_header(10, 16000, 1, 5)
    with pytest.raises(InvalidInput, match=r"corrupt WAV|sample width"):
        audio.decode_wav(header + b"\0" * 10)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_keeps_duration_and_frequency(rate: int) -> None:
    samples = tone(1.0, rate, freq=1000)
    out = audio.resample(samples, rate, 16000)
    assert out.dtype == np.float32
    assert abs(out.size - 16000) <= 2
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 16000 / out.size - 1000) < 5  # a real resampler keeps the tone
    assert audio.resample(samples, rate, rate) is not None


def test_wav_bytes_and_clipping() -> None:
    pcm = audio.float_to_pcm16(np.array([2.0, -2.0, 0.0], dtype=np.float32))
    assert np.frombuffer(pcm, "<i2").tolist() == [32767, -32767, 0]
    data = audio.wav_bytes(pcm, 8000)
    assert audio.decode_wav(data).sample_rate == 8000


def test_mangled_wav_files_only_ever_give_invalid_input() -> None:
    good = wav(tone(0.2, 16000), 16000, 16000)
    rng = np.random.default_rng(7)
    outcomes = set()
    for _ in range(3000):
        data = bytearray(good)
        for pos in rng.integers(0, 60, size=rng.integers(1, 4)):
            data[pos] = rng.integers(0, 256)
        cut = rng.integers(8, len(data) + 1)
        try:
            audio.decode(bytes(data[:cut]), fmt(audio.WAV))
            outcomes.add("ok")
        except (InvalidInput, TooLarge):
            outcomes.add("refused")
    assert "refused" in outcomes


def _wav(tag: int, samples: np.ndarray, rate: int = 16000, *, extensible: bool = False) -> bytes:
    """A WAV file of ``samples`` (already in their on-disk dtype) with format ``tag``, plain or extensible."""
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    width = samples.dtype.itemsize
    data = samples.tobytes()
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * channels * width,
                      channels * width, 8 * width)  # fmt: skip
    if extensible:  # cbSize, valid bits, channel mask, then the sub-format GUID (its first two bytes: the tag)
        fmt += struct.pack("<HHI", 22, 8 * width, 0) + struct.pack("<H", tag) + bytes(14)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


@pytest.mark.parametrize(
    ("tag", "dtype", "extensible"),
    [(3, "<f4", False), (3, "<f8", True), (1, "<i2", True), (1, "<i4", True)],
)
def test_float_and_extensible_wavs_decode(tag: int, dtype: str, extensible: bool) -> None:
    wave_ = 0.5 * np.sin(np.linspace(0, 2 * np.pi * 440, 1600, dtype=np.float64))
    if tag == 1:
        scale = 2 ** (8 * np.dtype(dtype).itemsize - 1)
        on_disk = (wave_ * scale).astype(dtype)
    else:
        on_disk = wave_.astype(dtype)
    decoded = audio.decode_wav(_wav(tag, on_disk, extensible=extensible))
    assert decoded.sample_rate == 16000 and decoded.channels == 1
    assert np.allclose(decoded.samples[:, 0], wave_, atol=1e-3)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"RIFF\x04\x00\x00\x00WAVE", "no fmt chunk"),
        (b"RIFF\x10\x00\x00\x00WAVEdata\x00\x00\x00\x00", "data chunk comes before the fmt chunk"),
        (b"RIFF\x18\x00\x00\x00WAVEfmt \x04\x00\x00\x00\x01\x00\x01\x00data\x00\x00\x00\x00", "fmt chunk of 4 bytes"),
        (_wav(7, np.zeros(4, dtype="<i2")), "format 0x0007"),
        (_wav(3, np.zeros(4, dtype="<i2")), "16 bits (float)"),
    ],
)
def test_a_bad_wav_header_says_what_is_wrong(data: bytes, says: str) -> None:
    with pytest.raises(InvalidInput) as info:
        audio.decode_wav(data)
    assert says in info.value.message and info.value.reason == "BAD_WAV"
