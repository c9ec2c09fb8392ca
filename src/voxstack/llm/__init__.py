"""The llm service: streamed replies from llama.cpp or an OpenAI-compatible upstream."""
