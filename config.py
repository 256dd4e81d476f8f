"""Load and validate ``config.yaml`` into frozen dataclasses.

The file is read once at start. Every mapping is checked against the dataclass
it fills: an unknown key, a missing required key or a value of the wrong type
raises :class:`ConfigError` naming the file, the key path, the value received
and what was expected. Secrets never live in the file. Options ending in
``_env`` name the environment variable that contains them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import string
import types
import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from items import ROOT_CAUSES

STRATEGY_NAMES = ("customer_first", "balanced", "assertive")
# Config fields that the loader fills in and a file may not set.
LOADER_KEYS = ("base_dir", "config_path")
MAX_INTERVAL_MINUTES = 525_600
# Shorter intervals are typing mistakes; the scheduler turns an interval that
# rounds to zero microseconds into one second.
MIN_INTERVAL_MINUTES = 0.01
MAX_RESPONSE_HOURS = 8_760
MAX_PROBLEM_DAYS = 3_650
FIELD_NAMES = (
    "id",
    "text",
    "title",
    "created_at",
    "url",
    "platform",
    "lang",
    "author_name",
    "author_id",
    "followers",
    "verified",
    "role",
    "likes",
    "reposts",
    "comments",
)


class ConfigError(Exception):
    """A config file that cannot be used, with the key and the fix in the message."""


@dataclass(frozen=True)
class Competitor:
    name: str
    aliases: tuple[str, ...] = ()
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class Brand:
    """The monitored brand and the words that identify it."""

    name: str
    aliases: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    official_accounts: tuple[str, ...] = ()
    # Brand words that are also ordinary words ("启程" is "to set off") count
    # only with evidence; these phrases are read as the ordinary sense.
    ordinary_senses: tuple[str, ...] = ()
    # Words that make an ambiguous brand word mean the brand (车, 4S店, 续航 ...).
    context_words: tuple[str, ...] = ()
    competitors: tuple[Competitor, ...] = ()
    # Places and dealers that traditional-to-simplified conversion must leave
    # as written (it would turn the county 乾安 into 干安).
    places: tuple[str, ...] = ()


@dataclass(frozen=True)
class Thresholds:
    """The mapping from the four factors to a level, and response times.

    A post is critical when a safety event happened, when the factor sum
    reaches ``critical_sum``, or when public impact or customer identity
    reaches ``critical_single``. It is medium when the sum reaches
    ``medium_sum``, public impact or customer identity reaches
    ``medium_single``, or company fault reaches ``medium_company_fault``.
    """

    critical_sum: int
    medium_sum: int
    critical_single: int = 3
    medium_single: int = 2
    medium_company_fault: int = 3
    response_hours: dict[str, float] = field(
        default_factory=lambda: {"critical": 1.0, "medium": 24.0, "normal": 48.0}
    )


DEFAULT_STRATEGIES = {
    "customer_first": Thresholds(
        critical_sum=8,
        medium_sum=4,
        response_hours={"critical": 1.0, "medium": 12.0, "normal": 24.0},
    ),
    "balanced": Thresholds(critical_sum=9, medium_sum=5),
    "assertive": Thresholds(
        critical_sum=10,
        medium_sum=6,
        medium_company_fault=4,
        response_hours={"critical": 2.0, "medium": 48.0, "normal": 72.0},
    ),
}


@dataclass(frozen=True)
class Schedule:
    """When the scheduled service runs a source: an interval or a cron line."""

    interval_minutes: float | None = None
    cron: str | None = None


@dataclass(frozen=True)
class FeedOptions:
    """RSS or Atom feeds, RSSHub routes included, read with conditional GET."""

    urls: tuple[str, ...]


@dataclass(frozen=True)
class Pagination:
    """The pagination of a JSON API's results.

    ``style`` "page" counts pages from ``start`` in the query parameter
    ``param``, "offset" counts records, and "cursor" sends the value found at
    the dotted path ``next_field`` of the last response. ``size_param`` and
    ``size`` ask for a page size. At most ``max_pages`` pages are read per run.
    """

    style: Literal["none", "page", "offset", "cursor"] = "none"
    param: str = "page"
    start: int = 1
    size_param: str | None = None
    size: int | None = None
    next_field: str | None = None
    max_pages: int = 10


@dataclass(frozen=True)
class JsonOptions:
    """A JSON API: its URL, where the records are, and how it pages.

    ``items`` is the dotted path to the list of records in a response ("" when
    the response is the list). ``headers_env`` maps header names to the
    environment variables that hold their values, for tokens.
    """

    url: str
    items: str = ""
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    headers_env: dict[str, str] = field(default_factory=dict)
    pagination: Pagination = field(default_factory=Pagination)


@dataclass(frozen=True)
class RedditOptions:
    """Subreddits and searches read through Reddit's API.

    The client id and secret come from the environment variables named here.
    ``more_comments`` bounds how many "load more comments" stubs are expanded
    per submission (0 skips them). ``oauth_url`` and ``reddit_url`` are the
    API's addresses, changed only to point at a test server.
    """

    subreddits: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()
    comments: bool = False
    more_comments: int = 0
    limit: int = 100
    client_id_env: str = "FENGHUO_REDDIT_CLIENT_ID"
    client_secret_env: str = "FENGHUO_REDDIT_CLIENT_SECRET"
    oauth_url: str = "https://oauth.reddit.com"
    reddit_url: str = "https://www.reddit.com"


@dataclass(frozen=True)
class DetailOptions:
    """A JSON address that returns one post, for posts a listing shows in part.

    ``url`` names the post with ``{native_id}`` (the platform's id read from
    the link), ``{external_id}`` or ``{url}``, URL-quoted. ``fields`` maps
    ``text``, ``likes``, ``reposts`` and ``comments`` to dotted keys of the
    response; a text in HTML is read as a feed entry's is. The engagement refresh reads it for recent posts worth watching, and for
    posts whose text the listing cut short (a Weibo long post ending in 全文).
    """

    url: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """One configured source.

    ``kind`` says which collector reads it: "replay" reads the file at
    ``path``, and "feed", "json" and "reddit" read the section of that name.
    ``fields`` maps the product's field names (id, text, created_at,
    author_name, followers, likes ...) to the record's own keys; a dotted key
    such as ``author.followers`` reaches into nested objects. ``platform`` is
    the site the posts come from when the record does not say.
    """

    name: str
    kind: Literal["replay", "feed", "json", "reddit"]
    path: str | None = None
    feed: FeedOptions | None = None
    json: JsonOptions | None = None
    reddit: RedditOptions | None = None
    detail: DetailOptions | None = None
    format: Literal["jsonl", "csv", "auto"] = "auto"
    encoding: str = "utf-8"
    platform: str = "unknown"
    lang: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None
    limit: int | None = None
    enabled: bool = True
    schedule: Schedule = field(default_factory=lambda: Schedule(interval_minutes=60))


@dataclass(frozen=True)
class Department:
    name: str
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    """The departments and extra addresses that alerts of one level reach."""

    departments: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str = "FENGHUO_SMTP_PASSWORD"
    timeout_seconds: float = 30.0


ROBOT_KINDS = ("wecom", "dingtalk", "feishu")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Robot:
    """A chat-group robot (企业微信, 钉钉 or 飞书) that receives alerts of ``levels``.

    The webhook URL carries the robot's key, so it is a secret: it comes from
    the environment variable named by ``url_env``, and the signing secret, if
    the robot checks signatures, from ``secret_env``. 企业微信 group robots
    have no signing.
    """

    name: str
    kind: Literal["wecom", "dingtalk", "feishu"]
    url_env: str
    secret_env: str | None = None
    levels: tuple[Literal["normal", "medium", "critical"], ...] = (
        "medium",
        "critical",
    )


@dataclass(frozen=True)
class QuietHours:
    """Hours in which only critical alerts go out; the others wait for ``end``.

    Times are "HH:MM" in the config's time zone. A span may cross midnight
    ("22:00" to "07:00").
    """

    start: str
    end: str


@dataclass(frozen=True)
class Digests:
    """When the daily and weekly digests go out, and to whom.

    The times are cron lines in the config's time zone; an empty line turns a
    digest off. The digests reach ``departments`` and ``recipients``.
    """

    daily: str = "0 9 * * *"
    weekly: str = "30 9 * * 1"
    departments: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()


ALERT_SIGNALS = ("burst", "viral", "turned_complaint")


@dataclass(frozen=True)
class Alerts:
    """Alert recipients, how often they get mail, and escalation when no one acknowledges.

    One alert covers one incident (a post and its copies and reposts). A later
    post of the incident sends an update in the same mail thread when it raises
    the level, doubles the reach, adds an affected owner or turns a grievance
    into a complaint; updates wait ``cooldown_minutes`` after the last mail
    about the incident unless they raise the level. A medium alert waits
    ``medium_batch_minutes`` so that the copies of its first minutes go into
    its first mail. No recipient gets more than ``max_per_recipient_hour``
    mails in an hour, except one of a higher level than all of them.
    ``signals`` lists the early warnings that alert besides the levels: a
    problem starting to burst, a post forecast to go viral, a grievance turned
    into a complaint. ``cause_departments`` adds departments by root cause
    (product problems to the product team). ``escalation`` lists, per level,
    the tiers of departments told in turn when an alert is not acknowledged
    by its deadline, one more tier per deadline missed. The acknowledgement
    link is signed with the secret in the environment variable
    ``ack_secret_env``.

    A delivery that fails for a temporary reason (a server down, a timeout)
    is tried again with a growing wait until it is ``retry_hours`` old; after
    that it counts as failed.
    """

    outbox: str = "data/outbox"
    sender: str = "烽火预警 <fenghuo@localhost>"
    review_url: str = "http://127.0.0.1:8000"
    alert_levels: tuple[Literal["normal", "medium", "critical"], ...] = (
        "medium",
        "critical",
    )
    departments: dict[str, Department] = field(default_factory=dict)
    routing: dict[str, Route] = field(default_factory=dict)
    smtp: Smtp | None = None
    robots: tuple[Robot, ...] = ()
    retry_hours: float = 24.0
    cooldown_minutes: float = 30.0
    medium_batch_minutes: float = 10.0
    max_per_recipient_hour: int = 10
    quiet_hours: QuietHours | None = None
    signals: tuple[Literal["burst", "viral", "turned_complaint"], ...] = ALERT_SIGNALS
    cause_departments: dict[str, tuple[str, ...]] = field(default_factory=dict)
    escalation: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    ack_secret_env: str = "FENGHUO_ACK_SECRET"
    digests: Digests = field(default_factory=Digests)


@dataclass(frozen=True)
class EarlyWarning:
    """When a post, a problem or the brand's mood warns of a crisis.

    A post whose reposts are forecast to reach ``viral_reposts`` within 24
    hours is flagged as going viral, once at least ``min_observed_reposts``
    have been seen, and its public impact is raised to the band of the
    forecast (at least 2). When ``problem_people`` distinct people reported a
    problem within ``problem_days``, its posts get public impact 2 ("several
    owners with the same issue"); 3 needs more than posts, such as owners
    escalating together or the media. ``burst_detector`` watches each problem's
    hourly posts and the brand's hourly share of grievances and complaints.
    """

    viral_reposts: int = 1000
    min_observed_reposts: int = 20
    problem_days: int = 30
    problem_people: int = 5
    burst_detector: Literal["kleinberg", "mean_std"] = "kleinberg"


@dataclass(frozen=True)
class Health:
    """When a failing source counts as stale, and who hears of it.

    After ``stale_after_failures`` failed runs in a row a source is stale, and
    one notice goes to the recipients of the department ``notify`` (a key of
    ``alerts.departments``). One more goes when a run succeeds again.
    """

    stale_after_failures: int = 3
    notify: str | None = None


@dataclass(frozen=True)
class Refresh:
    """The engagement refresh: how often recent posts worth watching are read again.

    Every ``interval_minutes`` the job reads again the posts created within
    ``max_age_hours`` that were graded medium or critical or forecast to go
    viral, at most ``max_posts`` of them, most urgent first. It also fetches
    the full text of posts that a listing cut short. Sources that cannot read a
    single post (files, feeds without ``detail``) are left out.
    """

    interval_minutes: float = 30.0
    max_age_hours: float = 72.0
    max_posts: int = 300


@dataclass(frozen=True)
class HostLimit:
    """Politeness towards one host: the gap between requests and how many at once."""

    min_interval_seconds: float = 0.5
    max_concurrency: int = 2


@dataclass(frozen=True)
class Http:
    """Settings of every HTTP request the collectors make.

    ``hosts`` overrides ``default_host`` for the hosts it names. A run of one
    source stops, keeping what it stored, after ``run_deadline_seconds``.
    Requests that get a 429 or 5xx response are retried up to ``retries``
    times, after ``backoff_seconds`` doubling each time, with jitter.
    """

    user_agent: str = "Fenghuo/0.1 (brand monitoring; +https://example.com/fenghuo)"
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 30.0
    run_deadline_seconds: float = 600.0
    retries: int = 3
    backoff_seconds: float = 2.0
    default_host: HostLimit = field(default_factory=HostLimit)
    hosts: dict[str, HostLimit] = field(default_factory=dict)


@dataclass(frozen=True)
class Storage:
    url: str = "sqlite:///data/fenghuo.db"
    batch_size: int = 500


@dataclass(frozen=True)
class Web:
    """The review page's server (``pipeline.py serve``).

    Sessions end ``session_hours`` after login. ``secure_cookies`` "auto"
    marks cookies Secure when the request came over TLS. ``behind_proxy``
    trusts the X-Forwarded-For and X-Forwarded-Proto headers of one reverse
    proxy in front, which must then be the only way in.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    session_hours: float = 12.0
    secure_cookies: Literal["auto", True, False] = "auto"
    behind_proxy: bool = False


MAX_SESSION_HOURS = 24 * 30


def _check_web(web: Web, path: Path) -> None:
    host = web.host
    if not host or any(c.isspace() or not c.isprintable() for c in host):
        raise ConfigError(
            f"{path}: web.host: expected an address such as 127.0.0.1; got {host!r}"
        )
    if not 1 <= web.port <= 65535:
        raise ConfigError(
            f"{path}: web.port: expected a TCP port from 1 to 65535; got {web.port}"
        )
    if not 0 < web.session_hours <= MAX_SESSION_HOURS:
        raise ConfigError(
            f"{path}: web.session_hours: expected a positive number of hours of at "
            f"most {MAX_SESSION_HOURS} (30 days); got {web.session_hours}"
        )
    # YAML 1 and 0 compare equal to true and false, so the type is checked too.
    if not (web.secure_cookies == "auto" or isinstance(web.secure_cookies, bool)):
        raise ConfigError(
            f"{path}: web.secure_cookies: expected auto, true or false; "
            f"got {web.secure_cookies!r}"
        )


@dataclass(frozen=True)
class Config:
    brand: Brand
    sources: tuple[Source, ...]
    strategy: Literal["customer_first", "balanced", "assertive"] = "balanced"
    # Which kind classifier the pipeline uses: the model trained by
    # "pipeline.py train" (trained on first use when the file is missing), or
    # the cue lexicons alone.
    classifier: Literal["lexicon", "trained"] = "trained"
    model_path: str = "data/model.joblib"
    strategies: dict[str, Thresholds] = field(default_factory=dict)
    timezone: str = "Asia/Shanghai"
    storage: Storage = field(default_factory=Storage)
    alerts: Alerts = field(default_factory=Alerts)
    early_warning: EarlyWarning = field(default_factory=EarlyWarning)
    http: Http = field(default_factory=Http)
    health: Health = field(default_factory=Health)
    refresh: Refresh = field(default_factory=Refresh)
    web: Web = field(default_factory=Web)
    # Folder that relative paths in this file are read from; set by the loader.
    base_dir: str = "."
    # The file this config was read from; set by the loader.
    config_path: str = ""

    @property
    def thresholds(self) -> Thresholds:
        return self.strategies.get(self.strategy) or DEFAULT_STRATEGIES[self.strategy]

    def resolve(self, path: str) -> Path:
        """Return ``path`` made absolute against the config file's folder."""
        candidate = Path(os.path.expandvars(path)).expanduser()
        if not candidate.is_absolute():
            candidate = Path(self.base_dir) / candidate
        return Path(os.path.normpath(candidate))

    @property
    def database_url(self) -> str:
        """The storage URL, with a relative SQLite path made absolute."""
        url = self.storage.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rest = url[len(prefix) :]
            if rest and rest != ":memory:":
                return prefix + str(self.resolve(rest))
        return url


def load(path: str | Path) -> Config:
    """Read, parse and validate a config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(
            f"{path}: invalid YAML: nested too deeply to read; a config needs a "
            "few levels at most"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping at the top level, got {_describe(data)}"
        )
    for internal in LOADER_KEYS:
        if internal in data:
            raise ConfigError(
                f"{path}: {internal}: unknown key; it is set by the program"
            )
    loaded = {**data, "base_dir": str(path.resolve().parent), "config_path": str(path)}
    config = _build(Config, loaded, "", path)
    _check(config, path)
    return config


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that rejects a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return problem


def _build(cls: type, data: Any, key: str, path: Path) -> Any:
    where = key or "(top level)"
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {where}: expected a mapping, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        allowed = ", ".join(sorted(n for n in fields if n not in LOADER_KEYS))
        raise ConfigError(
            f"{path}: {_join(key, str(unknown[0]))}: unknown key; expected one of: {allowed}"
        )
    values = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _convert(hints[name], data[name], _join(key, name), path)
        elif (
            f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ):
            raise ConfigError(f"{path}: {_join(key, name)}: missing required key")
    return cls(**values)


def _convert(hint: Any, value: Any, key: str, path: Path) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return _convert(options[0], value, key, path)

    if origin is Literal:
        if value not in args:
            expected = ", ".join(str(a) for a in args)
            raise ConfigError(
                f"{path}: {key}: expected one of {expected}; got {value!r}"
            )
        return value

    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, list):
            raise ConfigError(f"{path}: {key}: expected a list, got {_describe(value)}")
        return tuple(
            _convert(args[0], v, f"{key}[{i}]", path) for i, v in enumerate(value)
        )

    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(
                f"{path}: {key}: expected a mapping, got {_describe(value)}"
            )
        return {
            _convert(args[0], k, key, path): _convert(
                args[1], v, _join(key, str(k)), path
            )
            for k, v in value.items()
        }

    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key, path)

    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(
                f"{path}: {key}: expected true or false, got {_describe(value)}"
            )
        return value

    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(
                f"{path}: {key}: expected a whole number, got {_describe(value)}"
            )
        return value

    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(
                f"{path}: {key}: expected a number, got {_describe(value)}"
            )
        if not math.isfinite(value):
            raise ConfigError(f"{path}: {key}: expected a finite number, got {value}")
        return float(value)

    if hint is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {key}: expected text, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported config type {hint!r} at {key}")


def _check(config: Config, path: Path) -> None:
    """Apply the rules that span several keys."""
    if not config.sources:
        raise ConfigError(f"{path}: sources: expected at least one source")
    if not config.model_path.strip() or config.model_path.endswith(("/", "\\")):
        raise ConfigError(
            f"{path}: model_path: expected a file path such as data/model.joblib; "
            f"got {config.model_path!r}"
        )
    seen: set[str] = set()
    for i, source in enumerate(config.sources):
        key = f"sources[{i}]"
        if source.name in seen:
            raise ConfigError(
                f"{path}: {key}.name: duplicate source name {source.name!r}"
            )
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", source.name):
            raise ConfigError(
                f"{path}: {key}.name: expected letters, digits, '_', '.' or '-' "
                f"(at most 64); got {source.name!r}"
            )
        seen.add(source.name)
        for field_name in source.fields:
            if field_name not in FIELD_NAMES:
                raise ConfigError(
                    f"{path}: {key}.fields.{field_name}: unknown field; "
                    f"expected one of: {', '.join(FIELD_NAMES)}"
                )
        schedule = source.schedule
        if (schedule.interval_minutes is None) == (schedule.cron is None):
            raise ConfigError(
                f"{path}: {key}.schedule: expected exactly one of interval_minutes or cron"
            )
        interval = schedule.interval_minutes
        if interval is not None and not MIN_INTERVAL_MINUTES <= interval <= (
            MAX_INTERVAL_MINUTES
        ):
            raise ConfigError(
                f"{path}: {key}.schedule.interval_minutes: expected a number of "
                f"minutes from {MIN_INTERVAL_MINUTES} (0.6 s) to "
                f"{MAX_INTERVAL_MINUTES} (a year); got {interval}"
            )
        if schedule.cron is not None:
            _check_cron(schedule.cron, f"{key}.schedule.cron", path)
        if source.limit is not None and source.limit < 1:
            raise ConfigError(
                f"{path}: {key}.limit: expected a positive number; got {source.limit}"
            )
        _check_source_kind(source, key, path)
        try:
            newline = "\n".encode(source.encoding)
        except LookupError:
            raise ConfigError(
                f"{path}: {key}.encoding: unknown encoding {source.encoding!r}"
            ) from None
        if newline != b"\n":
            raise ConfigError(
                f"{path}: {key}.encoding: {source.encoding!r} is not supported, because "
                "files are read line by line; convert the file to UTF-8 or GB18030"
            )

    for name in config.strategies:
        if name not in STRATEGY_NAMES:
            raise ConfigError(
                f"{path}: strategies.{name}: unknown strategy; "
                f"expected one of {', '.join(STRATEGY_NAMES)}"
            )
    for name, thresholds in config.strategies.items():
        if thresholds.critical_sum <= thresholds.medium_sum:
            raise ConfigError(
                f"{path}: strategies.{name}.critical_sum: expected more than medium_sum "
                f"({thresholds.medium_sum}); got {thresholds.critical_sum}"
            )
        missing = {"critical", "medium", "normal"} - set(thresholds.response_hours)
        if missing:
            raise ConfigError(
                f"{path}: strategies.{name}.response_hours: missing {', '.join(sorted(missing))}"
            )
        for level, hours in thresholds.response_hours.items():
            if not 0 < hours <= MAX_RESPONSE_HOURS:
                raise ConfigError(
                    f"{path}: strategies.{name}.response_hours.{level}: expected a positive "
                    f"number of hours of at most {MAX_RESPONSE_HOURS}; got {hours}"
                )

    _check_storage(config.storage, path)
    _check_early_warning(config.early_warning, path)
    _check_http(config.http, path)
    _check_health(config, path)
    _check_refresh(config.refresh, path)
    _check_web(config.web, path)
    for i, source in enumerate(config.sources):
        if source.detail is not None:
            _check_detail(source, f"sources[{i}].detail", path)
    _check_timezone(config.timezone, "timezone", path)
    for i, source in enumerate(config.sources):
        if source.timezone:
            _check_timezone(source.timezone, f"sources[{i}].timezone", path)

    alerts = config.alerts
    for level, route in alerts.routing.items():
        if level not in ("normal", "medium", "critical"):
            raise ConfigError(
                f"{path}: alerts.routing.{level}: unknown level; "
                "expected normal, medium or critical"
            )
        for department in route.departments:
            if department not in alerts.departments:
                raise ConfigError(
                    f"{path}: alerts.routing.{level}.departments: unknown department "
                    f"{department!r}; define it under alerts.departments"
                )
    for name, department in alerts.departments.items():
        for address in department.recipients:
            _check_address(address, f"alerts.departments.{name}.recipients", path)
    for level, route in alerts.routing.items():
        for address in route.recipients:
            _check_address(address, f"alerts.routing.{level}.recipients", path)
    _check_address(alerts.sender, "alerts.sender", path)
    _check_robots(alerts.robots, path)
    if alerts.smtp is not None:
        _check_smtp(alerts.smtp, path)
    _check_alert_policy(alerts, config.timezone, path)
    if not 0 < alerts.retry_hours <= MAX_RESPONSE_HOURS:
        raise ConfigError(
            f"{path}: alerts.retry_hours: expected a positive number of hours of at "
            f"most {MAX_RESPONSE_HOURS}; got {alerts.retry_hours}"
        )
    for level in alerts.alert_levels:
        if level not in alerts.routing:
            raise ConfigError(
                f"{path}: alerts.routing.{level}: missing; alerts of level {level} "
                "(listed in alerts.alert_levels) would reach nobody"
            )
        route = alerts.routing[level]
        if not route.recipients and not any(
            alerts.departments[d].recipients for d in route.departments
        ):
            raise ConfigError(
                f"{path}: alerts.routing.{level}: no recipients; give it departments "
                "with recipients or recipients of its own"
            )


def _check_smtp(smtp: Smtp, path: Path) -> None:
    if not smtp.host.strip() or any(c.isspace() for c in smtp.host):
        raise ConfigError(
            f"{path}: alerts.smtp.host: expected a host name or address; "
            f"got {smtp.host!r}"
        )
    if not 1 <= smtp.port <= 65535:
        raise ConfigError(
            f"{path}: alerts.smtp.port: expected a port from 1 to 65535; got {smtp.port}"
        )
    # smtplib reads a timeout of 0 as a non-blocking socket, which it rejects.
    if not 0 < smtp.timeout_seconds <= 600:
        raise ConfigError(
            f"{path}: alerts.smtp.timeout_seconds: expected a number of seconds "
            f"above 0 and at most 600; got {smtp.timeout_seconds}"
        )
    if not _ENV_NAME.fullmatch(smtp.password_env):
        raise ConfigError(
            f"{path}: alerts.smtp.password_env: expected an environment variable "
            f"name; got {smtp.password_env!r}"
        )


def _check_alert_policy(alerts: Alerts, timezone: str, path: Path) -> None:
    limits = (
        ("cooldown_minutes", alerts.cooldown_minutes, 0, 24 * 60),
        ("medium_batch_minutes", alerts.medium_batch_minutes, 0, 24 * 60),
        ("max_per_recipient_hour", alerts.max_per_recipient_hour, 1, 10_000),
    )
    for name, value, low, high in limits:
        if not low <= value <= high:
            raise ConfigError(
                f"{path}: alerts.{name}: expected a number from {low} to {high}; "
                f"got {value}"
            )
    if alerts.quiet_hours is not None:
        for name in ("start", "end"):
            _check_clock(
                getattr(alerts.quiet_hours, name), f"alerts.quiet_hours.{name}", path
            )
        if alerts.quiet_hours.start == alerts.quiet_hours.end:
            raise ConfigError(
                f"{path}: alerts.quiet_hours: start and end are the same time; "
                "remove quiet_hours to send at every hour"
            )
    named = [
        *(
            (f"alerts.cause_departments.{cause}", departments)
            for cause, departments in alerts.cause_departments.items()
        ),
        *(
            (f"alerts.escalation.{level}[{i}]", tier)
            for level, tiers in alerts.escalation.items()
            for i, tier in enumerate(tiers)
        ),
        ("alerts.digests.departments", alerts.digests.departments),
    ]
    for key, departments in named:
        for department in departments:
            if department not in alerts.departments:
                raise ConfigError(
                    f"{path}: {key}: unknown department {department!r}; define it "
                    "under alerts.departments"
                )
    for cause in alerts.cause_departments:
        if cause not in ROOT_CAUSES:
            raise ConfigError(
                f"{path}: alerts.cause_departments.{cause}: unknown root cause; "
                f"expected one of {', '.join(ROOT_CAUSES)}"
            )
    for level, tiers in alerts.escalation.items():
        if level not in ("medium", "critical"):
            raise ConfigError(
                f"{path}: alerts.escalation.{level}: only medium and critical "
                "alerts escalate"
            )
        for i, tier in enumerate(tiers):
            if not tier:
                raise ConfigError(
                    f"{path}: alerts.escalation.{level}[{i}]: empty tier; list the "
                    "departments it reaches, or remove it"
                )
            if not any(alerts.departments[name].recipients for name in tier):
                raise ConfigError(
                    f"{path}: alerts.escalation.{level}[{i}]: no recipients; its "
                    f"departments {list(tier)} have none"
                )
    for address in alerts.digests.recipients:
        _check_address(address, "alerts.digests.recipients", path)
    for name in ("daily", "weekly"):
        line = getattr(alerts.digests, name)
        if line.strip():
            _check_cron(line, f"alerts.digests.{name}", path)
    _check_digest_recipients(alerts, path)
    if not _ENV_NAME.fullmatch(alerts.ack_secret_env):
        raise ConfigError(
            f"{path}: alerts.ack_secret_env: expected an environment variable name; "
            f"got {alerts.ack_secret_env!r}"
        )


def _check_digest_recipients(alerts: Alerts, path: Path) -> None:
    """Reject a digests section whose digests have no recipient.

    Without a digests section nothing is checked, because the default names
    no recipient and no digest goes out.
    """
    digests = alerts.digests
    if digests == Digests() or not (digests.daily.strip() or digests.weekly.strip()):
        return
    reached = digests.recipients or any(
        alerts.departments[name].recipients for name in digests.departments
    )
    if not reached:
        raise ConfigError(
            f"{path}: alerts.digests: no recipients; give it departments with "
            'recipients or recipients of its own, or set daily and weekly to "" '
            "to turn the digests off"
        )


_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _check_clock(value: str, key: str, path: Path) -> None:
    if not _CLOCK.fullmatch(value):
        raise ConfigError(f"{path}: {key}: expected a time as HH:MM; got {value!r}")


def _check_robots(robots: tuple[Robot, ...], path: Path) -> None:
    seen: set[str] = set()
    for i, robot in enumerate(robots):
        key = f"alerts.robots[{i}]"
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", robot.name):
            raise ConfigError(
                f"{path}: {key}.name: expected letters, digits, '_', '.' or '-' "
                f"(at most 64); got {robot.name!r}"
            )
        if robot.name in seen:
            raise ConfigError(
                f"{path}: {key}.name: duplicate robot name {robot.name!r}; "
                "give each robot its own name"
            )
        seen.add(robot.name)
        _check_robot_env(robot, key, path)
        if not robot.levels:
            raise ConfigError(
                f"{path}: {key}.levels: expected at least one of normal, medium, "
                "critical; got an empty list"
            )
        if len(set(robot.levels)) != len(robot.levels):
            raise ConfigError(
                f"{path}: {key}.levels: duplicate level in {list(robot.levels)}; "
                "list each level once"
            )


def _check_robot_env(robot: Robot, key: str, path: Path) -> None:
    names = {"url_env": robot.url_env, "secret_env": robot.secret_env}
    for option, name in names.items():
        if name is not None and not _ENV_NAME.fullmatch(name):
            raise ConfigError(
                f"{path}: {key}.{option}: invalid environment variable name "
                f"{name!r}; expected letters, digits and '_', such as "
                "FENGHUO_WECOM_URL"
            )
    if robot.secret_env is not None and robot.secret_env == robot.url_env:
        raise ConfigError(
            f"{path}: {key}.secret_env: {robot.secret_env!r} is also url_env; "
            "the webhook URL and the signing secret need their own variables"
        )
    if robot.kind == "wecom" and robot.secret_env is not None:
        raise ConfigError(
            f"{path}: {key}.secret_env: 企业微信 group robots do not sign "
            f"requests; remove secret_env (got {robot.secret_env!r})"
        )


SOURCE_SECTIONS = ("feed", "json", "reddit")


def _check_source_kind(source: Source, key: str, path: Path) -> None:
    """Check that a source has the settings its kind needs, and no other kind's."""
    for section in SOURCE_SECTIONS:
        if section != source.kind and getattr(source, section) is not None:
            raise ConfigError(
                f"{path}: {key}.{section}: only a source of kind {section} reads "
                f"this section; this source is of kind {source.kind}"
            )
    if source.kind == "replay":
        if not source.path:
            raise ConfigError(
                f"{path}: {key}.path: missing; a replay source reads a file"
            )
        return
    if source.path is not None:
        raise ConfigError(
            f"{path}: {key}.path: only a replay source reads a file; "
            f"this source is of kind {source.kind}"
        )
    options = getattr(source, source.kind)
    if options is None:
        raise ConfigError(
            f"{path}: {key}.{source.kind}: missing; a {source.kind} source needs it"
        )
    urls: tuple[str, ...] = ()
    if isinstance(options, FeedOptions):
        urls = options.urls
        if not urls:
            raise ConfigError(f"{path}: {key}.feed.urls: expected at least one URL")
    elif isinstance(options, JsonOptions):
        urls = (options.url,)
        if options.pagination.max_pages < 1:
            raise ConfigError(
                f"{path}: {key}.json.pagination.max_pages: expected a positive number"
            )
    elif isinstance(options, RedditOptions):
        urls = (options.oauth_url, options.reddit_url)
        _check_reddit(options, key, path)
    for url in urls:
        if not re.match(r"https?://[^/\s]+", url):
            raise ConfigError(
                f"{path}: {key}.{source.kind}: invalid URL {url!r}; expected "
                "http:// or https:// and a host"
            )


DETAIL_FIELDS = ("text", "likes", "reposts", "comments")
DETAIL_PLACEHOLDERS = ("native_id", "external_id", "url")


def _check_detail(source: Source, key: str, path: Path) -> None:
    if source.kind not in ("feed", "json"):
        raise ConfigError(
            f"{path}: {key}: only feed and json sources read single posts this "
            f"way; this source is of kind {source.kind}"
        )
    detail = source.detail
    if not re.match(r"https?://[^/\s]+", detail.url):
        raise ConfigError(
            f"{path}: {key}.url: invalid URL {detail.url!r}; expected "
            "http:// or https:// and a host"
        )
    try:
        names = {
            f for _, f, _, _ in string.Formatter().parse(detail.url) if f is not None
        }
    except ValueError as exc:
        raise ConfigError(
            f"{path}: {key}.url: invalid placeholder in {detail.url!r} ({exc}); "
            "write a literal brace as {{ or }}"
        ) from None
    if not names or not names <= set(DETAIL_PLACEHOLDERS):
        raise ConfigError(
            f"{path}: {key}.url: expected one of {{native_id}}, {{external_id}} "
            f"or {{url}} to name the post, and no other placeholder; got {detail.url!r}"
        )
    if not detail.fields:
        raise ConfigError(
            f"{path}: {key}.fields: expected at least one of {', '.join(DETAIL_FIELDS)}"
        )
    for name in detail.fields:
        if name not in DETAIL_FIELDS:
            raise ConfigError(
                f"{path}: {key}.fields.{name}: unknown field; "
                f"expected one of: {', '.join(DETAIL_FIELDS)}"
            )


def _check_refresh(refresh: Refresh, path: Path) -> None:
    if not MIN_INTERVAL_MINUTES <= refresh.interval_minutes <= MAX_INTERVAL_MINUTES:
        raise ConfigError(
            f"{path}: refresh.interval_minutes: expected a number of minutes from "
            f"{MIN_INTERVAL_MINUTES} (0.6 s) to {MAX_INTERVAL_MINUTES} "
            f"(a year); got {refresh.interval_minutes}"
        )
    if not 0 < refresh.max_age_hours <= 24 * 365:
        raise ConfigError(
            f"{path}: refresh.max_age_hours: expected a positive number of hours of "
            f"at most 8760 (a year); got {refresh.max_age_hours}"
        )
    if refresh.max_posts < 0:
        raise ConfigError(
            f"{path}: refresh.max_posts: expected 0 (no refresh) or more; "
            f"got {refresh.max_posts}"
        )


def _check_reddit(options: RedditOptions, key: str, path: Path) -> None:
    if not options.subreddits and not options.queries:
        raise ConfigError(
            f"{path}: {key}.reddit: expected subreddits or queries to read"
        )
    if options.limit < 1:
        raise ConfigError(
            f"{path}: {key}.reddit.limit: expected 1 or more posts per listing and "
            f"run; got {options.limit}"
        )
    if options.more_comments < 0:
        raise ConfigError(
            f"{path}: {key}.reddit.more_comments: expected 0 or more stubs per "
            f"submission (0 skips them); got {options.more_comments}"
        )


def _check_health(config: Config, path: Path) -> None:
    health = config.health
    if health.stale_after_failures < 1:
        raise ConfigError(
            f"{path}: health.stale_after_failures: expected a positive number; "
            f"got {health.stale_after_failures}"
        )
    notify = health.notify
    if notify is None:
        return
    department = config.alerts.departments.get(notify)
    if department is None:
        raise ConfigError(
            f"{path}: health.notify: unknown department {notify!r}; "
            "define it under alerts.departments"
        )
    if not department.recipients:
        raise ConfigError(
            f"{path}: health.notify: department {notify!r} has no recipients"
        )


def _check_http(http: Http, path: Path) -> None:
    numbers = {
        "connect_timeout_seconds": http.connect_timeout_seconds,
        "read_timeout_seconds": http.read_timeout_seconds,
        "run_deadline_seconds": http.run_deadline_seconds,
        "backoff_seconds": http.backoff_seconds,
    }
    limits = {
        "default_host": http.default_host,
        **{f"hosts.{h}": v for h, v in http.hosts.items()},
    }
    for name, limit in limits.items():
        numbers[f"{name}.min_interval_seconds"] = limit.min_interval_seconds
        if limit.max_concurrency < 1:
            raise ConfigError(
                f"{path}: http.{name}.max_concurrency: expected a positive number; "
                f"got {limit.max_concurrency}"
            )
    for name, value in numbers.items():
        if value < 0 or (value == 0 and not name.endswith("min_interval_seconds")):
            raise ConfigError(
                f"{path}: http.{name}: expected a positive number of seconds; got {value}"
            )
    if http.retries < 0:
        raise ConfigError(
            f"{path}: http.retries: expected 0 or more; got {http.retries}"
        )
    if not http.user_agent.strip():
        raise ConfigError(f"{path}: http.user_agent: expected a descriptive User-Agent")
    if not http.user_agent.isprintable():
        raise ConfigError(
            f"{path}: http.user_agent: expected one line of printable text; "
            f"got {http.user_agent!r}"
        )


def _check_early_warning(warning: EarlyWarning, path: Path) -> None:
    for name in ("viral_reposts", "problem_days", "problem_people"):
        value = getattr(warning, name)
        if value < 1:
            raise ConfigError(
                f"{path}: early_warning.{name}: expected a positive number; got {value}"
            )
    if warning.min_observed_reposts < 0:
        raise ConfigError(
            f"{path}: early_warning.min_observed_reposts: expected 0 or more; "
            f"got {warning.min_observed_reposts}"
        )
    if warning.problem_days > MAX_PROBLEM_DAYS:
        raise ConfigError(
            f"{path}: early_warning.problem_days: expected at most "
            f"{MAX_PROBLEM_DAYS} (ten years); got {warning.problem_days}"
        )


def _check_storage(storage: Storage, path: Path) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(storage.url).get_backend_name()
    except ArgumentError:
        backend = None
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"{path}: storage.url: unsupported database URL {storage.url!r}; expected "
            "sqlite:///path/to/file.db or postgresql+psycopg://user@host/dbname"
        )
    if storage.batch_size < 1:
        raise ConfigError(
            f"{path}: storage.batch_size: expected a positive number; got {storage.batch_size}"
        )


