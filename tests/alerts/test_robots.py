"""Chat-robot alerts against loopback 企业微信, 钉钉 and 飞书 robots."""

from __future__ import annotations

import logging
import re
import socket
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path

import pytest
from fake_robots import FakeRobot, Reply

from alerts.robots import (
    AlertCard,
    RobotSender,
    RobotSetupError,
    format_card,
    format_dingtalk,
    format_feishu,
    format_wecom,
    neutralize,
    robots_for_level,
    truncate_text,
    truncate_utf8,
)
from config import ConfigError, Http, Robot, load

HTTP = Http(connect_timeout_seconds=2.0, read_timeout_seconds=2.0)
ZONE = "Asia/Shanghai"
KINDS = ("wecom", "dingtalk", "feishu")
REVIEW = "http://127.0.0.1:8000/posts/42"
POST = "https://weibo.example/p/1"
SECRET = "SEC-test-secret-0123456789"
HOSTILE = (
    "# 官方声明\n[点我领取赔偿](http://evil.example/x) <@all> @所有人 "
    '<at user_id="all">所有人</at> <at id=all></at>\n'
    '<font color="warning">伪造</font> <script>alert(1)</script> **加粗** '
    "![图](https://evil.example/p.png) www.evil.example\n> 引用\n- 列表"
)


def make_card(**changes) -> AlertCard:
    card = AlertCard(
        level="critical",
        kind="complaint",
        title="QC7 高速刹车失灵 已报警",
        reason="发生安全事件(刹车失灵), 车主已报警",
        factors=(
            ("客户损失", 3, "刹车失灵"),
            ("企业过失", 2, "4S店拒绝检测"),
            ("公共影响", 2, "转发 1,200"),
            ("客户身份", 1, ""),
        ),
        excerpt="QC7高速上刹车失灵，差点追尾，已报警，要求启程汽车彻查并书面说明。",
        author="车主小王",
        followers=12345,
        reposts=678,
        post_url=POST,
        review_url=REVIEW,
        deadline=datetime(2026, 12, 1, 6, 0, tzinfo=UTC),
        problem="刹车失灵",
        problem_people=7,
    )
    return replace(card, **changes)


def rendered(kind: str, payload: dict) -> str:
    """Return every text a robot would render from ``payload``, one part a line."""
    if kind == "wecom":
        return payload["markdown"]["content"]
    if kind == "dingtalk":
        return payload["markdown"]["title"] + "\n" + payload["markdown"]["text"]
    card = payload["card"]
    parts = [card["header"]["title"]["content"]]
    parts += [e["text"]["content"] for e in card["elements"] if "text" in e]
    return "\n".join(parts)


def sender_for(robot: FakeRobot, secret: str | None = None, **options):
    return RobotSender(
        f"{robot.kind}-pr",
        robot.kind,
        robot.url,
        http=options.pop("http", HTTP),
        timezone=options.pop("timezone", ZONE),
        secret=secret,
        **options,
    )


# --- Payloads as each robot receives them ----------------------------------


def test_wecom_markdown_accepted(robots):
    robot = robots("wecom")
    with sender_for(robot) as sender:
        result = sender.send_card(make_card())

    assert result.ok, result
    assert result.outcome == "sent"
    received = robot.last()
    assert received.headers["user-agent"] == HTTP.user_agent
    assert received.headers["content-type"].startswith("application/json")
    assert set(received.payload) == {"msgtype", "markdown"}
    content = received.payload["markdown"]["content"]
    assert content.startswith('## 烽火预警 · <font color="warning">危机</font> · 投诉')
    assert "**QC7 高速刹车失灵 已报警**" in content
    assert "首次响应时限：2026-12-01 14:00（UTC+08:00）" in content
    assert f"[在烽火中处理]({REVIEW}) · [查看原帖]({POST})" in content
    assert "> 客户损失 3/3：刹车失灵" in content
    assert "> 客户身份 1/3：无明显证据" in content
    assert "**原帖（车主小王 · 粉丝 12,345 · 转发 678）**" in content
    assert "问题：刹车失灵（7 人反映）" in content


