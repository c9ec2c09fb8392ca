"""The load harness's verdicts: percentiles, the knee, the stage that queues first, growth in a soak."""

from __future__ import annotations

import math

import pytest

from voxstack.testing.loadstats import Step, first_to_queue, growth, knee, knee_limit, percentile


def test_percentile_interpolates_between_ranks() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 95) == pytest.approx(4.8)
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))


def test_knee_is_the_last_good_step_counting_up() -> None:
    steps = [
        Step(1, 0.9, answered=10, errors=0),
        Step(2, 1.2, answered=18, errors=0),
        Step(3, 1.6, answered=20, errors=0),  # too slow: the knee is 2
        Step(4, 1.1, answered=20, errors=0),  # a lucky step past a bad one does not count
    ]
    assert knee(steps, 1.5) == 2
    assert knee(list(reversed(steps)), 1.5) == 2  # order of the list does not matter


def test_knee_stops_at_errors_and_at_steps_with_nothing_answered() -> None:
    assert knee([Step(1, 0.5, 5, 0), Step(2, 0.6, 9, 1)], 1.5) == 1
    assert knee([Step(1, math.nan, 0, 0)], 1.5) == 0
    assert knee([Step(1, 2.0, 5, 0)], 1.5) == 0


def test_first_to_queue_is_the_stage_that_grew_most() -> None:
    stages = {"asr_decode": [0.8, 1.0, 1.4], "llm_first_token": [0.2, 1.5, 2.9], "first_audio": [1.3, 1.4, 1.5]}
    assert first_to_queue(stages) == "llm_first_token"
    assert first_to_queue({"asr_decode": [0.8]}) == ""


def test_growth_flat_series_with_noise_passes() -> None:
    series = [500.0 + (i % 3) for i in range(60)]
    verdict = growth(series, warmup=10, relative=0.05, absolute=2)
    assert not verdict.grew
    assert verdict.start == pytest.approx(501.0, abs=1)


def test_growth_of_a_leak_fails() -> None:
    series = [500.0 + 2 * i for i in range(60)]  # 2 MiB a sample, for ever
    verdict = growth(series, warmup=10, relative=0.05, absolute=2)
    assert verdict.grew
    assert verdict.end > verdict.start + verdict.allowed


def test_growth_during_warmup_only_passes() -> None:
    series = [100.0 + 10 * i for i in range(10)] + [200.0] * 50
    assert not growth(series, warmup=10, relative=0.05, absolute=2).grew
    assert growth(series, warmup=0, relative=0.05, absolute=2).grew  # the same series judged from the start


def test_growth_with_too_few_samples_cannot_pass() -> None:
    assert growth([1.0] * 12, warmup=5, relative=0.1, absolute=0).grew


def test_the_knee_limit_is_twice_one_conversation_alone_in_the_same_run() -> None:
    steps = [Step(2, 1.9, 10, 0), Step(1, 0.8, 5, 0), Step(3, 1.7, 12, 0), Step(4, 3.0, 12, 0)]
    assert knee_limit(steps) == 1.6 and knee(steps, knee_limit(steps)) == 1  # 2 at 1.9 s is past 1.6
    steps[0] = Step(2, 1.5, 10, 0)
    assert knee(steps, knee_limit(steps)) == 2  # 3 at 1.7 s is past it too
    assert math.isnan(knee_limit([Step(1, 0.8, 5, 1)]))  # one alone failed: no reference, no knee
    assert knee([Step(1, 0.8, 5, 1)], knee_limit([Step(1, 0.8, 5, 1)])) == 0
