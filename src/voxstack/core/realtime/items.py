"""A Realtime session's conversation: its items in order, as the Realtime API shapes them, and the chat
the llm is asked with.

Items are kept in the session store (every change is written through), so a
client that reconnects with its session id, to this core or another replica,
finds them. Audio is not kept: an audio item keeps its transcript, which is
what the llm reads.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from voxstack.core.realtime.protocol import Item, ProtocolError
from voxstack.core.sessions import SessionStore
from voxstack.v1 import llm_pb2

Shaped = dict[str, Any]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def text_of(item: Shaped) -> str:
    """The words of a message item: its texts and transcripts, in order."""
    parts = item.get("content") or []
    return " ".join(str(p.get("text") or p.get("transcript") or "") for p in parts if isinstance(p, dict)).strip()


def shaped(item: Item) -> Shaped:
    """A client's item as the conversation keeps it (its audio dropped; ProtocolError for one that cannot
    be part of a conversation)."""
    out: Shaped = {"id": item.id or new_id("item"), "object": "realtime.item", "type": item.type}
    if item.type == "message":
        if item.role is None or not item.content:
            raise ProtocolError("a message item needs a role and content", param="item.content")
        kinds = {"user": {"input_text", "input_audio"}, "system": {"input_text"}, "assistant": {"output_text", "text"}}
        parts = []
        for i, part in enumerate(item.content):
            if part.type not in kinds[item.role] | {"text"}:
                raise ProtocolError(f"a {item.role} message cannot hold {part.type}", param=f"item.content.{i}.type")
            if part.type == "input_audio":
                parts.append({"type": "input_audio", "transcript": part.transcript})
            else:
                parts.append({"type": part.type, "text": part.text or ""})
        out |= {"role": item.role, "status": "completed", "content": parts}
    elif item.type == "function_call":
        if not item.call_id or not item.name:
            raise ProtocolError("a function_call item needs a call_id and a name", param="item.call_id")
        out |= {"status": "completed", "call_id": item.call_id, "name": item.name, "arguments": item.arguments or "{}"}
    else:
        if not item.call_id or item.output is None:
            raise ProtocolError("a function_call_output item needs a call_id and an output", param="item.call_id")
        out |= {"call_id": item.call_id, "output": item.output}
    return out


class Items:
    def __init__(self, store: SessionStore, key: str, items: Sequence[Shaped] = ()) -> None:
        self.store = store
        self.key = key
        self.items: list[Shaped] = list(items)

    @classmethod
    async def load(cls, store: SessionStore, key: str) -> Items:
        return cls(store, key, await store.items(key))

    async def save(self) -> None:
        await self.store.keep_items(self.key, self.items)
        self.items = await self.store.items(self.key)  # the store may have dropped the oldest (its bounds)

    def last_id(self) -> str | None:
        return self.items[-1]["id"] if self.items else None

    def find(self, item_id: str) -> Shaped:
        for item in self.items:
            if item["id"] == item_id:
                return item
        raise ProtocolError(f"no item {item_id[:64]!r} in the conversation", code="item_not_found", param="item_id")

    async def add(self, item: Shaped, previous_item_id: str | None = None) -> str | None:
        """Add ``item`` after ``previous_item_id`` (the end when None, the start when "root"); the id of the
        item before it."""
        if any(i["id"] == item["id"] for i in self.items):
            raise ProtocolError(f"an item {item['id']!r} is already in the conversation", param="item.id")
        if item["type"] == "function_call_output" and not any(
            i["type"] == "function_call" and i["call_id"] == item["call_id"] for i in self.items
        ):
            raise ProtocolError(
                f"function_call_output for call {item['call_id'][:64]!r}: no function_call has that call_id",
                param="item.call_id",
            )
        if previous_item_id is None:
            at = len(self.items)
        elif previous_item_id == "root":
            at = 0
        else:
            at = self.items.index(self.find(previous_item_id)) + 1
        self.items.insert(at, item)
        await self.save()
        return self.items[at - 1]["id"] if at > 0 else None

    async def delete(self, item_id: str) -> None:
        self.items.remove(self.find(item_id))
        await self.save()

    async def replace(self, item: Shaped) -> None:
        """``item`` as it is now, in place of its earlier self (a reply that went on, a transcript)."""
        for i, kept in enumerate(self.items):
            if kept["id"] == item["id"]:
                self.items[i] = item
                await self.save()
                return

    def chat(self, instructions: str, extra: Sequence[Shaped] = (), *, own: bool = True) -> list[llm_pb2.ChatMessage]:
        """The llm's messages: the instructions, the conversation (unless not ``own``), then ``extra``."""
        messages = [llm_pb2.ChatMessage(role=llm_pb2.ROLE_SYSTEM, content=instructions)] if instructions else []
        roles = {"user": llm_pb2.ROLE_USER, "assistant": llm_pb2.ROLE_ASSISTANT, "system": llm_pb2.ROLE_SYSTEM}
        for item in [*(self.items if own else []), *extra]:
            if item["type"] == "message":
                text = text_of(item)
                if text:
                    messages.append(llm_pb2.ChatMessage(role=roles[item["role"]], content=text))
            elif item["type"] == "function_call":
                call = llm_pb2.ToolCall(id=item["call_id"], name=item["name"], arguments=item["arguments"])
                last = messages[-1] if messages else None
                if last is not None and last.role == llm_pb2.ROLE_ASSISTANT and last.tool_calls:
                    last.tool_calls.append(call)  # calls made together are one assistant message
                else:
                    messages.append(llm_pb2.ChatMessage(role=llm_pb2.ROLE_ASSISTANT, tool_calls=[call]))
            else:
                messages.append(
                    llm_pb2.ChatMessage(role=llm_pb2.ROLE_TOOL, tool_call_id=item["call_id"], content=item["output"])
                )
        return messages