def test_dingtalk_markdown_with_keyword(robots):
    robot = robots("dingtalk", keyword="烽火")
    with sender_for(robot) as sender:
        result = sender.send_card(make_card())

    assert result.ok, result
    payload = robot.last().payload
    assert payload["msgtype"] == "markdown"
    assert payload["at"] == {"isAtAll": False}
    assert payload["markdown"]["title"] == "烽火预警·危机 投诉：QC7 高速刹车失灵 已报警"
    text = payload["markdown"]["text"]
    assert text.startswith("### 烽火预警·危机 投诉\n\n**QC7 高速刹车失灵 已报警**")
    assert "> 首次响应时限：2026-12-01 14:00（UTC+08:00）" in text


def test_dingtalk_keyword_missing_is_permanent(robots):
    robot = robots("dingtalk", keyword="监控报警")
    with sender_for(robot) as sender:
        result = sender.send_card(make_card())

    assert not result.ok
    assert not result.temporary
    assert result.code == 310000
    assert "keywords not in content" in result.detail


@pytest.mark.parametrize(
    ("level", "template"),
    [("critical", "red"), ("medium", "orange"), ("normal", "blue")],
)
def test_feishu_card_header_colour(robots, level, template):
    robot = robots("feishu")
    with sender_for(robot) as sender:
        result = sender.send_card(make_card(level=level))

    assert result.ok, result
    payload = robot.last().payload
    assert payload["msg_type"] == "interactive"
    header = payload["card"]["header"]
    assert header["template"] == template
    assert header["title"]["tag"] == "plain_text"
    assert header["title"]["content"].startswith("烽火预警·")
    texts = [e["text"] for e in payload["card"]["elements"] if "text" in e]
    assert texts
    assert all(text["tag"] == "lark_md" for text in texts)
    assert f"[在烽火中处理]({REVIEW}) · [查看原帖]({POST})" in rendered(
        "feishu", payload
    )


@pytest.mark.parametrize("kind", KINDS)
def test_update_marked_in_every_format(kind):
    payload = format_card(kind, make_card(update=True), ZONE)
    first_line = rendered(kind, payload).splitlines()[0]

    assert "【更新】" in first_line


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        ("Asia/Shanghai", "2026-12-01 14:00（UTC+08:00）"),
        ("America/New_York", "2026-12-01 01:00（UTC-05:00）"),
        ("Asia/Kolkata", "2026-12-01 11:30（UTC+05:30）"),
    ],
)
def test_deadline_in_configured_zone(zone, shown):
    for kind in KINDS:
        assert shown in rendered(kind, format_card(kind, make_card(), zone))


def test_deadline_missing_shown_as_unset():
    content = format_wecom(make_card(deadline=None), ZONE)["markdown"]["content"]

    assert "首次响应时限：未设定" in content


# --- Signatures ----------------------------------------------------------------


def test_dingtalk_signature_accepted(robots):
    robot = robots("dingtalk", secret=SECRET)
    with sender_for(robot, secret=SECRET) as sender:
        result = sender.send_card(make_card())

    assert result.ok, result
    received = robot.last()
    assert received.query["access_token"] == robot.token
    assert received.query["timestamp"].isdigit()
    assert len(received.query["timestamp"]) == 13  # milliseconds
    # The base64 signature always ends in "=", so a URL-encoded one ends in %3D.
    assert received.raw_query.endswith("%3D")


def test_dingtalk_wrong_secret_is_permanent(robots):
    robot = robots("dingtalk", secret=SECRET)
    with sender_for(robot, secret="SEC-some-other-secret") as sender:
        result = sender.send_card(make_card())

    assert not result.ok
    assert not result.temporary
    assert result.code == 310000
    assert "sign not match" in result.detail


def test_dingtalk_stale_timestamp_is_permanent(robots):
    robot = robots("dingtalk", secret=SECRET)
    hours_ago = datetime.now(UTC).timestamp() - 7200
    with sender_for(robot, secret=SECRET, clock=lambda: hours_ago) as sender:
        result = sender.send_card(make_card())

    assert not result.ok
    assert not result.temporary
    assert "invalid timestamp" in result.detail


