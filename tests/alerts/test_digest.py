"""Digest mails: parts a mail client can show, escaped text, figures from the data."""

from __future__ import annotations

import email
import math
import re
import smtplib
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from aiosmtpd.controller import Controller
from test_outbox import MailServer, free_port

import pipeline
from alerts.digest import (
    _rates_by_label,
    compose_daily,
    compose_weekly,
    digest_recipients,
)
from config import Alerts, Department, Digests
from items import Author, Engagement, Item
from job import SourceSummary
from storage import Store
from storage.digest_alerts import AlertFigures, OverdueAlert
from storage.digests import (
    CriticalPost,
    DailyDigest,
    GrowingProblem,
    NewCounts,
    ProblemRecurrence,
    WeeklyDigest,
    read_daily,
)

ROOT = Path(__file__).resolve().parents[2]
TIMEZONE = "Asia/Shanghai"
NOW = datetime(2026, 3, 21, 1, 0, tzinfo=UTC)
DAY = date(2026, 3, 20)
WEEK = date(2026, 3, 16)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE_TEXT = '<script>alert("x")</script>QC7 刹车失灵\r\nBcc: victim@example.com'

SETTINGS = Alerts(
    sender="烽火预警 <fenghuo@alerts.example>",
    review_url="https://fenghuo.example/",
    departments={
        "quality": Department(
            name="质量部", recipients=("质量 李 <quality@brand.example>",)
        ),
        "pr": Department(name="公关部", recipients=("pr@brand.example",)),
    },
    digests=Digests(
        departments=("quality", "pr"),
        recipients=("PR@brand.example", "ceo@brand.example"),
    ),
)


def new_counts(**changes) -> NewCounts:
    values = {
        "kinds": {"grievance": 3, "complaint": 2},
        "levels": {"normal": 2, "medium": 1, "critical": 2},
        "root_causes": {"product": 3, "service": 1, "process": 0},
        "unknown_root_cause": 1,
    }
    values.update(changes)
    return NewCounts(**values)


def alert_figures() -> AlertFigures:
    return AlertFigures(
        available=True,
        overdue={"normal": 0, "medium": 1, "critical": 1},
        oldest_overdue=(
            OverdueAlert(41, 7, "critical", NOW - timedelta(hours=26)),
            OverdueAlert(42, None, "medium", NOW - timedelta(hours=3)),
        ),
        acknowledge_hours={"normal": (), "medium": (3.0, 5.0), "critical": (0.5,)},
    )


def daily_data(**changes) -> DailyDigest:
    days = tuple(DAY - timedelta(days=n) for n in range(6, -1, -1))
    values = {
        "day": DAY,
        "timezone": TIMEZONE,
        "start": datetime(2026, 3, 19, 16, 0, tzinfo=UTC),
        "end": datetime(2026, 3, 20, 16, 0, tzinfo=UTC),
        "new": new_counts(),
        "days": days,
        "levels_by_day": {
            "normal": (0, 0, 0, 0, 0, 0, 2),
            "medium": (0, 0, 0, 1, 0, 1, 1),
            "critical": (0, 0, 0, 0, 0, 0, 2),
        },
        "growing_problems": (
            GrowingProblem(1, "QC7 · 刹车异响", "product", 6, 3, 8),
            GrowingProblem(2, "QC5 · 车机黑屏", None, 2, 1, 3),
        ),
        "critical_posts": (
            CriticalPost(
                post_id=9,
                posted_at=datetime(2026, 3, 20, 3, 0, tzinfo=UTC),
                graded_at=datetime(2026, 3, 20, 3, 30, tzinfo=UTC),
                kind="complaint",
                level="critical",
                excerpt=HOSTILE_TEXT,
                truncated=True,
            ),
        ),
        "alerts": alert_figures(),
    }
    values.update(changes)
    return DailyDigest(**values)


