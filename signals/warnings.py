"""Early-warning signals: what the alert stage must hear of before a crisis.

Four kinds of signal, each stored once under its key:

- "critical": a post graded critical, at its first grading or when a later
  grading raised it;
- "viral": a post whose reposts are forecast to reach the configured reach
  within 24 hours (the SEISMIC estimate of :mod:`signals.virality`, which
  measured better than the log-linear baseline);
- "escalation": a grievance likely to become a complaint, because it threatens
  an action (再不解决就去12315, 准备找媒体) or organises owners;
- "burst": a problem, or the brand's share of grievances and complaints, above
  its own baseline (the detectors of :mod:`signals.bursts`).

The module also raises a grading's public impact with what the job has learnt
beyond the post itself: how many people reported the post's problem lately,
and the forecast of its reposts. Every function is pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from config import EarlyWarning
from items import Assessment, FactorScore, Grading, Item, Signal
from nlp.factors import INTERACTION_BANDS, format_count
from nlp.grading import Grader
from signals.bursts import Burst, KleinbergDetector, MeanStdDetector, detect
from signals.virality import (
    DAY_SECONDS,
    Forecast,
    crosses_threshold,
    seismic_forecast_from_snapshots,
    snapshots_since,
)

# Cue names of a grievance that announce a next step: a threatened action, or
# owners organising.
ESCALATION_CUES = frozenset({"threat", "organising"})
# The burst detectors see this many hours: the two weeks of baseline of the
# Kleinberg detector, its day-long window and a day in which a burst may have
# started.
WATCH_HOURS = 14 * 24 + 24 + 24
# A burst of the same subject starting within this time of one already
# signalled is taken to be the same burst, seen from a later hour.
BURST_COOLDOWN = timedelta(hours=24)
BRAND_SUBJECT = "brand"
HOUR = timedelta(hours=1)


# -- Public impact from context ------------------------------------------------


def forecast_reposts(
    item: Item, history: Iterable[tuple[datetime, int]]
) -> Forecast | None:
    """Forecast a post's reposts 24 hours after publication.

    ``history`` contains ``(taken_at, reposts)`` snapshots, the latest included.
    The post's age is taken at ``item.collected_at``. Returns None when the
    post has no creation time or an estimated one, was collected before it
    was published (a clock that cannot be trusted), or is 24 hours old or
    more: its reach is then known, and public impact already counts it.
    """
    published = item.created_at
    if published is None or item.time_estimated or item.collected_at is None:
        return None
    age = (item.collected_at - published).total_seconds()
    if not 0 < age < DAY_SECONDS:
        return None
    usable = [(taken, reposts) for taken, reposts in history if taken >= published]
    # The author's follower count is left out on purpose. Snapshots carry no
    # resharers' counts, so they all get the default, and the estimate holds
    # only with the default ratio of root to resharer reach that was measured
    # on real cascades. With an ordinary author's real count a steady trickle
    # of reposts comes out supercritical and is forecast a million.
    return seismic_forecast_from_snapshots(snapshots_since(published, usable), age)


def viral_impact(
    forecast: Forecast | None, settings: EarlyWarning
) -> tuple[int, str] | None:
    """Return the public impact a forecast implies, or None when it is not viral.

    The score is the band of the forecast reposts on the interaction scale of
    the public-impact factor, and at least 2 once the forecast crosses the
    configured reach.
    """
    if forecast is None or not crosses_threshold(
        forecast, settings.viral_reposts, settings.min_observed_reposts
    ):
        return None
    score = max(2, sum(forecast.reposts >= band for band in INTERACTION_BANDS))
    if forecast.capped:
        return score, f"预计24小时转发超过{format_count(forecast.reposts)}"
    return score, f"预计24小时转发{format_count(forecast.reposts)}"


def people_impact(reporters: int, settings: EarlyWarning) -> tuple[int, str] | None:
    """Return public impact 2 for a problem that several people reported lately.

    The count alone never gives 3: that takes owners escalating together or
    the media, which the post's own words show.
    """
    if reporters < settings.problem_people:
        return None
    return 2, f"同类投诉{reporters}人({settings.problem_days}天内)"


def raise_impact(
    grader: Grader,
    item: Item,
    assessment: Assessment,
    raises: Sequence[tuple[int, str] | None],
) -> Assessment:
    """Return the assessment with public impact raised to the highest of ``raises``.

    The raise's evidence goes first, the level, deadline and reason follow the
    new scores. An assessment without a grading, or whose impact is already as
    high, comes back unchanged.
    """
    grading = assessment.grading
    found = [r for r in raises if r is not None]
    if grading is None or not found:
        return assessment
    score, evidence = max(found, key=lambda found_raise: found_raise[0])
    current = grading.factor("public_impact")
    if score <= current.score:
        return assessment
    raised = FactorScore("public_impact", score, (evidence, *current.evidence))
    scores = tuple(raised if f.name == raised.name else f for f in grading.factors)
    regraded = grader.from_scores(
        item, assessment.classification, scores, grading.safety
    )
    return dataclasses.replace(assessment, grading=regraded)


# -- Signals of posts --------------------------------------------------------------


def post_signals(
    post_id: int,
    item: Item,
    assessment: Assessment,
    *,
    previous: Grading | None = None,
    forecast: Forecast | None = None,
    problem_id: int | None = None,
) -> list[Signal]:
    """Return the signals one graded post raises.

    ``previous`` is the post's grading before this one, if it had one, so that
    a post already critical is not signalled again. ``forecast`` is given only
    when it crossed the configured reach.
    """
    grading = assessment.grading
    if grading is None:
        return []
    posted = item.created_at or item.collected_at

    def signal(kind: str, reason: str, occurred_at: datetime, **detail: Any) -> Signal:
        return Signal(
            kind=kind,
            key=f"{kind}:post:{post_id}",
            subject="post",
            reason=reason,
            occurred_at=occurred_at,
            post_id=post_id,
            problem_id=problem_id,
            level=grading.level,
            detail=detail,
        )

    found = []
    if grading.level == "critical" and (
        previous is None or previous.level != "critical"
    ):
        found.append(signal("critical", grading.reason, posted))
    if forecast is not None:
        found.append(
            signal(
                "viral",
                _viral_reason(forecast),
                item.collected_at,
                **_forecast_detail(forecast),
            )
        )
    escalation = _escalation_evidence(assessment)
    if escalation:
        reason = f"抱怨可能升级为投诉:{'、'.join(escalation)}"
        found.append(signal("escalation", reason, posted))
    return found


def _viral_reason(forecast: Forecast) -> str:
    hours = forecast.age_seconds / 3600
    return (
        f"发布{hours:.1f}小时转发{format_count(forecast.observed)},"
        f"预计24小时转发{format_count(forecast.reposts)}"
    )


def _forecast_detail(forecast: Forecast) -> dict[str, Any]:
    return {
        "method": forecast.method,
        "forecast_reposts": round(forecast.reposts),
        "observed_reposts": forecast.observed,
        "age_seconds": round(forecast.age_seconds),
        "capped": forecast.capped,
        "explanation": forecast.reason,
    }


def _escalation_evidence(assessment: Assessment) -> list[str]:
    """Return what makes a grievance likely to become a complaint."""
    classification = assessment.classification
    if classification.kind != "grievance":
        return []
    return [cue.text for cue in classification.cues if cue.name in ESCALATION_CUES]


# -- Bursts -------------------------------------------------------------------


def make_detector(name: str, subject: str) -> KleinbergDetector | MeanStdDetector:
    """Return a fresh detector of the configured kind."""
    if name == "mean_std":
        return MeanStdDetector(subject)
    return KleinbergDetector(subject)


def hour_of(moment: datetime) -> datetime:
    """Return the start of the UTC hour that contains ``moment``."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hourly_counts(
    times: Iterable[datetime], first_hour: datetime, hours: int
) -> list[int]:
    """Count the times that fall in each of ``hours`` hours from ``first_hour``."""
    counts = [0] * hours
    for moment in times:
        index = int((hour_of(moment) - first_hour) / HOUR)
        if 0 <= index < hours:
            counts[index] += 1
    return counts