def test_feishu_signature_accepted(robots):
    robot = robots("feishu", secret=SECRET)
    with sender_for(robot, secret=SECRET) as sender:
        result = sender.send_card(make_card())

    assert result.ok, result
    payload = robot.last().payload
    assert payload["timestamp"].isdigit()
    assert len(payload["timestamp"]) == 10  # seconds
    assert payload["sign"]


def test_feishu_wrong_secret_is_permanent(robots):
    robot = robots("feishu", secret=SECRET)
    with sender_for(robot, secret="some-other-secret") as sender:
        result = sender.send_card(make_card())

    assert not result.ok
    assert not result.temporary
    assert result.code == 19021


def test_feishu_unsigned_rejected_by_signing_robot(robots):
    robot = robots("feishu", secret=SECRET)
    with sender_for(robot) as sender:
        result = sender.send_card(make_card())

    assert result.code == 19021
    assert "timestamp" not in robot.last().payload


# --- Hostile posts -------------------------------------------------------------


def hostile_card() -> AlertCard:
    return make_card(
        title=HOSTILE,
        excerpt=HOSTILE * 3,
        author="<@all>管理员",
        problem="[问题](http://evil.example)",
        factors=tuple((name, score, HOSTILE) for name, score, _ in make_card().factors),
    )


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_post_neutralised(robots, kind):
    robot = robots(kind)
    with sender_for(robot) as sender:
        result = sender.send_card(hostile_card())

    assert result.ok, result
    text = rendered(kind, robot.last().payload)
    benign = rendered(kind, format_card(kind, make_card(), ZONE))
    for injected in (
        "<@all>",
        "@所有人",
        "<at",
        "<script",
        "http://evil",
        "evil.example",
    ):
        assert injected not in text
    assert re.findall(r"\]\(([^)]*)\)", text) == [REVIEW, POST]
    assert len(text.splitlines()) == len(benign.splitlines())
    headings = [line for line in text.splitlines() if line.lstrip("> ").startswith("#")]
    assert headings == [line for line in benign.splitlines() if line.startswith("#")]
    assert text.count("<font") == benign.count("<font")
    assert "官方声明" in text
    assert "＠所有人" in text


def test_hostile_links_defanged_not_dropped():
    shown = neutralize("见 https://evil.example/x 和 www.evil.example，联系 a@b.com")

    assert shown == "见 https:／／evil．example/x 和 www．evil．example，联系 a＠b．com"


def test_neutralize_drops_direction_controls():
    shown = neutralize("正常\u202e文本\u200b\n\n第二行\t结束")

    assert shown == "正常文本 第二行 结束"


# --- Size limits ---------------------------------------------------------------


def test_wecom_content_fits_4096_bytes(robots):
    robot = robots("wecom")
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    card = make_card(
        title="\U0001f621" * 100,
        reason="刹车失灵\U0001f621" * 100,
        excerpt=("刹车失灵" + family) * 2000,
        factors=tuple((f"因子{i}", 3, "\U0001f621" * 200) for i in range(4)),
    )
    with sender_for(robot) as sender:
        result = sender.send_card(card)

    assert result.ok, result
    content = robot.last().payload["markdown"]["content"]
    assert len(content.encode("utf-8")) <= 4096
    excerpt = next(
        line for line in content.splitlines() if line.startswith("> 刹车失灵")
    )
    assert excerpt.endswith("…")
    assert excerpt[:-1].endswith(("刹", "车", "失", "灵", "\U0001f467"))
    assert f"[在烽火中处理]({REVIEW})" in content


def test_wecom_robot_rejects_oversize_content(robots):
    robot = robots("wecom")
    with sender_for(robot) as sender:
        result = sender.send(
            {"msgtype": "markdown", "markdown": {"content": "字" * 1400}}
        )

    assert not result.ok
    assert not result.temporary
    assert result.code == 40058


