"""The daily and weekly digest mails, with their charts as inline images.

:func:`compose_daily` and :func:`compose_weekly` turn the figures that
:mod:`storage.digests` reads into one message: a plain-text part and, as its
alternative, an HTML part that shows each chart from an inline PNG part
(``multipart/alternative`` holding ``text/plain`` and ``multipart/related``).
Every number in the mail comes from the figures. Problem labels and post text
come from strangers: the HTML escapes them, and no header contains them.
"""

from __future__ import annotations

import html
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from alerts import charts
from alerts.charts import _format_hours
from alerts.mail import Composed, _address, header_safe
from alerts.outbox import mail_message
from alerts.policy import distinct_addresses
from config import Alerts, Config
from items import KIND_NAMES_ZH, LEVEL_NAMES_ZH, LEVELS
from storage import NewAlert, Store
from storage.digest_alerts import AlertFigures
from storage.digests import (
    DIGEST_KINDS,
    CriticalPost,
    DailyDigest,
    GrowingProblem,
    NewCounts,
    ProblemRecurrence,
    WeeklyDigest,
    previous_day,
    previous_week,
    read_daily,
    read_weekly,
)

LABEL_CHARS = 60
LISTED_PROBLEMS = 10
_HIGH_FIRST = tuple(reversed(LEVELS))


@dataclass(frozen=True, slots=True)
class _Chart:
    name: str
    png: bytes
    alt: str


@dataclass(frozen=True, slots=True)
class _Entry:
    text: str
    link: str | None = None


@dataclass(frozen=True, slots=True)
class _Section:
    title: str
    paragraphs: tuple[str, ...] = ()
    entries: tuple[_Entry, ...] = ()
    chart: _Chart | None = None


@dataclass(frozen=True, slots=True)
class _Letter:
    """A digest's text before it becomes a message, shared by both bodies."""

    kind: str
    period: str
    subject: str
    opening: str
    sections: tuple[_Section, ...]
    signature: str


def digest_recipients(settings: Alerts) -> tuple[str, ...]:
    """Return the distinct addresses of the digests' departments and recipients."""
    addresses = [
        address
        for name in settings.digests.departments
        for address in settings.departments[name].recipients
    ]
    addresses += settings.digests.recipients
    return distinct_addresses(addresses)


def compose_daily(data: DailyDigest, settings: Alerts, *, now: datetime) -> Composed:
    """Build the daily digest mail, as RFC 5322 text with CRLF line ends.

    Times in the mail are in ``data.timezone``. Raises ValueError when
    ``settings.digests`` names no recipient.
    """
    zone = ZoneInfo(data.timezone)
    link = _PostLink(settings.review_url)
    levels = data.new.levels
    day = data.day.isoformat()
    sections = [
        _daily_new_section(data),
        _critical_section(data.critical_posts, zone, link),
        _growing_section(data.growing_problems),
    ]
    if data.alerts.available:
        sections.append(_overdue_section(data.alerts, zone, now, link))
        sections.append(_acknowledged_section(data.alerts, "当日"))
    letter = _Letter(
        kind="daily",
        period=day,
        subject=f"烽火日报 {day} · {_subject_levels(levels)}",
        opening=f"以下是 {day} 的烽火日报（时间按 {data.timezone}）。",
        sections=tuple(sections),
        signature="—— 烽火日报",
    )
    return _assemble(letter, settings, now)


def compose_weekly(
    data: WeeklyDigest,
    settings: Alerts,
    *,
    now: datetime,
    deadline_hours: Mapping[str, float] | None = None,
) -> Composed:
    """Build the weekly digest mail, as RFC 5322 text with CRLF line ends.

    ``deadline_hours`` are the response deadlines marked on the chart of
    time to acknowledge, by default the balanced strategy's. Raises
    ValueError when ``settings.digests`` names no recipient.
    """
    zone = ZoneInfo(data.timezone)
    last_day = data.week + timedelta(days=6)
    period = f"{data.week.isoformat()} 至 {last_day:%m-%d}"
    sections = [
        _weekly_new_section(data.new),
        _recurrence_section(data),
        _root_cause_section(data.new),
    ]
    if data.alerts.available:
        link = _PostLink(settings.review_url)
        chart = _Chart(
            "time-to-acknowledge",
            charts.time_to_acknowledge(data.alerts.acknowledge_hours, deadline_hours),
            "本周告警确认用时（小时，按级别）",
        )
        sections.append(_overdue_section(data.alerts, zone, now, link))
        sections.append(_acknowledged_section(data.alerts, "本周", chart))
    letter = _Letter(
        kind="weekly",
        period=data.week.isoformat(),
        subject=f"烽火周报 {period} · {_subject_levels(data.new.levels)}",
        opening=f"以下是 {period} 的烽火周报（时间按 {data.timezone}）。",
        sections=tuple(sections),
        signature="—— 烽火周报",
    )
    return _assemble(letter, settings, now)


