"""The early-warning stage of the job: context for gradings, and signals.

After a batch is analysed and grouped, :class:`Watch` raises each graded
post's public impact with what the post alone does not show: how many people
reported its problem lately, and the forecast of its reposts. It also lists
the signals the batch raises. When collectors see a known post again with new
engagement counts, :meth:`Watch.regrade` grades it again from its snapshot
history. After a source run, :meth:`Watch.bursts` runs the burst detector over
the problems the run touched and over the brand's share of grievances and
complaints.

The stage reads the store but never writes: the job saves what it returns in
the same transaction as the rest of the batch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from config import EarlyWarning
from items import Assessment, Engagement, Grading, Item, Signal
from nlp import Analyzer
from signals import warnings
from signals.problems import ProblemGrouper, post_key
from signals.virality import Forecast

if TYPE_CHECKING:
    from storage import PostRecord, Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Regrading:
    """A known post graded again: the post, its new assessment, its signals.

    ``changed`` is True when the level or a factor score moved, so that the
    new grading is worth storing.
    """

    post_id: int
    item: Item
    assessment: Assessment
    signals: tuple[Signal, ...]
    changed: bool


class Watch:
    """Context for gradings and early-warning signals, for one job."""

    def __init__(
        self,
        settings: EarlyWarning,
        analyzer: Analyzer,
        store: Store,
        timezone: str = "UTC",
    ):
        self.settings = settings
        self.analyzer = analyzer
        self.store = store
        # Burst reasons name hours in this zone.
        self.zone = ZoneInfo(timezone)

    def since(self, item: Item) -> datetime:
        """Return the start of the window in which people reporting a problem count."""
        posted = item.created_at or item.collected_at
        return posted - timedelta(days=self.settings.problem_days)

    def assess(
        self,
        posts: Sequence[tuple[int, Item]],
        assessments: Sequence[Assessment],
        problems: Mapping[int, tuple[int, int]],
    ) -> tuple[list[Assessment], list[Signal]]:
        """Raise new posts' gradings with context; return them and their signals.

        ``problems`` maps post ids to the problem the batch put each post in
        and the people who had reported that problem by then (see
        :meth:`since`). Each post's first snapshot is its engagement at
        collection.
        """
        raised, found = [], []
        for (post_id, item), assessment in zip(posts, assessments, strict=True):
            history = [(item.collected_at, item.engagement.reposts)]
            problem = problems.get(post_id)
            assessment, signals = self._contextualise(
                post_id, item, assessment, history, problem, None
            )
            raised.append(assessment)
            found += signals
        return raised, found

    def regrade(
        self, post_ids: Sequence[int], grouper: ProblemGrouper
    ) -> list[Regrading]:
        """Grade known graded posts again after their engagement changed.

        Returns the posts whose level or factor scores changed, or that raise
        a signal (which may be stored already). The age of each post is taken
        at its last sighting.
        """
        records = [self.store.get_post(post_id) for post_id in post_ids]
        graded = [r for r in records if r is not None and r.grading is not None]
        histories = self.store.engagement_history([record.id for record in graded])
        changed = []
        for record in graded:
            regrading = self._regrade(record, histories.get(record.id, []), grouper)
            if regrading is not None:
                changed.append(regrading)
        return changed

    def _regrade(
        self,
        record: PostRecord,
        history: list[tuple[datetime, Engagement]],
        grouper: ProblemGrouper,
    ) -> Regrading | None:
        # The reach a post reached counts, even when counts fall later
        # (deleted reposts, a source that reports less).
        item = dataclasses.replace(
            record.item,
            collected_at=record.last_seen_at,
            engagement=_highest(record.item.engagement, [e for _, e in history]),
        )
        classification = record.classification
        assert classification is not None and record.relevance is not None
        normalized = self.analyzer.normalize(item)
        grading = self.analyzer.grader.grade(item, normalized, classification)
        assessment = Assessment(normalized, record.relevance, classification, grading)
        incident = grouper.incident_of(post_key(item))
        problem = None
        if incident is not None:
            reporters = grouper.recent_reporters(incident.problem_id, self.since(item))
            problem = (incident.problem_id, len(reporters))
        # Reposts are cumulative, so a lower count later is read as no growth.
        reposts, highest = [], 0
        for taken_at, counts in history:
            highest = max(highest, counts.reposts)
            reposts.append((taken_at, highest))
        assessment, signals = self._contextualise(
            record.id, item, assessment, reposts, problem, record.grading
        )
        changed = not _same_grade(assessment.grading, record.grading)
        if not signals and not changed:
            return None
        return Regrading(record.id, item, assessment, tuple(signals), changed)

    def _contextualise(
        self,
        post_id: int,
        item: Item,
        assessment: Assessment,
        history: Iterable[tuple[datetime, int]],
        problem: tuple[int, int] | None,
        previous: Grading | None,
    ) -> tuple[Assessment, list[Signal]]:
        """Raise a graded post's public impact with context; return its signals."""
        if assessment.grading is None:
            return assessment, []
        forecast = self._viral_forecast(item, history)
        raises = [warnings.viral_impact(forecast, self.settings)]

        problem_id = None
        if problem is not None:
            problem_id, reporters = problem
            raises.append(warnings.people_impact(reporters, self.settings))
        if previous is not None:
            # Public impact once reached stays: a forecast that cools or
            # counts that fall do not make a post less exposed than it was.
            earlier = previous.factor("public_impact")
            if earlier.evidence:
                raises.append((earlier.score, earlier.evidence[0]))

        assessment = warnings.raise_impact(
            self.analyzer.grader, item, assessment, raises
        )
        signals = warnings.post_signals(
            post_id,
            item,
            assessment,
            previous=previous,
            forecast=forecast if raises[0] is not None else None,
            problem_id=problem_id,
        )
        return assessment, signals

    def _viral_forecast(
        self, item: Item, history: Iterable[tuple[datetime, int]]
    ) -> Forecast | None:
        """Return the repost forecast of a post with enough reposts to cross the reach.

        A forecast from fewer reposts never crosses, so most posts skip it.
        """
        if item.engagement.reposts < self.settings.min_observed_reposts:
            return None
        return warnings.forecast_reposts(item, history)

    def bursts(self, problem_labels: Mapping[int, str], end: datetime) -> list[Signal]:
        """Return the bursts going on at ``end`` that were not signalled yet.

        ``problem_labels`` names the problems to watch; the brand's share of
        grievances and complaints is always watched. The hourly series start
        no earlier than the unbroken run of days with posts before ``end``
        (see ``Store.covered_since``): a day without any post means nothing
        was collected then. The detectors decide nothing until they have
        seen enough baseline hours.
        """
        last_hour = warnings.hour_of(end)
        first_hour = last_hour - timedelta(hours=warnings.WATCH_HOURS - 1)
        covered = self.store.covered_since(first_hour, last_hour + warnings.HOUR)
        first_hour = max(first_hour, warnings.hour_of(covered))
        hours = int((last_hour - first_hour) / warnings.HOUR) + 1
        # The detectors label hours in the series' zone, which their reasons show.
        local_first = first_hour.astimezone(self.zone)
        detector = self.settings.burst_detector
        found: list[Signal] = []
        times = self.store.problem_post_times(list(problem_labels), first_hour)
        for problem_id, moments in times.items():
            counts = warnings.hourly_counts(moments, first_hour, hours)
            burst = warnings.ongoing_burst(
                detector, str(problem_id), counts, local_first
            )
            if burst is not None:
                label = problem_labels[problem_id]
                found.append(
                    warnings.burst_signal(burst, problem_id=problem_id, label=label)
                )

        brand = self.store.brand_post_times(first_hour)
        negative = warnings.hourly_counts(
            (moment for moment, bad in brand if bad), first_hour, hours
        )
        totals = warnings.hourly_counts((m for m, _ in brand), first_hour, hours)
        burst = warnings.ongoing_burst(
            detector, warnings.BRAND_SUBJECT, negative, local_first, totals
        )
        if burst is not None:
            found.append(warnings.burst_signal(burst))
        return self._unsignalled(found)

    def _unsignalled(self, found: list[Signal]) -> list[Signal]:
        """Drop bursts that start within the cooldown of one already signalled."""
        if not found:
            return []
        last = self.store.last_burst_starts([s.problem_id for s in found])
        fresh = []
        for signal in found:
            previous = last.get(signal.problem_id)
            if (
                previous is None
                or signal.occurred_at - previous > warnings.BURST_COOLDOWN
            ):
                fresh.append(signal)
        return fresh


def _highest(latest: Engagement, history: Sequence[Engagement]) -> Engagement:
    """Return the highest count of each reaction seen."""
    seen = [latest, *history]
    return Engagement(
        likes=max(e.likes for e in seen),
        reposts=max(e.reposts for e in seen),
        comments=max(e.comments for e in seen),
    )


def _same_grade(first: Grading | None, second: Grading | None) -> bool:
    if first is None or second is None:
        return first is second
    return first.level == second.level and [f.score for f in first.factors] == [
        f.score for f in second.factors
    ]
