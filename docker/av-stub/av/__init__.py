"""Stand-in for PyAV in the voxstack asr image.

faster-whisper imports ``av`` when it is imported, but only its
``decode_audio`` uses it, and voxstack decodes audio itself (voxstack.audio).
Leaving PyAV and its bundled FFmpeg out saves about 100 MB; anything that
does reach for it gets this error instead of a silent failure.
"""


def __getattr__(name: str) -> object:
    raise ImportError(
        f"av.{name}: PyAV is not installed in the voxstack asr image (voxstack decodes audio itself); "
        "install it to use faster_whisper.decode_audio"
    )
