"""Text for speech: cleaning and sentence splitting, whole or as a stream.

tts speaks a text sentence by sentence; the core splits the llm's streamed
reply into sentences as it arrives. Both use these rules: a sentence ends at
., ! or ? (plus closing quotes or brackets) followed by whitespace and then a
capital, a digit or an opening quote, or at a blank line, or at the end of
the text. Abbreviations ("e.g.", "Dr.", "p.m."), initials ("J. R.") and
decimals ("3.5") do not end sentences. A run-on sentence longer than
``max_chars`` is cut at a comma, semicolon or colon, else at a space, so the
first audio never waits for a whole paragraph.

A reply's first piece may end sooner (``SentenceStream``): at its first
comma, semicolon or colon, or at its first phrase break, where a function
word follows a content word ("There are seven days | in a week"), the
boundary speakers pause at and English text-to-speech front ends break
phrases at ("chinks and chunks").
"""

from __future__ import annotations

import re
import unicodedata

# Lower-case words that take a period and rarely end a sentence.
ABBREVIATIONS = frozenset(
    {
        *("e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "no", "nos"),
        *("approx", "fig", "figs", "inc", "ltd", "co", "corp", "dept", "est", "a.m", "p.m", "u.s", "u.k"),
        *("jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"),
    }
)
ENDERS = ".!?\u2026"  # ... and the ellipsis character
CLOSERS = "\"')]\u201d\u2019"  # straight and curly closing quotes, brackets
OPENERS = "\"'([\u201c\u2018"
_END = re.compile(f"[{re.escape(ENDERS)}]+[{re.escape(CLOSERS)}]*")
_BLANK_LINE = re.compile(r"\n\s*\n")
_SOFT_BREAK = re.compile(r"[,;:]\s")
_WORD_BEFORE = re.compile(r"([\w.]+)$")
DEFAULT_MAX_CHARS = 250
# Words a phrase begins with: prepositions, conjunctions, relative words, articles, pronouns, auxiliaries.
FUNCTION_WORDS = frozenset(
    {
        *("of", "in", "on", "at", "to", "for", "with", "from", "by", "about", "into", "over", "after", "before"),
        *("under", "between", "through", "during", "without", "around", "near", "like", "as", "than", "since"),
        *("and", "but", "or", "so", "because", "while", "when", "if", "that", "which", "who", "whom", "where"),
        *("the", "a", "an", "this", "these", "those", "its", "their", "his", "her", "my", "your", "our"),
        *("it", "there", "they", "he", "she", "we", "you", "i", "is", "are", "was", "were", "be", "been"),
        *("has", "have", "had", "will", "would", "can", "could", "should", "may", "might", "must"),
        *("do", "does", "did", "not"),
    }
)
_WORD = re.compile(r"\S+")


def clean(text: str) -> str:
    """Control characters (but newlines) become spaces; Unicode is NFC-normalised."""
    text = unicodedata.normalize("NFC", text)
    return "".join(ch if ch == "\n" or unicodedata.category(ch)[0] != "C" else " " for ch in text)


def _ends_sentence(text: str, end: int) -> bool:
    """Whether the punctuation run ending at ``end`` ends a sentence, given what follows."""
    match = _END.match(text, _punct_start(text, end))
    punct = match.group(0) if match else ""
    if "." in punct and not any(c in punct for c in ENDERS[1:]):
        word = _WORD_BEFORE.search(text, 0, end - len(punct))
        before = word.group(1).lower().rstrip(".") if word else ""
        if before in ABBREVIATIONS or (len(before) == 1 and before.isalpha()):
            return False
    rest = text[end:]
    stripped = rest.lstrip()
    if not stripped:
        return True
    if stripped is rest:  # no whitespace after: "3.5", "e.g.the"
        return False
    first = stripped[0]
    return first.isupper() or first.isdigit() or first in OPENERS or not first.isalpha()


def _punct_start(text: str, end: int) -> int:
    start = end
    while start > 0 and text[start - 1] in ENDERS + CLOSERS:
        start -= 1
    return start


def sentence_spans(text: str, *, final: bool = True, max_chars: int = DEFAULT_MAX_CHARS) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence, whitespace excluded.

    With ``final=False`` (more text will come), a sentence is returned only once
    what follows it confirms the boundary, and the unfinished tail is not.
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    candidates = sorted({m.end() for m in _END.finditer(text)} | {m.start() for m in _BLANK_LINE.finditer(text)})
    for end in candidates:
        if end <= pos:
            continue
        at_blank = bool(_BLANK_LINE.match(text, end))
        if not final and not text[end:].strip():
            break  # what follows is not here yet
        if at_blank or _ends_sentence(text, end):
            spans += _cut_long(text, pos, end, max_chars)
            pos = end
    tail_start = len(text) - len(text[pos:].lstrip())
    if final and text[tail_start:].strip():
        spans += _cut_long(text, pos, len(text), max_chars)
    elif not final:
        # Long unfinished text is cut too, keeping the last piece back.
        pieces = _cut_long(text, pos, len(text), max_chars)
        spans += pieces[:-1]
    return [s for s in spans if s[1] > s[0]]


def _cut_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Trim whitespace; split pieces longer than ``max_chars`` at a soft break or a space."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    pieces = []
    while end - start > max_chars:
        window = text[start : start + max_chars]
        cut = max((m.end() for m in _SOFT_BREAK.finditer(window)), default=0) or window.rfind(" ") + 1
        if cut <= 0:
            cut = max_chars
        piece_end = start + cut
        trimmed = piece_end
        while trimmed > start and text[trimmed - 1].isspace():
            trimmed -= 1
        pieces.append((start, trimmed))
        start = piece_end
        while start < end and text[start].isspace():
            start += 1
    pieces.append((start, end))
    return pieces


class Phrase(str):
    """A piece cut inside its sentence (at a phrase break): spoken as a phrase that goes on."""

    def spoken(self) -> str:
        """The text to synthesise. With a comma, piper's phonemes end as a clause inside a sentence does in the
        voices' training text (a comma and a short pause), not with no mark at all, which they rarely saw."""
        return f"{self},"


def phrase_break(text: str, min_words: int) -> int | None:
    """Where ``text`` (a sentence's start, still being written) can be cut at its first phrase break after at
    least ``min_words`` words: before a function word that follows a content word. The last word may go on, but
    when it is a function word the cut comes before it anyway: the text comes a token at a time, and a token
    that is a function word is one (a tokenizer writes "island" or "India" as one token, not "is" or "in" and
    the rest), so waiting for the next word would hold the first audio a token longer for nothing."""
    words = list(_WORD.finditer(text))
    if text and not text[-1].isspace() and words and words[-1].group(0).lower() not in FUNCTION_WORDS:
        words = words[:-1]  # the last word may go on
    for n in range(max(min_words, 1), len(words)):
        word, before = words[n].group(0), words[n - 1].group(0)
        if word.lower() in FUNCTION_WORDS and before.lower() not in FUNCTION_WORDS and before[-1].isalnum():
            return words[n].start()
    return None


class SentenceStream:
    """Feed text as it streams; get each sentence as soon as its end is certain.

    With ``first_clause``, the first piece ends at the first comma, semicolon or
    colon if that comes before the first sentence end: a reply's first audio
    then waits for a clause, not a sentence. With ``first_phrase_words`` too, it
    ends at the first phrase break after that many words if that comes sooner
    still (a ``Phrase``).
    """

    def __init__(
        self, max_chars: int = DEFAULT_MAX_CHARS, *, first_clause: bool = False, first_phrase_words: int = 0
    ) -> None:
        self.max_chars = max_chars
        self._buffer = ""
        self._clause_pending = first_clause
        self._phrase_words = first_phrase_words

    def feed(self, delta: str) -> list[str]:
        self._buffer += delta
        return self._take(final=False)

    def flush(self) -> list[str]:
        return self._take(final=True)

    def _take(self, *, final: bool) -> list[str]:
        spans = sentence_spans(self._buffer, final=final, max_chars=self.max_chars)
        if not spans:
            if final:
                self._buffer = ""
                return []
            return self._take_clause()
        self._clause_pending = False
        sentences = [self._buffer[a:b] for a, b in spans]
        self._buffer = "" if final else self._buffer[spans[-1][1] :]
        return sentences

    def _take_clause(self) -> list[str]:
        """The first clause, once its comma, semicolon or colon and a space are in, or its first phrase (first
        piece only)."""
        if not self._clause_pending:
            return []
        brk = _SOFT_BREAK.search(self._buffer)
        if brk is not None and self._buffer[: brk.start()].strip():
            self._clause_pending = False
            clause = self._buffer[: brk.start() + 1].strip()
            self._buffer = self._buffer[brk.start() + 1 :]
            return [clause]
        cut = phrase_break(self._buffer, self._phrase_words) if self._phrase_words else None
        if cut is None:
            return []
        self._clause_pending = False
        phrase = Phrase(self._buffer[:cut].strip())
        self._buffer = self._buffer[cut:]
        return [phrase]
