"""Fenghuo's main job and command line.

This module is the composition root: it loads config.yaml, builds the
collectors, the nlp analyser, the store and the alert transports, and wires
them into one path per source: collect, store, analyse, grade, group into
problems, alert. Nothing imports it.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from alembic.util.exc import CommandError as AlembicError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

import config as config_module
from alerts import rules
from alerts.health import health_notice
from alerts.mail import compose
from alerts.outbox import EmlTransport, SmtpTransport, Transport, deliver_pending
from collectors import (
    Collector,
    CollectorError,
    DeadlineExceeded,
    Rereader,
    build_collector,
    build_rereader,
)
from config import Config, ConfigError, Source
from items import (
    KINDS,
    LEVELS,
    SIGNAL_KINDS,
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
from storage import LockHeld, NewAlert, Saved, SignalRecord, Store
from storage.rows import GroupingChanges, PostAssignment, ProblemSummary

logger = logging.getLogger("pipeline")

PROGRESS_LOG_SECONDS = 10.0
# A run missed by up to this long (downtime, a busy worker) still happens once
# when the service is back. Older misses are skipped until the next run time.
MISFIRE_GRACE_SECONDS = 3600
DEV_LABELS = Path(__file__).resolve().parent.parent / "shared" / "eval" / "dev.jsonl"
# The status command lists this many problems, ranked over this many days.
STATUS_PROBLEMS = 10
STATUS_SIGNALS = 10
# Problems with a post this recent are watched for bursts after each run.
BURST_ACTIVE_WINDOW = timedelta(days=1)
SOURCE_JOB_PREFIX = "source:"
STATUS_PROBLEM_DAYS = 30
# The sources of the labelled-post layout, which --platform may give every post.
EVALUATION_PLATFORMS = (
    "weibo",
    "reddit",
    "zhihu",
    "tieba",
    "dongchedi",
    "autohome",
    "12365auto",
    "heimao",
    "news",
)


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
        self.transport = make_transport(config)
        self.stop = threading.Event()
        self._delivering = threading.Lock()
        self.delivery_errors = 0
        self.recovery: SourceSummary | None = None
        self.segmenter = Segmenter.for_brand(config.brand)
        self._grouping = threading.Lock()
        self._grouper: ProblemGrouper | None = self._load_grouper()
        self.watch = Watch(config.early_warning, self.analyzer, store, config.timezone)

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
        assessments = self.analyzer.analyse([item for _, item in posts])
        with self._grouping:
            try:
                grouping, problems = self._group(posts, assessments)
                assessments, signals = self.watch.assess(posts, assessments, problems)
                alerts = self._compose_alerts(posts, assessments)
                saved = self.store.save_batch(
                    post_ids, assessments, alerts, grouping, signals
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
            alerts = self._compose_alerts(
                [(r.post_id, r.item) for r in changed], [r.assessment for r in changed]
            )
            signals = [warning for r in regradings for warning in r.signals]
            saved = self.store.save_regradings(
                [(r.post_id, r.assessment.grading) for r in changed],
                alerts,
                signals,
                done=post_ids,
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
            rereads.extend(reader.reread(posts))
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
            self.store.replace_text(post_id, reread.text, seen_at)
            record = self.store.get_post(post_id)
            if record is not None:
                summary.new += 1
                self.process([(post_id, record.item)], summary)
        self.store.mark_text_checked(looked_up, seen_at)

    def _count_saved(
        self, saved: Saved, signals: list[Signal], summary: SourceSummary
    ) -> None:
        summary.alerts += sum(1 for alert_id in saved.alert_ids if alert_id is not None)
        for warning, signal_id in zip(signals, saved.signal_ids, strict=True):
            if signal_id is not None:
                summary.signals[warning.kind] += 1

    def _watch_bursts(self, summary: SourceSummary) -> None:
        """Store the bursts going on in problems with recent posts, and the brand's.

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
                labels = {i: grouper.problem(i).label for i in active}
            signals = self.watch.bursts(labels, end)
            saved = self.store.add_signals(signals)
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

        The counts of the last recovery are kept in :attr:`recovery`.
        """
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

    def _compose_alerts(
        self, posts: list[tuple[int, Item]], assessments: list[Assessment]
    ) -> list[NewAlert]:
        settings = self.config.alerts
        now = datetime.now(UTC)
        new_alerts = []
        for (post_id, item), assessment in zip(posts, assessments, strict=True):
            decision = rules.decide(item, assessment, settings)
            if decision is None:
                continue
            composed = compose(
                decision,
                item,
                assessment,
                post_id=post_id,
                sender=settings.sender,
                review_url=settings.review_url,
                timezone=self.config.timezone,
                now=now,
            )
            new_alerts.append(
                NewAlert(
                    post_id=post_id,
                    dedup_key=decision.dedup_key,
                    level=decision.level,
                    kind=decision.kind,
                    subject=composed.subject,
                    recipients=decision.recipients,
                    message_id=composed.message_id,
                    message=composed.message,
                )
            )
        return new_alerts

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

    def deliver(self) -> tuple[int, int]:
        """Deliver pending alerts; return how many were sent and how many failed.

        Only one thread delivers at a time: a second caller returns at once,
        because two would read the same pending alerts and send them twice.
        Delivery stops early when the job is stopping; what is left stays
        pending in the database for the next start.
        """
        if not self._delivering.acquire(blocking=False):
            return 0, 0
        sent = failed = 0
        try:
            while not self.stop.is_set():
                report = deliver_pending(
                    self.store, self.transport, stop=self.stop.is_set
                )
                sent, failed = sent + report.sent, failed + report.failed
                if report.sent == 0 or report.failed:
                    break
        finally:
            self._delivering.release()
        if failed:
            self.delivery_errors += failed
        return sent, failed


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


def make_analyzer(config: Config) -> Analyzer:
    """Build the nlp stage with the classifier that config.yaml names.

    The trained classifier is loaded from ``model_path``, and trained first
    when that file does not exist yet.
    """
    if config.classifier == "lexicon":
        return Analyzer(config.brand, config.thresholds, config.strategy)

    from nlp.model import ModelError
    from nlp.training import TrainingError, load_or_train

    try:
        classifier = load_or_train(config.resolve(config.model_path), config.brand)
    except (ModelError, TrainingError) as exc:
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


def make_transport(config: Config) -> Transport:
    """Send by SMTP when it is configured, otherwise write .eml files."""
    if config.alerts.smtp is not None:
        return SmtpTransport(config.alerts.smtp)
    return EmlTransport(config.resolve(config.alerts.outbox))


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


@contextmanager
def open_store(config: Config, *, lock: bool = False) -> Iterator[Store]:
    """Open and migrate the configured database, turning failures into one line.

    With ``lock``, also hold the job lock, so that a second job on the same
    database stops at once with a message instead of racing the first.
    """
    try:
        store = Store(config.database_url)
        store.migrate()
    except (ValueError, SQLAlchemyError, OSError, AlembicError) as exc:
        reason = getattr(exc, "orig", None) or exc
        first_line = (
            str(reason).strip().splitlines()[0] if str(reason).strip() else repr(reason)
        )
        raise click.ClickException(
            f"storage.url: cannot open the database {_display_url(config.database_url)}: "
            f"{first_line}"
        ) from None
    with ExitStack() as stack:
        stack.enter_context(store)
        if lock:
            try:
                stack.enter_context(store.job_lock())
            except LockHeld as exc:
                raise click.ClickException(str(exc)) from None
        yield store


def _display_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


def run_once(
    config: Config, store: Store, *, show_progress: bool = False
) -> tuple[list[SourceSummary], int]:
    """Run every enabled source once, then deliver the alerts that are due.

    Returns the summary of each source and the number of failed deliveries.
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
    return summaries, job.delivery_errors