def test_feishu_body_fits_20_kilobytes(robots):
    robot = robots("feishu", secret=SECRET)
    card = make_card(excerpt="刹车失灵" * 20000)
    payload = format_feishu(card, ZONE)
    with sender_for(robot, secret=SECRET) as sender:
        result = sender.send(payload)

    assert result.ok, result
    assert len(robot.last().body) <= 20 * 1024
    assert "…" in rendered("feishu", payload)


def test_dingtalk_excerpt_capped():
    text = format_dingtalk(make_card(excerpt="刹" * 5000), ZONE)["markdown"]["text"]
    excerpt = next(line for line in text.split("\n\n") if line.startswith("> 刹"))

    assert excerpt == "> " + "刹" * 599 + "…"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("刹车失灵", 4, "刹车失灵"),
        ("刹车失灵", 3, "刹车…"),
        ("👍🏽👍🏽👍🏽", 3, "👍🏽…"),
        ("ab\U0001f468\u200d\U0001f469\u200d\U0001f467", 5, "ab…"),
        ("\U0001f1e8\U0001f1f3\U0001f1e8\U0001f1f3", 3, "\U0001f1e8\U0001f1f3…"),
        ("e\u0301e\u0301", 2, "…"),
    ],
)
def test_truncate_text_keeps_characters_whole(text, limit, expected):
    assert truncate_text(text, limit) == expected


def test_truncate_utf8_cuts_between_characters():
    cut = truncate_utf8("刹车失灵", 9)

    assert cut == "刹车…"
    assert len(cut.encode("utf-8")) == 9
    assert truncate_utf8("刹车失灵", 12) == "刹车失灵"
    assert truncate_utf8("刹车失灵", 2) == ""


# --- Failures ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reply", "temporary", "code"),
    [
        (
            "wecom",
            Reply(200, {"errcode": 45009, "errmsg": "api freq out of limit"}),
            True,
            45009,
        ),
        ("wecom", Reply(200, {"errcode": -1, "errmsg": "system busy"}), True, -1),
        (
            "wecom",
            Reply(200, {"errcode": 93000, "errmsg": "invalid webhook url"}),
            False,
            93000,
        ),
        (
            "dingtalk",
            Reply(200, {"errcode": 130101, "errmsg": "send too fast"}),
            True,
            130101,
        ),
        (
            "dingtalk",
            Reply(200, {"errcode": 310000, "errmsg": "sign not match"}),
            False,
            310000,
        ),
        (
            "dingtalk",
            Reply(200, {"errcode": 300005, "errmsg": "token is not exist"}),
            False,
            300005,
        ),
        (
            "feishu",
            Reply(200, {"code": 11232, "msg": "frequency limited"}),
            True,
            11232,
        ),
        (
            "feishu",
            Reply(200, {"code": 19024, "msg": "Key Words Not Found"}),
            False,
            19024,
        ),
        ("feishu", Reply(400, {"code": 9499, "msg": "Bad Request"}), False, 9499),
        ("wecom", Reply(500, "oops"), True, None),
        ("dingtalk", Reply(502, ""), True, None),
        ("feishu", Reply(503, ""), True, None),
        ("wecom", Reply(404, "not found"), False, None),
        ("dingtalk", Reply(403, ""), False, None),
        ("feishu", Reply(302, "", {"Location": "http://127.0.0.1:9/"}), False, None),
        ("wecom", Reply(200, "<html>portal</html>"), True, None),
    ],
)
def test_error_response_classified(robots, kind, reply, temporary, code):
    robot = robots(kind)
    robot.reply(reply)
    with sender_for(robot) as sender:
        result = sender.send_card(make_card())

    assert not result.ok
    assert result.temporary is temporary
    assert result.code == code
    assert result.status == reply.status
    assert result.outcome == ("temporary" if temporary else "permanent")


def test_wrong_wecom_key_is_permanent(robots):
    robot = robots("wecom")
    url = robot.url.replace(robot.token, "wrong-key-0123456789")
    with RobotSender("wecom-pr", "wecom", url, http=HTTP) as sender:
        result = sender.send_card(make_card())

    assert not result.temporary
    assert result.code == 93000