def weekly_data(**changes) -> WeeklyDigest:
    weeks = tuple(WEEK - timedelta(weeks=n) for n in range(7, -1, -1))
    nan = math.nan
    values = {
        "week": WEEK,
        "timezone": TIMEZONE,
        "start": datetime(2026, 3, 15, 16, 0, tzinfo=UTC),
        "end": datetime(2026, 3, 22, 16, 0, tzinfo=UTC),
        "new": new_counts(),
        "weeks": weeks,
        "brand_incidents": (0, 0, 0, 0, 0, 1, 0, 3),
        "problems": (
            ProblemRecurrence(
                1,
                "QC7 · 刹车异响",
                "product",
                (0, 0, 0, 0, 0, 1, 0, 2),
                (nan, nan, nan, nan, nan, 1.0, nan, 2 / 3),
            ),
            ProblemRecurrence(
                2,
                HOSTILE_TEXT,
                "service",
                (0, 0, 0, 0, 0, 0, 0, 1),
                (nan, nan, nan, nan, nan, 0.0, nan, 1 / 3),
            ),
        ),
        "alerts": alert_figures(),
    }
    values.update(changes)
    return WeeklyDigest(**values)


def parse(message: str) -> EmailMessage:
    return email.message_from_string(message, policy=default_policy)


