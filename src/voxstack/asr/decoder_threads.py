"""A CTranslate2 Whisper whose encoder and text decoder use their own thread counts.

The encoder is one large pass over the audio and gains from every core. The
decoder runs one small step per token, too small to share: with two threads
each step waits on the other thread's wake-up. On this 2-core machine a
5.5 s utterance's 27 tokens took 0.245 s with two threads and 0.105 s with
one, while the encoder took 0.17 s with two and 0.27 s with one. So the
encoder runs on one model instance and everything else (generate, align,
detect_language) on a second instance of the same files with fewer threads.
Whisper base costs about 75 MB per instance in int8.
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


def split_decoder(model: Any, path: str, *, threads: int, workers: int, compute_type: str) -> None:
    """Give the faster-whisper ``model`` a text decoder of its own that runs on ``threads`` threads."""
    import ctranslate2

    decoder = ctranslate2.models.Whisper(
        path, device="cpu", compute_type=compute_type, intra_threads=threads, inter_threads=workers
    )
    model.model = SplitWhisper(model.model, decoder)
