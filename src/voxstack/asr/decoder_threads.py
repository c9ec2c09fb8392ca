"""A CTranslate2 Whisper whose encoder and text decoder use their own thread counts.

The encoder is one large pass over the audio and gains from every core. The
decoder runs one small step per token, too small to share: with two threads
each step waits on the other thread's wake-up. On this 2-core machine a
5.5 s utterance's 27 tokens took 0.245 s with two threads and 0.105 s with
one, while the encoder took 0.17 s with two and 0.27 s with one. So the
encoder runs on one model instance and everything else (generate, align,
detect_language) on a second instance of the same files with fewer threads.
The second instance of Whisper base adds about 170 MB of resident memory.
"""

from __future__ import annotations

from typing import Any


class SplitWhisper:
    """Stands in for ``ctranslate2.models.Whisper``: ``encode`` on one instance, the rest on another."""

    def __init__(self, encoder: Any, decoder: Any) -> None:
        self._encoder = encoder
        self._decoder = decoder

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        return self._encoder.encode(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found on this object: generate, align,
        # detect_language, is_multilingual, ...
        return getattr(self._decoder, name)


def runs_on_cpu(device: str) -> bool:
    """Whether CTranslate2 puts a model for ``device`` (cpu, cuda or auto) on the CPU."""
    import ctranslate2

    return device == "cpu" or (device == "auto" and ctranslate2.get_cuda_device_count() == 0)


def load_decoder(path: str, *, threads: int, workers: int, compute_type: str) -> Any:
    """The CTranslate2 instance that runs the text decoder on ``threads`` threads.

    Loading takes as long as the main instance (0.35 s for Whisper base); the
    engine loads both at once, 0.2 s longer than one alone.
    """
    import ctranslate2

    return ctranslate2.models.Whisper(
        path, device="cpu", compute_type=compute_type, intra_threads=threads, inter_threads=workers
    )