@pytest.mark.parametrize("header", ["30", "date"])
def test_429_is_temporary_with_retry_after(robots, header):
    now = 1_000_000_000.0
    value = formatdate(now + 30, usegmt=True) if header == "date" else header
    robot = robots("feishu")
    robot.reply(Reply(429, "", {"Retry-After": value}))
    with sender_for(robot, clock=lambda: now) as sender:
        result = sender.send_card(make_card())

    assert result.temporary
    assert result.status == 429
    assert result.retry_after == 30.0


def test_connection_refused_is_temporary():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key=refused-key-0123456789"
    with RobotSender("wecom-pr", "wecom", url, http=HTTP) as sender:
        result = sender.send_card(make_card())

    assert not result.ok
    assert result.temporary
    assert result.status is None
    assert "refused-key-0123456789" not in result.detail


def test_read_timeout_is_temporary(robots):
    robot = robots("dingtalk")
    robot.reply(Reply(200, {"errcode": 0}, delay=1.0))
    quick = Http(connect_timeout_seconds=1.0, read_timeout_seconds=0.2)
    with sender_for(robot, http=quick) as sender:
        result = sender.send_card(make_card())

    assert not result.ok
    assert result.temporary
    assert "timed out" in result.detail


def test_details_and_logs_hide_url_and_secret(robots, caplog):
    robot = robots("feishu", secret=SECRET)
    echo = f"bad token {robot.token} for {robot.url} secret {SECRET}"
    robot.reply(Reply(200, {"code": 19021, "msg": echo}))
    caplog.set_level(logging.INFO, logger="alerts.robots")
    with sender_for(robot, secret=SECRET) as sender:
        result = sender.send_card(make_card())

    assert result.code == 19021
    assert "***" in result.detail
    own_logs = [r.getMessage() for r in caplog.records if r.name == "alerts.robots"]
    assert own_logs
    for text in [result.detail, *own_logs]:
        assert robot.token not in text
        assert SECRET not in text


def test_success_logged_without_text(robots, caplog):
    robot = robots("wecom")
    caplog.set_level(logging.INFO, logger="alerts.robots")
    with sender_for(robot) as sender:
        sender.send_card(make_card())

    messages = [r.getMessage() for r in caplog.records if r.name == "alerts.robots"]
    assert messages == ["robot alert sent robot=wecom-pr kind=wecom"]


# --- Cards and set-up ----------------------------------------------------------


def test_card_rejects_naive_deadline():
    with pytest.raises(ValueError, match="timezone-aware"):
        make_card(deadline=datetime(2026, 12, 1, 6, 0))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"level": "urgent"}, "unknown level"),
        ({"kind": "rant"}, "unknown kind"),
        ({"factors": (("客户损失", 4, ""),)}, "not within 0-3"),
    ],
)
def test_card_rejects_invalid_values(changes, message):
    with pytest.raises(ValueError, match=message):
        make_card(**changes)


def test_sender_from_config_reads_environment(robots):
    robot = robots("dingtalk", secret=SECRET)
    configured = Robot(
        name="pr", kind="dingtalk", url_env="PR_ROBOT_URL", secret_env="PR_ROBOT_SECRET"
    )
    environ = {"PR_ROBOT_URL": robot.url, "PR_ROBOT_SECRET": SECRET}
    with RobotSender.from_config(
        configured, http=HTTP, timezone=ZONE, environ=environ
    ) as sender:
        result = sender.send_card(make_card())

    assert result.ok, result


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "environment variable PR_ROBOT_URL is not set"),
        ({"PR_ROBOT_URL": "https://oapi.example/robot/send?t=x"}, "PR_ROBOT_SECRET"),
    ],
)
def test_sender_from_config_names_missing_variable(environ, message):
    configured = Robot(
        name="pr", kind="dingtalk", url_env="PR_ROBOT_URL", secret_env="PR_ROBOT_SECRET"
    )
    with pytest.raises(RobotSetupError, match=message):
        RobotSender.from_config(configured, http=HTTP, timezone=ZONE, environ=environ)


