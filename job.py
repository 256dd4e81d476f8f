"""The job: one source's run through the whole pipeline, and the refresh of
known posts.

:class:`Job` collects a source from its cursor, stores the posts, analyses,
grades and groups the new ones, raises their early warnings and alerts, and
saves each batch with its results in one transaction. It also reads known
posts again (the engagement refresh), finishes what a crash left, watches
for bursts and records each source's health.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from alerts import policy
from alerts.bursts import burst_alert
from alerts.digest import digest_alert, digest_key
from alerts.escalation import escalate_due
from alerts.health import health_notice
from alerts.outbox import DeliveryReport, Senders, deliver_due, mail_channel
from alerts.planner import Candidate, plan_batch
from alerts.robots import RobotSender, RobotSetupError
from alerts.senders import EmlSender, SmtpSender
from alerts.writer import AlertWriter, IncidentSize, Written
from collectors import (
    Collector,
    CollectorError,
    DeadlineExceeded,
    Rereader,
    build_collector,
    build_rereader,
)
from collectors.feed import plain_text
from config import Config, Source
from items import (
    Assessment,
    Item,
    KnownPost,
    Reread,
    Signal,
)
from nlp import Analyzer
from nlp.segment import Segmenter
from signals.problems import STATE_VERSION, Assignment, Problem, ProblemGrouper
from signals.watch import Watch
from storage import LockHeld, Saved, StaleAlertState, Store
from storage.rows import GroupingChanges, PostAssignment

logger = logging.getLogger(__name__)


PROGRESS_LOG_SECONDS = 10.0
# A full text longer than this is taken for a wrong field or an error page:
# an estimate, far above the longest posts seen on the monitored platforms.
MAX_FULL_TEXT_CHARS = 50_000


# Times a batch's alerts are planned and saved when alerts keep changing in
# between, which needs an outbox claim or an escalation at that very moment.
SAVE_ATTEMPTS = 3

# Problems with a post this recent are watched for bursts after each run.
BURST_ACTIVE_WINDOW = timedelta(days=1)


@dataclass
class SourceSummary:
    """Counts and outcome of one pass over one source."""

    source: str
    status: str = "ok"
    fetched: int = 0
    new: int = 0
    duplicates: int = 0
    bad: int = 0
    alerts: int = 0
    # Messages added to alerts stored before: updates of their incidents.
    updates: int = 0
    seconds: float = 0.0
    error: str | None = None
    unanalysed: int = 0
    kinds: Counter = field(default_factory=Counter)
    levels: Counter = field(default_factory=Counter)
    # Ids of the problems that posts started, and of every problem that got posts.
    new_problems: set[int] = field(default_factory=set)
    changed_problems: set[int] = field(default_factory=set)
    # The collector stopped early (rate limit, deadline): what it stored is
    # kept and the next run resumes from its cursor.
    partial: bool = False
    refreshed: int = 0
    regraded: int = 0
    signals: Counter = field(default_factory=Counter)


class Job:
    """Runs sources through the whole pipeline against one store.

    The job groups posts into problems with one :class:`ProblemGrouper`,
    loaded from the store at start. Sources that run in parallel threads
    share it under a lock, held from grouping a batch until its save commits.
    """

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.analyzer = make_analyzer(config)
        self.stop = threading.Event()
        self._delivering = threading.Lock()
        # Outcomes of every delivery run of this job, added up.
        self.deliveries = DeliveryReport()
        # Robots whose setup failed, so that the error is logged once.
        self._robot_errors: set[str] = set()
        self.recovery: SourceSummary | None = None
        self.segmenter = Segmenter.for_brand(config.brand)
        self._grouping = threading.Lock()
        # One batch is analysed at a time: the analysis holds the GIL anyway,
        # and fifty sources starting together would otherwise hold fifty
        # batches of intermediate features in memory at once.
        self._analysing = threading.Lock()
        self._grouper: ProblemGrouper | None = self._load_grouper()
        self.watch = Watch(config.early_warning, self.analyzer, store, config.timezone)
        # The time the alerts are planned and delivered by; tests move it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.writer = AlertWriter(config.alerts, config.timezone, store.recent_mail)

    def run_source(
        self, source: Source, *, show_progress: bool = False
    ) -> SourceSummary:
        """Collect one source from its cursor to the end, storing as it goes."""
        summary = SourceSummary(source.name)
        started = time.monotonic()
        run_id = self.store.start_run(source.name)
        logger.info("source started source=%s", source.name)
        try:
            self._collect(source, summary, show_progress)
        except CollectorError as exc:
            partial = summary.partial or isinstance(exc, DeadlineExceeded)
            summary.status = "partial" if partial else "failed"
            summary.error = str(exc)
            logger.error(
                "source failed source=%s status=%s error=%s",
                source.name,
                summary.status,
                exc,
            )
        except Exception as exc:
            summary.status, summary.error = "failed", f"{type(exc).__name__}: {exc}"
            logger.exception("source crashed source=%s", source.name)

        self._complete_cut(source)
        # Bursts are counted from new posts, so a run that stored none cannot
        # start one; a crash between storing and watching is caught at start.
        if summary.new:
            self._watch_bursts(summary)
        self._settle_status(summary)
        summary.seconds = time.monotonic() - started
        self._finish_run(run_id, summary)
        self._check_health(source.name)
        return summary

    def _complete_cut(self, source: Source) -> None:
        """Look up at once the full text of the source's posts stored cut short.

        Those the lookup misses wait for the engagement refresh.
        """
        if source.detail is None or self.stop.is_set():
            return
        try:
            reader = build_rereader(source, self.config)
            settings = self.config.refresh
            since = datetime.now(UTC) - timedelta(hours=settings.max_age_hours)
            cut = self.store.refresh_candidates(
                since, [source.name], settings.max_posts, cut_only=True
            )
            if cut and reader is not None:
                self._reread(source.name, reader, cut, SourceSummary(source.name))
        except Exception:
            logger.exception("full text lookup failed source=%s", source.name)

    def _check_health(self, source: str) -> None:
        """Store the notice to operations that the source's latest run calls for."""
        try:
            runs = self.store.recent_runs(
                source, self.config.health.stale_after_failures + 1
            )
            notice = health_notice(self.config, source, runs, datetime.now(UTC))
            if notice is not None and self.store.add_alerts([notice])[0] is not None:
                logger.warning(
                    "source health notice stored source=%s notice=%s",
                    source,
                    notice.dedup_key,
                )
        except Exception:
            logger.exception("source health check failed source=%s", source)

    def _settle_status(self, summary: SourceSummary) -> None:
        if summary.unanalysed and summary.status == "ok":
            summary.status = "failed"
            summary.error = (
                f"{summary.unanalysed} posts could not be analysed (see the log); "
                "they are retried at the next start"
            )
        if (self.stop.is_set() or summary.partial) and summary.status == "ok":
            summary.status = "partial"
        # A run cut short before it read anything made no progress: it counts
        # as failed, so that a source that never gets through goes stale.
        cut_short = summary.status == "partial" and not self.stop.is_set()
        if cut_short and summary.fetched == 0 and summary.bad == 0:
            summary.status = "failed"
            summary.error = summary.error or "the run ended before reading any post"

    def _finish_run(self, run_id: int, summary: SourceSummary) -> None:
        self.store.finish_run(
            run_id,
            status=summary.status,
            fetched=summary.fetched,
            new=summary.new,
            duplicates=summary.duplicates,
            bad=summary.bad,
            error=summary.error,
        )

        logger.info(
            "source finished source=%s status=%s fetched=%s new=%s duplicates=%s bad=%s "
            "alerts=%s seconds=%.1f",
            summary.source,
            summary.status,
            summary.fetched,
            summary.new,
            summary.duplicates,
            summary.bad,
            summary.alerts,
            summary.seconds,
        )

    def _collect(
        self, source: Source, summary: SourceSummary, show_progress: bool
    ) -> None:
        collector = build_collector(source, self.config)
        try:
            self._read_batches(source, collector, summary, show_progress)
        finally:
            summary.partial = bool(getattr(collector, "partial", False))

    def _read_batches(
        self,
        source: Source,
        collector: Collector,
        summary: SourceSummary,
        show_progress: bool,
    ) -> None:
        cursor = self.store.get_cursor(source.name)
        with _Progress(
            source.name, collector.estimate_total(cursor), show_progress
        ) as progress:
            for batch in collector.collect(cursor):
                stored = self.store.add_batch(
                    batch.items, cursor=(source.name, batch.cursor)
                )
                ids = stored.ids
                new = [
                    (i, item)
                    for i, item in zip(ids, batch.items, strict=True)
                    if i is not None
                ]
                for post_id, item in zip(ids, batch.items, strict=True):
                    if post_id is None:
                        logger.debug(
                            "post already stored source=%s id=%s location=%s",
                            source.name,
                            item.external_id,
                            item.location,
                        )
                summary.fetched += len(batch.items)
                summary.bad += len(batch.rejected)
                summary.new += len(new)
                summary.duplicates += len(batch.items) - len(new)
                self.process(new, summary)
                self.refresh(stored.refreshed, summary)
                progress.advance(len(batch.items) + len(batch.rejected))
                if self.stop.is_set():
                    logger.info("source stopping after batch source=%s", source.name)
                    return

    def process(self, posts: list[tuple[int, Item]], summary: SourceSummary) -> None:
        """Analyse stored posts, then save the results and their alerts together.

        When the batch fails, each post is retried alone, so that one post
        that breaks the analysis is logged and left for the next start while
        the others go on.
        """
        if not posts:
            return
        try:
            self._process_batch(posts, summary)
        except Exception:
            if len(posts) == 1:
                raise
            for post in posts:
                try:
                    self._process_batch([post], summary)
                except Exception:
                    summary.unanalysed += 1
                    logger.exception(
                        "post analysis failed, retried at next start source=%s post=%s",
                        post[1].source,
                        post[0],
                    )

    def _process_batch(
        self, posts: list[tuple[int, Item]], summary: SourceSummary
    ) -> None:
        post_ids = [post_id for post_id, _ in posts]
        with self._analysing:
            assessments = self.analyzer.analyse([item for _, item in posts])
        with self._grouping:
            try:
                grouping, problems = self._group(posts, assessments)
                assessments, signals = self.watch.assess(posts, assessments, problems)
                incident_of = {a.post_id: a.incident_id for a in grouping.assignments}

                def save(written: Written) -> Saved:
                    return self.store.save_batch(
                        post_ids,
                        assessments,
                        written.alerts,
                        grouping,
                        signals,
                        updates=written.updates,
                    )

                saved = self._save_alerting(
                    lambda: self._plan_alerts(
                        posts, assessments, signals, incident_of, problems
                    ),
                    save,
                )
            except BaseException:
                # The grouper now contains posts that the database does not,
                # so it is rebuilt from the store before its next use.
                self._grouper = None
                raise

        for assessment in assessments:
            summary.kinds[assessment.classification.kind] += 1
            if assessment.grading is not None:
                summary.levels[assessment.grading.level] += 1
        self._count_saved(saved, signals, summary)
        for assignment in grouping.assignments:
            summary.changed_problems.add(assignment.problem_id)
            if assignment.matched_by == "new":
                summary.new_problems.add(assignment.problem_id)

    def refresh(self, post_ids: list[int], summary: SourceSummary) -> None:
        """Grade known posts again after their engagement changed.

        A post whose grading moves gets a new grading row (and an alert when
        its level now calls for one), and new signals are stored. A failure
        is logged and leaves the posts pending, and the next start grades
        them again (see :meth:`recover`).
        """
        if not post_ids:
            return
        summary.refreshed += len(post_ids)
        try:
            with self._grouping:
                regradings = self.watch.regrade(post_ids, self._current_grouper())
                changed = [r for r in regradings if r.changed]
                signals = [warning for r in regradings for warning in r.signals]
                saved = self._save_alerting(
                    lambda: self._plan_alerts(
                        [(r.post_id, r.item) for r in changed],
                        [r.assessment for r in changed],
                        signals,
                    ),
                    lambda written: self.store.save_regradings(
                        [(r.post_id, r.assessment.grading) for r in changed],
                        written.alerts,
                        signals,
                        done=post_ids,
                        updates=written.updates,
                    ),
                )
        except Exception:
            logger.exception(
                "regrading failed source=%s posts=%s", summary.source, len(post_ids)
            )
            return
        summary.regraded += len(changed)
        self._count_saved(saved, signals, summary)

    def refresh_engagement(self) -> SourceSummary:
        """Read again the recent posts worth watching, from every source that can.

        Stores their counts now, grades again those whose counts changed, and
        puts the full text of posts a listing cut short in place, analysing
        them again. A source that fails is logged and the others go on; its
        posts are read at the next refresh.
        """
        summary = SourceSummary("refresh")
        started = time.monotonic()
        settings = self.config.refresh
        readers = {
            source.name: reader
            for source in self.config.sources
            if source.enabled and (reader := build_rereader(source, self.config))
        }
        since = datetime.now(UTC) - timedelta(hours=settings.max_age_hours)
        candidates = self.store.refresh_candidates(
            since, list(readers), settings.max_posts
        )
        by_source: dict[str, list[KnownPost]] = {}
        for post in candidates:
            by_source.setdefault(post.source, []).append(post)
        for name, posts in by_source.items():
            if self.stop.is_set():
                break
            self._reread(name, readers[name], posts, summary)
        summary.seconds = time.monotonic() - started
        logger.info(
            "engagement refresh finished candidates=%s read=%s changed=%s "
            "regraded=%s expanded=%s seconds=%.1f",
            len(candidates),
            summary.fetched,
            summary.refreshed,
            summary.regraded,
            summary.new,
            summary.seconds,
        )
        return summary

    def _reread(
        self,
        source: str,
        reader: Rereader,
        posts: list[KnownPost],
        summary: SourceSummary,
    ) -> None:
        rereads: list[Reread] = []
        try:
            for reread in reader.reread(posts):
                rereads.append(reread)
                if self.stop.is_set():
                    logger.info("engagement refresh stopping source=%s", source)
                    break
        except CollectorError as exc:
            summary.error = str(exc)
            logger.warning(
                "engagement refresh of source ended early source=%s read=%s error=%s",
                source,
                len(rereads),
                exc,
            )
        except Exception:
            logger.exception("engagement refresh of source crashed source=%s", source)
        if not rereads:
            return
        seen_at = datetime.now(UTC)
        summary.fetched += len(rereads)
        changed = self.store.record_rereads(rereads, seen_at)
        self._expand(rereads, seen_at, summary)
        self.refresh(changed, summary)

    def _expand(
        self, rereads: list[Reread], seen_at: datetime, summary: SourceSummary
    ) -> None:
        """Put the full text of posts cut short in place and analyse them again."""
        looked_up = [r.post.post_id for r in rereads if r.post.truncated]
        for reread in rereads:
            if reread.text is None or not reread.post.truncated:
                continue
            post_id = reread.post.post_id
            record = self.store.get_post(post_id)
            if record is None:
                continue
            if not _completes(record.item.text, reread.text):
                logger.warning(
                    "full text not used, shorter than the part shown or too long "
                    "post=%s chars=%s",
                    post_id,
                    len(reread.text),
                )
                continue
            text = self.store.replace_text(post_id, reread.text, seen_at)
            summary.new += 1
            self.process([(post_id, replace(record.item, text=text))], summary)
        self.store.mark_text_checked(looked_up, seen_at)

    def _count_saved(
        self, saved: Saved, signals: list[Signal], summary: SourceSummary
    ) -> None:
        summary.alerts += sum(1 for alert_id in saved.alert_ids if alert_id is not None)
        summary.updates += saved.updated_alerts
        for warning, signal_id in zip(signals, saved.signal_ids, strict=True):
            if signal_id is not None:
                summary.signals[warning.kind] += 1

    def _watch_bursts(self, summary: SourceSummary) -> None:
        """Store the bursts going on in problems with recent posts, and the brand's,
        with their alerts.

        The hourly series end at the newest stored post, or now if that is
        later than now (a clock ahead in a source). Every problem with a post
        in the last day is watched, not only those this run touched, so that
        a burst missed by a crashed run is found by the next.
        """
        try:
            newest = self.store.newest_post_time()
            if newest is None:
                return
            end = min(newest, datetime.now(UTC))
            active = self.store.active_problems(since=end - BURST_ACTIVE_WINDOW)
            with self._grouping:
                grouper = self._current_grouper()
                problems = {i: grouper.problem(i) for i in active}
            labels = {i: problem.label for i, problem in problems.items()}
            signals = self.watch.bursts(labels, end)
            now = self.clock()
            alerts = []
            for warning in signals:
                problem = problems.get(warning.problem_id)
                causes = problem.root_causes.most_common(1) if problem else []
                alert = burst_alert(
                    warning,
                    self.config,
                    now,
                    label=labels.get(warning.problem_id),
                    root_cause=causes[0][0] if causes else None,
                )
                if alert is not None:
                    alerts.append(alert)
            # The signals and their alerts commit together, and both are keyed
            # by the burst, so a burst found again stores nothing twice.
            saved = self.store.save_batch([], [], alerts, new_signals=signals)
            summary.alerts += sum(1 for i in saved.alert_ids if i is not None)
            saved = saved.signal_ids
        except Exception:
            logger.exception("burst watch failed source=%s", summary.source)
            return
        for warning, signal_id in zip(signals, saved, strict=True):
            if signal_id is not None:
                summary.signals[warning.kind] += 1
                logger.info(
                    "burst signalled source=%s subject=%s problem=%s",
                    summary.source,
                    warning.subject,
                    warning.problem_id,
                )

    def _current_grouper(self) -> ProblemGrouper:
        """Return the grouper, loading it from the store after a failed save."""
        if self._grouper is None:
            self._grouper = self._load_grouper()
        return self._grouper

    def _group(
        self, posts: list[tuple[int, Item]], assessments: list[Assessment]
    ) -> tuple[GroupingChanges, dict[int, tuple[int, int]]]:
        """Assign analysed posts to problems in post order, without saving them.

        Also returns, for each assigned post, its problem and the number of
        people who had reported that problem when the post joined it.
        """
        grouper = self._current_grouper()
        assigned: list[tuple[int, Assignment]] = []
        problems: dict[int, tuple[int, int]] = {}
        # The people of each problem are read once per batch, then each post
        # adds its own, so that a post counts only those who came before it.
        reporters: dict[int, set[str]] = {}
        for (post_id, item), assessment in zip(posts, assessments, strict=True):
            assignment = grouper.assign(item, assessment)
            if assignment is None:
                continue
            if assignment.matched_by == "known":
                logger.debug("post already grouped post=%s", post_id)
                continue
            assigned.append((post_id, assignment))
            problem_id = assignment.problem_id
            people = reporters.get(problem_id)
            if people is None:
                since = self.watch.since(item)
                people = reporters[problem_id] = grouper.recent_reporters(
                    problem_id, since
                )
            else:
                people.update(person for person, wrote in assignment.people if wrote)
            problems[post_id] = (problem_id, len(people))

        problem_ids = dict.fromkeys(a.problem_id for _, a in assigned)
        incident_ids = dict.fromkeys(a.incident_id for _, a in assigned)
        changes = GroupingChanges(
            state_version=STATE_VERSION,
            assignments=tuple(_post_assignment(i, a) for i, a in assigned),
            problems=tuple(_problem_data(grouper.problem(i)) for i in problem_ids),
            incidents=tuple(grouper.incident(i).to_dict() for i in incident_ids),
        )
        return changes, problems

    def _load_grouper(self) -> ProblemGrouper:
        """Build the grouper from the problems in the store, or an empty one."""
        try:
            state = self.store.load_problem_state()
            if state is None:
                return ProblemGrouper(self.segmenter)
            return ProblemGrouper.from_state(state, self.segmenter)
        except ValueError as exc:
            raise click.ClickException(
                f"cannot load the stored problems: {exc}"
            ) from None

    def recover(self) -> int:
        """Finish what a crash left: analyse and group the posts stored but
        never analysed, grade again the posts whose new engagement was stored
        but not graded, and look for bursts.

        Deliveries that a stopped job left marked sending become unconfirmed
        first (see :meth:`storage.Store.mark_unconfirmed`) and count in
        :attr:`deliveries`, and pending mail moves to the configured mail
        channel. The counts of the last recovery
        are kept in :attr:`recovery`.
        """
        self.deliveries.unconfirmed += len(self.store.mark_unconfirmed())
        self.store.move_pending_mail(mail_channel(self.config.alerts))
        summary = SourceSummary("recovery")
        last_id = 0
        while batch := self.store.unassessed_posts(limit=500, after=last_id):
            last_id = batch[-1][0]
            self.process(batch, summary)
        last_id = 0
        while pending := self.store.pending_regrades(limit=500, after=last_id):
            last_id = pending[-1]
            self.refresh(pending, summary)
        self._watch_bursts(summary)
        self.recovery = summary
        recovered = sum(summary.kinds.values())
        if recovered:
            logger.warning("recovered unanalysed posts count=%s", recovered)
        return recovered

    def _save_alerting(
        self, plan: Callable[[], Written], save: Callable[[Written], Saved]
    ) -> Saved:
        """Plan the alerts, then save them.

        When an alert changed in between, the plan is made again: the outbox
        claimed a message to replace, or an escalation followed the message an
        update replies to.
        """
        for attempt in range(1, SAVE_ATTEMPTS):
            try:
                return save(plan())
            except StaleAlertState as exc:
                logger.info(
                    "alert changed while its update was planned, planning again "
                    "alert=%s attempt=%s",
                    exc.alert_id,
                    attempt,
                )
        return save(plan())

    def _plan_alerts(
        self,
        posts: list[tuple[int, Item]],
        assessments: list[Assessment],
        signals: list[Signal],
        incident_of: dict[int, int] | None = None,
        problems: dict[int, tuple[int, int]] | None = None,
    ) -> Written:
        """Plan the alerts and alert updates that graded posts call for.

        Each post is seen as part of its incident: the incident's reach (its
        stored posts' latest engagement and the batch's posts so far) and the
        people who reported it. ``incident_of`` gives the incident of posts
        grouped in this batch; the others are looked up. ``problems`` gives a
        post's problem and how many people reported it. The caller holds the
        grouping lock.
        """
        graded = [
            (post_id, item, assessment)
            for (post_id, item), assessment in zip(posts, assessments, strict=True)
            if assessment.grading is not None
            and assessment.classification.kind in policy.ALERTED_KINDS
            and assessment.relevance.relevant
        ]
        if not graded:
            return Written([], [])
        incident_of = dict(incident_of or {})
        unknown = [post_id for post_id, _, _ in graded if post_id not in incident_of]
        if unknown:
            incident_of.update(self.store.incidents_of(unknown))
        stored_reach = self.store.incident_reach(set(incident_of.values()))
        viral = {s.post_id for s in signals if s.kind == "viral"}
        grouper = self._current_grouper()
        problem_of = self._problem_labels(problems)

        batch_ids = {post_id for post_id, _ in posts}
        batch_members: dict[int, set[int]] = {}
        for post_id in batch_ids:
            if post_id in incident_of:
                batch_members.setdefault(incident_of[post_id], set()).add(post_id)
        reach: dict[int, int] = {
            incident_id: sum(r for p, r in members.items() if p not in batch_ids)
            for incident_id, members in stored_reach.items()
        }
        candidates = []
        sizes: dict[str, IncidentSize] = {}
        for post_id, item, assessment in graded:
            incident_id = incident_of.get(post_id)
            own_reach = item.engagement.interactions
            owners = 1
            if incident_id is not None:
                reach[incident_id] = reach.get(incident_id, 0) + own_reach
                own_reach = reach[incident_id]
                incident = grouper.incident_or_none(incident_id)
                if incident is not None:
                    owners = max(1, len(incident.reporters))
            grading = assessment.grading
            sighting = policy.Sighting(
                post_id=post_id,
                incident_id=incident_id,
                level=grading.level,
                kind=assessment.classification.kind,
                relevant=True,
                high_risk=grading.high_risk,
                viral=post_id in viral,
                reach=own_reach,
                owners=owners,
                root_cause=assessment.classification.root_cause,
                deadline=grading.deadline,
                posted_at=item.created_at,
            )
            candidates.append(Candidate(post_id, item, assessment, sighting))
            members = set(stored_reach.get(incident_id, {}))
            members |= batch_members.get(incident_id, set())
            label = problem_of(post_id)
            sizes[policy.incident_key(sighting)] = IncidentSize(
                posts=max(1, len(members)),
                problem=label[0] if label else None,
                people=label[1] if label else 0,
            )

        keys = {policy.incident_key(c.sighting) for c in candidates}
        now = self.clock()
        plans = plan_batch(
            candidates,
            self.store.known_alerts(keys),
            self.config.alerts,
            now,
            self.config.timezone,
        )
        return self.writer.write(plans, sizes, now)

    def _problem_labels(
        self, problems: dict[int, tuple[int, int]] | None
    ) -> Callable[[int], tuple[str, int] | None]:
        """Return a lookup of a post's problem label and number of reporters.

        Each label is computed once per batch, because a label reads all the
        problem's counts.
        """
        labels: dict[int, str] = {}

        def label_of(post_id: int) -> tuple[str, int] | None:
            if not problems or post_id not in problems:
                return None
            problem_id, people = problems[post_id]
            if problem_id not in labels:
                labels[problem_id] = self._current_grouper().problem(problem_id).label
            return labels[problem_id], people

        return label_of

    def send_digest(self, kind: str) -> int | None:
        """Store the daily or weekly digest of the last complete period, then
        deliver what is due; return the digest's alert id.

        Returns None when the digests have no recipients or this period's digest
        was stored before, so a digest is sent once per period.
        """
        alert_id = store_digest(self.config, self.store, kind, self.clock())
        self.deliver()
        return alert_id

    def verify_lock(self) -> None:
        """Check that this job still holds the database's job lock.

        When it was lost and another job took it, log the error and stop the
        service, because two jobs would send the same alerts twice.
        """
        held = self.store.held_lock
        if held is None:
            return
        try:
            held.verify()
        except LockHeld as exc:
            logger.error("job lock lost, stopping error=%s", exc)
            self.stop.set()
            raise

    def escalate(self) -> int:
        """Store the escalation messages now due; return how many.

        The outbox delivers them at its next run. A job that is stopping
        escalates nothing, and the next start catches up.
        """
        if self.stop.is_set() or not self.config.alerts.escalation:
            return 0
        return len(escalate_due(self.store, self.config, self.clock()))

    def deliver(self) -> tuple[int, int]:
        """Deliver the alert messages that are due; return how many deliveries
        were sent and how many were not (failed, to be retried, or unconfirmed).

        Only one thread delivers at a time, and a second caller returns at
        once, so that the job keeps one SMTP connection and sends the oldest
        messages first. Delivery stops early when the job is stopping, and
        what is left stays pending for the next run.
        """
        if not self._delivering.acquire(blocking=False):
            return 0, 0
        try:
            retry_time = timedelta(hours=self.config.alerts.retry_hours)
            with make_senders(self.config, self._robot_errors) as senders:
                report = deliver_due(
                    self.store,
                    senders,
                    self.clock(),
                    self.stop.is_set,
                    retry_time=retry_time,
                )
        finally:
            self._delivering.release()
        self.deliveries.add(report)
        return report.sent, report.unsuccessful


