"""The tts service: text to speech with piper."""
