"""What an unheard turn's text becomes with the next utterance's result (core.continuation)."""

from __future__ import annotations

from voxstack.core.continuation import Continuation
from voxstack.v1 import asr_pb2


def test_a_result_the_asr_decoded_with_the_first_part_is_the_whole() -> None:
    heard = asr_pb2.RecognitionResult(text="What is the capital of France?", joins_previous=True)
    assert Continuation("What is the capital?", 1.5).join(heard) == "What is the capital of France?"


def test_a_result_of_the_second_part_alone_follows_the_first_parts_words() -> None:
    heard = asr_pb2.RecognitionResult(text=" of France? ")
    assert Continuation("What is the capital", 1.5).join(heard) == "What is the capital of France?"
    assert Continuation("What is the capital", 1.5).join(asr_pb2.RecognitionResult(text="  ")) == "What is the capital"
