"""Sentence splitting and text cleaning."""

from __future__ import annotations

import re

import pytest

from voxstack.text import Phrase, SentenceStream, clean, phrase_break, sentence_spans


def split(text: str, **kw) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text, **kw)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there. How are you? I am fine!", ["Hello there.", "How are you?", "I am fine!"]),
        ("Use e.g. this one. Pi is 3.14 today.", ["Use e.g. this one.", "Pi is 3.14 today."]),
        (
            "Dr. Smith met J. R. Tolkien at 5 p.m. yesterday. Then he left.",
            ["Dr. Smith met J. R. Tolkien at 5 p.m. yesterday.", "Then he left."],
        ),
        ('He said "stop." Then he went.', ['He said "stop."', "Then he went."]),
        (
            "He said \u201cstop.\u201d Then left\u2026 Really?! Yes.",
            ["He said \u201cstop.\u201d", "Then left\u2026", "Really?!", "Yes."],
        ),
        ("First paragraph\n\nSecond paragraph", ["First paragraph", "Second paragraph"]),
        ("No final stop", ["No final stop"]),
        ("Version 2.0.1 is out.", ["Version 2.0.1 is out."]),
        ("It costs $5. 10 people came.", ["It costs $5.", "10 people came."]),
        ("   ", []),
        ("", []),
    ],
)
def test_sentence_splitting(text: str, expected: list[str]) -> None:
    assert split(text) == expected


def test_long_sentences_are_cut_at_a_pause() -> None:
    text = "alpha beta, gamma delta; " + "word " * 100 + "end."
    pieces = split(text, max_chars=60)
    assert all(len(p) <= 60 for p in pieces)
    assert pieces[0] == "alpha beta, gamma delta;"
    assert " ".join(pieces).split() == text.split()
    unbroken = "x" * 130
    assert split(unbroken, max_chars=50) == ["x" * 50, "x" * 50, "x" * 30]


def test_unfinished_text_keeps_its_tail() -> None:
    assert split("Hello there. How", final=False) == ["Hello there."]
    assert split("Hello there.", final=False) == []  # a capital may yet follow, or not
    assert split("Hello there. ", final=False) == []
    long_tail = "word " * 100
    assert split(long_tail, final=False, max_chars=60)  # a run-on text still yields pieces early


def test_sentence_stream_yields_each_sentence_once() -> None:
    stream = SentenceStream()
    text = "Hello there. How are you? I am fine e.g. really. Ok"
    got: list[str] = []
    for ch in text:
        got += stream.feed(ch)
    assert got == ["Hello there.", "How are you?", "I am fine e.g. really."]
    assert stream.flush() == ["Ok"]
    assert stream.flush() == []
    assert SentenceStream().flush() == []


def feed_all(stream: SentenceStream, text: str) -> list[str]:
    got: list[str] = []
    for ch in text:
        got += stream.feed(ch)
    return got + stream.flush()


def test_first_clause_comes_out_alone_then_whole_sentences() -> None:
    text = "Well, the capital of France is Paris, a city on the Seine. It is big, old and lovely."
    assert feed_all(SentenceStream(first_clause=True), text) == [
        "Well,",
        "the capital of France is Paris, a city on the Seine.",
        "It is big, old and lovely.",
    ]
    assert feed_all(SentenceStream(), text)[0] == "Well, the capital of France is Paris, a city on the Seine."


def test_first_clause_waits_for_a_real_break() -> None:
    # A sentence that ends before any comma goes out whole; "1,000" has no space after its comma.
    assert feed_all(SentenceStream(first_clause=True), "Yes. Then, later.") == ["Yes.", "Then, later."]
    assert feed_all(SentenceStream(first_clause=True), "About 1,000 people came.") == ["About 1,000 people came."]
    assert feed_all(SentenceStream(first_clause=True), ", hello there") == [", hello there"]


def feed_tokens(stream: SentenceStream, text: str) -> list[str]:
    """As an llm writes: a token at a time, each with the space before it."""
    got: list[str] = []
    for token in re.findall(r"\s*\S+", text):
        got += stream.feed(token)
    return got + stream.flush()


def test_first_piece_ends_at_the_first_phrase_break() -> None:
    stream = SentenceStream(first_clause=True, first_phrase_words=3)
    pieces = feed_tokens(stream, "There are seven days in a week. A week has days.")
    assert pieces == ["There are seven days", "in a week.", "A week has days."]
    assert isinstance(pieces[0], Phrase) and pieces[0].spoken() == "There are seven days,"
    assert not any(isinstance(p, Phrase) for p in pieces[1:])
    # Only the first piece: later sentences go out whole.
    assert feed_tokens(SentenceStream(first_clause=True, first_phrase_words=3), "The capital of France is Paris.") == [
        "The capital of France",
        "is Paris.",
    ]


@pytest.mark.parametrize(
    "text, cut",
    [
        ("The capital of France is", 22),  # a function word that came as a token: whole
        ("The capital of France is ", 22),
        ("The capital of France is Par", 22),
        ("The capital of France", None),  # "France" may go on: its phrase is not known yet
        ("The capital of", None),  # a break, but only two words before it
        ("Twenty divided by four equals five and", 35),
        ("Twenty divided by four equals fiv", None),
        ("There are the ", None),  # a function word after function words is no break
        ("Yes, and then ", None),  # after punctuation: that is a clause's business
    ],
)
def test_a_phrase_break_is_a_function_word_after_a_content_word(text: str, cut: int | None) -> None:
    assert phrase_break(text, 3) == cut


def test_a_clause_mark_before_the_phrase_break_still_ends_the_first_piece() -> None:
    stream = SentenceStream(first_clause=True, first_phrase_words=3)
    assert feed_tokens(stream, "Well, there are seven days in a week.") == ["Well,", "there are seven days in a week."]
    # Off (0) or without first_clause, no phrase is cut.
    for off in (SentenceStream(first_clause=True), SentenceStream(first_phrase_words=3)):
        assert feed_tokens(off, "There are seven days in a week.") == ["There are seven days in a week."]


def test_clean_removes_control_characters() -> None:
    assert clean("a\x00b\x07c\td\ne\u200b") == "a b c d\ne "
    assert clean("cafe\u0301") == "caf\u00e9"