# The sections of the daily digest


def _daily_new_section(data: DailyDigest) -> _Section:
    week_total = sum(sum(counts) for counts in data.levels_by_day.values())
    chart = _Chart(
        "levels-by-day",
        charts.levels_by_day(data.days, data.levels_by_day),
        f"近 {len(data.days)} 天每日新增抱怨与投诉（按级别）",
    )
    return _Section(
        title="当日新增",
        paragraphs=(
            _new_summary(data.new, "当日"),
            f"近 {len(data.days)} 天共新增抱怨与投诉 {week_total} 条，每日数量见下图。",
        ),
        chart=chart,
    )


def _critical_section(
    posts: Sequence[CriticalPost], zone: ZoneInfo, link: _PostLink
) -> _Section:
    title = "危机帖子"
    if not posts:
        return _Section(title, ("当日没有评为危机的帖子。",))
    entries = tuple(
        _Entry(
            f"{_clock(post.graded_at, zone)} 评为{LEVEL_NAMES_ZH[post.level]}"
            f" · {KIND_NAMES_ZH[post.kind]} #{post.post_id}"
            f"「{_excerpt(post)}」",
            link(post.post_id),
        )
        for post in posts
    )
    lead = f"当日评为危机的帖子，最新的 {len(posts)} 条如下，请留意处理进展："
    return _Section(title, (lead,), entries)


def _growing_section(problems: Sequence[GrowingProblem]) -> _Section:
    title = "增长最快的同类问题"
    if not problems:
        return _Section(title, ("当日没有同类问题新增帖子。",))
    entries = tuple(
        _Entry(
            f"{_label(problem.label, problem.root_cause)}：新增帖子 "
            f"{problem.new_posts} 条，首次反映的人 {problem.new_people} 位，"
            f"累计 {problem.total_posts} 条"
        )
        for problem in problems
    )
    lead = f"当日新增帖子最多的 {len(problems)} 个同类问题："
    return _Section(title, (lead,), entries)


# The sections of the weekly digest


def _weekly_new_section(new: NewCounts) -> _Section:
    return _Section("本周新增", (_new_summary(new, "本周"),))


def _recurrence_section(data: WeeklyDigest) -> _Section:
    this_week = data.brand_incidents[-1]
    definition = (
        "同类投诉发生率 = 某问题当周新增的事件数 ÷ 当周所有问题新增的事件数。"
        "一个事件是一条帖子连同它的复制和转发。"
    )
    recurring = [p for p in data.problems if p.incidents[-1] > 0]
    recurring.sort(key=lambda p: (-p.incidents[-1], -p.weeks_seen, p.problem_id))
    listed = recurring[:LISTED_PROBLEMS]
    if this_week == 0:
        summary = "本周没有新增事件。"
    else:
        summary = (
            f"本周所有问题共新增事件 {this_week} 起，"
            f"发生率最高的 {len(listed)} 个问题如下（图为近 {len(data.weeks)} 周走势）："
        )
    chart = _Chart(
        "recurrence",
        charts.recurrence(data.weeks, _rates_by_label(data.problems)),
        f"近 {len(data.weeks)} 周同类投诉发生率",
    )
    entries = tuple(_Entry(_recurrence_line(p, this_week)) for p in listed)
    return _Section("同类投诉发生率", (definition, summary), entries, chart)


def _recurrence_line(problem: ProblemRecurrence, brand_incidents: int) -> str:
    count = problem.incidents[-1]
    return (
        f"{_label(problem.label, problem.root_cause)}：本周 "
        f"{_percent(problem.rates[-1])}（{count}/{brand_incidents} 起），"
        f"近 {len(problem.incidents)} 周有 {problem.weeks_seen} 周出现，"
        f"共 {sum(problem.incidents)} 起"
    )


def _rates_by_label(problems: Sequence[ProblemRecurrence]) -> dict[str, list[float]]:
    """Key each problem's rates by its label, adding the id where labels repeat."""
    labels = [header_safe(problem.label, LABEL_CHARS) for problem in problems]
    repeated = {label for label, count in Counter(labels).items() if count > 1}
    rates = {}
    for label, problem in zip(labels, problems, strict=True):
        if label in repeated:
            label = f"{label} #{problem.problem_id}"
        rates[label] = list(problem.rates)
    return rates


