"""The question-set scorer of the assistant bench (issue 18): normalisation, right answers, English."""

from __future__ import annotations

import json

import pytest

from voxstack import protogen
from voxstack.testing.answers import Score, is_english, is_right, words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is Four.", ["the", "answer", "is", "4"]),
        ("Twenty-one apples", ["21", "apples"]),
        ("one hundred and five", ["105"]),
        ("two and two is four", ["2", "and", "2", "is", "4"]),
        ("one two three", ["1", "2", "3"]),
        ("It is 1,000 km, or 0.6 miles!", ["it", "is", "1000", "km", "or", "0.6", "miles"]),
        ("a thousand", ["a", "1000"]),
        ("It's PARIS.", ["it's", "paris"]),
        ("H₂O", ["h", "2", "o"]),
    ],
)
def test_words_are_normalised(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_an_answer_counts_only_as_whole_words_whatever_the_spelling_of_numbers() -> None:
    assert is_right("Two plus two is four.", ["4"])
    assert is_right("It's 4!", ["four"])
    assert is_right("The Blue Whale is the largest.", ["blue whale"])
    assert not is_right("Parisian food is great.", ["paris"])
    assert not is_right("It is fourteen.", ["4"])
    assert is_right("Nice to meet you.", [])  # a statement: any reply will do


def test_english_is_told_from_the_languages_a_small_model_drifts_into() -> None:
    assert is_english("The capital of France is Paris.")
    assert is_english("Paris.")
    assert not is_english("La capitale de la France est Paris.")
    assert not is_english("La femme au pays, la femme de la femme.")
    assert not is_english("Die Hauptstadt ist Berlin und das ist schön.")
    assert not is_english("wonderful magnificent extraordinary fantastic beautiful")
    assert is_english("Two plus two equals four.")  # numbers count for no language
    assert not is_english("Deux plus deux est quatre.")


def test_a_score_adds_up() -> None:
    score = Score()
    score.add("Paris.", ["paris"])
    score.add("La capitale est Rome.", ["paris"])
    assert (score.asked, score.right, score.english) == (2, 1, 1)
    assert score.accuracy == 0.5 and score.mean_words == 2.5


def test_the_question_set_is_well_formed() -> None:
    data = json.loads((protogen.PROJECT_ROOT / "bench" / "data" / "questions.json").read_text())
    assert len(data["plain"]) >= 50
    for item in data["plain"]:
        assert item["q"].endswith("?") and item["a"] and all(words(a) for a in item["a"])
    assert len(data["follow_ups"]) >= 3 and all(len(turns) == 2 and turns[1]["a"] for turns in data["follow_ups"])