def build_scheduler(job: Job, config: Config):
    """Create the scheduler: a job per enabled source, the engagement refresh and
    the delivery of alerts.

    Missed runs are coalesced: after an hour of downtime a source runs once,
    not once per missed interval. No source runs twice at the same time, and
    each has its own worker so that a slow one does not hold up the others.
    """
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    sources = [source for source in config.sources if source.enabled]
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(len(sources) + 2)},
        timezone=config.timezone,
    )
    now = datetime.now(UTC)
    for source in sources:
        schedule = source.schedule
        # An interval source runs at once on start. A cron source waits for its
        # next time, so that a nightly source does not run at every restart,
        # unless a time was missed while the service was down.
        if schedule.cron:
            trigger = CronTrigger.from_crontab(schedule.cron, timezone=config.timezone)
            first_run = _first_cron_run(job.store, source.name, trigger, now)
        else:
            trigger = IntervalTrigger(
                minutes=schedule.interval_minutes, timezone=config.timezone
            )
            first_run = now
        scheduler.add_job(
            _scheduled_run,
            trigger,
            args=(job, source),
            id=SOURCE_JOB_PREFIX + source.name,
            name=source.name,
            next_run_time=first_run,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
        )
    refresh_minutes = config.refresh.interval_minutes
    scheduler.add_job(
        _scheduled_refresh,
        IntervalTrigger(minutes=refresh_minutes, timezone=config.timezone),
        args=(job,),
        id="refresh",
        name="engagement refresh",
        next_run_time=now + timedelta(minutes=refresh_minutes),
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
    )
    scheduler.add_job(
        _scheduled_deliver,
        IntervalTrigger(minutes=1),
        args=(job,),
        id="deliver",
        name="deliver",
    )
    scheduler.add_listener(
        lambda event: _record_skip(job, event),
        EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED,
    )
    return scheduler


