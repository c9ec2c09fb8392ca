"""The core: the HTTP/WebSocket API and the voice pipeline over the asr, llm and tts services."""