def _root_cause_section(new: NewCounts) -> _Section:
    title = "根因"
    chart = _Chart(
        "root-causes",
        charts.root_causes(new.root_causes),
        "本周新增抱怨与投诉的根因",
    )
    if new.total == 0:
        return _Section(title, ("本周没有新增抱怨或投诉。",), chart=chart)
    parts = [
        f"{charts.ROOT_CAUSE_NAMES_ZH[cause]} {count} 条（{count / new.total:.0%}）"
        for cause, count in new.root_causes.items()
    ]
    text = f"本周新增的 {new.total} 条抱怨与投诉中，" + "，".join(parts)
    if new.unknown_root_cause:
        text += f"，未判定根因 {new.unknown_root_cause} 条"
    return _Section(title, (text + "。",), chart=chart)


# The alert sections of both digests


def _overdue_section(
    figures: AlertFigures, zone: ZoneInfo, now: datetime, link: _PostLink
) -> _Section:
    title = "超时未确认的告警"
    if figures.overdue_total == 0:
        return _Section(title, ("目前没有超过首次响应时限仍未确认的告警。",))
    lead = (
        f"目前有 {figures.overdue_total} 条告警超过首次响应时限仍未确认："
        f"{_level_counts(figures.overdue)}。"
    )
    if len(figures.oldest_overdue) < figures.overdue_total:
        lead += f"以下是超时最久的 {len(figures.oldest_overdue)} 条："
    entries = tuple(
        _Entry(
            f"{LEVEL_NAMES_ZH.get(alert.level, alert.level)}告警 #{alert.alert_id}："
            f"时限 {_clock(alert.deadline, zone)}，已超时 "
            f"{_hours(now - alert.deadline)}",
            None if alert.post_id is None else link(alert.post_id),
        )
        for alert in figures.oldest_overdue
    )
    return _Section(title, (lead,), entries)


def _acknowledged_section(
    figures: AlertFigures, period: str, chart: _Chart | None = None
) -> _Section:
    title = "告警确认"
    if figures.acknowledged_total == 0:
        return _Section(title, (f"{period}没有确认的告警。",), chart=chart)
    medians = [
        f"{LEVEL_NAMES_ZH[level]} {_format_hours(statistics.median(hours))}"
        for level in _HIGH_FIRST
        if (hours := figures.acknowledge_hours.get(level))
    ]
    text = (
        f"{period}确认告警 {figures.acknowledged_total} 条，"
        f"从告警到确认用时的中位数：{'，'.join(medians)}。"
    )
    return _Section(title, (text,), chart=chart)


# Formatting


class _PostLink:
    def __init__(self, review_url: str) -> None:
        self.base = review_url.rstrip("/")

    def __call__(self, post_id: int) -> str:
        return f"{self.base}/posts/{post_id}"


def _new_summary(new: NewCounts, period: str) -> str:
    if new.total == 0:
        return f"{period}没有新增抱怨或投诉。"
    kinds = "、".join(
        f"{KIND_NAMES_ZH[kind]} {new.kinds[kind]} 条" for kind in DIGEST_KINDS
    )
    levels = _level_counts(new.levels)
    return f"{period}新增{kinds}，共 {new.total} 条。按级别：{levels}。"


def _level_counts(counts: Mapping[str, int]) -> str:
    """Return the count of every level, critical first, as the bodies show it."""
    return "，".join(
        f"{LEVEL_NAMES_ZH[level]} {counts.get(level, 0)} 条" for level in _HIGH_FIRST
    )


def _subject_levels(counts: Mapping[str, int]) -> str:
    """Return the counts of critical and medium posts, as the subject shows them."""
    return " · ".join(
        f"{LEVEL_NAMES_ZH[level]} {counts.get(level, 0)}"
        for level in ("critical", "medium")
    )


def _label(label: str, root_cause: str | None) -> str:
    flat = header_safe(label, LABEL_CHARS)
    if root_cause in charts.ROOT_CAUSE_NAMES_ZH:
        return f"{flat}（{charts.ROOT_CAUSE_NAMES_ZH[root_cause]}）"
    return flat


def _excerpt(post: CriticalPost) -> str:
    text = header_safe(post.excerpt, len(post.excerpt) + 1)
    return text + "…" if post.truncated else text