def _completes(shown: str, full: str) -> bool:
    """Check that ``full`` can replace the text a listing showed as ``shown``.

    It must be at least as long as the shown text (without the 全文 link) and
    no longer than a post, so that a wrong field or an error page is not stored.
    """
    shown_chars = len(plain_text(shown).removesuffix("全文").rstrip("…. "))
    return shown_chars <= len(plain_text(full)) <= MAX_FULL_TEXT_CHARS


def _post_assignment(post_id: int, assignment: Assignment) -> PostAssignment:
    return PostAssignment(
        post_id=post_id,
        problem_id=assignment.problem_id,
        incident_id=assignment.incident_id,
        report=assignment.report,
        matched_by=assignment.matched_by,
        posted_at=assignment.posted_at,
        people=assignment.people,
    )


def _problem_data(problem: Problem) -> dict:
    return {
        **problem.to_dict(),
        "label": problem.label,
        "root_cause": problem.root_cause,
    }


def store_digest(config: Config, store: Store, kind: str, now: datetime) -> int | None:
    """Store the digest ``kind`` ("daily" or "weekly") of the last complete
    period with its deliveries, and return its alert id.

    Returns None when the digest has no recipients or was stored before.
    """
    key = digest_key(kind, now, config.timezone)
    if store.known_alerts({key}):
        logger.info("digest already stored digest=%s key=%s", kind, key)
        return None
    alert = digest_alert(kind, store, config, now)
    if alert is None:
        logger.info("digest not sent, it has no recipients digest=%s", kind)
        return None
    [alert_id] = store.add_alerts([alert], now=now)
    if alert_id is None:
        logger.info("digest already stored digest=%s key=%s", kind, alert.dedup_key)
    else:
        logger.info("digest stored digest=%s key=%s", kind, alert.dedup_key)
    return alert_id


