"""Function calling: the tools a request offers, and the calls a model writes.

A request's tools are checked here (names, JSON-schema parameters, the
choice). Models that were taught function calling write each call as a JSON
object between ``<tool_call>`` tags (Qwen 2.5, Hermes, and their chat
templates, which list the tools in the system turn); ``ToolCallFilter`` takes
those calls out of the streamed text, so a caller sees either text or calls.
For a template that knows nothing of tools, ``tool_prompt`` is the same
instruction in the system message.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from voxstack.codes import ErrorCode
from voxstack.errors import InvalidInput

MAX_TOOLS = 32
MAX_TOOL_JSON = 16_384  # bytes of one tool's parameter schema
MAX_DESCRIPTION = 1024
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
OPEN, CLOSE = "<tool_call>", "</tool_call>"
CHOICES = ("auto", "none", "required")
# Chat-template markers a tool's text must not carry into the prompt (it is rendered as template text).
_MARKER = re.compile(r"<\||\|>|<tool_call>|</tool_call>|<tools>|</tools>")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]

    def as_openai(self) -> dict[str, Any]:
        """The tool as OpenAI's API and the chat templates that know tools describe one."""
        function = {"name": self.name, "description": self.description, "parameters": self.parameters}
        return {"type": "function", "function": function}


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # a JSON object, in text


def check_answers(messages: list[tuple[str, list[str], str]]) -> None:
    """(role, ids of the calls it makes, id of the call it answers) per message: each tool message must
    answer a call of an earlier message (InvalidInput naming the message otherwise)."""
    made: set[str] = set()
    for i, (role, calls, answers) in enumerate(messages):
        if calls and role != "assistant":
            raise InvalidInput(f"messages[{i}] has tool_calls but is not the assistant's", reason=ErrorCode.BAD_ROLE)
        made |= set(calls)
        if role == "tool" and answers not in made:
            raise InvalidInput(
                f"messages[{i}].tool_call_id {answers[:80]!r} answers no call of an earlier message",
                reason=ErrorCode.BAD_TOOL_RESULT,
            )


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def check_tools(raw: list[tuple[str, str, str]], choice: str) -> tuple[tuple[Tool, ...], str]:
    """(name, description, parameters JSON) triples and a tool choice, checked; InvalidInput names the field."""
    if len(raw) > MAX_TOOLS:
        raise InvalidInput(f"tools has {len(raw)} entries; at most {MAX_TOOLS}", reason=ErrorCode.BAD_TOOLS)
    tools: list[Tool] = []
    for i, (name, description, parameters) in enumerate(raw):
        if not _NAME.fullmatch(name):
            raise InvalidInput(
                f"tools[{i}].name {name[:80]!r} must be 1-64 of A-Z, a-z, 0-9, _ and -", reason=ErrorCode.BAD_TOOLS
            )
        if name in (t.name for t in tools):
            raise InvalidInput(f"tools[{i}].name {name!r} is given twice", reason=ErrorCode.BAD_TOOLS)
        if len(description) > MAX_DESCRIPTION:
            raise InvalidInput(
                f"tools[{i}].description is {len(description)} characters; at most {MAX_DESCRIPTION}",
                reason=ErrorCode.BAD_TOOLS,
            )
        if len(parameters.encode()) > MAX_TOOL_JSON:
            raise InvalidInput(f"tools[{i}].parameters is over {MAX_TOOL_JSON} bytes", reason=ErrorCode.BAD_TOOLS)
        try:
            schema = json.loads(parameters) if parameters.strip() else {"type": "object", "properties": {}}
        except ValueError as exc:
            raise InvalidInput(f"tools[{i}].parameters is not JSON: {exc}", reason=ErrorCode.BAD_TOOLS) from None
        if not isinstance(schema, dict):
            raise InvalidInput(f"tools[{i}].parameters must be a JSON schema object", reason=ErrorCode.BAD_TOOLS)
        tools.append(Tool(name, neutral(description), neutral(schema)))
    choice = choice or "auto"
    if choice not in CHOICES and choice not in (t.name for t in tools):
        raise InvalidInput(
            f"tool_choice {choice[:80]!r} is not auto, none, required or the name of one of the tools",
            reason=ErrorCode.BAD_TOOLS,
        )
    if choice in ("required",) and not tools:
        raise InvalidInput("tool_choice is required but no tools were given", reason=ErrorCode.BAD_TOOLS)
    return tuple(tools), choice


def neutral(value: Any) -> Any:
    """``value`` with chat-template markers broken up: a tool's text cannot end the system turn."""
    if isinstance(value, str):
        return _MARKER.sub(lambda m: " ".join(m.group(0)), value)
    if isinstance(value, dict):
        return {neutral(k): neutral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [neutral(v) for v in value]
    return value


def tool_prompt(tools: tuple[Tool, ...]) -> str:
    """The instruction a tool-aware template puts in the system turn, for templates without one."""
    listed = "\n".join(json.dumps(t.as_openai(), ensure_ascii=False) for t in tools)
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{listed}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
        "</tool_call>"
    )


