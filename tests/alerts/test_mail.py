"""Alert emails: headers that survive hostile posts, bodies that explain."""

from __future__ import annotations

import email
from dataclasses import replace
from datetime import UTC, datetime
from email.policy import default as default_policy

import pytest

from alerts.mail import Thread, compose, header_safe, write_eml
from alerts.rules import AlertDecision, decide, route
from config import Alerts, Department, Route
from items import (
    Assessment,
    Author,
    Classification,
    Cue,
    Engagement,
    FactorScore,
    Grading,
    Item,
    NormalizedText,
    Relevance,
)

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

SETTINGS = Alerts(
    sender="烽火预警 <fenghuo@alerts.example>",
    departments={
        "pr": Department(name="公关部", recipients=("公关 王 <pr@brand.example>",)),
        "cr": Department(
            name="客户关系部", recipients=("cr@brand.example", "pr@brand.example")
        ),
    },
    routing={
        "critical": Route(departments=("pr", "cr"), recipients=("ceo@brand.example",)),
        "medium": Route(departments=("cr",)),
    },
)


def make_item(
    text: str = "QC7刹车失灵,已报警并要求彻查", title: str | None = None
) -> Item:
    return Item(
        source="demo",
        platform="weibo",
        external_id="p1",
        text=text,
        title=title,
        url="https://weibo.example/p1",
        collected_at=NOW,
        created_at=NOW,
        author=Author(name="用户1", followers=1200, verified="personal"),
        engagement=Engagement(likes=10, reposts=2, comments=3),
    )


def make_assessment(
    kind: str = "complaint", level: str = "critical", *, relevant=True, high_risk=False
) -> Assessment:
    grading = Grading(
        factors=(
            FactorScore("customer_loss", 3, ("安全事件: 刹车失灵",)),
            FactorScore("company_fault", 1, ()),
            FactorScore("public_impact", 1, ("互动 15",)),
            FactorScore("customer_identity", 0, ()),
        ),
        level=level,
        strategy="balanced",
        deadline=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        reason="危机:发生安全事件(刹车失灵)",
        safety=True,
        high_risk=high_risk,
    )
    return Assessment(
        normalized=NormalizedText(text="QC7刹车失灵,已报警并要求彻查"),
        relevance=Relevance(relevant=relevant, brand="启程汽车", models=("QC7",)),
        classification=Classification(
            kind=kind, confidence=0.9, cues=(Cue("channel:police", "已报警"),)
        ),
        grading=grading,
    )


def build(item: Item, assessment: Assessment, thread: Thread | None = None):
    decision = decide(item, assessment, SETTINGS)
    assert decision is not None
    composed = compose(
        decision,
        item,
        assessment,
        post_id=42,
        sender=SETTINGS.sender,
        review_url="http://127.0.0.1:8000/",
        timezone="Asia/Shanghai",
        now=NOW,
        thread=thread,
    )
    parsed = email.message_from_string(composed.message, policy=default_policy)
    return composed, parsed


def test_subject_round_trips_through_parser():
    item = make_item(
        title="启程QC7 高速刹车失灵 Brake failure on the highway, 已报警 要求彻查原因并书面说明"
    )
    composed, parsed = build(item, make_assessment())

    assert parsed["Subject"] == composed.subject
    assert composed.subject.startswith("[烽火·危机] 投诉 | QC7 | 启程QC7")


def test_subject_names_only_the_brands_own_models():
    assessment = make_assessment()
    compared = replace(
        assessment,
        relevance=replace(
            assessment.relevance, models=("QC7", "SU7"), competitor_models=("SU7",)
        ),
    )
    composed, _ = build(make_item(title="QC7和SU7比,刹车失灵"), compared)

    assert "| QC7 |" in composed.subject
    assert "SU7 |" not in composed.subject


def test_message_is_ascii_with_crlf():
    composed, _ = build(make_item(), make_assessment())

    composed.message.encode("ascii")
    assert "\r\n" in composed.message
    assert "\n" not in composed.message.replace("\r\n", "")


def test_crlf_in_title_adds_no_header():
    item = make_item(title="坏了\r\nBcc: attacker@evil.example\r\nX-Injected: yes")
    _, parsed = build(item, make_assessment())

    assert parsed["Bcc"] is None
    assert parsed["X-Injected"] is None
    assert "Bcc: attacker" in str(parsed["Subject"])


def test_recipients_deduplicated_with_display_names():
    _, parsed = build(make_item(), make_assessment())

    addresses = [a.addr_spec for a in parsed["To"].addresses]
    assert addresses == ["pr@brand.example", "cr@brand.example", "ceo@brand.example"]
    assert parsed["To"].addresses[0].display_name == "公关 王"
    assert parsed["From"].addresses[0].display_name == "烽火预警"


def test_bodies_explain_level_and_escape_html():
    item = make_item(text="QC7刹车失灵 <script>alert(1)</script> & 已报警")
    _, parsed = build(item, make_assessment())

    plain = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "【危机】级投诉" in plain
    assert "2026-12-01 17:00" in plain
    assert "客户损失 3/3：安全事件： 刹车失灵" in plain
    assert "http://127.0.0.1:8000/posts/42" in plain
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_message_id_is_stable():
    first, _ = build(make_item(), make_assessment())
    second, _ = build(make_item(), make_assessment())

    assert first.message_id == second.message_id
    assert first.message_id.endswith("@alerts.example>")


def test_long_text_is_cut_in_body():
    item = make_item(text="刹车失灵。" * 5000)
    _, parsed = build(item, make_assessment())

    assert "此处截断" in parsed.get_body(("plain",)).get_content()


