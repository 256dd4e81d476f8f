"""Tests for the burst detectors: the mean/std rule and Kleinberg's automaton."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from signals.bursts import (
    KleinbergDetector,
    MeanStdDetector,
    detect,
    viterbi_two_state,
)

DETECTOR_CLASSES = [MeanStdDetector, KleinbergDetector]
BASELINE_HOURS = 10 * 24


def poisson_counts(rate: float, hours: int, seed: int) -> list[int]:
    """Draw Poisson counts with Knuth's method, which is exact for small rates."""
    rng = random.Random(seed)
    limit = math.exp(-rate)
    counts = []
    for _ in range(hours):
        count, product = 0, rng.random()
        while product > limit:
            count += 1
            product *= rng.random()
        counts.append(count)
    return counts


def step_series(before: float, after: int, seed: int = 7) -> list[int]:
    """Return ten days of Poisson noise, then two days at a constant count."""
    return poisson_counts(before, BASELINE_HOURS, seed) + [after] * 48


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_constant_series_raises_nothing(detector_class):
    detector = detector_class("brake-noise")

    assert detect(detector, [3] * (30 * 24)) == []


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_steady_noise_raises_nothing(detector_class):
    detector = detector_class("brake-noise")

    assert detect(detector, poisson_counts(1.0, 30 * 24, seed=11)) == []


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_step_found_within_hours(detector_class):
    detector = detector_class("brake-noise")

    bursts = detect(detector, step_series(before=1.0, after=8))

    assert len(bursts) == 1
    assert BASELINE_HOURS <= bursts[0].alarm <= BASELINE_HOURS + 3
    assert bursts[0].peak == 8
    assert bursts[0].detector == detector.name
    assert bursts[0].problem_id == "brake-noise"
    assert bursts[0].reason


def test_kleinberg_dates_start_to_onset():
    detector = KleinbergDetector("brake-noise")

    burst = detect(detector, step_series(before=1.0, after=8))[0]

    assert burst.start <= burst.alarm
    assert burst.start >= BASELINE_HOURS - 1


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_step_down_ends_burst(detector_class):
    counts = step_series(before=1.0, after=8)[:-36] + poisson_counts(1.0, 72, seed=3)
    detector = detector_class("brake-noise")

    bursts = detect(detector, counts)

    assert len(bursts) == 1
    assert bursts[0].end is not None
    assert BASELINE_HOURS + 11 <= bursts[0].end <= BASELINE_HOURS + 40


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_ongoing_burst_has_no_end(detector_class):
    bursts = detect(detector_class("p"), step_series(before=1.0, after=8))

    assert bursts[-1].end is None


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_zero_to_two_is_no_burst(detector_class):
    counts = [0] * BASELINE_HOURS + [2] + [0] * 48

    assert detect(detector_class("p"), counts) == []


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_min_count_blocks_small_bursts(detector_class):
    counts = [0] * BASELINE_HOURS + [8] + [0] * 48

    assert detect(detector_class("p", min_count=9), counts) == []
    assert len(detect(detector_class("p", min_count=8), counts)) == 1


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_zero_baseline_then_ten_posts(detector_class):
    counts = [0] * BASELINE_HOURS + [10] + [0] * 48

    bursts = detect(detector_class("p"), counts)

    assert len(bursts) == 1
    assert bursts[0].alarm == BASELINE_HOURS
    assert bursts[0].peak == 10


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_all_zero_series_raises_nothing(detector_class):
    detector = detector_class("p")

    events = [detector.update(hour, 0) for hour in range(20 * 24)]

    assert not any(events)
    assert detector.bursts == []


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_nothing_before_min_baseline(detector_class):
    detector = detector_class("p", min_baseline_hours=48)

    assert detect(detector, [0] * 40 + [50] * 12) == []


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_online_matches_batch(detector_class):
    counts = step_series(before=0.5, after=6)[:-30] + poisson_counts(0.5, 200, seed=5)
    counts[100] = 20
    origin = datetime(2026, 3, 1, tzinfo=UTC)
    batch = detect(detector_class("p"), counts, first_hour=origin)

    detector = detector_class("p")
    events = []
    for offset, count in enumerate(counts):
        # Hours without posts are left out, so the detector fills them with zeros.
        if count or offset in (0, len(counts) - 1):
            hour = origin + timedelta(hours=offset, minutes=17)
            events.extend(detector.update(hour, count))

    assert len(batch) >= 2
    assert detector.bursts == batch
    assert [e.kind for e in events].count("start") == len(batch)
    ended = [burst for burst in batch if burst.end is not None]
    assert [e.burst for e in events if e.kind == "end"] == ended


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_events_follow_burst_life(detector_class):
    counts = [0] * BASELINE_HOURS + [10, 12] + [0] * 48
    detector = detector_class("p")

    kinds = []
    for hour, count in enumerate(counts):
        kinds.extend(event.kind for event in detector.update(hour, count))

    assert kinds[0] == "start"
    assert kinds[-1] == "end"
    assert set(kinds[1:-1]) <= {"continue"}


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_share_step_found(detector_class):
    rng = random.Random(3)
    totals = [rng.randint(20, 40) for _ in range(BASELINE_HOURS + 24)]
    counts = [sum(rng.random() < 0.1 for _ in range(t)) for t in totals]
    for hour in range(BASELINE_HOURS, len(totals)):
        counts[hour] = totals[hour] // 2

    bursts = detect(detector_class("negative-share"), counts, totals)

    assert len(bursts) == 1
    assert BASELINE_HOURS <= bursts[0].alarm <= BASELINE_HOURS + 3
    assert "占比" in bursts[0].reason or "负面" in bursts[0].reason


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_steady_share_raises_nothing(detector_class):
    rng = random.Random(4)
    totals = [rng.randint(20, 40) for _ in range(30 * 24)]
    counts = [sum(rng.random() < 0.1 for _ in range(t)) for t in totals]

    assert detect(detector_class("negative-share"), counts, totals) == []


