"""Reddit through praw: newest submissions of subreddits, searches, comments.

Each configured subreddit is read from its ``new`` listing, and each query is
a search sorted by new, across the configured subreddits or, when there are
none, all of Reddit. A listing is read from the newest post down to the
newest post of the previous run (its "mark"), at most ``limit`` posts per
run. Comments of each new submission are read when configured.

The cursor is a JSON object::

    {"listings": {"r/SUB/new": {"mark": [created_utc, fullname],
                                "top": [created_utc, fullname] | null,
                                "after": fullname | null}, ...},
     "watched": {fullname: [created_utc, likes, comments, reposts], ...}}

``top`` and ``after`` are set while a listing is read only partly (rate
limit, run deadline, ``limit`` reached): the next run goes on below
``after`` down to ``mark``, then moves the mark up to ``top``. ``watched``
contains the posts collected in the last WATCH_SECONDS. Each run re-reads them
and yields one again only when its counts changed or it was removed, so the
store records engagement growth, and nothing is yielded twice otherwise.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import praw
import praw.exceptions
import prawcore
import requests
from praw.models import Comment

from collectors.base import (
    Batch,
    CollectorError,
    RecordError,
    Rejected,
    clean_raw,
    clean_text,
    parse_count,
    parse_time,
)
from config import Config, RedditOptions, Source
from items import Author, Engagement, Item, KnownPost, Reread

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Bodies Reddit shows in place of the text of a removed or deleted post.
PLACEHOLDERS = frozenset({"[removed]", "[deleted]"})

# Posts are re-read for engagement and removal for two days after creation,
# an estimate of when most of their growth and moderation happens. At most
# MAX_WATCHED of the newest are re-read, one request per INFO_CHUNK posts.
WATCH_SECONDS = 2 * 24 * 3600
MAX_WATCHED = 500
INFO_CHUNK = 100

# A longer Retry-After is cut to this: waiting an hour would only hold the
# run until its deadline.
MAX_RETRY_AFTER_SECONDS = 120.0

UTC_ZONE = ZoneInfo("UTC")


class _RateLimited(Exception):
    """HTTP 429 outlasted the retries: the run stops, keeping what it read."""


class _DeadlineReached(CollectorError):
    """The run's deadline passed: it fails, keeping what it read."""


class _NotReadable(Exception):
    """One listing or comment tree cannot be read (private, banned, missing)."""


@dataclass
class ListingState:
    """The position reached in one listing; see the module docstring."""

    mark: tuple[float, str] | None = None
    top: tuple[float, str] | None = None
    after: str | None = None

    def reached(self, created: float, fullname: str) -> bool:
        """Return whether a post is at or below the previous run's newest."""
        if self.mark is None:
            return False
        return fullname == self.mark[1] or created < self.mark[0]

    def advance(self, created: float, fullname: str) -> None:
        if self.top is None:
            self.top = (created, fullname)
        self.after = fullname

    def finish(self) -> None:
        if self.top is not None:
            self.mark = self.top
        self.top = self.after = None


@dataclass
class CursorState:
    """The decoded cursor: listing positions and the watched posts."""

    listings: dict[str, ListingState] = field(default_factory=dict)
    watched: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def load(cls, cursor: str | None, source: str, now: float) -> CursorState:
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            listings = {
                key: ListingState(
                    _pair(value.get("mark")),
                    _pair(value.get("top")),
                    value.get("after"),
                )
                for key, value in data.get("listings", {}).items()
            }
            watched = {
                str(name): [int(number) for number in entry[:4]]
                for name, entry in data.get("watched", {}).items()
            }
        except (ValueError, TypeError, AttributeError, IndexError):
            logger.warning(
                "unreadable reddit cursor, starting over source=%s cursor=%r",
                source,
                cursor[:80],
            )
            return cls()
        return cls(listings, _recent(watched, now))

    def dump(self, now: float) -> str:
        listings = {
            key: {"mark": state.mark, "top": state.top, "after": state.after}
            for key, state in self.listings.items()
        }
        watched = _recent(self.watched, now)
        return json.dumps({"listings": listings, "watched": watched}, sort_keys=True)


def _pair(value: Any) -> tuple[float, str] | None:
    if value is None:
        return None
    created, fullname = value
    return float(created), str(fullname)


