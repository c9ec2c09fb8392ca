"""Whether a function call a model wrote is grounded: its arguments come from the conversation.

Small models, offered a function, call it for requests it has nothing to do
with, making its arguments up ("What is the capital of France?" ->
``get_weather(city="Paris")``; "How many legs does a spider have?" ->
``get_weather(city="New York")``). A call whose every argument the user
asked for is in the conversation's words; one whose string or number
arguments appear nowhere in it (nor among the values the tool's own schema
offers: its enums, consts and defaults; not its descriptions, whose examples
are what a model copies) was not asked for. The llm drops
such calls and answers in words instead (``llm.tool_call_grounding``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from types import MappingProxyType
from typing import Any

from voxstack.toolcalls import Tool

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_UNITS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = MappingProxyType(
    {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
)


def words(text: str) -> set[str]:
    """The lower-cased words of ``text``, with numbers said in words also as their digits ("forty five": 45)."""
    found = [w.lower() for w in _WORD.findall(text)]
    out = set(found)
    for i, word in enumerate(found):
        if word in _UNITS:
            out.add(str(_UNITS.index(word)))
        elif word in _TENS:
            value = _TENS[word]
            following = found[i + 1] if i + 1 < len(found) else ""
            out.add(str(value + _UNITS.index(following)) if following in _UNITS[1:10] else str(value))
        elif word == "hundred":
            out.add("100")
    return out


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _offered(schema: Any) -> Iterator[Any]:
    """The values a JSON schema itself offers: its enums, consts and defaults, at any depth."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("enum", "const", "default"):
                yield from _leaves(value)
            else:
                yield from _offered(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _offered(item)


def _leaf_words(value: Any) -> set[str]:
    if isinstance(value, bool) or value is None:
        return set()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return words(str(value))


def grounded(arguments: str, tool: Tool | None, conversation: Iterable[str]) -> bool:
    """Whether every string and number argument of a call shares a word with the conversation or with a value
    the tool's schema offers (a call without such arguments is grounded: there is nothing to judge)."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return False
    known = set().union(*(words(text) for text in conversation))
    if tool is not None:
        known |= set().union(*(_leaf_words(v) for v in _offered(tool.parameters)))
    for leaf in _leaves(parsed):
        said = _leaf_words(leaf)
        if said and not said & known:
            return False
    return True