def deliver_once(config: Config, store: Store, now: datetime) -> tuple[int, int]:
    """Deliver the due alert messages without a job; return how many deliveries
    were sent and how many were not. The caller holds the job lock."""
    retry_time = timedelta(hours=config.alerts.retry_hours)
    with make_senders(config) as senders:
        report = deliver_due(store, senders, now, lambda: False, retry_time=retry_time)
    return report.sent, report.unsuccessful


def make_analyzer(config: Config) -> Analyzer:
    """Build the nlp stage with the classifier that config.yaml names.

    The trained classifier is loaded from ``model_path``, and trained first
    when that file does not exist yet.
    """
    if config.classifier == "lexicon":
        return Analyzer(config.brand, config.thresholds, config.strategy)

    from nlp.modelfile import ModelError
    from nlp.trained import load_or_train

    try:
        classifier = load_or_train(config.resolve(config.model_path), config.brand)
    except ModelError as exc:
        message = str(exc)
        default_file = Path("config.yaml").resolve()
        if config.config_path and Path(config.config_path).resolve() != default_file:
            # The hint must train the model this config reads.
            message = message.replace(
                "python pipeline.py train",
                f"python pipeline.py train --config {config.config_path}",
            )
        raise click.ClickException(message) from None
    return Analyzer(config.brand, config.thresholds, config.strategy, classifier)


