"""The OpenAI-compatible API: routes that the official ``openai`` SDK and OpenAI-speaking apps call unchanged."""
