"""A call is grounded when its arguments come from the conversation (or the tool's own schema)."""

from __future__ import annotations

import pytest

from voxstack.toolcalls import Tool
from voxstack.toolgrounding import grounded, words

WEATHER = Tool(
    "get_weather",
    "The current weather in a city.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
    },
)
TIMER = Tool("set_timer", "Start a countdown.", {"type": "object", "properties": {"minutes": {"type": "integer"}}})


@pytest.mark.parametrize(
    ("arguments", "tool", "said", "expected"),
    [
        ('{"city": "Paris"}', WEATHER, "What's the weather in Paris?", True),
        ('{"city": "paris."}', WEATHER, "Weather in PARIS, please", True),  # case and punctuation aside
        ('{"city": "Paris"}', WEATHER, "What is the capital of France?", False),  # made up (a description's example)
        ('{"city": "New York"}', WEATHER, "How many legs does a spider have?", False),
        ('{"city": "Paris", "unit": "celsius"}', WEATHER, "Weather in Paris?", True),  # an enum of the schema
        ('{"city": "Paris", "unit": "kelvin"}', WEATHER, "Weather in Paris?", False),  # every argument counts
        ('{"minutes": 30}', TIMER, "Set a timer for thirty minutes.", True),  # numbers said in words
        ('{"minutes": 45}', TIMER, "I need a forty-five minute timer.", True),
        ('{"minutes": 45.0}', TIMER, "a 45 minute timer", True),
        ('{"minutes": 12}', TIMER, "a timer please", False),
        ("{}", TIMER, "anything", True),  # nothing to judge
        ('{"loud": true}', None, "anything", True),
        ('{"contact": "Anna", "text": "I am late"}', None, "Text Anna that I'm late", True),
        ("not json", TIMER, "a 5 minute timer", False),
        ('{"tags": ["jazz", "Miles Davis"]}', None, "Play Miles Davis", False),  # "jazz" was never said
    ],
)
def test_a_call_is_grounded_when_its_arguments_were_said(
    arguments: str, tool: Tool | None, said: str, expected: bool
) -> None:
    assert grounded(arguments, tool, ["You are a helpful assistant.", said]) is expected


def test_words_read_numbers_said_in_words() -> None:
    assert {"5", "20", "99", "100"} <= words("five twenty ninety-nine a hundred") and "seven" in words("Seven")
