"""End of turn by words: where the prompt is read, and what is read there (llm/end_of_turn.py)."""

from __future__ import annotations

import numpy as np

from voxstack.llm.end_of_turn import probability, probe_index, words


def test_the_words_are_judged_without_their_closing_mark() -> None:
    assert words("What is the capital of France? ") == "What is the capital of France"
    assert words("Turn on the lights!!") == "Turn on the lights"
    assert words('He said "go."') == 'He said "go'
    assert words("?!") == ""


def test_the_probe_is_the_last_word_of_the_message_in_the_prompt() -> None:
    prompt = [1, 2, 10, 11, 12, 99, 3, 4]  # template, "What is the capital", "?", template
    assert probe_index(prompt, (2, 6), [10, 11, 12]) == 4
    assert probe_index(prompt, (2, 6), [10, 11, 12, 99]) == 5  # no closing mark: its last token
    # The mark merged with a word into another token: no position holds the words' end.
    assert probe_index(prompt, (2, 6), [10, 11, 13]) is None
    assert probe_index(prompt, (2, 6), []) is None
    assert probe_index(prompt, (2, 4), [10, 11, 12]) is None  # longer than the message


def test_the_probability_is_the_share_of_the_ending_tokens() -> None:
    logits = np.log(np.array([0.5, 0.2, 0.2, 0.1], dtype=np.float32))
    assert abs(probability(logits, [1, 3]) - 0.3) < 1e-6
    assert abs(probability(logits + 1000, [0]) - 0.5) < 1e-3  # large logits do not overflow