def make_senders(config: Config, reported: set[str] | None = None) -> Senders:
    """Build the senders of the configured alert channels.

    Mail goes by SMTP when it is configured, otherwise into .eml files. A
    robot whose webhook URL or secret is missing from the environment is
    left out, so its deliveries wait with the error as their last error
    until they are ``retry_hours`` old. Its error is logged unless its name
    is in ``reported``, and the name is added there.
    """
    reported = set() if reported is None else reported
    settings = config.alerts
    if settings.smtp is not None:
        mail = SmtpSender(settings.smtp)
    else:
        mail = EmlSender(config.resolve(settings.outbox))
    robots = {}
    unavailable = {}
    for robot in settings.robots:
        try:
            robots[robot.name] = RobotSender.from_config(
                robot, http=config.http, timezone=config.timezone
            )
        except RobotSetupError as exc:
            unavailable[robot.kind, robot.name] = str(exc)
            if robot.name not in reported:
                logger.error(
                    "robot not set up, its alerts wait robot=%s error=%s",
                    robot.name,
                    exc,
                )
            reported.add(robot.name)
    return Senders(mail=mail, robots=robots, unavailable=unavailable)


class _Progress:
    """A progress bar on a terminal, periodic log lines elsewhere."""

    def __init__(self, source: str, total: int | None, show_bar: bool) -> None:
        self.source = source
        self.total = total
        self.done = 0
        self.bar = None
        self.last_log = time.monotonic()
        if show_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=source, unit="post", leave=False)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.bar is not None:
            self.bar.close()

    def advance(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
            return
        now = time.monotonic()
        if now - self.last_log >= PROGRESS_LOG_SECONDS:
            self.last_log = now
            logger.info(
                "source progress source=%s records=%s total=%s",
                self.source,
                self.done,
                self.total if self.total is not None else "unknown",
            )


def run_once(
    config: Config, store: Store, *, show_progress: bool = False
) -> tuple[list[SourceSummary], DeliveryReport]:
    """Run every enabled source once, deliver the alerts that are due, then
    escalate the alerts past their deadline and deliver those messages.

    Returns the summary of each source and the outcomes of the deliveries.
    """
    job = Job(config, store)
    job.recover()
    summaries = [
        job.run_source(source, show_progress=show_progress)
        for source in config.sources
        if source.enabled
    ]
    if job.recovery is not None and job.recovery.kinds:
        summaries.insert(0, job.recovery)
    job.refresh_engagement()
    job.deliver()
    if job.escalate():
        job.deliver()
    return summaries, job.deliveries