def _first_cron_run(store: Store, source: str, trigger, now: datetime) -> datetime:
    """Return when a cron source first runs after a start: now, when a fire time
    since its last run was missed within the misfire grace, else its next time."""
    runs = store.recent_runs(source, 1)
    if runs:
        since_last = runs[0].started_at + timedelta(seconds=1)
        missed = trigger.get_next_fire_time(None, since_last)
        grace = timedelta(seconds=MISFIRE_GRACE_SECONDS)
        if missed is not None and now - grace <= missed <= now:
            logger.info(
                "cron run missed while stopped, running now source=%s missed=%s",
                source,
                missed.isoformat(),
            )
            return now
    return trigger.get_next_fire_time(None, now)


def _record_skip(job: Job, event) -> None:
    """Record a source run that the scheduler skipped, for status to show."""
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES

    if not event.job_id.startswith(SOURCE_JOB_PREFIX):
        return
    source = event.job_id.removeprefix(SOURCE_JOB_PREFIX)
    reason = "running" if event.code == EVENT_JOB_MAX_INSTANCES else "missed"
    logger.warning("scheduled run skipped source=%s reason=%s", source, reason)
    try:
        job.store.record_skip(source, reason)
    except SQLAlchemyError as exc:
        logger.error(
            "cannot record skipped run source=%s error=%s", source, _first_line(exc)
        )


def serve(job: Job, config: Config) -> None:
    """Run each enabled source on its schedule until ``job.stop`` is set."""
    job.recover()
    scheduler = build_scheduler(job, config)
    scheduler.start()
    logger.info("service started jobs=%s", len(scheduler.get_jobs()))
    try:
        while not job.stop.wait(1.0):
            pass
    finally:
        logger.info("service stopping, finishing the batches in hand")
        scheduler.shutdown(wait=True)
        logger.info("service stopped")


def _scheduled_deliver(job: Job) -> None:
    try:
        job.verify_lock()
        job.deliver()
    except LockHeld:
        return
    except (SQLAlchemyError, OSError) as exc:
        logger.error(
            "alert delivery run failed, retried in a minute error=%s", _first_line(exc)
        )


def _scheduled_refresh(job: Job) -> None:
    try:
        job.verify_lock()
        job.refresh_engagement()
        job.deliver()
    except LockHeld:
        return
    except (SQLAlchemyError, OSError) as exc:
        logger.error(
            "engagement refresh failed, retried at its next run time error=%s",
            _first_line(exc),
        )


def _first_line(exc: BaseException) -> str:
    reason = str(getattr(exc, "orig", None) or exc).strip()
    return reason.splitlines()[0] if reason else type(exc).__name__