def _recent(watched: dict[str, list[int]], now: float) -> dict[str, list[int]]:
    """Keep the MAX_WATCHED newest entries created within WATCH_SECONDS."""
    recent = [
        (name, entry)
        for name, entry in watched.items()
        if entry and entry[0] >= now - WATCH_SECONDS
    ]
    recent.sort(key=lambda pair: pair[1][0], reverse=True)
    return dict(recent[:MAX_WATCHED])


@dataclass(frozen=True)
class Listing:
    """One listing to read: its cursor key and how to open it below a post."""

    key: str
    open: Callable[[str | None, int], Iterator[Any]]


class _PastDeadline(requests.exceptions.RequestException):
    """The run's deadline passed before or during a request.

    prawcore retries timeouts and connection errors after sleeping up to 4 s,
    but not other request exceptions, so this one ends the request at once.
    """


class _TimeoutSession(requests.Session):
    """A session that bounds every request by the timeouts and the run deadline.

    prawcore 4.0.0 passes its own fixed 16 s timeout with every request, so
    the configured connect and read timeouts are applied here, each cut to
    the time left before ``deadline`` (a time.monotonic() reading).
    """

    def __init__(self, timeout: tuple[float, float], deadline: float) -> None:
        super().__init__()
        self.fixed_timeout = timeout
        self.deadline = deadline

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _PastDeadline(f"run deadline passed before {method} {url}")
        connect, read = self.fixed_timeout
        kwargs["timeout"] = (min(connect, left), min(read, left))
        try:
            return super().request(method, url, **kwargs)
        except requests.exceptions.Timeout:
            if time.monotonic() < self.deadline:
                raise
            raise _PastDeadline(f"run deadline passed during {method} {url}") from None


class RedditCollector:
    """Read the subreddits and searches of a ``reddit`` source through praw.

    Credentials are read-only app credentials from the environment variables
    that the source names: a script app's client id and secret, or an
    installed app's client id alone when ``client_secret_env`` is empty.
    ``sleep`` waits between retries after HTTP 429. When the retries are used
    up, ``collect`` ends without an error and sets ``partial``; when the run
    deadline passes, it raises CollectorError and sets ``partial``. Either
    way the batches already yielded stay valid, and the last cursor resumes
    where the run stopped.
    """

    def __init__(
        self,
        source: Source,
        config: Config,
        *,
        sleep: Callable[[float], None] = time.sleep,
        batch_size: int | None = None,
    ) -> None:
        if source.reddit is None:
            raise CollectorError(f"source {source.name}: missing reddit section")
        self.name = source.name
        self.source = source
        self.options: RedditOptions = source.reddit
        self.http = config.http
        self.sleep = sleep
        self.batch_size = batch_size or config.storage.batch_size
        self.partial = False

    def estimate_total(self, cursor: str | None) -> int | None:
        return None

    def collect(self, cursor: str | None) -> Iterator[Batch]:
        client_id, client_secret = self._credentials()
        session = self._session()
        self.partial = False
        try:
            reddit = self._connect(client_id, client_secret, session)
            state = CursorState.load(cursor, self.name, time.time())
            yield from _Run(self, reddit, state, cursor, session.deadline).execute()
        finally:
            session.close()

    def _session(self) -> _TimeoutSession:
        """Return a session for one run, whose deadline starts now."""
        return _TimeoutSession(
            (self.http.connect_timeout_seconds, self.http.read_timeout_seconds),
            time.monotonic() + self.http.run_deadline_seconds,
        )

    def reread(self, posts: Sequence[KnownPost]) -> Iterator[Reread]:
        """Yield the counts now of known posts, read through /api/info.

        A post Reddit no longer returns is left out; one shown removed or
        deleted is reported removed. Ends early, after yielding what it read,
        when Reddit keeps responding 429.
        """
        client_id, client_secret = self._credentials()
        session = self._session()
        try:
            reddit = self._connect(client_id, client_secret, session)
            run = _Run(self, reddit, CursorState({}, {}), None, session.deadline)
            known = {post.external_id: post for post in posts}
            names = list(known)
            for start in range(0, len(names), INFO_CHUNK):
                run._check_deadline()
                try:
                    things = run._call(
                        partial(run._info, names[start : start + INFO_CHUNK]), "info"
                    )
                except _RateLimited as exc:
                    logger.warning(
                        "reddit reread ended early source=%s reason=%s", self.name, exc
                    )
                    return
                for thing in things:
                    reread = _reread(known, vars(thing), run)
                    if reread is not None:
                        yield reread
        finally:
            session.close()

    def _connect(
        self, client_id: str, client_secret: str | None, session: requests.Session
    ) -> praw.Reddit:
        try:
            return praw.Reddit(
                client_id=client_id,
                client_secret=client_secret,
                user_agent=self.http.user_agent,
                oauth_url=self.options.oauth_url,
                reddit_url=self.options.reddit_url,
                check_for_updates=False,
                requestor_kwargs={"session": session},
            )
        except (praw.exceptions.PRAWException, prawcore.PrawcoreException) as exc:
            raise CollectorError(
                f"source {self.name}: invalid Reddit client settings: {exc}"
            ) from None

    def _credentials(self) -> tuple[str, str | None]:
        client_id = self._read_variable(self.options.client_id_env, "client id")
        if not self.options.client_secret_env:
            return client_id, None
        secret = self._read_variable(self.options.client_secret_env, "secret")
        return client_id, secret

    def _read_variable(self, name: str, description: str) -> str:
        if not name:
            raise CollectorError(
                f"source {self.name}: no environment variable named for the "
                f"Reddit app's {description}; set reddit.client_id_env"
            )
        value = os.environ.get(name, "").strip()
        if not value:
            raise CollectorError(
                f"source {self.name}: environment variable {name} is not set; "
                f"set it to the Reddit app's {description}"
            )
        return value


