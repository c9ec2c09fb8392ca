"""Any OpenAI-compatible chat-completions server as the llm engine (llama.cpp's server, vLLM, Ollama, ...).

Requests stream with server-sent events; closing our stream closes the HTTP
response, which is how such servers learn that the client has gone. Tools go
upstream as they are; its streamed ``tool_calls`` deltas are put together
into whole calls.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from voxstack.codes import ErrorCode
from voxstack.config import LlmSettings
from voxstack.errors import InvalidInput, NotReady, PreconditionFailed, VoxError
from voxstack.llm.engine import ChatRequest, Delta, Event, Finished
from voxstack.models import ModelError
from voxstack.toolcalls import CHOICES, ToolCall, new_call_id

logger = logging.getLogger(__name__)


class OpenAIEngine:
    def __init__(self, settings: LlmSettings) -> None:
        if not settings.upstream_url:
            raise ModelError("the openai llm engine needs VOXSTACK_LLM__UPSTREAM_URL (e.g. http://127.0.0.1:8000/v1)")
        self.settings = settings
        self.url = settings.upstream_url.rstrip("/") + "/chat/completions"
        key = (
            settings.upstream_api_key.get_secret_value()
            if settings.upstream_api_key
            else os.environ.get("OPENAI_API_KEY", "")
        )
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(settings.upstream_timeout, connect=min(10.0, settings.upstream_timeout)),
        )

    async def load(self) -> None:
        # The warm-up is a real one-token call: it proves the address, the key and the model.
        chat = ChatRequest([{"role": "user", "content": "Hi"}])
        try:
            async for _ in self.stream(chat, max_tokens=1):
                pass
        except VoxError as exc:
            # Unreachable or timing out may pass; any other answer (a bad key, an unknown model) lasts.
            lasting = exc.reason not in (ErrorCode.UPSTREAM_DOWN, ErrorCode.UPSTREAM_TIMEOUT)
            raise ModelError(f"the llm upstream at {self.url} does not answer: {exc}", lasting=lasting) from exc

    def _body(self, chat: ChatRequest, max_tokens: int | None) -> dict[str, Any]:
        s = chat.sampling
        body: dict[str, Any] = {
            "messages": [_upstream(m) for m in chat.messages],
            "stream": True,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": max_tokens or s.max_tokens,
        }
        if self.settings.upstream_model:
            body["model"] = self.settings.upstream_model
        if s.stop:
            body["stop"] = list(s.stop)
        if s.seed is not None:
            body["seed"] = s.seed
        if chat.tools:
            body["tools"] = [t.as_openai() for t in chat.tools]
            choice = chat.tool_choice
            body["tool_choice"] = choice if choice in CHOICES else {"type": "function", "function": {"name": choice}}
        return body

    async def stream(self, chat: ChatRequest, max_tokens: int | None = None) -> AsyncGenerator[Event, None]:
        reason = "stop"
        usage: dict[str, int] = {}
        completion_chunks = 0
        calls: dict[int, dict[str, str]] = {}  # by the upstream's index: id, name, arguments so far
        try:
            async with self._client.stream("POST", self.url, json=self._body(chat, max_tokens)) as response:
                if response.status_code != 200:
                    raise _status_error(response.status_code, (await response.aread()).decode(errors="replace"))
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        text = delta.get("content")
                        if text:
                            completion_chunks += 1
                            yield Delta(text)
                        for part in delta.get("tool_calls") or ():
                            _add_call_part(calls, part)
                        reason = choice.get("finish_reason") or reason
        except httpx.TimeoutException as exc:
            raise NotReady(f"the llm upstream timed out: {exc!r}", reason=ErrorCode.UPSTREAM_TIMEOUT) from exc
        except httpx.TransportError as exc:
            raise NotReady(
                f"the llm upstream at {self.url} is unreachable: {exc!r}", reason=ErrorCode.UPSTREAM_DOWN
            ) from exc
        except json.JSONDecodeError as exc:
            raise NotReady(f"the llm upstream sent a malformed event: {exc}", reason=ErrorCode.UPSTREAM_BAD) from exc
        made = tuple(
            ToolCall(c["id"] or new_call_id(), c["name"], c["arguments"] or "{}")
            for _, c in sorted(calls.items())
            if c["name"]
        )
        yield Finished(
            "tool_calls" if made else "length" if reason == "length" else "stop",
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", completion_chunks)),
            made,
        )

    async def close(self) -> None:
        await self._client.aclose()


def _upstream(message: dict[str, Any]) -> dict[str, Any]:
    """A message as OpenAI's API takes it: a call's arguments in text."""
    if "tool_calls" not in message:
        return message
    calls = []
    for call in message["tool_calls"]:
        arguments = call["function"]["arguments"]
        function = {**call["function"], "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}
        calls.append({**call, "function": function})
    return {**message, "tool_calls": calls}


def _add_call_part(calls: dict[int, dict[str, str]], part: dict[str, Any]) -> None:
    """One streamed piece of a call: its first piece has the id and name, the rest add to the arguments."""
    index = int(part.get("index", len(calls)))
    call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
    function = part.get("function") or {}
    call["id"] = call["id"] or str(part.get("id") or "")
    call["name"] = call["name"] or str(function.get("name") or "")
    call["arguments"] += str(function.get("arguments") or "")


def _status_error(status: int, body: str) -> VoxError:
    detail = body.strip()[:300]
    if status in (400, 422):
        return InvalidInput(
            f"the llm upstream refused the request ({status}): {detail}", reason=ErrorCode.UPSTREAM_REFUSED
        )
    if status in (401, 403):
        return PreconditionFailed(
            f"the llm upstream rejected the credentials ({status})", reason=ErrorCode.UPSTREAM_AUTH
        )
    return NotReady(f"the llm upstream answered {status}: {detail}", reason=ErrorCode.UPSTREAM_ERROR)
