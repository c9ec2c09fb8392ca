"""Scoring an assistant's replies against accepted answers: right or not, English or not, how long.

A reply is right when one accepted answer stands in it as whole words, after
both are normalised: lower case, punctuation dropped, number words written as
digits ("twenty one" -> 21, "4.0" stays "4.0"). A reply counts as English when
it has no telling function words of the other languages a small model drifts
into (French, Spanish, German, Italian, Portuguese) and, if it is longer than
a few words, some English ones.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}

# Word lists read best as text. noqa: a list literal of a hundred one-word strings is no clearer.
_ENGLISH = frozenset(
    "the a an is are was were be it of in on to and or that this with for as at by from you your i my "  # noqa: SIM905
    "there here what which who how it's is not no yes can will would has have do does".split()
)
_FOREIGN = (
    frozenset(
        # French, Spanish, Italian, Portuguese, German function words that English replies do not use.
        "le les des est une du au aux et qui que dans pour sur avec sont ce cette nous vous je tu il elle "  # noqa: SIM905
        "el los las es un una del por para con como pero muy y está son "
        "il lo gli della di che sono è per non "
        "os uma não são com para pelo "
        "der die das und ist nicht ein eine mit für auf dem den".split()
    )
    - _ENGLISH
    - {"a", "i"}
)


def words(text: str) -> list[str]:
    """Lower-case words and numbers; number words become digits; punctuation is dropped."""
    # NFKC: "H₂O" is "H2O", "①" is "1".
    folded = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    raw = [w.strip("'") for w in re.findall(r"[a-zà-ÿ']+|\d+(?:[.,]\d+)?", folded)]
    out: list[str] = []
    total: int | None = None  # the number being read: its complete scales ...
    part = 0  # ... and what is below the next scale word
    after_scale = False

    def flush() -> None:
        nonlocal total, part
        if total is not None:
            out.append(str(total + part))
        total, part = None, 0

    for word in raw:
        value = _UNITS.get(word, _TENS.get(word))
        if value is not None:
            # "twenty one" is one number; "one two" and "five ten" are two.
            if total is not None and not (part == 0 or (value < 10 and part >= 20 and part % 10 == 0)):
                flush()
            total = total or 0
            part += value
            after_scale = False
        elif word in _SCALES:
            total = (total or 0) + max(part, 1) * _SCALES[word]
            part, after_scale = 0, True
        elif word == "and" and after_scale:
            after_scale = False  # "one hundred and five"
        else:
            flush()
            after_scale = False
            if word:
                out.append(word.replace(",", ""))
    flush()
    return out


def is_right(reply: str, accepted: list[str]) -> bool:
    """Whether one accepted answer stands in ``reply`` as whole words (an empty list accepts anything)."""
    if not accepted:
        return True
    said = f" {' '.join(words(reply))} "
    return any(f" {' '.join(words(answer))} " in said for answer in accepted)


def is_english(reply: str) -> bool:
    found = [w for w in words(reply) if not w[0].isdigit()]  # numbers belong to no language
    if any(w in _FOREIGN for w in found):
        return False
    return len(found) <= 4 or any(w in _ENGLISH for w in found)


@dataclass
class Score:
    """What a question set's replies scored."""

    asked: int = 0
    right: int = 0
    english: int = 0
    words: int = 0

    def add(self, reply: str, accepted: list[str]) -> bool:
        self.asked += 1
        right = is_right(reply, accepted)
        self.right += right
        self.english += is_english(reply)
        self.words += len(words(reply))
        return right

    @property
    def accuracy(self) -> float:
        return self.right / self.asked if self.asked else 0.0

    @property
    def english_share(self) -> float:
        return self.english / self.asked if self.asked else 0.0

    @property
    def mean_words(self) -> float:
        return self.words / self.asked if self.asked else 0.0
