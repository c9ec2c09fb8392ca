"""A reply's text as llama.cpp writes it token by token: stop strings and characters split across tokens."""

from __future__ import annotations

from voxstack.llm.batch import StopText


def feed_all(text: StopText, pieces: list[bytes]) -> tuple[str, bool]:
    out = []
    for piece in pieces:
        said, stopped = text.feed(piece)
        out.append(said)
        if stopped:
            return "".join(out), True
    return "".join(out) + text.rest(), False


def test_a_stop_string_across_tokens_ends_the_reply_without_its_text() -> None:
    assert feed_all(StopText(["<|im_end|>"]), [b"Paris", b".<|im", b"_end|>", b" more"]) == ("Paris.", True)


def test_text_that_only_began_like_a_stop_string_is_sent_once_it_is_known_not_to_be_one() -> None:
    text = StopText(["STOP"])
    assert text.feed(b"Go ST") == ("Go ", False)  # "ST" may begin "STOP": held back
    assert text.feed(b"ART") == ("START", False)
    assert feed_all(StopText(["STOP"]), [b"Go ST"]) == ("Go ST", False)  # the reply ended: what was held is sent


def test_a_character_split_between_tokens_comes_whole() -> None:
    euro = "€".encode()
    text = StopText([])
    assert text.feed(b"5 " + euro[:1]) == ("5 ", False)
    assert text.feed(euro[1:]) == ("€", False)
    assert text.rest() == ""


def test_the_earliest_of_several_stop_strings_wins() -> None:
    assert feed_all(StopText(["\n\n", "User:"]), [b"Yes. User: no\n\n"]) == ("Yes. ", True)
