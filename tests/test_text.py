"""Sentence splitting and text cleaning."""

from __future__ import annotations

import pytest

from voxstack.text import SentenceStream, clean, sentence_spans


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


def test_clean_removes_control_characters() -> None:
    assert clean("a\x00b\x07c\td\ne\u200b") == "a b c d\ne "
    assert clean("cafe\u0301") == "caf\u00e9"