def ongoing_burst(
    detector_name: str,
    subject: str,
    counts: Sequence[int],
    first_hour: datetime,
    totals: Sequence[int] | None = None,
) -> Burst | None:
    """Run a detector over an hourly series; return the burst going on at its end."""
    detector = make_detector(detector_name, subject)
    for burst in reversed(detect(detector, counts, totals, first_hour)):
        if burst.end is None:
            return burst
    return None


def burst_signal(
    burst: Burst, *, problem_id: int | None = None, label: str | None = None
) -> Signal:
    """Return the signal of a burst of one problem, or of the brand when no id.

    The reason gives hours as the detector saw them (the local time of the
    series), with their UTC offset; the key uses the UTC hour.
    """
    start = burst.start
    assert isinstance(start, datetime)
    hour = start.astimezone(UTC)
    if problem_id is None:
        subject, key = BRAND_SUBJECT, f"burst:brand:{hour:%Y%m%d%H}"
        head = "品牌负面占比突增"
    else:
        subject, key = "problem", f"burst:problem:{problem_id}:{hour:%Y%m%d%H}"
        head = f"问题「{label}」突发" if label else "问题突发"
    offset = start.strftime("%z") or "+0000"
    detail = {"detector": burst.detector, "peak": burst.peak}
    if isinstance(burst.alarm, datetime):
        detail["alarm"] = burst.alarm.isoformat()
    return Signal(
        kind="burst",
        key=key,
        subject=subject,
        reason=f"{head}:{burst.reason}(时间为UTC{offset[:3]}:{offset[3:]})",
        occurred_at=start,
        problem_id=problem_id,
        detail=detail,
    )
