"""What the load harness concludes from its measurements: percentiles, the knee, and growth in a soak.

Kept apart from the harness (bench/load/) so that the verdicts themselves
are tested: a knee or a "no growth" that a bug could fake would make the
figures in the docs worthless.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Step:
    """One step of a ramp: ``conversations`` at once, their p95 first-audio latency, the failures."""

    conversations: int
    p95: float
    answered: int
    errors: int


#: How much slower than one conversation alone the conversations at the knee may be (p95 against p95).
KNEE_FACTOR = 2.0


def knee_limit(steps: Sequence[Step], factor: float = KNEE_FACTOR) -> float:
    """The p95 the knee allows: ``factor`` times the p95 of one conversation alone, measured in the same
    run, so the bound moves with the machine and the day; NaN without a one-conversation step."""
    alone = [s.p95 for s in steps if s.conversations == 1 and s.answered and not s.errors]
    return factor * alone[0] if alone else math.nan


def knee(steps: Sequence[Step], limit: float) -> int:
    """The most conversations at once, counting up from the first step, whose p95 stays <= ``limit``
    with no error and at least one answered turn; 0 when even the first step fails that."""
    best = 0
    for step in sorted(steps, key=lambda s: s.conversations):
        if step.errors or not step.answered or not step.p95 <= limit:
            break
        best = step.conversations
    return best


def first_to_queue(stages: dict[str, Sequence[float]]) -> str:
    """The stage whose p95 grew most from the first step to the last (each list in step order, in
    seconds): where the calls waited first as the load rose."""
    growth = {
        name: values[-1] - values[0]
        for name, values in stages.items()
        if len(values) >= 2 and not math.isnan(values[0]) and not math.isnan(values[-1])
    }
    return max(growth, key=lambda name: growth[name]) if growth else ""


@dataclass(frozen=True)
class Growth:
    """A series's level at the start and at the end of a soak (after its warm-up), and whether it grew."""

    start: float
    end: float
    allowed: float
    grew: bool


def growth(values: Sequence[float], *, warmup: int, relative: float, absolute: float) -> Growth:
    """Compare the median of the first fifth after ``warmup`` samples with that of the last fifth.

    The series grew when the end exceeds the start by more than ``relative`` of
    the start plus ``absolute`` (noise: a garbage collection, an allocator's
    arena, a thread pool reaching its size). Too few samples to tell is growth,
    so that a soak too short to judge cannot pass.
    """
    settled = list(values[warmup:])
    if len(settled) < 10:
        return Growth(math.nan, math.nan, math.nan, True)
    fifth = len(settled) // 5
    start = statistics.median(settled[:fifth])
    end = statistics.median(settled[-fifth:])
    allowed = start * relative + absolute
    return Growth(start, end, allowed, end - start > allowed)
