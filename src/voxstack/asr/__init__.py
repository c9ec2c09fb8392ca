"""The asr service: speech to text with faster-whisper."""

#: The rate asr works at: Whisper and its Silero VAD both take 16 kHz mono.
SAMPLE_RATE = 16_000