def _scheduled_run(job: Job, source: Source) -> None:
    try:
        job.verify_lock()
        job.run_source(source)
        job.deliver()
    except LockHeld:
        return
    except (SQLAlchemyError, OSError) as exc:
        logger.error(
            "source run failed, retried at its next run time source=%s error=%s",
            source.name,
            _first_line(exc),
        )


# -- command line -----------------------------------------------------------


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if verbose < 2:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    # jieba prints its dictionary loading at INFO through its own logger.
    logging.getLogger("jieba").setLevel(logging.WARNING)


def _start(ctx: click.Context) -> Config:
    """Set up logging and load the config, from options given before or after
    the command name."""
    _setup_logging(ctx.meta.get("fenghuo.verbose", 0))
    path = ctx.meta.get("fenghuo.config", "config.yaml")
    try:
        return config_module.load(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _remember_config(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> None:
    if value is not None:
        ctx.meta["fenghuo.config"] = value


def _remember_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    ctx.meta["fenghuo.verbose"] = ctx.meta.get("fenghuo.verbose", 0) + value


def common_options(command):
    """Accept --config and -v both before and after the command name."""
    command = click.option(
        "--config",
        type=click.Path(dir_okay=False),
        expose_value=False,
        callback=_remember_config,
        help="Config file to read.  [default: config.yaml]",
    )(command)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_remember_verbose,
        help="Log more: -v for progress, -vv for debug.",
    )(command)


@click.group()
@common_options
def cli() -> None:
    """Fenghuo: early warning of customer grievances and complaints."""


@cli.command()
@common_options
@click.pass_context
def once(ctx: click.Context) -> None:
    """Run every enabled source once through the whole pipeline, then exit.

    Exits with status 1 when a source failed, 0 otherwise.
    """
    config = _start(ctx)
    started = time.monotonic()
    with open_store(config, lock=True) as store:
        summaries, delivery_errors = run_once(
            config, store, show_progress=sys.stderr.isatty()
        )
        pending = store.status().pending_alerts
    click.echo(_format_summary(summaries, time.monotonic() - started, config, pending))
    if delivery_errors:
        click.echo(
            f"warning: {delivery_errors} alert deliveries failed (see the log); "
            "the alerts stay pending and are retried at the next run",
            err=True,
        )
    if any(summary.status == "failed" for summary in summaries):
        ctx.exit(1)


@cli.command()
@common_options
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the scheduled service until SIGINT or SIGTERM.

    Each source runs on its own schedule from config.yaml. On a signal the
    batch in hand is finished and stored, then the service exits.
    """
    config = _start(ctx)
    with open_store(config, lock=True) as store:
        job = Job(config, store)
        for name in (signal.SIGINT, signal.SIGTERM):
            signal.signal(name, lambda signum, frame: job.stop.set())
        serve(job, config)


@cli.command()
@click.option(
    "--days",
    type=click.IntRange(min=1, max=36_500),
    default=STATUS_PROBLEM_DAYS,
    show_default=True,
    help="Rank problems by their reports posted in the last DAYS days.",
)
@common_options
@click.pass_context
def status(ctx: click.Context, days: int) -> None:
    """Show each source's last run, the counts by kind and level, pending
    alerts, the most reported problems and the latest early-warning signals."""
    config = _start(ctx)
    url = make_url(config.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database).exists():
        raise click.ClickException(
            f"no database at {url.database} yet; run 'python pipeline.py once' first"
        )
    with open_store(config) as store:
        report = store.status()
        problems = store.top_problems(days=days, limit=STATUS_PROBLEMS)
        since = datetime.now(UTC) - timedelta(days=days)
        signals = store.recent_signals(limit=STATUS_SIGNALS, since=since)
        job_running = _job_running(store)
    click.echo(_format_status(report, job_running, config))
    click.echo(_format_problems(problems, days))
    click.echo(_format_signals(signals, days))


def _job_running(store: Store) -> bool:
    try:
        with store.job_lock():
            return False
    except LockHeld:
        return True


@cli.command()
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True, dir_okay=False),
    help="JSONL file of labelled posts: the labelled-post layout (labels.kind) or "
    "the plain layout (text, label).",
)
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Alias of --data.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--cross-validate",
    "folds",
    type=click.IntRange(min=2),
    metavar="K",
    help="Train and test the trained model's recipe on FILE itself in K "
    "stratified folds (fixed seed) instead of scoring the configured classifier.",
)
@click.option(
    "--assume-relevant",
    is_flag=True,
    help="Score every post as about the brand, for corpora about other brands.",
)
@click.option(
    "--classifier",
    "classifier_name",
    type=click.Choice(["lexicon", "trained"]),
    help="Classifier to score.  [default: classifier from the config file]",
)
@click.option(
    "--platform",
    type=click.Choice(EVALUATION_PLATFORMS),
    help="Platform to give every post (12365auto and heimao are complaint "
    "platforms, itself a complaint cue).  [default: each record's source]",
)
@common_options
@click.pass_context
def evaluate(
    ctx: click.Context,
    data_path: str | None,
    labels_path: str | None,
    as_json: bool,
    folds: int | None,
    assume_relevant: bool,
    classifier_name: str | None,
    platform: str | None,
) -> None:
    """Score a classifier on labelled posts.

    Prints precision, recall, F1 and support per class, macro-F1, the
    confusion matrix and, where the labels allow, complaint-vs-grievance F1
    and brand-relevance precision and recall (against the config's brand).
    Plain-layout labels of other corpora are mapped as follows. complaint is
    scored as complaint and not_complaint as any other kind. negative is
    scored as grievance or complaint, positive as praise, neutral as neutral.
    """
    from nlp import evaluation

    path = _evaluation_path(data_path, labels_path)
    if folds is not None and classifier_name == "lexicon":
        raise click.UsageError(
            "--cross-validate trains the trained model's recipe on the file; "
            "the lexicon classifier has nothing to train"
        )
    config = _start(ctx)
    if classifier_name is not None:
        config = replace(config, classifier=classifier_name)
    try:
        records = evaluation.read_records(path)
        if not records:
            raise click.ClickException(f"{path}: no records to evaluate")
        if folds is not None:
            report = evaluation.cross_validate_corpus(
                records, config.brand, folds, platform
            )
        else:
            report = evaluation.score_corpus(
                records,
                make_analyzer(config),
                assume_relevant=assume_relevant,
                platform=platform,
            )
    except evaluation.RecordError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        payload = evaluation.corpus_report_json(report)
        click.echo(json.dumps(payload, ensure_ascii=False, sort_keys=False))
    else:
        click.echo(evaluation.format_corpus_report(report))


def _evaluation_path(data_path: str | None, labels_path: str | None) -> str:
    if data_path and labels_path and data_path != labels_path:
        raise click.UsageError("give either --data or --labels (its alias), not both")
    path = data_path or labels_path
    if path is None:
        raise click.UsageError("missing option --data FILE")
    return path


@cli.command()
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Model file to write.  [default: model_path from the config file]",
)
@common_options
@click.pass_context
def train(ctx: click.Context, output: str | None) -> None:
    """Train the kind classifier on training/*.jsonl and demo/posts.jsonl, then save it.

    Prints the training counts, the cross-validated macro-F1 on the training
    data, the development-set figures when that label set is present, and the
    model path.
    """
    from nlp import model, training

    config = _start(ctx)
    path = Path(output) if output else config.resolve(config.model_path)
    data = training.read_training(training.training_files())
    try:
        trained = training.train(data, config.brand)
        folds = training.cross_validate(data, config.brand)
    except training.TrainingError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        model.save(trained.classifier, trained.metadata, path)
    except model.ModelError as exc:
        raise click.ClickException(str(exc)) from None

    click.echo(_format_training(data, trained.metadata, folds))
    if DEV_LABELS.exists():
        click.echo(_format_dev_comparison(config, trained))
    click.echo(f"model: {path}")


def _format_training(data, metadata: dict, folds) -> str:
    lines = ["training files:"]
    for name, count in data.per_file.items():
        lines.append(f"  {name}: {count}")
    lines.append(f"records: {len(data.records)} (skipped lines: {data.skipped})")
    counts = metadata["training_counts"]
    lines.append("model kinds: " + "  ".join(f"{k} {n}" for k, n in counts.items()))
    lines.append(
        f"cross-validated on the training data ({folds.folds} folds): "
        f"macro-F1 {folds.macro_f1:.3f}, "
        f"expected calibration error {folds.calibration_error:.3f}"
    )
    return "\n".join(lines)


def _format_dev_comparison(config: Config, trained) -> str:
    from nlp.evaluation import evaluate as score
    from nlp.evaluation import read_records

    records = read_records(DEV_LABELS)
    lines = [f"development set {DEV_LABELS} ({len(records)} posts):"]
    lines.append(
        f"{'':<10} {'macro-F1':>8} {'cg-F1':>6}  "
        + " ".join(f"{kind:>10}" for kind in KINDS)
    )
    for name, classifier in (("trained", trained), ("lexicon", None)):
        analyzer = Analyzer(
            config.brand, config.thresholds, config.strategy, classifier=classifier
        )
        report = score(records, analyzer)
        per_kind = " ".join(f"{report.per_kind[k].f1:>10.3f}" for k in KINDS)
        lines.append(
            f"{name:<10} {report.macro_f1:>8.3f} "
            f"{report.complaint_f1_vs_grievance:>6.3f}  {per_kind}"
        )
    lines.append("(cg-F1: complaint-vs-grievance F1; kind columns: F1)")
    return "\n".join(lines)


def _format_summary(summaries, seconds: float, config: Config, pending: int) -> str:
    lines = [
        f"{'source':<24} {'status':<8} {'fetched':>8} {'new':>8} {'dup':>7} "
        f"{'bad':>6} {'alerts':>7} {'seconds':>8}"
    ]
    kinds: Counter = Counter()
    levels: Counter = Counter()

    for s in summaries:
        lines.append(
            f"{s.source:<24} {s.status:<8} {s.fetched:>8} {s.new:>8} {s.duplicates:>7} "
            f"{s.bad:>6} {s.alerts:>7} {s.seconds:>8.1f}"
        )
        if s.error:
            lines.append(f"  error: {s.error}")
        kinds.update(s.kinds)
        levels.update(s.levels)

    total = sum(s.new for s in summaries)
    rate = total / seconds if seconds > 0 else 0.0
    lines.append("")
    lines.append("kinds:  " + _counts(kinds, KINDS))
    lines.append("levels: " + _counts(levels, LEVELS))
    if config.alerts.smtp is not None:
        where = f"SMTP {config.alerts.smtp.host}"
    else:
        where = str(config.resolve(config.alerts.outbox))
    lines.append(
        f"alerts: {sum(s.alerts for s in summaries)} new, {pending} pending ({where})"
    )
    new_problems = set().union(*(s.new_problems for s in summaries))
    changed = set().union(*(s.changed_problems for s in summaries))
    lines.append(
        f"problems: {len(new_problems)} new, {len(changed - new_problems)} updated"
    )
    signals = sum((s.signals for s in summaries), Counter())
    lines.append("signals: " + _counts(signals, SIGNAL_KINDS))
    refreshed = sum(s.refreshed for s in summaries)
    if refreshed:
        regraded = sum(s.regraded for s in summaries)
        lines.append(
            f"seen again with new engagement: {refreshed}, regraded {regraded}"
        )
    lines.append(f"{total} new posts in {seconds:.1f}s ({rate:,.0f} posts/s)")
    return "\n".join(lines)


def _counts(counter: Counter, order: tuple[str, ...]) -> str:
    return "  ".join(f"{name} {counter.get(name, 0)}" for name in order)


def _format_status(report, job_running: bool, config: Config) -> str:
    lines = [
        f"{'source':<24} {'last run (UTC)':<20} {'status':<8} {'posts':>9} {'bad':>6}"
    ]
    now = datetime.now(UTC)
    sources = {source.name: source for source in config.sources}
    for row in report.sources:
        started = _utc(row.last_started_at) or "never"
        last_status = row.last_status or "-"
        if last_status == "running" and not job_running:
            # No job holds the lock, so the run still marked "running" died.
            last_status = "died"
        lines.append(
            f"{row.name:<24} {started:<20} {last_status:<8} {row.posts:>9} "
            f"{row.last_bad:>6}"
        )
        lines.append("  " + _health_line(row, sources.get(row.name), config, now))
        if row.last_error:
            lines.append(f"  last error ({_utc(row.last_error_at)}): {row.last_error}")
    lines.append("")
    lines.append(f"posts:  {report.posts}")
    lines.append("kinds:  " + _counts(Counter(report.kinds), KINDS))
    lines.append("levels: " + _counts(Counter(report.levels), LEVELS))
    for kind in ("grievance", "complaint"):
        if kind in report.levels_by_kind:
            levels = _counts(Counter(report.levels_by_kind[kind]), LEVELS)
            lines.append(f"  {kind + ':':<11} {levels}")
    lines.append(
        f"alerts: {report.pending_alerts} pending, {report.failed_alerts} failed"
    )
    return "\n".join(lines)


def _health_line(row, source: Source | None, config: Config, now: datetime) -> str:
    """Describe a source's health, its last success, the lag and its next run."""
    limit = config.health.stale_after_failures
    if row.failures_in_row >= limit:
        health = f"stale ({row.failures_in_row} failed runs in a row)"
    elif row.failures_in_row:
        health = f"failing ({row.failures_in_row} of {limit} before stale)"
    else:
        health = "ok"
    parts = [f"health: {health}"]
    if row.skipped_runs:
        parts.append(f"skipped runs (7 days): {row.skipped_runs}")
    if row.last_success_at is None:
        parts.append("last success: never")
    else:
        lag = _format_duration(now - row.last_success_at)
        parts.append(f"last success: {_utc(row.last_success_at)} ({lag} ago)")
    if source is None:
        parts.append("next run: not configured")
    elif not source.enabled:
        parts.append("next run: disabled")
    else:
        next_run = next_run_time(source, row.last_started_at, config.timezone, now)
        parts.append(f"next run: {next_run.isoformat(timespec='minutes')}")
    return ", ".join(parts)


def next_run_time(
    source: Source, last_started: datetime | None, timezone: str, now: datetime
) -> datetime:
    """Return when the service runs a source next, in the configured time zone.

    An interval source runs an interval after its last start, or at once when
    that is past (a run missed while the service was down runs on start).
    """
    from apscheduler.triggers.cron import CronTrigger

    zone = ZoneInfo(timezone)
    schedule = source.schedule
    if schedule.cron:
        trigger = CronTrigger.from_crontab(schedule.cron, timezone=timezone)
        return trigger.get_next_fire_time(None, now).astimezone(zone)
    assert schedule.interval_minutes is not None
    due = now
    if last_started is not None:
        due = max(now, last_started + timedelta(minutes=schedule.interval_minutes))
    return due.astimezone(zone)


def _format_duration(span: timedelta) -> str:
    minutes = max(int(span.total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


def _format_problems(problems: list[ProblemSummary], days: int) -> str:
    if not problems:
        return f"\nproblems: none reported in the last {days} days"
    lines = [
        "",
        f"problems, ranked by reports in the last {days} days "
        "(posts and reporters of all time):",
        f"  {'reports':>7} {'posts':>7} {'reporters':>9}  {'root cause':<10}  "
        f"{'last seen (UTC)':<19}  problem",
    ]
    # The label goes last, because padding cannot align Chinese characters,
    # which take two columns on a terminal.
    for problem in problems:
        counts = (
            f"{problem.recent_reports:>7} {problem.posts:>7} {problem.reporters:>9}"
        )
        lines.append(
            f"  {counts}  {problem.root_cause or '-':<10}  "
            f"{_utc(problem.last_seen)}  {problem.label}"
        )
    return "\n".join(lines)


def _format_signals(records: list[SignalRecord], days: int) -> str:
    if not records:
        return f"\nsignals: none in the last {days} days"
    lines = ["", f"latest early-warning signals of the last {days} days:"]
    for record in records:
        signal = record.signal
        subject = {"post": f"post {signal.post_id}", "brand": "brand"}.get(
            signal.subject, f"problem {signal.problem_id}"
        )
        lines.append(
            f"  {_utc(record.created_at)}  {signal.kind:<10}  {subject:<12}  "
            f"{signal.reason}"
        )
    return "\n".join(lines)


def _utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


if __name__ == "__main__":
    cli()
