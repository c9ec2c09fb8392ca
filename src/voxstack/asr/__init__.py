"""The asr service: speech to text with faster-whisper."""