def test_update_rejects_hours_out_of_order():
    detector = MeanStdDetector("p")
    detector.update(5, 1)

    with pytest.raises(ValueError, match="not after the previous hour"):
        detector.update(5, 1)


def test_update_rejects_naive_datetime():
    with pytest.raises(ValueError, match="no timezone"):
        KleinbergDetector("p").update(datetime(2026, 3, 1, 8), 1)


def test_update_rejects_mixed_totals():
    detector = MeanStdDetector("p")
    detector.update(0, 1, total=3)

    with pytest.raises(ValueError, match="total on every update"):
        detector.update(1, 1)


def test_update_rejects_negative_count():
    with pytest.raises(ValueError, match="count must be"):
        MeanStdDetector("p").update(0, -1)


def test_viterbi_keeps_long_run_high():
    low = [0, 5, 5, 0]
    high = [5, 0, 0, 5]

    # All low costs 0+5+5+0 = 10, and low-high-high-low costs 0+3+0+0+0 = 3.
    assert viterbi_two_state(low, high, up_cost=3) == [0, 1, 1, 0]


def test_viterbi_ignores_short_spike():
    low = [0, 2, 0]
    high = [2, 0, 2]

    # All low costs 2, but entering high for the spike costs 3 + 0.
    assert viterbi_two_state(low, high, up_cost=3) == [0, 0, 0]


def test_viterbi_bridges_a_dip():
    low = [0, 4, 1, 4, 0]
    high = [4, 0, 0, 0, 4]

    # Staying high through the dip (3+0+0+0) beats two entries (3+0+1+3+0).
    assert viterbi_two_state(low, high, up_cost=3) == [0, 1, 1, 1, 0]


def test_viterbi_starts_in_low_state():
    # Entering high at once costs 5 + 0 = 5, staying low costs 4.
    assert viterbi_two_state([4], [0], up_cost=5) == [0]
    assert viterbi_two_state([6], [0], up_cost=5) == [1]


def test_viterbi_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        viterbi_two_state([0, 1], [1], up_cost=1)
