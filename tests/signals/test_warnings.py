"""Context raises and early-warning signals, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import config
from items import (
    Assessment,
    Author,
    Classification,
    Cue,
    Engagement,
    FactorScore,
    Item,
    NormalizedText,
    Relevance,
)
from nlp.grading import Grader
from signals import warnings
from signals.virality import Forecast

PUBLISHED = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
SETTINGS = config.EarlyWarning()
GRADER = Grader(config.DEFAULT_STRATEGIES["balanced"], "balanced")


def make_item(
    minutes: float = 60, reposts: int = 0, followers: int | None = 1_000
) -> Item:
    return Item(
        source="test",
        platform="weibo",
        external_id="1",
        text="启程QC7车机又死机了",
        collected_at=PUBLISHED + timedelta(minutes=minutes),
        created_at=PUBLISHED,
        author=Author(name="车主", followers=followers),
        engagement=Engagement(reposts=reposts),
    )


def make_assessment(
    kind: str = "complaint",
    scores: tuple[int, int, int, int] = (1, 1, 1, 0),
    cues: tuple[Cue, ...] = (),
) -> Assessment:
    classification = Classification(kind=kind, confidence=0.9, cues=cues)
    factors = tuple(
        FactorScore(name, score, (f"{name}证据",) if score else ())
        for name, score in zip(
            ("customer_loss", "company_fault", "public_impact", "customer_identity"),
            scores,
            strict=True,
        )
    )
    grading = GRADER.from_scores(make_item(), classification, factors, safety=False)
    return Assessment(
        NormalizedText("启程QC7车机又死机了"),
        Relevance(True, brand="启程"),
        classification,
        grading,
    )


def forecast(reposts: float, observed: int = 500, capped: bool = False) -> Forecast:
    return Forecast(
        "seismic", reposts, observed, 3600.0, 86_400.0, "test", capped=capped
    )


# -- Forecasts and raises -----------------------------------------------------------


def test_forecast_fast_first_hour_viral():
    history = [
        (PUBLISHED + timedelta(minutes=10), 50),
        (PUBLISHED + timedelta(minutes=60), 2_000),
    ]
    result = warnings.forecast_reposts(make_item(60, 2_000, 2_000_000), history)
    assert result is not None
    assert result.observed == 2_000
    assert result.reposts > SETTINGS.viral_reposts
    assert warnings.viral_impact(result, SETTINGS) is not None


@pytest.mark.parametrize("followers", [1_000, 100, None])
def test_steady_trickle_is_not_forecast_viral(followers):
    history = [(PUBLISHED + timedelta(hours=h), 30 * h) for h in range(1, 7)]
    result = warnings.forecast_reposts(make_item(360, 180, followers), history)
    assert result is not None and not result.capped
    assert 180 < result.reposts < SETTINGS.viral_reposts
    assert warnings.viral_impact(result, SETTINGS) is None


@pytest.mark.parametrize(
    ("item", "why"),
    [
        (make_item(minutes=24 * 60), "a day old: its reach is known"),
        (make_item(minutes=-5), "collected before it was published"),
        (
            Item("t", "weibo", "1", "x", collected_at=PUBLISHED, created_at=None),
            "no creation time",
        ),
    ],
)
def test_no_forecast_without_a_usable_age(item, why):
    assert warnings.forecast_reposts(item, [(item.collected_at, 500)]) is None, why


def test_snapshots_before_publication_are_ignored():
    history = [
        (PUBLISHED - timedelta(hours=1), 5),
        (PUBLISHED + timedelta(hours=1), 40),
    ]
    result = warnings.forecast_reposts(make_item(60, 40), history)
    assert result is not None and result.observed == 40


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (forecast(900), None),
        (forecast(5_000), 2),
        (forecast(25_000), 3),
        (forecast(1_000_000, capped=True), 3),
        (forecast(50_000, observed=5), None),
    ],
)
def test_viral_impact_bands(result, expected):
    raised = warnings.viral_impact(result, SETTINGS)
    if expected is None:
        assert raised is None
    else:
        assert raised[0] == expected
        assert raised[1].startswith("预计24小时转发")


@pytest.mark.parametrize(("people", "expected"), [(4, None), (5, 2), (20, 2), (500, 2)])
def test_people_impact_bands(people, expected):
    raised = warnings.people_impact(people, SETTINGS)
    if expected is None:
        assert raised is None
    else:
        assert raised[0] == expected


def test_raise_impact_evidence_first():
    assessment = make_assessment(scores=(1, 1, 1, 0))
    assert assessment.grading.level == "normal"
    raised = warnings.raise_impact(
        GRADER, make_item(), assessment, [None, (3, "预计24小时转发2.5万")]
    )
    impact = raised.grading.factor("public_impact")
    assert (impact.score, impact.evidence[0]) == (3, "预计24小时转发2.5万")
    assert raised.grading.level == "critical"
    assert "预计24小时转发2.5万" in raised.grading.reason


def test_raise_impact_never_lowers():
    assessment = make_assessment(scores=(1, 1, 3, 0))
    assert (
        warnings.raise_impact(GRADER, make_item(), assessment, [(2, "同类投诉6人")])
        is assessment
    )


# -- Post signals ------------------------------------------------------------------


def kinds(signals) -> list[str]:
    return [signal.kind for signal in signals]


def test_critical_post_signals_once():
    assessment = make_assessment(scores=(3, 3, 3, 0))
    assert assessment.grading.level == "critical"
    [signal] = warnings.post_signals(7, make_item(), assessment, problem_id=3)
    assert (signal.kind, signal.key, signal.post_id, signal.problem_id) == (
        "critical",
        "critical:post:7",
        7,
        3,
    )
    assert signal.reason == assessment.grading.reason
    already = warnings.post_signals(
        7, make_item(), assessment, previous=assessment.grading
    )
    assert already == []


def test_escalation_needs_a_grievance_with_a_threat():
    threat = (Cue("threat", "再不解决就去12315"),)
    grievance = make_assessment("grievance", cues=threat)
    [signal] = warnings.post_signals(1, make_item(), grievance)
    assert signal.kind == "escalation"
    assert "再不解决就去12315" in signal.reason
    assert (
        warnings.post_signals(1, make_item(), make_assessment("complaint", cues=threat))
        == []
    )
    assert warnings.post_signals(1, make_item(), make_assessment("grievance")) == []


def test_viral_signal_carries_the_forecast():
    [signal] = warnings.post_signals(
        2, make_item(), make_assessment(), forecast=forecast(12_345)
    )
    assert signal.kind == "viral"
    assert signal.detail["forecast_reposts"] == 12_345
    assert "预计24小时转发" in signal.reason


def test_ungraded_post_raises_nothing():
    assessment = make_assessment()
    ungraded = Assessment(
        assessment.normalized, assessment.relevance, assessment.classification, None
    )
    assert warnings.post_signals(1, make_item(), ungraded, forecast=forecast(9e5)) == []


# -- Bursts --------------------------------------------------------------------------


FIRST_HOUR = datetime(2026, 11, 1, tzinfo=UTC)


def test_hourly_counts_bin_by_utc_hour():
    moments = [
        FIRST_HOUR + timedelta(minutes=5),
        FIRST_HOUR + timedelta(minutes=59),
        FIRST_HOUR + timedelta(hours=2, minutes=1),
        FIRST_HOUR - timedelta(minutes=1),
        FIRST_HOUR + timedelta(hours=3),
    ]
    assert warnings.hourly_counts(moments, FIRST_HOUR, 3) == [2, 0, 1]


def quiet_then_step(step_hours: int) -> list[int]:
    quiet = [1 if hour % 12 == 0 else 0 for hour in range(warnings.WATCH_HOURS)]
    return quiet[: len(quiet) - step_hours] + [8] * step_hours


@pytest.mark.parametrize("detector", ["kleinberg", "mean_std"])
def test_step_is_ongoing_burst(detector):
    step = warnings.ongoing_burst(detector, "7", quiet_then_step(6), FIRST_HOUR)
    assert step is not None and step.end is None
    flat = [1 if hour % 12 == 0 else 0 for hour in range(warnings.WATCH_HOURS)]
    assert warnings.ongoing_burst(detector, "7", flat, FIRST_HOUR) is None


def test_burst_signal_keys_by_subject_and_start_hour():
    burst = warnings.ongoing_burst("kleinberg", "7", quiet_then_step(6), FIRST_HOUR)
    signal = warnings.burst_signal(burst, problem_id=7, label="QC7 · 刹车异响")
    assert signal.key == f"burst:problem:7:{burst.start:%Y%m%d%H}"
    assert (signal.subject, signal.problem_id) == ("problem", 7)
    assert signal.reason.startswith("问题「QC7 · 刹车异响」突发")
    brand = warnings.burst_signal(burst)
    assert (brand.subject, brand.problem_id) == ("brand", None)
    assert brand.key.startswith("burst:brand:")