@pytest.mark.parametrize(
    ("kind", "url", "secret", "message"),
    [
        (
            "wecom",
            "ftp://qyapi.example/send?key=hidden-key-012345",
            None,
            "invalid webhook URL",
        ),
        ("wecom", "https://qyapi.example/send?key=k", "s3cret", "do not sign"),
        ("slack", "https://hooks.example/x", None, "unknown kind"),
    ],
)
def test_sender_rejects_invalid_setup(kind, url, secret, message):
    with pytest.raises(RobotSetupError, match=message) as raised:
        RobotSender("pr", kind, url, http=HTTP, secret=secret)

    assert "hidden-key" not in str(raised.value)


def test_robots_for_level():
    wecom = Robot(name="a", kind="wecom", url_env="A_URL", levels=("critical",))
    feishu = Robot(name="b", kind="feishu", url_env="B_URL")

    assert robots_for_level((wecom, feishu), "critical") == (wecom, feishu)
    assert robots_for_level((wecom, feishu), "medium") == (feishu,)
    assert robots_for_level((wecom, feishu), "normal") == ()


# --- Config --------------------------------------------------------------------

CONFIG = """\
brand: {{name: 启程汽车}}
sources:
  - {{name: demo, kind: replay, path: demo.jsonl}}
alerts:
  alert_levels: [critical]
  routing:
    critical: {{recipients: [pr@brand.example]}}
  robots:
{robots}
"""


def write_config(tmp_path: Path, robots: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(robots=robots), encoding="utf-8")
    return path


def test_config_loads_robots(tmp_path):
    path = write_config(
        tmp_path,
        "    - {name: pr-wecom, kind: wecom, url_env: PR_WECOM_URL}\n"
        "    - {name: pr-feishu, kind: feishu, url_env: PR_FEISHU_URL,\n"
        "       secret_env: PR_FEISHU_SECRET, levels: [critical]}",
    )

    robots = load(path).alerts.robots

    assert robots == (
        Robot(name="pr-wecom", kind="wecom", url_env="PR_WECOM_URL"),
        Robot(
            name="pr-feishu",
            kind="feishu",
            url_env="PR_FEISHU_URL",
            secret_env="PR_FEISHU_SECRET",
            levels=("critical",),
        ),
    )
    assert robots[0].levels == ("medium", "critical")


@pytest.mark.parametrize(
    ("robots", "message"),
    [
        (
            "    - {name: a, kind: slack, url_env: A_URL}",
            "alerts.robots[0].kind: expected one of wecom, dingtalk, feishu; got 'slack'",
        ),
        (
            "    - {name: a, kind: wecom}",
            "alerts.robots[0].url_env: missing required key",
        ),
        (
            "    - {name: a, kind: wecom, url_env: A_URL}\n"
            "    - {name: a, kind: feishu, url_env: B_URL}",
            "alerts.robots[1].name: duplicate robot name 'a'",
        ),
        (
            "    - {name: 'a b', kind: wecom, url_env: A_URL}",
            "alerts.robots[0].name: expected letters, digits",
        ),
        (
            "    - {name: a, kind: wecom, url_env: a-url}",
            "alerts.robots[0].url_env: invalid environment variable name 'a-url'",
        ),
        (
            "    - {name: a, kind: wecom, url_env: A_URL, secret_env: A_SECRET}",
            "alerts.robots[0].secret_env: 企业微信 group robots do not sign",
        ),
        (
            "    - {name: a, kind: feishu, url_env: A_URL, secret_env: A_URL}",
            "alerts.robots[0].secret_env: 'A_URL' is also url_env",
        ),
        (
            "    - {name: a, kind: feishu, url_env: A_URL, levels: []}",
            "alerts.robots[0].levels: expected at least one",
        ),
        (
            "    - {name: a, kind: feishu, url_env: A_URL, levels: [urgent]}",
            "alerts.robots[0].levels[0]: expected one of normal, medium, critical",
        ),
        (
            "    - {name: a, kind: feishu, url_env: A_URL, levels: [medium, medium]}",
            "alerts.robots[0].levels: duplicate level",
        ),
    ],
)
def test_config_rejects_invalid_robot(tmp_path, robots, message):
    path = write_config(tmp_path, robots)

    with pytest.raises(ConfigError) as raised:
        load(path)

    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)