class _Run:
    """One collection run: the listings, then the watched posts."""

    def __init__(
        self,
        collector: RedditCollector,
        reddit: praw.Reddit,
        state: CursorState,
        cursor: str | None,
        deadline: float,
    ) -> None:
        self.collector = collector
        self.name = collector.name
        self.options = collector.options
        self.reddit = reddit
        self.state = state
        self.saved_cursor = cursor
        self.deadline = deadline
        self.items: list[Item] = []
        self.rejected: list[Rejected] = []
        self.collected: set[str] = set()
        self.failures: list[str] = []
        self.remaining = 0
        self.counts = {"new": 0, "refreshed": 0, "removed_skipped": 0}

    def execute(self) -> Iterator[Batch]:
        started = time.monotonic()
        try:
            for listing in self.listings():
                yield from self.read_listing(listing)
            yield from self.refresh_watched()
        except _RateLimited as exc:
            self.collector.partial = True
            logger.warning(
                "reddit run ended early, resuming next run source=%s reason=%s",
                self.name,
                exc,
            )
        except CollectorError as exc:
            self.collector.partial = isinstance(exc, _DeadlineReached)
            yield from self.flush()
            raise
        yield from self.flush()

        logger.info(
            "reddit run finished source=%s new=%s refreshed=%s removed_skipped=%s "
            "partial=%s seconds=%.1f",
            self.name,
            self.counts["new"],
            self.counts["refreshed"],
            self.counts["removed_skipped"],
            self.collector.partial,
            time.monotonic() - started,
        )
        if self.failures:
            raise CollectorError(f"source {self.name}: " + "; ".join(self.failures))

    def listings(self) -> list[Listing]:
        subreddits = [_subreddit_name(name) for name in self.options.subreddits]
        listings = [
            Listing(f"r/{name}/new", self._opener(name, None)) for name in subreddits
        ]
        scope = "+".join(subreddits) or "all"
        for query in self.options.queries:
            listings.append(
                Listing(f"search/{scope}/{query}", self._opener(scope, query))
            )
        return listings

    def _opener(self, subreddit: str, query: str | None):
        def open_listing(after: str | None, limit: int) -> Iterator[Any]:
            params = {"after": after} if after else {}
            target = self.reddit.subreddit(subreddit)
            if query is None:
                return target.new(limit=limit, params=params)
            return target.search(query, sort="new", limit=limit, params=params)

        return open_listing

    # Listings

    def read_listing(self, listing: Listing) -> Iterator[Batch]:
        state = self.state.listings.setdefault(listing.key, ListingState())
        self.remaining = self.options.limit
        try:
            resumed = yield from self._read_pass(listing, state)
            if resumed and self.remaining > 0:
                yield from self._read_pass(listing, state)
        except _NotReadable as exc:
            logger.warning(
                "reddit listing skipped source=%s listing=%s error=%s",
                self.name,
                listing.key,
                exc,
            )
            self.failures.append(f"{listing.key} could not be read: {exc}")

    def _read_pass(self, listing: Listing, state: ListingState):
        """Read one listing from the top, or below ``after``, down to the mark.

        Returns whether this pass finished a read that an earlier run left
        partial, so that a fresh pass from the top may follow.
        """
        resuming = state.after is not None
        posts = listing.open(state.after, self.remaining)
        while self.remaining > 0:
            self._check_deadline()
            submission = self._call(lambda: next(posts, None), listing.key)
            if submission is None:
                # NOTE: a resumed read also ends here when Reddit no longer
                # serves the post named by ``after`` (deleted since), so the
                # posts between it and the mark are not read.
                break
            self.remaining -= 1
            data = vars(submission)
            created = _listing_time(data.get("created_utc"))
            fullname = str(data["name"])
            if state.reached(created, fullname):
                break
            self._accept_submission(submission, listing.key)
            state.advance(created, fullname)
            if len(self.items) >= self.collector.batch_size:
                yield from self.flush()
        else:
            # The limit cut this read short. A listing read before goes on
            # below ``after`` next run; a first read keeps only the newest
            # ``limit`` posts, and older history is not fetched.
            if state.mark is not None:
                return False
        state.finish()
        return resuming

    def _accept_submission(self, submission: Any, listing_key: str) -> None:
        data = vars(submission)
        fullname = data["name"]
        if fullname in self.collected or fullname in self.state.watched:
            return
        if _submission_removed(data):
            self.counts["removed_skipped"] += 1
            logger.debug(
                "removed submission skipped source=%s listing=%s id=%s",
                self.name,
                listing_key,
                fullname,
            )
            return
        now = datetime.now(UTC)
        found = [self._build(submission_item, data, now)]
        if self.options.comments and found[0] is not None:
            found.extend(self._comments(data["id"], now))
        for item in found:
            if item is not None:
                self._add(item)

    def _comments(self, submission_id: str, now: datetime) -> list[Item | None]:
        def fetch() -> tuple[list[Any], int]:
            submission = self.reddit.submission(id=submission_id)
            submission.comment_sort = "new"
            skipped = submission.comments.replace_more(limit=self.options.more_comments)
            return submission.comments.list(), len(skipped)

        try:
            comments, skipped = self._call(fetch, f"comments/{submission_id}")
        except _NotReadable as exc:
            logger.warning(
                "reddit comments skipped source=%s id=t3_%s error=%s",
                self.name,
                submission_id,
                exc,
            )
            return []
        if skipped:
            logger.debug(
                "more-comments stubs left unexpanded source=%s id=t3_%s stubs=%s",
                self.name,
                submission_id,
                skipped,
            )
        found = []
        for comment in comments:
            # replace_more removes every stub, but a stub is never a comment.
            if not isinstance(comment, Comment):
                continue
            data = vars(comment)
            if data["name"] in self.collected or data["name"] in self.state.watched:
                continue
            if data.get("body") in PLACEHOLDERS:
                self.counts["removed_skipped"] += 1
                continue
            found.append(self._build(comment_item, data, now))
        return found

    # Watched posts

    def refresh_watched(self) -> Iterator[Batch]:
        names = [name for name in self.state.watched if name not in self.collected]
        for start in range(0, len(names), INFO_CHUNK):
            self._check_deadline()
            things = self._call(
                partial(self._info, names[start : start + INFO_CHUNK]), "info"
            )
            now = datetime.now(UTC)
            for thing in things:
                item = self._refreshed(vars(thing), now)
                if item is not None:
                    self.items.append(item)
                    self.counts["refreshed"] += 1
            if len(self.items) >= self.collector.batch_size:
                yield from self.flush()

    def _info(self, fullnames: list[str]) -> list[Any]:
        return list(self.reddit.info(fullnames=fullnames))

    def _refreshed(self, data: dict[str, Any], now: datetime) -> Item | None:
        """Return a watched post again when it was removed or its counts changed.

        NOTE: comments written after a submission was first read are not
        collected, even when its comment count grows here.
        """
        fullname = data["name"]
        entry = self.state.watched.get(fullname)
        if entry is None:
            return None
        if _post_removed(data):
            del self.state.watched[fullname]
            return self._build(removed_item, data, now)
        build = submission_item if fullname.startswith("t3_") else comment_item
        item = self._build(build, data, now)
        if item is None or _counts(item) == entry[1:4]:
            return None
        entry[1:4] = _counts(item)
        return item

    # Batches

    def _add(self, item: Item) -> None:
        self.items.append(item)
        self.collected.add(item.external_id)
        created = item.created_at.timestamp() if item.created_at else time.time()
        self.state.watched[item.external_id] = [int(created), *_counts(item)]
        self.counts["new"] += 1

    def _build(
        self, build: Callable[..., Item], data: dict[str, Any], now: datetime
    ) -> Item | None:
        try:
            return build(self.name, self.options.reddit_url, data, now)
        except RecordError as exc:
            location = str(data.get("name", "?"))
            logger.warning(
                "record rejected source=%s location=%s reason=%s",
                self.name,
                location,
                exc,
            )
            self.rejected.append(Rejected(location, str(exc)))
            return None

    def flush(self) -> Iterator[Batch]:
        """Yield the items in hand with the cursor that follows them.

        A batch with no items is yielded only when the cursor changed, so that
        a run that found nothing new still saves its listing marks and the
        pruned list of watched posts.
        """
        cursor = self.state.dump(time.time())
        if not (self.items or self.rejected or cursor != self.saved_cursor):
            return
        batch = Batch(self.items, cursor, self.rejected)
        self.items, self.rejected = [], []
        self.saved_cursor = cursor
        yield batch

    # Requests

    def _check_deadline(self, wait: float = 0.0) -> None:
        if time.monotonic() + wait > self.deadline:
            raise self._past_deadline()

    def _past_deadline(self) -> _DeadlineReached:
        return _DeadlineReached(
            f"source {self.name}: run deadline of "
            f"{self.collector.http.run_deadline_seconds:g} s reached; the posts "
            "stored so far are kept and the rest is read at the next run"
        )

    def _call(self, action: Callable[[], T], target: str) -> T:
        """Run one request through praw, retrying after HTTP 429.

        Raises _RateLimited when the retries are used up, _NotReadable for a
        listing or post that Reddit does not serve, and CollectorError when
        Reddit cannot be read at all.
        """
        http = self.collector.http
        for attempt in range(http.retries + 1):
            try:
                return action()
            except prawcore.TooManyRequests as exc:
                if attempt >= http.retries:
                    raise _RateLimited(
                        f"HTTP 429 on {target} after {http.retries} retries"
                    ) from None
                self._wait(attempt, exc.retry_after, target)
            except (prawcore.PrawcoreException, praw.exceptions.PRAWException) as exc:
                raise self._failure(exc, target) from None
        raise AssertionError("unreachable")

    def _wait(self, attempt: int, retry_after: str | None, target: str) -> None:
        delay = self.collector.http.backoff_seconds * 2**attempt
        try:
            requested = min(float(retry_after or 0), MAX_RETRY_AFTER_SECONDS)
        except ValueError:
            requested = 0.0
        delay = max(delay, requested)
        delay += random.uniform(0, delay / 4)
        self._check_deadline(delay)
        logger.warning(
            "reddit rate limited, retrying source=%s target=%s attempt=%s delay=%.1f",
            self.name,
            target,
            attempt + 1,
            delay,
        )
        self.collector.sleep(delay)

    def _failure(self, exc: Exception, target: str) -> Exception:
        options = self.options
        not_served = (
            prawcore.NotFound,
            prawcore.Forbidden,
            prawcore.Redirect,
            prawcore.BadRequest,
            prawcore.UnavailableForLegalReasons,
        )
        if isinstance(exc, not_served):
            return _NotReadable(f"{exc} at {exc.response.url}")
        unauthorized = isinstance(exc, prawcore.OAuthException) or (
            isinstance(exc, prawcore.ResponseException)
            and exc.response.status_code == 401
        )
        if unauthorized:
            return CollectorError(
                f"source {self.name}: Reddit rejected the app credentials at "
                f"{options.reddit_url} ({exc}); check {options.client_id_env} "
                f"and {options.client_secret_env or 'client_secret_env'}"
            )
        if isinstance(exc, prawcore.RequestException):
            if isinstance(exc.original_exception, _PastDeadline):
                return self._past_deadline()
            detail = (
                f"{type(exc.original_exception).__name__}: {exc.original_exception}"
            )
            return CollectorError(
                f"source {self.name}: request for {target} to {options.oauth_url} "
                f"failed: {detail}"
            )
        url = getattr(getattr(exc, "response", None), "url", options.oauth_url)
        return CollectorError(f"source {self.name}: {target} failed at {url}: {exc}")


