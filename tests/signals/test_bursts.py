"""Tests for the burst detectors: the mean/std rule and Kleinberg's automaton."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from signals.bursts import (
    Burst,
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


def bursts_after_step(detector, counts: list[int]) -> list[Burst]:
    """Return the bursts raised at or after the step of ``step_series``.

    The detectors allow chance alarms on noise (up to one per problem per month
    in bench/bursts.py), and ten days of noise may contain one.
    """
    return [
        burst for burst in detect(detector, counts) if burst.alarm >= BASELINE_HOURS
    ]


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

    bursts = bursts_after_step(detector, step_series(before=1.0, after=8))

    assert len(bursts) == 1
    assert bursts[0].alarm <= BASELINE_HOURS + 3
    assert bursts[0].peak == 8
    assert bursts[0].detector == detector.name
    assert bursts[0].problem_id == "brake-noise"
    assert bursts[0].reason


def test_kleinberg_dates_start_to_onset():
    detector = KleinbergDetector("brake-noise")

    burst = bursts_after_step(detector, step_series(before=1.0, after=8))[0]

    assert burst.alarm == BASELINE_HOURS
    assert burst.start <= burst.alarm
    assert burst.start >= BASELINE_HOURS - 1


@pytest.mark.parametrize("detector_class", DETECTOR_CLASSES)
def test_step_down_ends_burst(detector_class):
    counts = step_series(before=1.0, after=8)[:-36] + poisson_counts(1.0, 72, seed=3)
    detector = detector_class("brake-noise")

    bursts = bursts_after_step(detector, counts)

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
    assert "每小时至少" not in bursts[0].reason


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


def test_min_burst_rate_finds_quiet_burst_sooner():
    quiet = [1 if hour % 20 == 0 else 0 for hour in range(BASELINE_HOURS)]
    counts = quiet + [3] * 6 + [0] * 30

    # At 0.05 posts an hour, 3 posts fit a burst of 2 an hour far better than one
    # of 5 times the baseline, so the floor needs one hour less of evidence.
    floored = detect(KleinbergDetector("p", min_count=1), counts)
    unfloored = detect(KleinbergDetector("p", min_count=1, min_burst_rate=0), counts)

    assert [burst.alarm for burst in floored] == [BASELINE_HOURS]
    assert [burst.alarm for burst in unfloored] == [BASELINE_HOURS + 1]
    assert "每小时至少2条" in floored[0].reason
    assert "至少" not in unfloored[0].reason


def test_kleinberg_rejects_negative_min_burst_rate():
    with pytest.raises(ValueError, match="min_burst_rate must be >= 0"):
        KleinbergDetector("p", min_burst_rate=-1)


def test_kleinberg_baseline_shorter_than_a_day():
    counts = [hour % 2 for hour in range(30)] + [9] * 3

    bursts = detect(KleinbergDetector("p", min_baseline_hours=6), counts)

    assert [burst.alarm for burst in bursts] == [30]


@pytest.mark.parametrize(("after", "delay_24h", "delay_6h"), [(3, 11, 4), (5, 5, 2)])
def test_mean_std_short_window_reacts_sooner(after, delay_24h, delay_6h):
    counts = step_series(before=1.0, after=after)

    day_window = bursts_after_step(MeanStdDetector("p"), counts)
    six_hour_window = bursts_after_step(MeanStdDetector("p", recent_hours=6), counts)

    assert [burst.alarm - BASELINE_HOURS for burst in day_window] == [delay_24h]
    assert [burst.alarm - BASELINE_HOURS for burst in six_hour_window] == [delay_6h]


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
