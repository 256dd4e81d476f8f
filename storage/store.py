"""The store: every read and write of the pipeline, each in one transaction."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from items import Assessment, Engagement, Grading, Item, KnownPost, Reread, Signal

from . import alert_store, rows, search
from .engine import (
    create_store_engine,
    read_transaction,
    upgrade,
    write_transaction,
)
from .lock import HeldLock, job_lock
from .queue_index import refresh_queue
from .records import (
    AlertDetail,
    AlertRecord,
    AlertSummary,
    AlertUpdate,
    AttemptOutcome,
    Claimed,
    DeliveryRecord,
    KnownAlert,
    NewAlert,
    NewMessage,
    PostRecord,
    RunRecord,
    Saved,
    SignalRecord,
    StatusReport,
    StoredBatch,
)
from .rows import LOOKUP_CHUNK, chunks
from .status import read_status
from .tables import (
    classifications,
    collector_cursors,
    engagement_snapshots,
    gradings,
    incident_authors,
    incidents,
    posts,
    problem_posts,
    problems,
    signals,
    source_runs,
    source_skips,
)

logger = logging.getLogger(__name__)

FINISHED_RUN_STATUSES = ("ok", "partial", "failed")
# Characters of a run error kept in the database.
MAX_ERROR_LENGTH = 2000


def utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """Posts, assessments, problems, alerts and collector state in SQLite or
    PostgreSQL.

    ``url`` is a SQLAlchemy URL: ``sqlite:///path/to/file.db`` (the folder is
    created) or ``postgresql+psycopg://user@host/dbname``. Call :meth:`migrate`
    once before use. Every method runs in its own transaction and returns no
    connection, so a Store may be shared between threads.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.engine = create_store_engine(url, echo=echo)
        self.held_lock: HeldLock | None = None
        if self.engine.dialect.name == "sqlite":
            self._insert = sqlite.insert
        else:
            self._insert = postgresql.insert

    @contextmanager
    def job_lock(self) -> Iterator[HeldLock]:
        """Hold the lock that lets one job at a time work on this database.

        Raises :class:`storage.lock.LockHeld` at once when another process
        has it. While the lock is taken, it is also :attr:`held_lock`.
        """
        with job_lock(self.engine) as held:
            self.held_lock = held
            try:
                yield held
            finally:
                self.held_lock = None

    def migrate(self) -> None:
        """Create or upgrade the tables to the latest migration."""
        upgrade(self.engine)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _write(self) -> AbstractContextManager[Connection]:
        return write_transaction(self.engine)

    def _read(self) -> AbstractContextManager[Connection]:
        return read_transaction(self.engine)

    # Posts and collector cursors

    def add_items(
        self, items: Sequence[Item], *, cursor: tuple[str, str] | None = None
    ) -> list[int | None]:
        """Store items as :meth:`add_batch` does; return the new posts' ids."""
        return self.add_batch(items, cursor=cursor).ids

    def add_batch(
        self, items: Sequence[Item], *, cursor: tuple[str, str] | None = None
    ) -> StoredBatch:
        """Store new posts and record engagement of known ones, in one transaction.

        A post is known when a row has its identity key (:func:`rows.post_key`),
        whichever source stored it, or, for a post stored under another key
        before, its source and external id. Returns, in the position of each
        item, the id of the post it created, or None when the post was already
        stored or appeared earlier in the batch (the first occurrence wins),
        and the ids of the known posts whose engagement changed. Known posts
        get a new ``last_seen_at`` and an engagement snapshot only when the
        counts changed. ``cursor`` is ``(source, value)``, saved in the same
        transaction, so that the posts and the cursor commit or fail together.
        Raises ValueError, before writing anything, for an external id longer
        than 512 characters, and ``sqlalchemy.exc.StatementError`` for a naive
        datetime.
        """
        started = time.perf_counter()
        positions = _first_positions(items)

        new_ids: dict[str, int] = {}
        refreshed: list[int] = []
        with self._write() as connection:
            if cursor is not None:
                self._set_cursor(connection, *cursor)
            if positions:
                new_ids = self._insert_posts(connection, items, positions)
            known = [
                (key, items[i]) for key, i in positions.items() if key not in new_ids
            ]
            if known:
                refreshed = self._update_known_posts(connection, known)

        result: list[int | None] = [None] * len(items)
        for key, post_id in new_ids.items():
            result[positions[key]] = post_id
        logger.debug(
            "stored items count=%s new=%s seconds=%.3f",
            len(items),
            len(new_ids),
            time.perf_counter() - started,
        )
        return StoredBatch(result, refreshed)

    def _insert_posts(
        self,
        connection: Connection,
        items: Sequence[Item],
        positions: dict[str, int],
    ) -> dict[str, int]:
        # No conflict target: a row that already has the identity key, or the
        # source and external id, is skipped alike and found by _find_post_ids.
        statement = (
            self._insert(posts)
            .on_conflict_do_nothing()
            .returning(posts.c.id, posts.c.identity_key)
        )
        post_rows = [rows.post_row(items[i], key) for key, i in positions.items()]
        new_ids = {
            row.identity_key: row.id for row in connection.execute(statement, post_rows)
        }

        if new_ids:
            search.index_posts(
                connection,
                [
                    (new_ids[row["identity_key"]], row["title"], row["text"])
                    for row in post_rows
                    if row["identity_key"] in new_ids
                ],
            )
            snapshots = [
                rows.snapshot_row(post_id, items[positions[key]])
                for key, post_id in new_ids.items()
            ]
            connection.execute(insert(engagement_snapshots), snapshots)
        return new_ids

    def _update_known_posts(
        self, connection: Connection, known: list[tuple[str, Item]]
    ) -> list[int]:
        """Record that known posts were seen again; return those whose counts changed."""
        post_ids = _find_post_ids(connection, known)
        sightings: dict[int, Sighting] = {}
        for key, item in known:
            # Two keys of one batch can lead to one row, the second through
            # its source and external id. The first item counts.
            post_id = post_ids[key]
            sightings.setdefault(
                post_id,
                Sighting(post_id, item.collected_at, item.engagement, item.removed),
            )
        return _note_seen(connection, list(sightings.values()))

    def _set_cursor(self, connection: Connection, source: str, value: str) -> None:
        statement = self._insert(collector_cursors).values(
            source=source, value=value, updated_at=utcnow()
        )
        statement = statement.on_conflict_do_update(
            index_elements=[collector_cursors.c.source],
            set_={
                "value": statement.excluded.value,
                "updated_at": statement.excluded.updated_at,
            },
        )
        connection.execute(statement)

    def get_cursor(self, source: str) -> str | None:
        """Return the saved cursor of a source, or None before its first save."""
        statement = select(collector_cursors.c.value).where(
            collector_cursors.c.source == source
        )
        with self._read() as connection:
            return connection.execute(statement).scalar_one_or_none()

    def set_cursor(self, source: str, value: str | None) -> None:
        """Save a source's cursor, or forget it (None) so the source starts over."""
        with self._write() as connection:
            if value is None:
                connection.execute(
                    collector_cursors.delete().where(
                        collector_cursors.c.source == source
                    )
                )
            else:
                self._set_cursor(connection, source, value)

    def unassessed_posts(
        self, limit: int = 500, after: int = 0
    ) -> list[tuple[int, Item]]:
        """Return stored posts with ids above ``after`` that have no
        classification yet, oldest first.

        A crash between storing a batch and storing its assessments leaves
        such posts behind; the pipeline analyses them on its next start.
        """
        assessed = select(classifications.c.post_id)
        statement = (
            select(posts.c.id)
            .where(posts.c.id > after, posts.c.id.not_in(assessed))
            .order_by(posts.c.id)
            .limit(limit)
        )
        with self._read() as connection:
            post_ids = connection.execute(statement).scalars().all()
            found = []
            for post_id in post_ids:
                record = _read_post(connection, post_id)
                if record is not None:
                    found.append((post_id, record.item))
        return found

    def count_posts(self) -> int:
        with self._read() as connection:
            return connection.execute(
                select(func.count()).select_from(posts)
            ).scalar_one()

    def get_post(self, post_id: int) -> PostRecord | None:
        """Return a post with its latest engagement, classification and grading.

        Returns None when no post has this id.
        """
        with self._read() as connection:
            return _read_post(connection, post_id)

    # Assessments

    def save_assessments(
        self,
        post_ids: Sequence[int],
        assessments: Sequence[Assessment],
        new_alerts: Sequence[NewAlert] = (),
        grouping: rows.GroupingChanges | None = None,
    ) -> list[int | None]:
        """Save as :meth:`save_batch` does; return the new alerts' ids."""
        return self.save_batch(post_ids, assessments, new_alerts, grouping).alert_ids

    def save_batch(
        self,
        post_ids: Sequence[int],
        assessments: Sequence[Assessment],
        new_alerts: Sequence[NewAlert] = (),
        grouping: rows.GroupingChanges | None = None,
        new_signals: Sequence[Signal] = (),
        updates: Sequence[AlertUpdate] = (),
    ) -> Saved:
        """Store a classification per post, a grading where one was made, the
        alerts and signals they raise and the problems they changed, all in one
        transaction.

        ``post_ids[i]`` is the post that ``assessments[i]`` is about. Because
        everything commits together, a crash can never leave a post graded but
        its alert lost, nor assessed without its problem or the other way
        round. ``updates`` are messages to stored alerts (see
        :func:`storage.alert_store.apply_updates`). Returns the ids of the new
        alerts as :meth:`add_alerts` does, and those of the new signals likewise. Raises ValueError when the
        lengths differ or a grading lacks one of the four factors, and
        ``sqlalchemy.exc.IntegrityError`` when a post already has a problem.
        Either way it stores nothing.
        """
        if len(post_ids) != len(assessments):
            raise ValueError(
                f"got {len(post_ids)} post ids for {len(assessments)} assessments"
            )
        if not (post_ids or new_alerts or grouping or new_signals or updates):
            return Saved([], [])
        now = utcnow()
        classification_rows = [
            rows.classification_row(post_id, assessment, now)
            for post_id, assessment in zip(post_ids, assessments, strict=True)
        ]

        with self._write() as connection:
            if classification_rows:
                self._insert_assessments(
                    connection, post_ids, assessments, classification_rows, now
                )
            if grouping is not None:
                self._save_grouping(connection, grouping, now)
            assigned = [] if grouping is None else grouping.assignments
            refresh_queue(connection, [*post_ids, *(a.post_id for a in assigned)])
            alert_ids = self._insert_alerts(connection, new_alerts, now)
            added = alert_store.apply_updates(connection, updates, now)
            signal_ids = self._insert_signals(connection, new_signals, now)
        return Saved(alert_ids, signal_ids, added)

    def save_regradings(
        self,
        regradings: Sequence[tuple[int, Grading]],
        new_alerts: Sequence[NewAlert] = (),
        new_signals: Sequence[Signal] = (),
        done: Sequence[int] = (),
        updates: Sequence[AlertUpdate] = (),
    ) -> Saved:
        """Store new gradings of classified posts, with their alerts and signals.

        Each ``(post_id, grading)`` is added to the post's latest
        classification, as its latest grading. The posts in ``done`` were
        graded again, whether or not their grading changed, and are no longer
        pending. ``updates`` are messages to stored alerts. A post without a classification raises LookupError and
        nothing is stored.
        """
        now = utcnow()
        with self._write() as connection:
            for chunk in chunks(done, LOOKUP_CHUNK):
                connection.execute(
                    update(posts)
                    .where(posts.c.id.in_(chunk))
                    .values(regrade_pending=False)
                )
            latest = _latest_classification_ids(connection, [i for i, _ in regradings])
            missing = [i for i, _ in regradings if i not in latest]
            if missing:
                raise LookupError(f"post {missing[0]} has no classification to regrade")
            grading_rows = [
                rows.grading_row(post_id, latest[post_id], grading, now)
                for post_id, grading in regradings
            ]
            if grading_rows:
                connection.execute(insert(gradings), grading_rows)
            refresh_queue(connection, [post_id for post_id, _ in regradings])
            alert_ids = self._insert_alerts(connection, new_alerts, now)
            added = alert_store.apply_updates(connection, updates, now)
            signal_ids = self._insert_signals(connection, new_signals, now)
        return Saved(alert_ids, signal_ids, added)

    def _insert_assessments(
        self,
        connection: Connection,
        post_ids: Sequence[int],
        assessments: Sequence[Assessment],
        classification_rows: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        statement = insert(classifications).returning(
            classifications.c.id, sort_by_parameter_order=True
        )
        classification_ids = connection.execute(
            statement, classification_rows
        ).scalars()
        grading_rows = [
            rows.grading_row(post_id, classification_id, assessment.grading, now)
            for post_id, classification_id, assessment in zip(
                post_ids, classification_ids, assessments, strict=True
            )
            if assessment.grading is not None
        ]
        if grading_rows:
            connection.execute(insert(gradings), grading_rows)

    # Problems

    def _save_grouping(
        self, connection: Connection, grouping: rows.GroupingChanges, now: datetime
    ) -> None:
        """Upsert the changed problems and incidents, then add the assignments.

        Parents go first, because the foreign keys are checked per statement.
        """
        version = grouping.state_version
        problem_rows = [rows.problem_row(p, version, now) for p in grouping.problems]
        incident_rows = [rows.incident_row(i, version, now) for i in grouping.incidents]
        if problem_rows:
            connection.execute(self._upsert(problems, problems.c.id), problem_rows)
        if incident_rows:
            connection.execute(self._upsert(incidents, incidents.c.id), incident_rows)
        if not grouping.assignments:
            return

        connection.execute(
            insert(problem_posts),
            [rows.problem_post_row(a, now) for a in grouping.assignments],
        )
        authors = _incident_authors(grouping.assignments)
        if authors:
            statement = self._insert(incident_authors)
            statement = statement.on_conflict_do_update(
                index_elements=[
                    incident_authors.c.incident_id,
                    incident_authors.c.author,
                ],
                set_={"reporter": statement.excluded.reporter},
                where=statement.excluded.reporter,
            )
            connection.execute(statement, authors)

    def _upsert(self, table: Any, key: Any) -> Any:
        statement = self._insert(table)
        columns = [column.name for column in table.columns if column is not key]
        return statement.on_conflict_do_update(
            index_elements=[key],
            set_={name: statement.excluded[name] for name in columns},
        )

    def load_problem_state(self) -> dict[str, Any] | None:
        """Return the stored problems and incidents in the grouping's state format.

        The result is what :meth:`signals.problems.ProblemGrouper.state`
        returns, ready for ``ProblemGrouper.from_state``, or None when no
        problem is stored. Raises ValueError when rows were written in more
        than one state format version.
        """
        started = time.perf_counter()
        with self._read() as connection:
            state = _read_grouping_state(connection)
        if state is not None:
            logger.info(
                "problems loaded problems=%s incidents=%s seconds=%.3f",
                len(state["problems"]),
                len(state["incidents"]),
                time.perf_counter() - started,
            )
        return state

    def top_problems(
        self, *, days: int = 30, limit: int = 10, now: datetime | None = None
    ) -> list[rows.ProblemSummary]:
        """Return the problems with the most reports posted in the last ``days``.

        Ties go to the problem seen last. Reposts that add no words are not
        reports. Raises ValueError when ``days`` or ``limit`` is below 1.
        """
        if days < 1 or limit < 1:
            raise ValueError(
                f"invalid days={days} or limit={limit}; both must be at least 1"
            )
        since = (now or utcnow()) - timedelta(days=days)
        recent = (
            select(problem_posts.c.problem_id, func.count().label("recent_reports"))
            .where(problem_posts.c.posted_at >= since, problem_posts.c.report)
            .group_by(problem_posts.c.problem_id)
            .subquery()
        )
        statement = (
            select(problems, recent.c.recent_reports)
            .join(recent, recent.c.problem_id == problems.c.id)
            .order_by(
                recent.c.recent_reports.desc(),
                problems.c.last_seen.desc(),
                problems.c.id,
            )
            .limit(limit)
        )
        with self._read() as connection:
            return [
                rows.problem_summary(row)
                for row in connection.execute(statement).mappings()
            ]

    # Early-warning signals

    def _insert_signals(
        self, connection: Connection, new_signals: Sequence[Signal], now: datetime
    ) -> list[int | None]:
        """Insert signals whose key is new; return their ids, None for the others."""
        positions: dict[str, int] = {}
        for index, signal in enumerate(new_signals):
            positions.setdefault(signal.key, index)
        result: list[int | None] = [None] * len(new_signals)
        if not positions:
            return result
        signal_rows = [rows.signal_row(new_signals[i], now) for i in positions.values()]
        statement = (
            self._insert(signals)
            .on_conflict_do_nothing(index_elements=[signals.c.key])
            .returning(signals.c.id, signals.c.key)
        )
        for row in connection.execute(statement, signal_rows):
            result[positions[row.key]] = row.id
        return result

    def add_signals(self, new_signals: Sequence[Signal]) -> list[int | None]:
        """Store signals whose key is new; return their ids, None for known keys."""
        with self._write() as connection:
            return self._insert_signals(connection, new_signals, utcnow())

    def recent_signals(
        self, *, limit: int = 20, since: datetime | None = None
    ) -> list[SignalRecord]:
        """Return the signals stored last, newest first, from ``since`` if given."""
        statement = select(signals).order_by(signals.c.id.desc()).limit(limit)
        if since is not None:
            statement = statement.where(signals.c.created_at >= since)
        with self._read() as connection:
            return [
                rows.signal_record(row)
                for row in connection.execute(statement).mappings()
            ]

    def last_burst_starts(
        self, problem_ids: Sequence[int | None]
    ) -> dict[int | None, datetime]:
        """Return the start of the latest burst signalled for each problem.

        None stands for the brand as a whole. Subjects without a burst signal
        are left out.
        """
        found: dict[int | None, datetime] = {}
        problems_asked = [i for i in problem_ids if i is not None]
        burst = signals.c.kind == "burst"
        statements = []
        if None in problem_ids:
            statements.append(
                select(signals.c.problem_id, func.max(signals.c.occurred_at))
                .where(burst, signals.c.subject == "brand")
                .group_by(signals.c.problem_id)
            )
        for chunk in chunks(problems_asked, LOOKUP_CHUNK):
            statements.append(
                select(signals.c.problem_id, func.max(signals.c.occurred_at))
                .where(burst, signals.c.problem_id.in_(chunk))
                .group_by(signals.c.problem_id)
            )
        with self._read() as connection:
            for statement in statements:
                for problem_id, started in connection.execute(statement):
                    found[problem_id] = started
        return found

    # Series for the early warnings

    def engagement_history(
        self, post_ids: Sequence[int]
    ) -> dict[int, list[tuple[datetime, Engagement]]]:
        """Return each post's engagement snapshots, oldest first."""
        snapshots = engagement_snapshots.c
        history: dict[int, list[tuple[datetime, Engagement]]] = defaultdict(list)
        with self._read() as connection:
            for chunk in chunks(post_ids, LOOKUP_CHUNK):
                statement = (
                    select(snapshots)
                    .where(snapshots.post_id.in_(chunk))
                    .order_by(snapshots.post_id, snapshots.id)
                )
                for row in connection.execute(statement):
                    counts = Engagement(row.likes, row.reposts, row.comments)
                    history[row.post_id].append((row.taken_at, counts))
        return dict(history)

    def pending_regrades(self, limit: int = 500, after: int = 0) -> list[int]:
        """Return ids above ``after`` of posts whose new engagement is not graded yet."""
        statement = (
            select(posts.c.id)
            .where(posts.c.regrade_pending, posts.c.id > after)
            .order_by(posts.c.id)
            .limit(limit)
        )
        with self._read() as connection:
            return list(connection.execute(statement).scalars())

    # The engagement refresh

    def refresh_candidates(
        self,
        since: datetime,
        sources: Sequence[str],
        limit: int,
        *,
        cut_only: bool = False,
    ) -> list[KnownPost]:
        """Return the posts of ``sources`` created from ``since`` worth reading again.

        These are the posts whose latest grading is medium or critical, those
        with a viral signal, and those cut short whose full text was never
        looked up. With ``cut_only`` only the last kind is returned. Posts
        that the source showed removed are left out. Critical posts come first, then medium and viral ones, then
        the cut ones, newest first within each, at most ``limit`` in all.
        """
        if limit <= 0 or not sources:
            return []
        recent = (
            posts.c.created_at >= since,
            posts.c.source.in_(list(sources)),
            posts.c.removed_at.is_(None),
        )
        with self._read() as connection:
            levels = {} if cut_only else self._watched_levels(connection, recent, since)
            cut = set(_cut_short(connection, recent))
            selected = {i: levels.get(i) for i in (*levels, *cut)}
            rank = {"critical": 0, "medium": 1}
            found = [
                rows.known_post(row, selected[row.id], row.id in cut)
                for chunk in chunks(list(selected), LOOKUP_CHUNK)
                for row in connection.execute(
                    select(posts).where(posts.c.id.in_(chunk))
                )
            ]
        found.sort(key=lambda post: (rank.get(post.level or "", 2), _newest(post)))
        return found[:limit]

    def _watched_levels(
        self, connection: Connection, recent: tuple, since: datetime
    ) -> dict[int, str]:
        """Return recent posts graded above normal or forecast viral, with a level."""
        levels = _latest_levels(connection, recent)
        viral = select(signals.c.post_id).where(
            signals.c.kind == "viral", signals.c.occurred_at >= since
        )
        for post_id in connection.execute(
            select(posts.c.id).where(*recent, posts.c.id.in_(viral))
        ).scalars():
            levels.setdefault(post_id, "medium")
        return levels

    def record_rereads(self, rereads: Sequence[Reread], seen_at: datetime) -> list[int]:
        """Store what a source showed of known posts; return those whose counts changed.

        Each post gets ``last_seen_at``, an engagement snapshot when its
        counts changed (then it is pending a regrade, as in :meth:`add_batch`)
        and ``removed_at`` when it was first seen removed. A reread that gave
        no counts stores none.
        """
        sightings = [
            Sighting(r.post.post_id, seen_at, r.engagement, r.removed) for r in rereads
        ]
        with self._write() as connection:
            return _note_seen(connection, sightings)

    def replace_text(self, post_id: int, text: str, checked_at: datetime) -> str:
        """Put a post's full text in place of the part a listing showed.

        The part shown before is kept in the post's raw record as
        ``shown_text``. Returns the text as stored. The post must be analysed
        again afterwards.
        """
        with self._write() as connection:
            row = connection.execute(
                select(posts.c.title, posts.c.text, posts.c.raw).where(
                    posts.c.id == post_id
                )
            ).first()
            if row is None:
                raise LookupError(f"no post with id {post_id}")
            raw = dict(row.raw or {})
            raw.setdefault("shown_text", row.text)
            stored = rows.clean_text(text)
            connection.execute(
                update(posts)
                .where(posts.c.id == post_id)
                .values(text=stored, raw=raw, text_checked_at=checked_at)
            )
            search.index_posts(connection, [(post_id, row.title, stored)])
        return stored

    def mark_text_checked(self, post_ids: Sequence[int], checked_at: datetime) -> None:
        """Note that the full text of these posts was looked up, found or not."""
        with self._write() as connection:
            for chunk in chunks(post_ids, LOOKUP_CHUNK):
                connection.execute(
                    update(posts)
                    .where(posts.c.id.in_(chunk))
                    .values(text_checked_at=checked_at)
                )

    def problem_post_times(
        self, problem_ids: Sequence[int], since: datetime
    ) -> dict[int, list[datetime]]:
        """Return the creation times of each problem's posts from ``since``.

        Reposts count as much as reports: a burst of reposts is a burst.
        Posts without a creation time, or with one estimated at collection,
        are left out, because the hour they belong to is unknown.
        """
        times: dict[int, list[datetime]] = defaultdict(list)
        column = problem_posts.c
        with self._read() as connection:
            for chunk in chunks(problem_ids, LOOKUP_CHUNK):
                statement = (
                    select(column.problem_id, posts.c.created_at)
                    .join(posts, posts.c.id == column.post_id)
                    .where(
                        column.problem_id.in_(chunk),
                        column.posted_at >= since,
                        posts.c.created_at >= since,
                        posts.c.time_estimated.is_(False),
                    )
                )
                for problem_id, created_at in connection.execute(statement):
                    times[problem_id].append(created_at)
        return dict(times)

    def newest_post_time(self) -> datetime | None:
        """Return the latest known creation time of a stored post, or None."""
        statement = select(func.max(posts.c.created_at)).where(
            posts.c.time_estimated.is_(False)
        )
        with self._read() as connection:
            return connection.execute(statement).scalar()

    def covered_since(self, start: datetime, end: datetime) -> datetime:
        """Return the start of the unbroken run of days before ``end`` with posts.

        Walking back from ``end`` a day at a time, down to ``start``, the first
        day without a single post (known creation time, any source) ends the
        run: before it nothing was being collected, so a count of zero there
        means nothing. Returns ``end`` when the last day has no post.
        """
        covered = end
        with self._read() as connection:
            while covered > start:
                day_start = max(covered - timedelta(days=1), start)
                statement = (
                    select(posts.c.id)
                    .where(
                        posts.c.created_at >= day_start,
                        posts.c.created_at < covered,
                        posts.c.time_estimated.is_(False),
                    )
                    .limit(1)
                )
                if connection.execute(statement).first() is None:
                    break
                covered = day_start
        return covered

    def active_problems(self, since: datetime) -> list[int]:
        """Return the problems with a post created at or after ``since``."""
        statement = (
            select(problem_posts.c.problem_id)
            .where(problem_posts.c.posted_at >= since)
            .distinct()
        )
        with self._read() as connection:
            return list(connection.execute(statement).scalars())

    def brand_post_times(self, since: datetime) -> list[tuple[datetime, bool]]:
        """Return the creation time of each post about the brand from ``since``,
        and whether its latest classification is a grievance or a complaint.

        Posts without a creation time, or with an estimated one, are left out.
        """
        statement = (
            select(
                posts.c.id,
                posts.c.created_at,
                classifications.c.id.label("classification_id"),
                classifications.c.kind,
                classifications.c.relevant,
            )
            .join(classifications, classifications.c.post_id == posts.c.id)
            .where(posts.c.created_at >= since, posts.c.time_estimated.is_(False))
        )
        latest: dict[int, Any] = {}
        with self._read() as connection:
            for row in connection.execute(statement):
                known = latest.get(row.id)
                if known is None or row.classification_id > known.classification_id:
                    latest[row.id] = row
        return [
            (row.created_at, row.kind in ("grievance", "complaint"))
            for row in latest.values()
            if row.relevant
        ]

    # Alerts

    def add_alerts(
        self, new_alerts: Sequence[NewAlert], *, now: datetime | None = None
    ) -> list[int | None]:
        """Store alerts, each with its first message and that message's deliveries.

        Alerts whose ``dedup_key`` is known are skipped. Returns the new alert
        id in the position of each alert, or None where the key was already
        stored or appeared earlier in the batch. The deliveries are due at
        ``now`` (default: the current time). A ``message_id`` that is already
        stored raises ``sqlalchemy.exc.IntegrityError``, and an invalid
        channel or recipient raises ValueError; either way nothing is stored.
        """
        with self._write() as connection:
            return alert_store.insert_alerts(
                connection, self._insert, new_alerts, now or utcnow()
            )

    def _insert_alerts(
        self, connection: Connection, new_alerts: Sequence[NewAlert], now: datetime
    ) -> list[int | None]:
        return alert_store.insert_alerts(connection, self._insert, new_alerts, now)

    def add_message(
        self, alert_id: int, message: NewMessage, *, now: datetime | None = None
    ) -> int:
        """Add a message to an alert, after its last one, with its deliveries.

        Returns the id of the message. The alert's ``updated_at`` becomes
        ``now``. Raises LookupError for an unknown alert, ValueError for an
        invalid message and ``sqlalchemy.exc.IntegrityError`` for a
        ``message_id`` already stored.
        """
        with self._write() as connection:
            return alert_store.add_message(
                connection, alert_id, message, now or utcnow()
            )

    def claim_deliveries(
        self,
        now: datetime,
        *,
        mail_channel: str | None,
        robots: Collection[tuple[str, str]] = (),
        max_messages: int = 20,
    ) -> Claimed:
        """Mark the deliveries due at ``now`` as sending and return them.

        Only deliveries on ``mail_channel`` ("smtp" or "eml") and to the
        ``robots`` given as (kind, name) are claimed. The marks commit before
        anything is sent, so a crash leaves them sending, and
        :meth:`mark_unconfirmed` finds them at the next start. See
        :func:`storage.alert_store.claim_due` for the order.
        """
        with self._write() as connection:
            return alert_store.claim_due(
                connection,
                now,
                mail_channel=mail_channel,
                robots=robots,
                max_messages=max_messages,
            )

    def record_attempts(
        self, outcomes: Sequence[AttemptOutcome], attempted_at: datetime
    ) -> None:
        """Record the outcomes of attempts at claimed deliveries, in one transaction.

        A sent delivery is done. A pending one is tried again from its
        ``next_attempt_at``, and a failed one never again. Each outcome adds a
        row to the attempt log. Raises ValueError for an invalid outcome and
        LookupError for a delivery that is not marked sending, and then
        records nothing.
        """
        with self._write() as connection:
            alert_store.record_attempts(connection, outcomes, attempted_at)

    def release_deliveries(self, delivery_ids: Sequence[int]) -> None:
        """Put claimed deliveries that were never attempted back to pending."""
        with self._write() as connection:
            alert_store.release(connection, delivery_ids)

    def mark_unconfirmed(
        self,
        now: datetime | None = None,
        *,
        delivery_ids: Sequence[int] | None = None,
        error: str | None = None,
    ) -> list[int]:
        """Mark the deliveries left sending as unconfirmed; return their ids.

        Call it at start, before any delivery, while holding the job lock:
        a delivery still marked sending then belongs to a job that stopped
        between sending and recording, so the message may have arrived. An
        unconfirmed delivery is not sent again automatically. ``delivery_ids``
        limits the change to those deliveries, and ``error`` is kept with the
        reason.
        """
        with self._write() as connection:
            marked = alert_store.mark_unconfirmed(
                connection, now or utcnow(), delivery_ids, error
            )
        if marked:
            logger.warning(
                "deliveries interrupted while sending marked unconfirmed count=%s "
                "ids=%s",
                len(marked),
                marked[:20],
            )
        return marked

    def settle_unserved(
        self,
        now: datetime,
        *,
        mail_channel: str | None,
        robots: Collection[tuple[str, str]],
        reasons: Mapping[tuple[str, str], str],
        retry_time: timedelta,
    ) -> list[int]:
        """Note why robot deliveries that no sender of this run serves wait, and
        fail those older than ``retry_time``; return the ids of those failed.

        See :func:`storage.alert_store.settle_unserved`.
        """
        with self._write() as connection:
            noted, failed = alert_store.settle_unserved(
                connection,
                now,
                mail_channel=mail_channel,
                robots=robots,
                reasons=reasons,
                retry_time=retry_time,
            )
        if noted:
            logger.warning("deliveries wait for a channel not set up count=%s", noted)
        return failed

    def move_pending_mail(self, channel: str) -> int:
        """Send the pending mail deliveries through ``channel`` ("smtp" or "eml").

        Deliveries are stored on the mail channel configured when their alert
        was raised, so call this at start, after the configuration switched
        between SMTP and .eml files. Returns how many moved.
        """
        with self._write() as connection:
            moved = alert_store.move_pending_mail(connection, channel)
        if moved:
            logger.info(
                "pending mail deliveries moved channel=%s count=%s", channel, moved
            )
        return moved

    def list_alerts(
        self, *, limit: int = 50, status: str | None = None, before: int | None = None
    ) -> list[AlertSummary]:
        """Return alerts newest first, each with its delivery state.

        ``status`` keeps the alerts in one handling state (open, acknowledged,
        closed), and ``before`` the alerts with a smaller id, for paging.
        """
        with self._read() as connection:
            return alert_store.list_alerts(
                connection, limit=limit, status=status, before=before
            )

    def known_alerts(self, keys: Collection[str]) -> dict[str, KnownAlert]:
        """Return the stored alerts under ``keys`` by key, with their threads."""
        with self._read() as connection:
            return alert_store.known_alerts(connection, keys)

    def recent_mail(
        self, recipients: Collection[str], since: datetime
    ) -> list[tuple[int, str, datetime, str]]:
        """Return (message id, recipient, time, level) of the mail deliveries to
        ``recipients`` sent or due since ``since``, failed ones left out."""
        with self._read() as connection:
            return alert_store.recent_mail(connection, recipients, since)

    def incident_reach(
        self, incident_ids: Collection[int]
    ) -> dict[int, dict[int, int]]:
        """Return, per incident, the reach of each of its stored posts: the
        latest likes, reposts and comments added up."""
        members: dict[int, dict[int, int]] = {i: {} for i in incident_ids}
        with self._read() as connection:
            for chunk in chunks(sorted(incident_ids), LOOKUP_CHUNK):
                statement = select(
                    problem_posts.c.incident_id, problem_posts.c.post_id
                ).where(problem_posts.c.incident_id.in_(chunk))
                for incident_id, post_id in connection.execute(statement):
                    members[incident_id][post_id] = 0
            every_post = [p for posts_ in members.values() for p in posts_]
            engagement = _latest_engagement(connection, every_post)
        for posts_ in members.values():
            for post_id in posts_:
                posts_[post_id] = sum(engagement.get(post_id, (0, 0, 0)))
        return members

    def incidents_of(self, post_ids: Collection[int]) -> dict[int, int]:
        """Return the incident of each of the posts that has one."""
        found: dict[int, int] = {}
        with self._read() as connection:
            for chunk in chunks(sorted(post_ids), LOOKUP_CHUNK):
                statement = select(
                    problem_posts.c.post_id, problem_posts.c.incident_id
                ).where(problem_posts.c.post_id.in_(chunk))
                found.update(dict(connection.execute(statement).all()))
        return found

    def acknowledge_alert(
        self, alert_id: int, by: str, *, now: datetime | None = None
    ) -> bool:
        """Mark an open alert acknowledged, which stops its escalation.

        Returns True when the alert was open, False when it was already
        acknowledged or closed (who acknowledged it first is kept). Raises
        LookupError for an unknown alert.
        """
        with self._write() as connection:
            return alert_store.acknowledge(connection, alert_id, by, now or utcnow())

    def overdue_alerts(
        self, now: datetime, tiers_by_level: Mapping[str, int], *, limit: int = 200
    ) -> list[AlertRecord]:
        """Return up to ``limit`` open alerts past their deadline with escalation
        tiers left; ``tiers_by_level`` gives each level's number of tiers."""
        with self._read() as connection:
            return alert_store.overdue_alerts(connection, now, tiers_by_level, limit)

    def escalate_alert(
        self,
        alert_id: int,
        tier: int,
        message: NewMessage,
        *,
        now: datetime | None = None,
    ) -> int | None:
        """Raise an open alert's escalation tier from ``tier`` by one and add the
        escalation message with its deliveries, in one transaction.

        Returns the message's id, or None when the alert was acknowledged or
        closed, or its tier already raised, meanwhile. Raises ValueError for
        an invalid message.
        """
        with self._write() as connection:
            return alert_store.escalate(
                connection, alert_id, tier, message, now or utcnow()
            )

    def confirm_delivery(
        self, delivery_id: int, by: str, *, now: datetime | None = None
    ) -> DeliveryRecord:
        """Mark an unconfirmed delivery as sent, after a person checked the
        recipient's mailbox; return the delivery as it is now.

        Raises LookupError for an unknown delivery and ValueError for a
        delivery that is not unconfirmed.
        """
        with self._write() as connection:
            return alert_store.confirm_delivery(
                connection, delivery_id, by, now or utcnow()
            )

    def get_alert(self, alert_id: int) -> AlertDetail | None:
        """Return an alert with all its messages and deliveries, or None."""
        with self._read() as connection:
            return alert_store.get_alert(connection, alert_id)

    # Collection runs and status

    def start_run(self, source: str) -> int:
        """Record the start of a collection run and return its id.

        A run of the same source still marked running was cut short by a crash,
        so it is closed as failed with the error "interrupted".
        """
        now = utcnow()
        interrupt = (
            update(source_runs)
            .where(source_runs.c.source == source)
            .where(source_runs.c.status == "running")
            .values(status="failed", finished_at=now, error="interrupted")
            .returning(source_runs.c.id)
        )
        start = insert(source_runs).values(
            source=source,
            started_at=now,
            status="running",
            fetched=0,
            new=0,
            duplicates=0,
            bad=0,
        )
        with self._write() as connection:
            interrupted = connection.execute(interrupt).scalars().all()
            run_id = connection.execute(start.returning(source_runs.c.id)).scalar_one()
        for old_id in interrupted:
            logger.warning("closed interrupted run source=%s run_id=%s", source, old_id)
        return run_id

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        fetched: int,
        new: int,
        duplicates: int,
        bad: int,
        error: str | None = None,
    ) -> None:
        """Record the end of a run with its counts.

        ``status`` is ok, partial or failed, and ``error`` is cut to 2000
        characters. Raises ValueError for another status and LookupError for an
        unknown run.
        """
        if status not in FINISHED_RUN_STATUSES:
            raise ValueError(
                f"invalid run status {status!r}; "
                f"expected one of {', '.join(FINISHED_RUN_STATUSES)}"
            )
        statement = (
            update(source_runs)
            .where(source_runs.c.id == run_id)
            .values(
                status=status,
                finished_at=utcnow(),
                fetched=fetched,
                new=new,
                duplicates=duplicates,
                bad=bad,
                error=None if error is None else error[:MAX_ERROR_LENGTH],
            )
        )
        with self._write() as connection:
            if connection.execute(statement).rowcount == 0:
                raise LookupError(f"run {run_id} not found")

    def record_skip(self, source: str, reason: str) -> None:
        """Record that a scheduled run of a source did not happen, and why."""
        statement = insert(source_skips).values(
            source=source, skipped_at=utcnow(), reason=reason[:16]
        )
        with self._write() as connection:
            connection.execute(statement)

    def recent_runs(self, source: str, limit: int) -> list[RunRecord]:
        """Return a source's latest runs, newest first."""
        statement = (
            select(source_runs)
            .where(source_runs.c.source == source)
            .order_by(source_runs.c.id.desc())
            .limit(limit)
        )
        with self._read() as connection:
            return [
                RunRecord(
                    id=row.id,
                    source=row.source,
                    status=row.status,
                    started_at=row.started_at,
                    finished_at=row.finished_at,
                    error=row.error,
                )
                for row in connection.execute(statement)
            ]

    def status(self) -> StatusReport:
        """Summarise sources, kinds, levels and alerts (see :class:`StatusReport`)."""
        with self._read() as connection:
            return read_status(connection)