# Items


def submission_item(
    source: str, reddit_url: str, data: dict[str, Any], collected_at: datetime
) -> Item:
    """Build the item of a submission from praw's attributes of it."""
    title = clean_text(str(data.get("title") or "")).strip()
    body = clean_text(str(data.get("selftext") or "")).strip()
    text = "\n\n".join(part for part in (title, body) if part)
    if not text:
        raise RecordError("submission without title or text")
    raw = {
        "kind": "submission",
        "subreddit": str(data.get("subreddit") or ""),
        "is_self": bool(data.get("is_self", True)),
    }
    if not raw["is_self"] and data.get("url"):
        raw["link_url"] = str(data["url"])
    return _item(source, reddit_url, data, collected_at, text, title or None, raw)


def comment_item(
    source: str, reddit_url: str, data: dict[str, Any], collected_at: datetime
) -> Item:
    """Build the item of a comment from praw's attributes of it."""
    text = clean_text(str(data.get("body") or "")).strip()
    if not text:
        raise RecordError("comment without text")
    raw = {
        "kind": "comment",
        "subreddit": str(data.get("subreddit") or ""),
        "submission": str(data.get("link_id") or ""),
        "parent": str(data.get("parent_id") or ""),
    }
    return _item(source, reddit_url, data, collected_at, text, None, raw)


