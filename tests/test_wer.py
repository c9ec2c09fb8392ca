"""The word error rate the speech tests use."""

from __future__ import annotations

import pytest

from voxstack.testing.speech import wer


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("the quick brown fox", "The quick brown fox.", 0.0),
        ("the quick brown fox", "the quit brown fox", 0.25),
        ("the quick brown fox", "the brown fox", 0.25),
        ("the quick brown fox", "the quick brown fox jumps", 0.25),
        ("near the old stone bridge", "near the old Stonebridge.", 0.0),
        ("she sells seashells", "She sells sea shells", 0.0),
        ("the quick brown fox", "the quit-brown fox", 0.25),  # a hyphen separates words
        ("a b", "", 1.0),
    ],
)
def test_wer(reference: str, hypothesis: str, expected: float) -> None:
    assert wer(reference, hypothesis) == pytest.approx(expected)