def test_header_safe_strips_controls():
    assert header_safe("a\r\nb\x00c\u2028d", 20) == "a b c d"
    assert header_safe("\u202e\u2066cba\u2069 启程\u200f", 20) == "cba 启程"
    assert header_safe("x" * 50, 10) == "x" * 9 + "…"


def test_write_eml_is_atomic(tmp_path):
    path = write_eml("Subject: x\r\n\r\nbody\r\n", tmp_path / "outbox", "a1")

    assert path.read_bytes() == b"Subject: x\r\n\r\nbody\r\n"
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == ["a1.eml"]


@pytest.mark.parametrize(
    ("kind", "level", "relevant", "high_risk", "alerts"),
    [
        ("complaint", "critical", True, False, True),
        ("complaint", "medium", True, False, True),
        ("complaint", "normal", True, False, False),
        ("grievance", "normal", True, True, False),
        ("grievance", "medium", True, False, True),
        ("complaint", "critical", False, False, False),
        ("praise", "critical", True, False, False),
    ],
)
def test_decide(kind, level, relevant, high_risk, alerts):
    assessment = make_assessment(kind, level, relevant=relevant, high_risk=high_risk)

    decision = decide(make_item(), assessment, SETTINGS)

    assert (decision is not None) == alerts


def test_high_risk_grievance_alerts_below_levels():
    settings = Alerts(
        departments=SETTINGS.departments,
        routing={**SETTINGS.routing, "normal": Route(departments=("cr",))},
    )
    decision = decide(
        make_item(), make_assessment("grievance", "normal", high_risk=True), settings
    )

    assert isinstance(decision, AlertDecision)
    assert decision.dedup_key == "demo/p1/normal"


def test_route_unknown_level_reaches_nobody():
    assert route("normal", SETTINGS) == ((), ())


def test_overdue_deadline_is_said_plainly():
    item = make_item()
    assessment = make_assessment()
    decision = decide(item, assessment, SETTINGS)
    late = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    composed = compose(
        decision,
        item,
        assessment,
        post_id=1,
        sender=SETTINGS.sender,
        review_url="http://127.0.0.1:8000",
        timezone="Asia/Shanghai",
        now=late,
    )

    plain = email.message_from_string(composed.message, policy=default_policy)
    body = plain.get_body(("plain",)).get_content()
    assert "已过 6 小时" in body


def test_cues_and_author_in_chinese():
    _, parsed = build(make_item(), make_assessment())

    body = parsed.get_body(("plain",)).get_content()
    assert "渠道·报警「已报警」" in body
    assert "个人认证" in body
    assert "personal" not in body


def build_in_thread(thread: Thread, level: str = "critical"):
    return build(make_item(), make_assessment(level=level), thread)


def test_update_is_a_reply_in_the_same_thread():
    first, first_parsed = build_in_thread(Thread(key="incident:3/0"), level="medium")
    update, parsed = build_in_thread(
        Thread(
            key="incident:3/1",
            reasons=("level raised", "another owner"),
            parent=first.message_id,
            references=(first.message_id,),
            subject=first.subject,
            people=4,
        )
    )
    assert first_parsed["In-Reply-To"] is None
    assert update.message_id != first.message_id
    assert parsed["In-Reply-To"] == first.message_id
    assert parsed["References"] == first.message_id
    assert parsed["Subject"] == "Re: " + first.subject
    body = parsed.get_body(("plain",)).get_content()
    assert "更新：级别升至【危机】；又有车主反映同一问题，现共 4 人。" in body


def test_message_id_is_stable_per_message():
    once, _ = build_in_thread(Thread(key="incident:3/1"))
    again, _ = build_in_thread(Thread(key="incident:3/1"))
    other, _ = build_in_thread(Thread(key="incident:3/2"))
    assert once.message_id == again.message_id
    assert once.message_id != other.message_id


def test_thread_subject_with_line_break_adds_no_header():
    _, parsed = build_in_thread(
        Thread(
            key="k/1",
            reasons=("reach doubled",),
            parent="<a@b>",
            subject="x\r\nBcc: evil@x.example",
        )
    )
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Re: x Bcc: evil@x.example"


def test_problem_people_and_ack_link_in_both_bodies():
    thread = Thread(
        key="incident:3/0",
        problem="QC7 · 刹车异响<script>",
        people=6,
        posts=12,
        ack_url="http://127.0.0.1:8000/alerts/9/ack?token=abc&x=1",
    )
    _, parsed = build_in_thread(thread)
    plain = parsed.get_body(("plain",)).get_content()
    markup = parsed.get_body(("html",)).get_content()
    assert "所属问题：QC7 · 刹车异响<script>，6 人反映，本事件共 12 条帖子" in plain
    assert (
        "确认收到（停止升级）：http://127.0.0.1:8000/alerts/9/ack?token=abc&x=1"
        in plain
    )
    assert "刹车异响&lt;script&gt;" in markup
    assert "<script>" not in markup
    assert 'href="http://127.0.0.1:8000/alerts/9/ack?token=abc&amp;x=1"' in markup


def test_escalation_says_why_it_reaches_the_reader():
    _, parsed = build_in_thread(
        Thread(key="k/2", reasons=("escalation",), parent="<a@b>")
    )
    body = parsed.get_body(("plain",)).get_content()
    assert "超过首次响应时限仍无人确认，按升级规则转给您" in body


def test_reply_references_keep_first_and_latest():
    from alerts.mail import MAX_REFERENCES, reply_references

    ids = [f"<{number}@x>" for number in range(25)]

    kept = reply_references(ids)

    assert len(kept) == MAX_REFERENCES
    assert kept[0] == "<0@x>"
    assert kept[1] == "<6@x>"
    assert kept[-1] == "<24@x>"
    assert reply_references(ids[:3]) == tuple(ids[:3])