def removed_item(
    source: str, reddit_url: str, data: dict[str, Any], collected_at: datetime
) -> Item:
    """Build the item of a collected post that was removed since.

    Its text is what survives removal (a submission's title; nothing of a
    comment), never a placeholder. The store already contains the post and
    keeps the text it captured and records when it saw the removal.
    """
    submission = str(data["name"]).startswith("t3_")
    title = clean_text(str(data.get("title") or "")).strip() if submission else ""
    raw = {
        "kind": "submission" if submission else "comment",
        "subreddit": str(data.get("subreddit") or ""),
    }
    if data.get("removed_by_category"):
        raw["removed_by"] = str(data["removed_by_category"])
    if not submission:
        raw["submission"] = str(data.get("link_id") or "")
    item = _item(source, reddit_url, data, collected_at, title, title or None, raw)
    item.removed = True
    return item


def _item(
    source: str,
    reddit_url: str,
    data: dict[str, Any],
    collected_at: datetime,
    text: str,
    title: str | None,
    raw: dict[str, Any],
) -> Item:
    url = clean_text(urljoin(reddit_url, str(data.get("permalink") or "")))
    author = data.get("author")
    comments = 0
    if str(data["name"]).startswith("t3_"):
        comments = parse_count(data.get("num_comments"))
    return Item(
        source=source,
        platform="reddit",
        external_id=str(data["name"]),
        text=text,
        collected_at=collected_at,
        created_at=parse_time(data.get("created_utc"), UTC_ZONE),
        title=title,
        url=url,
        author=Author(
            name=clean_text(str(author)) if author is not None else None,
            id=str(data["author_fullname"]) if data.get("author_fullname") else None,
        ),
        # A comment's reply count is not in Reddit's data outside a full
        # comment tree, so it is 0 for comments, and re-reads compare alike.
        engagement=Engagement(
            likes=parse_count(data.get("score")),
            reposts=parse_count(data.get("num_crossposts")),
            comments=comments,
        ),
        raw=clean_raw(raw),
        location=url,
        native=True,
    )


