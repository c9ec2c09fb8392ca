"""A WebSocket turn whose reply called the client's tools: the calls, waiting for their results.

The turn goes on, under its own number, once every call has a result: the
reply is asked again with the calls and results after the user's message.
A turn may call tools a few rounds at most; past them the reply is asked
without tools, so that it ends in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voxstack.codes import ErrorCode
from voxstack.core.pipeline import Tools
from voxstack.core.turn import Turn
from voxstack.errors import InvalidInput
from voxstack.v1 import llm_pb2

MAX_ROUNDS = 4
MAX_RESULT_CHARS = 16_384


@dataclass
class AwaitedCalls:
    turn: Turn
    calls: tuple[llm_pb2.ToolCall, ...]
    results: dict[str, str] = field(default_factory=dict)

    def answer(self, call_id: str, content: str) -> bool:
        """Take one call's result (InvalidInput for an unknown or answered call, or one too long); whether
        every call has its result now."""
        if call_id not in {c.id for c in self.calls}:
            raise InvalidInput(
                f"tool_result for {call_id[:80]!r}: the turn waits for {', '.join(c.id for c in self.calls)}",
                reason=ErrorCode.BAD_TOOL_RESULT,
            )
        if call_id in self.results:
            raise InvalidInput(f"tool_result for {call_id[:80]!r} came twice", reason=ErrorCode.BAD_TOOL_RESULT)
        if len(content) > MAX_RESULT_CHARS:
            raise InvalidInput(
                f"tool_result content is {len(content)} characters; at most {MAX_RESULT_CHARS}",
                reason=ErrorCode.BAD_TOOL_RESULT,
            )
        self.results[call_id] = content
        return len(self.results) == len(self.calls)

    def next_turn(self, started: float) -> Turn:
        """The turn again, with the calls and their results; without tools after MAX_ROUNDS rounds."""
        before = self.turn.tools
        exchange = (
            *before.exchange,
            llm_pb2.ChatMessage(role=llm_pb2.ROLE_ASSISTANT, tool_calls=self.calls),
            *(llm_pb2.ChatMessage(role=llm_pb2.ROLE_TOOL, tool_call_id=c.id, content=self.results[c.id])
              for c in self.calls),
        )  # fmt: skip
        rounds = sum(m.role == llm_pb2.ROLE_ASSISTANT for m in exchange)
        offered = before.offered if rounds < MAX_ROUNDS else ()
        turn = self.turn
        return Turn(turn.number, turn.text, started=started, heard=turn.heard, typed=turn.typed,
                    tools=Tools(offered, exchange))  # fmt: skip