def forced_start(choice: str) -> str:
    """What the reply must begin with for ``choice`` ("" when the model is free): the prompt ends with it."""
    if choice == "required":
        return f"{OPEN}\n"
    if choice not in CHOICES:
        return f'{OPEN}\n{{"name": {json.dumps(choice)}, "arguments": '
    return ""


class ToolCallFilter:
    """Takes the calls out of a streamed reply: ``feed`` returns the text to pass on now, ``finish`` the
    rest at the end; ``calls`` are the calls parsed, ``bad`` the blocks that named no offered tool.

    A call is a JSON object between ``<tool_call>`` tags; a tag that is a special token of the model
    does not reach the text, so a reply that begins with ``{`` (or with a code fence, as coding
    models write JSON) is held back whole and read as calls (one JSON object after another), or
    passed on as text if it is not one. Text that may be the start of a tag is held back until it
    is not.
    """

    def __init__(self, tools: tuple[Tool, ...], prefix: str = "") -> None:
        self.names = {t.name for t in tools}
        self.pending = prefix  # a forced start is the beginning of the first call
        self.calls: list[ToolCall] = []
        self.bad: list[str] = []
        self.inside = bool(prefix)
        self.started = bool(prefix)  # past the reply's leading blanks
        self.objects = False  # the reply began with "{": calls without tags, read at the end

    def feed(self, text: str) -> str:
        self.pending += text
        if not self.started:
            lead = self.pending.lstrip()
            if not lead:
                return ""
            self.started = True
            self.objects = lead.startswith(("{", "`"))
        if self.objects:
            return ""
        out: list[str] = []
        while True:
            if self.inside:
                end = self.pending.find(CLOSE)
                if end < 0:
                    return "".join(out)
                self._parse(self.pending[:end].removeprefix(OPEN))
                self.pending = self.pending[end + len(CLOSE) :]
                self.inside = False
                continue
            start = self.pending.find(OPEN)
            if start >= 0:
                out.append(self.pending[:start])
                self.pending = self.pending[start:]
                self.inside = True
                continue
            keep = _partial_tag(self.pending)
            out.append(self.pending[: len(self.pending) - keep])
            self.pending = self.pending[len(self.pending) - keep :]
            return "".join(out)

    def finish(self) -> str:
        """The text held back at the end of the reply; an unclosed call is parsed as far as it goes."""
        rest, self.pending = self.pending, ""
        if self.objects:
            calls = _objects(rest)
            if calls is None:
                return rest  # text that happened to begin with "{"
            for call in calls:
                self._add(call, json.dumps(call)[:200])
            return ""
        if self.inside:
            self._parse(rest.removeprefix(OPEN))
            return ""
        return rest

    def _parse(self, block: str) -> None:
        try:
            call = json.loads(block.strip())
        except ValueError:
            call = _closed(block.strip())
        self._add(call, block.strip()[:200])

    def _add(self, call: Any, shown: str) -> None:
        if not isinstance(call, dict) or call.get("name") not in self.names:
            self.bad.append(shown)
            return
        arguments = call.get("arguments", {})
        if isinstance(arguments, str):  # some models write the arguments as a JSON string
            try:
                arguments = json.loads(arguments)
            except ValueError:
                self.bad.append(shown)
                return
        if not isinstance(arguments, dict):
            self.bad.append(shown)
            return
        self.calls.append(ToolCall(new_call_id(), call["name"], json.dumps(arguments, ensure_ascii=False)))


_FENCE = re.compile(r"```[a-z]*")


def _objects(text: str) -> list[Any] | None:
    """The JSON objects ``text`` holds one after another (blanks, tags and code fences between them), or
    None. An object in doubled braces (``{{"name": ...}}``, as some templates' instructions show it)
    counts as the object inside."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    rest = _FENCE.sub(" ", text.replace(OPEN, " ").replace(CLOSE, " ")).strip()
    while rest:
        try:
            value, end = decoder.raw_decode(rest)
        except ValueError:
            value, end = _doubled(rest)
            if value is None:
                value, end = _closed(rest), len(rest)
            if value is None:
                return None
        if not isinstance(value, dict) or "name" not in value:
            return None
        found.append(value)
        rest = rest[end:].strip()
    return found


def _doubled(text: str) -> tuple[Any, int]:
    """The object inside ``{{...}}`` at the start of ``text``, and where the outer braces end."""
    if not text.startswith("{{"):
        return None, 0
    try:
        value, end = json.JSONDecoder().raw_decode(text[1:])
    except ValueError:
        return None, 0
    tail = text[1 + end :].lstrip()
    if not tail.startswith("}"):
        return None, 0
    return value, len(text) - len(tail) + 1


def _partial_tag(text: str) -> int:
    """How many characters at the end of ``text`` could begin ``<tool_call>``."""
    for n in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if OPEN.startswith(text[-n:]):
            return n
    return 0


def _closed(block: str) -> Any:
    """A call cut short by the token limit or a missing brace: the JSON with its braces closed, if that parses."""
    for tail in ("}", "}}", '"}}'):
        try:
            return json.loads(block + tail)
        except ValueError:
            continue
    return None