def _reread(
    known: dict[str, KnownPost], data: dict[str, Any], run: _Run
) -> Reread | None:
    post = known.get(str(data.get("name")))
    if post is None:
        return None
    if _post_removed(data):
        return Reread(post, removed=True)
    build = submission_item if post.external_id.startswith("t3_") else comment_item
    item = run._build(build, data, datetime.now(UTC))
    return None if item is None else Reread(post, item.engagement)


def _counts(item: Item) -> list[int]:
    engagement = item.engagement
    return [engagement.likes, engagement.comments, engagement.reposts]


def _listing_time(value: Any) -> float:
    """Return a submission's ``created_utc`` as the listing mark may keep it.

    A missing or non-finite value counts as 0, so the mark stops only at the
    same post. A time in the future counts as now, because a mark in the
    future would stop every later read at the first post.
    """
    try:
        created = float(value or 0)
    except (TypeError, ValueError):
        return 0.0
    if not math.isfinite(created):
        return 0.0
    return min(created, time.time())


def _submission_removed(data: dict[str, Any]) -> bool:
    return bool(data.get("removed_by_category")) or data.get("selftext") in PLACEHOLDERS


def _post_removed(data: dict[str, Any]) -> bool:
    if str(data["name"]).startswith("t3_"):
        return _submission_removed(data)
    return data.get("body") in PLACEHOLDERS


def _subreddit_name(name: str) -> str:
    name = name.strip().strip("/")
    return name[2:] if name.lower().startswith("r/") else name