def html_body(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


def plain_body(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def images(message: EmailMessage) -> list[EmailMessage]:
    return [part for part in message.walk() if part.get_content_maintype() == "image"]


def check_inline_images(message: EmailMessage, count: int) -> None:
    """Check that the HTML shows every image part by its Content-ID and back."""
    html = html_body(message)
    found = images(message)
    referenced = re.findall(r'src="cid:([^"]+)"', html)
    assert len(found) == count
    assert len(referenced) == count
    for part in found:
        assert part.get_content_type() == "image/png"
        assert part.get_content_disposition() == "inline"
        assert part.get_filename().endswith(".png")
        assert part.get_content().startswith(PNG_SIGNATURE)
        assert part["Content-ID"].strip("<>") in referenced


# -- The daily digest -------------------------------------------------------------


def test_daily_subject_decodes_exactly():
    composed = compose_daily(daily_data(), SETTINGS, now=NOW)
    message = parse(composed.message)

    assert composed.subject == "烽火日报 2026-03-20 · 危机 2 · 中等 1"
    assert message["Subject"] == composed.subject
    assert message["Message-ID"] == "<daily-2026-03-20.digest@alerts.example>"
    assert message["X-Fenghuo-Digest"] == "daily"


def test_daily_layout_shows_chart_inline():
    message = parse(compose_daily(daily_data(), SETTINGS, now=NOW).message)

    assert message.get_content_type() == "multipart/alternative"
    plain, related = message.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    assert related.get_payload()[0].get_content_type() == "text/html"
    check_inline_images(message, 1)


def test_daily_html_sized_like_chart():
    message = parse(compose_daily(daily_data(), SETTINGS, now=NOW).message)
    html = html_body(message)

    assert 'width="600" height="300"' in html
    empty = daily_data(
        new=new_counts(
            kinds={"grievance": 0, "complaint": 0},
            levels={"normal": 0, "medium": 0, "critical": 0},
        ),
        levels_by_day={"normal": (0,) * 7, "medium": (0,) * 7, "critical": (0,) * 7},
    )
    empty_html = html_body(parse(compose_daily(empty, SETTINGS, now=NOW).message))
    assert 'width="600" height="120"' in empty_html
    assert "当日没有新增抱怨或投诉。" in empty_html


def test_daily_post_text_escaped():
    message = parse(compose_daily(daily_data(), SETTINGS, now=NOW).message)
    html = html_body(message)
    plain = plain_body(message)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "Bcc" not in message.keys()
    assert "QC7 刹车失灵 Bcc: victim@example.com…" in plain
    assert '<a href="https://fenghuo.example/posts/9">' in html


def test_daily_numbers_from_data():
    plain = plain_body(parse(compose_daily(daily_data(), SETTINGS, now=NOW).message))

    assert "当日新增抱怨 3 条、投诉 2 条，共 5 条。" in plain
    assert "按级别：危机 2 条，中等 1 条，普通 2 条。" in plain
    assert "近 7 天共新增抱怨与投诉 7 条" in plain
    assert "03-20 11:30 评为危机 · 投诉 #9" in plain
    assert (
        "QC7 · 刹车异响（产品）：新增帖子 6 条，首次反映的人 3 位，累计 8 条" in plain
    )
    assert "QC5 · 车机黑屏：新增帖子 2 条" in plain
    assert (
        "目前有 2 条告警超过首次响应时限仍未确认：危机 1 条，中等 1 条，普通 0 条。"
        in plain
    )
    assert "危机告警 #41：时限 03-20 07:00，已超时 26 小时" in plain
    assert "中等告警 #42：时限 03-21 06:00，已超时 3 小时" in plain
    assert (
        "当日确认告警 3 条，从告警到确认用时的中位数：危机 30 分钟，中等 4 小时。"
        in plain
    )


def test_daily_overdue_list_says_it_is_cut():
    figures = replace(
        alert_figures(), overdue={"normal": 0, "medium": 9, "critical": 3}
    )
    data = daily_data(alerts=figures)
    plain = plain_body(parse(compose_daily(data, SETTINGS, now=NOW).message))

    assert "目前有 12 条告警超过首次响应时限仍未确认" in plain
    assert "以下是超时最久的 2 条：" in plain


def test_daily_without_alert_columns_leaves_out_alerts():
    data = daily_data(alerts=AlertFigures.empty())
    plain = plain_body(parse(compose_daily(data, SETTINGS, now=NOW).message))

    assert "【超时未确认的告警】" not in plain
    assert "【危机帖子】" in plain


def test_daily_recipients_deduplicated():
    message = parse(compose_daily(daily_data(), SETTINGS, now=NOW).message)
    addresses = [address.addr_spec for address in message["To"].addresses]

    assert addresses == [
        "quality@brand.example",
        "pr@brand.example",
        "ceo@brand.example",
    ]
    assert message["To"].addresses[0].display_name == "质量 李"


def test_digest_without_recipients_raises():
    settings = replace(SETTINGS, digests=Digests())

    assert digest_recipients(settings) == ()
    with pytest.raises(ValueError, match="no digest recipients"):
        compose_daily(daily_data(), settings, now=NOW)


def test_digest_message_is_ascii_with_crlf():
    composed = compose_daily(daily_data(), SETTINGS, now=NOW)

    composed.message.encode("ascii")
    assert "\r\n" in composed.message
    assert re.search(r"(?<!\r)\n", composed.message) is None


# -- The weekly digest ------------------------------------------------------------


def test_weekly_subject_and_charts():
    composed = compose_weekly(weekly_data(), SETTINGS, now=NOW)
    message = parse(composed.message)

    assert composed.subject == "烽火周报 2026-03-16 至 03-22 · 危机 2 · 中等 1"
    assert message["Subject"] == composed.subject
    assert message["Message-ID"] == "<weekly-2026-03-16.digest@alerts.example>"
    check_inline_images(message, 3)
    names = sorted(part.get_filename() for part in images(message))
    assert names == ["recurrence.png", "root-causes.png", "time-to-acknowledge.png"]


def test_weekly_without_alert_columns_has_two_charts():
    data = weekly_data(alerts=AlertFigures.empty())
    message = parse(compose_weekly(data, SETTINGS, now=NOW).message)

    check_inline_images(message, 2)
    assert "【超时未确认的告警】" not in plain_body(message)


def test_weekly_recurrence_lines_from_data():
    message = parse(compose_weekly(weekly_data(), SETTINGS, now=NOW).message)
    plain = plain_body(message)
    html = html_body(message)

    assert "本周所有问题共新增事件 3 起" in plain
    assert (
        "QC7 · 刹车异响（产品）：本周 67%（2/3 起），近 8 周有 2 周出现，共 3 起"
        in plain
    )
    assert "（服务）：本周 33%（1/3 起），近 8 周有 1 周出现，共 1 起" in plain
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_recurrence_chart_keeps_repeated_labels_apart():
    first, second = weekly_data().problems
    twin = replace(second, problem_id=5, label=first.label)

    rates = _rates_by_label([first, twin])

    assert list(rates) == ["QC7 · 刹车异响 #1", "QC7 · 刹车异响 #5"]
    assert rates["QC7 · 刹车异响 #5"][-1] == pytest.approx(1 / 3)


def test_weekly_root_causes_from_data():
    plain = plain_body(parse(compose_weekly(weekly_data(), SETTINGS, now=NOW).message))

    assert (
        "本周新增的 5 条抱怨与投诉中，产品 3 条（60%），服务 1 条（20%），"
        "流程 0 条（0%），未判定根因 1 条。"
    ) in plain


def test_weekly_quiet_week():
    data = weekly_data(
        new=new_counts(
            kinds={"grievance": 0, "complaint": 0},
            levels={"normal": 0, "medium": 0, "critical": 0},
            root_causes={"product": 0, "service": 0, "process": 0},
            unknown_root_cause=0,
        ),
        brand_incidents=(0,) * 8,
        problems=(),
    )
    plain = plain_body(parse(compose_weekly(data, SETTINGS, now=NOW).message))

    assert "本周没有新增抱怨或投诉。" in plain
    assert "本周没有新增事件。" in plain


# -- From the job to the mailbox ---------------------------------------------------


def job_config(tmp_path: Path, database_url: str) -> pipeline.config_module.Config:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url}
    data["classifier"] = "lexicon"
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    data["alerts"]["digests"] = {"recipients": ["质量部 <quality@brand.example>"]}
    source = data["sources"][0]
    data["sources"] = [{**source, "name": "posts", "path": "none"}]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return pipeline.config_module.load(path)


def collected(index: int, text: str, posted: datetime) -> Item:
    return Item(
        source="posts",
        platform="weibo",
        external_id=f"digest-{index}",
        text=text,
        created_at=posted,
        collected_at=posted,
        author=Author(name=f"用户{index}", followers=800),
        engagement=Engagement(likes=9000, reposts=3000, comments=2500),
    )


@pytest.fixture
def smtp_server():
    recorder = MailServer()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, recorder
    controller.stop()


def test_daily_digest_from_job_arrives_whole(tmp_path, smtp_server):
    controller, recorder = smtp_server
    config = job_config(tmp_path, f"sqlite:///{tmp_path / 'fenghuo.db'}")
    now = datetime.now(UTC)
    texts = [
        "高速上QC7刹车失灵差点追尾,已经报警并打了400要求彻查原因、书面说明",
        "<script>alert(1)</script>QC7车机又黑屏了,售后一直推诿,我要投诉到12315",
        "启程QC9提车一个月,空间大续航也扎实,全家都很满意",
    ]
    items = [collected(i, text, now) for i, text in enumerate(texts)]
    with Store(config.database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        summary = SourceSummary("posts")
        stored = store.add_batch(items)
        job.process(
            [(i, item) for i, item in zip(stored.ids, items, strict=True)], summary
        )
        day = now.astimezone(ZoneInfo(config.timezone)).date()
        data = read_daily(store, day, timezone=config.timezone, now=now)

    graded = sum(summary.kinds[kind] for kind in ("grievance", "complaint"))
    assert data.new.total == graded
    assert graded >= 1
    assert data.new.levels == {
        level: summary.levels[level] for level in data.new.levels
    }

    composed = compose_daily(data, config.alerts, now=now)
    recipients = [parseaddr(r)[1] for r in digest_recipients(config.alerts)]
    with smtplib.SMTP("127.0.0.1", controller.port) as client:
        client.sendmail("fenghuo@localhost", recipients, composed.message.encode())

    [envelope] = recorder.envelopes
    assert envelope.rcpt_tos == ["quality@brand.example"]
    assert envelope.content.rstrip(b"\r\n") == composed.message.encode().rstrip(b"\r\n")
    received = email.message_from_bytes(envelope.content, policy=default_policy)
    assert received["Subject"] == composed.subject
    check_inline_images(received, 1)
    assert "<script>" not in html_body(received)
