"""OpenAI's Realtime API on ``WS /v1/realtime``: the protocol, the session's settings and conversation, its
responses, its audio formats and its turn detection (``connection`` ties them together)."""