def _first_positions(items: Sequence[Item]) -> dict[str, int]:
    """Return the position of each identity key's first item in a batch.

    An item whose source and external id appeared earlier under another key
    (a record naming another platform) is a repeat too, because the two
    would otherwise conflict on insert.
    """
    positions: dict[str, int] = {}
    pairs: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        key = rows.post_key(item)
        pair = rows.source_key(item)
        if key in positions or pair in pairs:
            continue
        positions[key] = index
        pairs.add(pair)
    return positions


def _find_post_ids(
    connection: Connection, known: Sequence[tuple[str, Item]]
) -> dict[str, int]:
    """Return the stored post of each identity key.

    A post stored under another key, as by its own source before identity
    keys were platform-scoped, is found by its source and external id.
    NOTE: such a row keeps its source-scoped key, so another source that
    reads the same post still stores a second row.
    """
    found = _find_by_identity(connection, [key for key, _ in known])
    missing = [(key, rows.source_key(item)) for key, item in known if key not in found]
    if missing:
        by_pair = _find_by_source_id(connection, [pair for _, pair in missing])
        for key, pair in missing:
            if pair in by_pair:
                found[key] = by_pair[pair]
    return found


def _find_by_identity(connection: Connection, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(keys, LOOKUP_CHUNK):
        statement = select(posts.c.id, posts.c.identity_key).where(
            posts.c.identity_key.in_(chunk)
        )
        for row in connection.execute(statement):
            found[row.identity_key] = row.id
    return found


def _find_by_source_id(
    connection: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, external_id in keys:
        by_source[source].append(external_id)

    found: dict[tuple[str, str], int] = {}
    for source, external_ids in by_source.items():
        for chunk in chunks(external_ids, LOOKUP_CHUNK):
            statement = select(posts.c.id, posts.c.external_id).where(
                posts.c.source == source, posts.c.external_id.in_(chunk)
            )
            for row in connection.execute(statement):
                found[(source, row.external_id)] = row.id
    return found


@dataclass(frozen=True, slots=True)
class Sighting:
    """A known post seen again at ``seen_at``, with its counts if the source gave them."""

    post_id: int
    seen_at: datetime
    engagement: Engagement | None
    removed: bool


def _note_seen(connection: Connection, sightings: Sequence[Sighting]) -> list[int]:
    """Record known posts seen again; return the ids of those whose counts changed.

    Each post gets a later ``last_seen_at``, because replaying old records
    must not move it back. A post first seen removed gets ``removed_at`` and
    keeps the text captured before. A post whose counts changed gets a
    snapshot and a pending regrade in the same transaction, so that a crash
    leaves the regrade for the next start.
    """
    counted = [s for s in sightings if s.engagement is not None]
    latest = _latest_engagement(connection, [s.post_id for s in counted])
    snapshots = [
        {"post_id": s.post_id, "taken_at": s.seen_at}
        | dict(zip(("likes", "reposts", "comments"), counts, strict=True))
        for s in counted
        if (counts := rows.engagement_counts(s.engagement)) != latest.get(s.post_id)
    ]
    seen = [{"b_id": s.post_id, "b_seen": s.seen_at} for s in sightings]
    connection.execute(
        update(posts)
        .where(
            posts.c.id == bindparam("b_id"), posts.c.last_seen_at < bindparam("b_seen")
        )
        .values(last_seen_at=bindparam("b_seen")),
        seen,
    )
    removed = [row for row, s in zip(seen, sightings, strict=True) if s.removed]
    if removed:
        connection.execute(
            update(posts)
            .where(posts.c.id == bindparam("b_id"), posts.c.removed_at.is_(None))
            .values(removed_at=bindparam("b_seen")),
            removed,
        )
    changed = [row["post_id"] for row in snapshots]
    for chunk in chunks(changed, LOOKUP_CHUNK):
        connection.execute(
            update(posts).where(posts.c.id.in_(chunk)).values(regrade_pending=True)
        )
    if snapshots:
        connection.execute(insert(engagement_snapshots), snapshots)
    return changed


def _latest_engagement(
    connection: Connection, post_ids: Sequence[int]
) -> dict[int, tuple[int, int, int]]:
    snapshots = engagement_snapshots.c
    latest: dict[int, tuple[int, int, int]] = {}
    for chunk in chunks(post_ids, LOOKUP_CHUNK):
        last_ids = (
            select(func.max(snapshots.id))
            .where(snapshots.post_id.in_(chunk))
            .group_by(snapshots.post_id)
        )
        statement = select(
            snapshots.post_id, snapshots.likes, snapshots.reposts, snapshots.comments
        ).where(snapshots.id.in_(last_ids))
        for row in connection.execute(statement):
            latest[row.post_id] = (row.likes, row.reposts, row.comments)
    return latest


def _latest_levels(connection: Connection, recent: tuple) -> dict[int, str]:
    """Return the level of the latest grading of recent posts graded above normal."""
    column = gradings.c
    latest = (
        select(func.max(column.id))
        .join(posts, posts.c.id == column.post_id)
        .where(*recent)
        .group_by(column.post_id)
    )
    statement = select(column.post_id, column.level).where(
        column.id.in_(latest), column.level.in_(("medium", "critical"))
    )
    return {row.post_id: row.level for row in connection.execute(statement)}


def _cut_short(connection: Connection, recent: tuple) -> list[int]:
    """Return recent posts cut short whose full text was never looked up."""
    column = classifications.c
    latest = (
        select(func.max(column.id))
        .join(posts, posts.c.id == column.post_id)
        .where(*recent, posts.c.text_checked_at.is_(None))
        .group_by(column.post_id)
    )
    statement = select(column.post_id).where(column.id.in_(latest), column.truncated)
    return list(connection.execute(statement).scalars())


def _newest(post: KnownPost) -> float:
    return -post.created_at.timestamp() if post.created_at else 0.0


def _latest_classification_ids(
    connection: Connection, post_ids: Sequence[int]
) -> dict[int, int]:
    """Return the id of each post's latest classification, for posts that have one."""
    column = classifications.c
    latest: dict[int, int] = {}
    for chunk in chunks(post_ids, LOOKUP_CHUNK):
        statement = (
            select(column.post_id, func.max(column.id))
            .where(column.post_id.in_(chunk))
            .group_by(column.post_id)
        )
        latest.update(
            (post_id, last) for post_id, last in connection.execute(statement)
        )
    return latest


def _read_post(connection: Connection, post_id: int) -> PostRecord | None:
    post = (
        connection.execute(select(posts).where(posts.c.id == post_id))
        .mappings()
        .first()
    )
    if post is None:
        return None
    engagement = _latest_row(connection, engagement_snapshots, post_id)
    classification = _latest_row(connection, classifications, post_id)
    if classification is None:
        return PostRecord(
            id=post_id,
            item=rows.item_from_row(post, engagement),
            last_seen_at=post["last_seen_at"],
        )

    grading = (
        connection.execute(
            select(gradings)
            .where(gradings.c.classification_id == classification["id"])
            .order_by(gradings.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return PostRecord(
        id=post_id,
        item=rows.item_from_row(post, engagement),
        last_seen_at=post["last_seen_at"],
        relevance=rows.relevance_from_row(classification),
        classification=rows.classification_from_row(classification),
        grading=None if grading is None else rows.grading_from_row(grading),
        truncated=classification["truncated"],
        classified_at=classification["created_at"],
        graded_at=None if grading is None else grading["created_at"],
    )


def _latest_row(connection: Connection, table: Any, post_id: int) -> Any:
    statement = (
        select(table)
        .where(table.c.post_id == post_id)
        .order_by(table.c.id.desc())
        .limit(1)
    )
    return connection.execute(statement).mappings().first()


def _incident_authors(
    assignments: Sequence[rows.PostAssignment],
) -> list[dict[str, Any]]:
    """Return one row per incident and author, a reporter when any post shows
    that author writing words."""
    reporters: dict[tuple[int, str], bool] = {}
    for assignment in assignments:
        for author, wrote in assignment.people:
            key = (assignment.incident_id, author)
            reporters[key] = reporters.get(key, False) or wrote
    return [
        {"incident_id": incident_id, "author": author, "reporter": reporter}
        for (incident_id, author), reporter in reporters.items()
    ]


def _read_grouping_state(connection: Connection) -> dict[str, Any] | None:
    """Read every problem and incident with their posts and authors."""
    problem_rows = connection.execute(select(problems)).mappings().all()
    if not problem_rows:
        return None
    incident_rows = (
        connection.execute(select(incidents).order_by(incidents.c.id)).mappings().all()
    )
    versions = {row["state_version"] for row in [*problem_rows, *incident_rows]}
    if len(versions) > 1:
        raise ValueError(
            f"stored problems mix state versions {sorted(versions)}; "
            "rebuild them with one version"
        )

    posts_by_incident = _incident_posts(connection)
    authors_by_incident = _incident_author_flags(connection)
    incident_ids: dict[int, list[int]] = defaultdict(list)
    problem_authors: dict[int, set[str]] = defaultdict(set)
    incident_states = []
    for row in incident_rows:
        authors = authors_by_incident.get(row["id"], {})
        incident_ids[row["problem_id"]].append(row["id"])
        problem_authors[row["problem_id"]].update(a for a, w in authors.items() if w)
        incident_states.append(
            rows.incident_state(row, posts_by_incident.get(row["id"], {}), authors)
        )

    return {
        "version": versions.pop(),
        "next_problem_id": max(row["id"] for row in problem_rows) + 1,
        "next_incident_id": max((row["id"] for row in incident_rows), default=0) + 1,
        "problems": [
            rows.problem_state(row, incident_ids[row["id"]], problem_authors[row["id"]])
            for row in problem_rows
        ],
        "incidents": incident_states,
    }


def _incident_posts(connection: Connection) -> dict[int, dict[str, bool]]:
    """Return {incident id: {post key: report}}, keyed as the grouping keys posts."""
    statement = select(
        problem_posts.c.incident_id,
        posts.c.source,
        posts.c.external_id,
        problem_posts.c.report,
    ).join_from(problem_posts, posts)
    found: dict[int, dict[str, bool]] = defaultdict(dict)
    for incident_id, source, external_id, report in connection.execute(statement):
        found[incident_id][f"{source}:{external_id}"] = report
    return found


def _incident_author_flags(connection: Connection) -> dict[int, dict[str, bool]]:
    """Return {incident id: {author hash: reporter}}."""
    found: dict[int, dict[str, bool]] = defaultdict(dict)
    for incident_id, author, reporter in connection.execute(select(incident_authors)):
        found[incident_id][author] = reporter
    return found