def _clock(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%m-%d %H:%M")


def _hours(span: timedelta) -> str:
    return _format_hours(span.total_seconds() / 3600)


def _percent(rate: float) -> str:
    return f"{rate:.0%}" if rate >= 0.1 else f"{rate:.1%}"


# The message


def _assemble(letter: _Letter, settings: Alerts, now: datetime) -> Composed:
    recipients = digest_recipients(settings)
    if not recipients:
        raise ValueError(
            "no digest recipients; set alerts.digests.departments or "
            "alerts.digests.recipients in the config"
        )
    domain = parseaddr(settings.sender)[1].rpartition("@")[2] or "fenghuo.localhost"
    message_id = f"<{letter.kind}-{letter.period}.digest@{domain}>"
    content_ids = {
        section.chart.name: f"{section.chart.name}.{letter.kind}-{letter.period}@{domain}"
        for section in letter.sections
        if section.chart is not None
    }

    message = EmailMessage(policy=SMTP)
    message["Subject"] = letter.subject
    message["From"] = _address(settings.sender)
    message["To"] = [_address(r) for r in recipients]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message["X-Fenghuo-Digest"] = letter.kind
    message.set_content(_plain(letter, settings.review_url), charset="utf-8")
    message.add_alternative(_html(letter, content_ids), subtype="html", charset="utf-8")
    _attach_charts(message.get_payload()[1], letter, content_ids)
    return Composed(letter.subject, message_id, message.as_string())


def _attach_charts(
    html_part: EmailMessage, letter: _Letter, content_ids: Mapping[str, str]
) -> None:
    """Turn the HTML part into multipart/related with one inline PNG per chart."""
    for section in letter.sections:
        chart = section.chart
        if chart is None:
            continue
        html_part.add_related(
            chart.png,
            maintype="image",
            subtype="png",
            cid=f"<{content_ids[chart.name]}>",
            disposition="inline",
            filename=f"{chart.name}.png",
        )


def _plain(letter: _Letter, review_url: str) -> str:
    lines = ["各位好，", "", letter.opening]
    for section in letter.sections:
        lines += ["", f"【{section.title}】", *section.paragraphs]
        for entry in section.entries:
            lines.append(f"- {entry.text}")
            if entry.link:
                lines.append(f"  {entry.link}")
    lines += ["", "图表见 HTML 版邮件。", f"在烽火中查看：{review_url}", ""]
    lines.append(letter.signature)
    return "\n".join(lines) + "\n"


def _html(letter: _Letter, content_ids: Mapping[str, str]) -> str:
    e = html.escape
    parts = [
        '<!doctype html><html><head><meta charset="utf-8"></head><body>',
        f"<p>各位好，</p>\n<p>{e(letter.opening)}</p>",
    ]
    for section in letter.sections:
        parts.append(f"<h3>{e(section.title)}</h3>")
        parts += [f"<p>{e(paragraph)}</p>" for paragraph in section.paragraphs]
        if section.entries:
            items = "".join(_html_entry(entry) for entry in section.entries)
            parts.append(f"<ul>{items}</ul>")
        if section.chart is not None:
            parts.append(_html_image(section.chart, content_ids[section.chart.name]))
    parts.append(f"<p>{e(letter.signature)}</p>\n</body></html>\n")
    return "\n".join(parts)


def _html_entry(entry: _Entry) -> str:
    text = html.escape(entry.text)
    if entry.link is None:
        return f"<li>{text}</li>"
    return f'<li>{text} <a href="{html.escape(entry.link)}">在烽火中查看</a></li>'


def _html_image(chart: _Chart, content_id: str) -> str:
    width, height = _display_size(chart.png)
    return (
        f'<p><img src="cid:{html.escape(content_id)}" width="{width}" '
        f'height="{height}" alt="{html.escape(chart.alt)}"></p>'
    )


def _display_size(png: bytes) -> tuple[int, int]:
    """Return the CSS size of a chart, read from the PNG's IHDR chunk."""
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    return width // charts.PIXEL_RATIO, height // charts.PIXEL_RATIO


def digest_alert(
    kind: str, source: Store | Engine, config: Config, now: datetime
) -> NewAlert | None:
    """Return the digest of the last complete day or week as an alert to store,
    or None when the digests have no recipients.

    The alert's key names the period, so a digest stored twice (a restart, a
    second run of the command) is sent once. Raises ValueError for a kind
    other than "daily" or "weekly".
    """
    settings = config.alerts
    recipients = digest_recipients(settings)
    if not recipients:
        return None
    if kind == "daily":
        day = previous_day(now, config.timezone)
        composed = compose_daily(
            read_daily(source, day, timezone=config.timezone, now=now),
            settings,
            now=now,
        )
    elif kind == "weekly":
        week = previous_week(now, config.timezone)
        composed = compose_weekly(
            read_weekly(source, week, timezone=config.timezone, now=now),
            settings,
            now=now,
            deadline_hours=config.thresholds.response_hours,
        )
    else:
        raise ValueError(f"unknown digest {kind!r}; expected daily or weekly")
    message = mail_message(composed, settings, recipients)
    return NewAlert(
        post_id=None,
        dedup_key=digest_key(kind, now, config.timezone),
        level="normal",
        kind="digest",
        subject=composed.subject,
        message=message,
    )


def digest_key(kind: str, now: datetime, timezone: str) -> str:
    """Return the alert key of the digest sent at ``now``, which names its period."""
    if kind == "daily":
        period = previous_day(now, timezone)
    elif kind == "weekly":
        period = previous_week(now, timezone)
    else:
        raise ValueError(f"unknown digest {kind!r}; expected daily or weekly")
    return f"digest:{kind}:{period.isoformat()}"