def _check_timezone(name: str, key: str, path: Path) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{path}: {key}: unknown time zone {name!r}; expected an IANA name such as Asia/Shanghai"
        ) from None


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def crontab_trigger(line: str, timezone: str | None = None):
    """Return the APScheduler trigger of a crontab line, read as crontab reads it.

    APScheduler 3 counts day-of-week numbers from Monday (0), while crontab
    counts them from Sunday (0 or 7), so the numbers are passed as day names.
    Raises ValueError for a line that is not five valid fields.
    """
    from apscheduler.triggers.cron import CronTrigger

    fields = line.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_crontab_weekdays(weekday),
        timezone=timezone,
    )


def _crontab_weekdays(field: str) -> str:
    """Return a crontab day-of-week field with its numbers as day names."""
    parts = []
    for part in field.split(","):
        body, slash, step_text = part.partition("/")
        step = int(step_text) if slash and step_text.isdigit() else 1
        if slash and step_text and not step_text.isdigit():
            raise ValueError(f"invalid step {step_text!r} in day of week {field!r}")
        if body == "*":
            first, last = 0, 6
        elif "-" in body:
            low, high = body.split("-", 1)
            if not (low.isdigit() and high.isdigit()):
                parts.append(part)
                continue
            first, last = int(low), int(high)
        elif body.isdigit():
            first = last = int(body)
            if slash:
                last = 6
        else:
            parts.append(part)
            continue
        if not 0 <= first <= last <= 7 or step < 1:
            raise ValueError(
                f"invalid day of week {part!r}; expected 0-7 (0 and 7 are Sunday)"
            )
        if body == "*" and not slash:
            parts.append("*")
            continue
        parts.extend(_WEEKDAYS[n] for n in range(first, last + 1, step))
    return ",".join(dict.fromkeys(parts))


def _check_cron(line: str, key: str, path: Path) -> None:
    try:
        trigger = crontab_trigger(line)
    except ValueError as exc:
        raise ConfigError(
            f"{path}: {key}: invalid cron line {line!r} ({exc}); "
            "expected five fields such as '*/15 * * * *'"
        ) from None
    if trigger.get_next_fire_time(None, datetime.now(UTC)) is None:
        raise ConfigError(
            f"{path}: {key}: the cron line {line!r} names no time that exists, "
            "such as 31 February; expected a line that fires"
        )


_ADDRESS = re.compile(r"^(?:[^<>\r\n]*<)?[^@\s<>\"]+@[^@\s<>\"]+(?:>)?$")


def _check_address(address: str, key: str, path: Path) -> None:
    mailbox = address.strip().rpartition("<")[2]
    if (
        not _ADDRESS.match(address.strip())
        or any(c in address for c in "\r\n")
        or not mailbox.isascii()
    ):
        raise ConfigError(
            f"{path}: {key}: invalid email address {address!r}; "
            "expected name@example.com or 'Name <name@example.com>', "
            "with an ASCII address"
        )


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
