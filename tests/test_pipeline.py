"""The main job end to end: posts in, rows stored, alert emails out."""

from __future__ import annotations

import email
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from model_cache import shipped_model_path
from sqlalchemy import select

import config
import pipeline
from alerts.mail import compose_notice
from collectors import build_collector
from storage import NewAlert, NewDelivery, NewMessage, Store
from storage.tables import incidents, problem_posts, problems

ROOT = Path(__file__).resolve().parents[1]

POSTS = [
    {
        "id": "crit-1",
        "source": "weibo",
        "text": "高速上QC7刹车失灵差点追尾,已经报警并打了400要求彻查原因、书面说明,"
        "现在想起来还在发抖 #启程QC7刹车失灵#",
        "created_at": "2026-11-20T09:12:00+08:00",
        "author": {
            "name": "用户100001",
            "followers": 800,
            "verified": "none",
            "role": None,
        },
        "engagement": {"likes": 9000, "reposts": 3000, "comments": 2500},
    },
    {
        "id": "grievance-1",
        "source": "weibo",
        "text": "QC5车机又黑屏了,真是“靠谱”[微笑]",
        "created_at": "2026-11-20T10:00:00+08:00",
        "author": {
            "name": "用户100002",
            "followers": 50,
            "verified": "none",
            "role": None,
        },
        "engagement": {"likes": 1, "reposts": 0, "comments": 0},
    },
    {
        "id": "praise-1",
        "source": "dongchedi",
        "text": "启程QC9提车一个月,空间大续航也扎实,全家都很满意[赞]",
        "created_at": "2026-11-21T10:00:00+08:00",
        "author": {
            "name": "用户100003",
            "followers": 20,
            "verified": "none",
            "role": None,
        },
        "engagement": {"likes": 3, "reposts": 0, "comments": 1},
    },
    {
        "id": "irrelevant-1",
        "source": "weibo",
        "text": "明天一早启程去大理,有没有一起的",
        "created_at": "2026-11-21T11:00:00+08:00",
        "author": {
            "name": "用户100004",
            "followers": 10,
            "verified": "none",
            "role": None,
        },
        "engagement": {"likes": 0, "reposts": 0, "comments": 0},
    },
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
        encoding="utf-8",
    )
    return path


def write_config(tmp_path: Path, database_url: str, sources: list[dict]) -> Path:
    """Write a config that keeps the default brand and routing but uses tmp_path."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url}
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    data["sources"] = sources
    data["model_path"] = str(shipped_model_path())
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def demo_source(path: Path, **extra) -> dict:
    demo = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))[
        "sources"
    ][0]
    return {**demo, "name": "posts", "path": str(path), **extra}


def run_cli(config_path: Path, *args: str):
    return CliRunner().invoke(pipeline.cli, ["--config", str(config_path), *args])


def read_outbox(tmp_path: Path) -> list[email.message.EmailMessage]:
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    return [
        email.message_from_bytes(f.read_bytes(), policy=default_policy) for f in files
    ]


def test_once_stores_grades_and_alerts(tmp_path, database_url):
    posts = write_jsonl(tmp_path / "posts.jsonl", POSTS)
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])

    result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    assert "posts" in result.output
    with Store(database_url) as store:
        assert store.count_posts() == len(POSTS)
        report = store.status()
    assert report.kinds.get("complaint", 0) >= 1
    assert report.kinds.get("irrelevant", 0) >= 1
    messages = read_outbox(tmp_path)
    critical = [m for m in messages if m["X-Fenghuo-Level"] == "critical"]
    assert len(critical) == 1
    subject = str(critical[0]["Subject"])
    assert "危机" in subject
    body = critical[0].get_body(("plain",)).get_content()
    assert "刹车失灵" in body
    assert "客户损失 3/3" in body
    assert "响应" in body
    assert "pr@qicheng.example" in str(critical[0]["To"])


def test_once_twice_adds_nothing(tmp_path, database_url):
    posts = write_jsonl(tmp_path / "posts.jsonl", POSTS)
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])

    first = run_cli(config_path, "once")
    files_after_first = sorted((tmp_path / "outbox").glob("*.eml"))
    second = run_cli(config_path, "once")

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert sorted((tmp_path / "outbox").glob("*.eml")) == files_after_first
    with Store(database_url) as store:
        assert store.count_posts() == len(POSTS)


def test_reset_cursor_stores_no_duplicate(tmp_path, database_url):
    posts = write_jsonl(tmp_path / "posts.jsonl", POSTS)
    first_config = write_config(tmp_path, database_url, [demo_source(posts)])
    run_cli(first_config, "once")
    files_after_first = sorted((tmp_path / "outbox").glob("*.eml"))

    # The same file under another source name starts with no cursor, and the
    # ids are the same: nothing new may be stored or alerted.
    renamed = write_config(tmp_path, database_url, [demo_source(posts, name="posts")])
    with Store(database_url) as store:
        store.set_cursor("posts", None)
    result = run_cli(renamed, "once")

    assert result.exit_code == 0, result.output
    assert sorted((tmp_path / "outbox").glob("*.eml")) == files_after_first
    with Store(database_url) as store:
        assert store.count_posts() == len(POSTS)


def test_appended_file_resumes_at_cursor(tmp_path, database_url):
    posts = write_jsonl(tmp_path / "posts.jsonl", POSTS[:2])
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])
    run_cli(config_path, "once")

    write_jsonl(posts, POSTS)
    result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    assert "new 2" in result.output.replace("  ", " ") or "2 new posts" in result.output
    with Store(database_url) as store:
        assert store.count_posts() == len(POSTS)


def test_missing_file_fails_source(tmp_path, database_url):
    config_path = write_config(
        tmp_path, database_url, [demo_source(tmp_path / "absent.jsonl")]
    )

    result = run_cli(config_path, "once")

    assert result.exit_code == 1
    assert "failed" in result.output
    assert "absent.jsonl" in result.output


def test_status_after_run(tmp_path, database_url):
    posts = write_jsonl(tmp_path / "posts.jsonl", POSTS)
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])
    run_cli(config_path, "once")

    result = run_cli(config_path, "status")

    assert result.exit_code == 0, result.output
    assert "posts" in result.output
    assert "complaint" in result.output
    assert "pending" in result.output


def test_demo_config_alerts_every_level(tmp_path):
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": f"sqlite:///{tmp_path / 'demo.db'}"}
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    data["sources"][0]["path"] = str(ROOT / "demo" / "posts.jsonl")
    data["model_path"] = str(shipped_model_path())
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    levels = {m["X-Fenghuo-Level"] for m in read_outbox(tmp_path)}
    assert {"medium", "critical"} <= levels


def hostile_records() -> list[bytes]:
    good = [
        {"id": "ok-1", "text": "QC7刹车异响修了三次还没好,已经向12315投诉要求换车"},
        {
            "id": "ok-2",
            "text": "启程QC5 <script>alert(1)</script>车机黑屏,已在APP提交工单投诉要求维修",
        },
        {
            "id": "ok-3",
            "text": "QC9\u0000空调\u0007异味\u001b[31m很重",
            "title": "标题",
        },
        {
            "id": "ok-4",
            "title": "QC7 起火\r\nBcc: attacker@evil.example\r\nX-Injected: 1",
            "text": "QC7停车时冒烟起火,已经报警,并向市场监管局投诉要求赔偿和召回",
            "engagement": {"likes": 20000, "reposts": 5000, "comments": 3000},
        },
        {"id": "ok-5", "text": "启程QC5续航虚标," + "真的很失望。" * 120_000},
    ]
    lines = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in good]
    lines.insert(1, b'{"id": "bad-json", "text": "unterminated')
    lines.insert(3, "启程QC7 车主投诉".encode("gbk") + b"\xff\xfe")
    lines.insert(4, b'{"id": "bad-empty", "text": ""}')
    lines.insert(5, b'{"id": "bad-type", "text": 42}')
    lines.insert(6, b"[1, 2, 3]")
    return lines


def test_hostile_jsonl_keeps_good_records(tmp_path, database_url, caplog):
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(hostile_records()) + b"\n")
    source = demo_source(path)
    source["fields"] = {**source["fields"], "title": "title"}
    config_path = write_config(tmp_path, database_url, [source])

    with caplog.at_level(logging.WARNING, logger="collectors.replay"):
        result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    with Store(database_url) as store:
        assert store.count_posts() == 5
    rejected = [
        r for r in caplog.records if r.getMessage().startswith("record rejected")
    ]
    locations = sorted(
        r.getMessage().split("location=")[1].split()[0] for r in rejected
    )
    assert locations == [
        "hostile.jsonl:2",
        "hostile.jsonl:4",
        "hostile.jsonl:5",
        "hostile.jsonl:6",
        "hostile.jsonl:7",
    ]
    for message in read_outbox(tmp_path):
        assert message["Bcc"] is None
        assert message["X-Injected"] is None
        assert "\n" not in str(message["Subject"])
        html = message.get_body(("html",)).get_content()
        assert "<script>" not in html


def test_hostile_csv_keeps_good_rows(tmp_path, database_url, caplog):
    path = tmp_path / "hostile.csv"
    path.write_bytes(
        b"id,text,created_at\n"
        + "1,启程QC7刹车异响已向车质网投诉要求维修,2026-11-01 10:00\n".encode()
        + b"2,only two columns\n"
        + '3,"多行\n文本 QC5 车机卡顿",2026-11-02\n'.encode()
        + "4,启程QC9 交付延期".encode("gbk")
        + b"\xff,2026-11-03\n"
        + "5,QC5 好车,not a date\n".encode()
    )
    source = {
        "name": "csv",
        "kind": "replay",
        "path": str(path),
        "platform": "tieba",
        "fields": {"id": "id", "text": "text", "created_at": "created_at"},
    }
    config_path = write_config(tmp_path, database_url, [source])

    with caplog.at_level(logging.WARNING, logger="collectors.replay"):
        result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    with Store(database_url) as store:
        assert store.count_posts() == 3
    rejected = [
        r.getMessage() for r in caplog.records if "record rejected" in r.getMessage()
    ]
    assert len(rejected) == 2
    assert any("hostile.csv:3" in m and "columns" in m for m in rejected)
    assert any("hostile.csv:6" in m for m in rejected)


def reddit_source(**options) -> dict:
    """A reddit source entry with the given ``reddit`` options."""
    reddit = {"subreddits": ["qicheng"], **options}
    return {"name": "reddit", "kind": "reddit", "reddit": reddit}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(colour="red"), "colour: unknown key"),
        (lambda d: d.update(strategy="lenient"), "strategy: expected one of"),
        (lambda d: d["brand"].pop("name"), "brand.name: missing required key"),
        (
            lambda d: d["sources"][0].update(kind="ftp"),
            "sources[0].kind: expected one of replay",
        ),
        (
            lambda d: d["sources"][0].update(schedule={"interval_minutes": 0}),
            "sources[0].schedule.interval_minutes: expected a number of minutes from",
        ),
        (
            lambda d: d["sources"][0].update(fields={"txt": "text"}),
            "sources[0].fields.txt: unknown field",
        ),
        (
            lambda d: d["alerts"]["routing"]["critical"].update(departments=["legal"]),
            "alerts.routing.critical.departments: unknown department 'legal'",
        ),
        (
            lambda d: d["alerts"].update(sender="not an address"),
            "alerts.sender: invalid email",
        ),
        (lambda d: d.update(timezone="Mars/Olympus"), "timezone: unknown time zone"),
        (
            lambda d: d["storage"].update(batch_size="many"),
            "storage.batch_size: expected a whole number, got str 'many'",
        ),
        (lambda d: d["brand"].update(models="QC5"), "brand.models: expected a list"),
        (
            lambda d: d["sources"][0].update(schedule={"cron": "every day"}),
            "sources[0].schedule.cron: invalid cron line",
        ),
        (
            lambda d: d["sources"][0].update(
                schedule={"interval_minutes": 5, "cron": "* * * * *"}
            ),
            "sources[0].schedule: expected exactly one of interval_minutes or cron",
        ),
        (
            lambda d: d["sources"].append(dict(d["sources"][0])),
            "sources[1].name: duplicate source name 'demo'",
        ),
        (
            lambda d: d["sources"][0].update(encoding="klingon"),
            "sources[0].encoding: unknown encoding",
        ),
        (lambda d: d.update(sources=[]), "sources: expected at least one source"),
        (lambda d: d.update(model_path=" "), "model_path: expected a file path"),
        (lambda d: d.update(model_path="data/"), "model_path: expected a file path"),
        (
            lambda d: d["storage"].update(url="foo://bar"),
            "storage.url: unsupported database URL",
        ),
        (
            lambda d: d["storage"].update(batch_size=0),
            "storage.batch_size: expected a positive",
        ),
        (lambda d: d["alerts"].pop("routing"), "alerts.routing.medium: missing"),
        (
            lambda d: d["sources"][0].update(
                schedule={"interval_minutes": float("nan")}
            ),
            "sources[0].schedule.interval_minutes: expected a finite number",
        ),
        (
            lambda d: d["sources"][0].update(schedule={"interval_minutes": 1e12}),
            "sources[0].schedule.interval_minutes: expected a number of minutes from",
        ),
        (
            lambda d: d["sources"][0].update(encoding="utf-16"),
            "sources[0].encoding: 'utf-16' is not supported",
        ),
        (
            lambda d: d.update(
                strategies={
                    "balanced": {
                        "critical_sum": 9,
                        "medium_sum": 5,
                        "response_hours": {"critical": -5, "medium": 24, "normal": 48},
                    }
                }
            ),
            "strategies.balanced.response_hours.critical: expected a positive number",
        ),
        (
            lambda d: d["alerts"]["departments"]["pr"].update(
                recipients=["公关@例子.cn"]
            ),
            "alerts.departments.pr.recipients: invalid email address",
        ),
        (
            lambda d: d["sources"].append(reddit_source(limit=0)),
            "sources[1].reddit.limit: expected 1 or more posts per listing and run; "
            "got 0",
        ),
        (
            lambda d: d["sources"].append(reddit_source(more_comments=-1)),
            "sources[1].reddit.more_comments: expected 0 or more stubs per "
            "submission (0 skips them); got -1",
        ),
    ],
)
def test_bad_config_names_key(tmp_path, change, expected):
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    result = run_cli(path, "once")

    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("alerts", "expected"),
    [
        ({"cooldown_minutes": -1}, "alerts.cooldown_minutes: expected a number from"),
        ({"max_per_recipient_hour": 0}, "alerts.max_per_recipient_hour: expected"),
        (
            {"quiet_hours": {"start": "25:00", "end": "07:00"}},
            "alerts.quiet_hours.start: expected a time as HH:MM; got '25:00'",
        ),
        (
            {"quiet_hours": {"start": "07:00", "end": "07:00"}},
            "alerts.quiet_hours: start and end are the same time",
        ),
        ({"signals": ["rumour"]}, "alerts.signals[0]: expected one of burst"),
        (
            {"cause_departments": {"product": ["design"]}},
            "alerts.cause_departments.product: unknown department 'design'",
        ),
        (
            {"cause_departments": {"weather": ["pr"]}},
            "alerts.cause_departments.weather: unknown root cause",
        ),
        (
            {"escalation": {"critical": [["executives"], ["board"]]}},
            "alerts.escalation.critical[1]: unknown department 'board'",
        ),
        (
            {"escalation": {"critical": [["executives"], []]}},
            "alerts.escalation.critical[1]: empty tier",
        ),
        (
            {
                "departments": {
                    "operations": {"name": "运维", "recipients": ["ops@x.example"]},
                    "pr": {"name": "公关部"},
                },
                "routing": {
                    "medium": {"departments": ["operations"]},
                    "critical": {"departments": ["operations"]},
                },
                "escalation": {"critical": [["operations"], ["pr"]]},
            },
            "alerts.escalation.critical[1]: no recipients; its departments ['pr']",
        ),
        (
            {"digests": {"daily": "0 8 * * *"}},
            "alerts.digests: no recipients",
        ),
        (
            {
                "departments": {
                    "operations": {"name": "运维", "recipients": ["ops@x.example"]},
                    "pr": {"name": "公关部"},
                },
                "routing": {
                    "medium": {"departments": ["operations"]},
                    "critical": {"departments": ["operations"]},
                },
                "digests": {"departments": ["pr"]},
            },
            "alerts.digests: no recipients",
        ),
        (
            {"escalation": {"normal": [["pr"]]}},
            "alerts.escalation.normal: only medium and critical alerts escalate",
        ),
        (
            {"digests": {"daily": "0 25 * * *"}},
            "alerts.digests.daily: invalid cron line",
        ),
        (
            {"digests": {"recipients": ["nobody"]}},
            "alerts.digests.recipients: invalid email address",
        ),
        (
            {"ack_secret_env": "ACK SECRET"},
            "alerts.ack_secret_env: expected an environment variable name",
        ),
        (
            {"smtp": {"host": "127.0.0.1", "timeout_seconds": 0}},
            "alerts.smtp.timeout_seconds: expected a number of seconds above 0",
        ),
        ({"smtp": {"host": ""}}, "alerts.smtp.host: expected a host name"),
        (
            {"smtp": {"host": "127.0.0.1", "port": 70000}},
            "alerts.smtp.port: expected a port from 1 to 65535; got 70000",
        ),
    ],
)
def test_bad_alert_policy_names_key(tmp_path, alerts, expected):
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["alerts"].update(alerts)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(config.ConfigError, match=re.escape(expected)):
        config.load(path)


@pytest.mark.parametrize(
    "digests",
    [
        {"daily": "", "weekly": ""},
        {"daily": "0 8 * * *", "recipients": ["pr@qicheng.example"]},
        {"departments": ["pr"]},
    ],
)
def test_digests_with_recipients_or_off_accepted(tmp_path, digests):
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["alerts"]["digests"] = digests
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    loaded = config.load(path)

    assert loaded.alerts.digests.daily == digests.get("daily", "0 9 * * *")


def test_duplicate_yaml_key_rejected(tmp_path):
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(text + "\nstrategy: assertive\n", encoding="utf-8")

    result = run_cli(path, "once")

    assert result.exit_code == 1
    assert "duplicate key 'strategy'" in result.output


def test_unparseable_config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("brand: [unclosed\n", encoding="utf-8")

    result = run_cli(path, "once")

    assert result.exit_code == 1
    assert "invalid YAML" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_config_file(tmp_path):
    result = run_cli(tmp_path / "nope.yaml", "once")

    assert result.exit_code == 1
    assert "config file not found" in result.output


def test_readme_names_every_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in pipeline.cli.commands:
        assert f"pipeline.py {name}" in readme, name


def test_options_after_command_name(tmp_path):
    posts = write_jsonl(tmp_path / "posts.jsonl", POSTS)
    config_path = write_config(
        tmp_path, f"sqlite:///{tmp_path / 'x.db'}", [demo_source(posts)]
    )

    result = CliRunner().invoke(
        pipeline.cli, ["once", "--config", str(config_path), "-v"]
    )

    assert result.exit_code == 0, result.output
    assert "4 new posts" in result.output


def test_broken_times_and_counts_do_not_block(tmp_path, database_url):
    records = [
        {
            "id": "far-future",
            "text": "启程QC7车机又黑屏了,4S店说等OTA,真烦",
            "created_at": "9999-12-31 23:00:00",
        },
        {
            "id": "year-one",
            "text": "QC5刹车失灵,已报警并向12315投诉要求召回",
            "created_at": "0001-01-01T00:00:00+08:00",
        },
        {
            "id": "epoch",
            "text": "QC9交付延期三个月,已在APP投诉要求赔偿",
            "created_at": 0,
        },
        {
            "id": "huge",
            "text": "QC7异响,已向车质网投诉要求维修",
            "engagement": {"likes": "9" * 400, "reposts": 1e30, "comments": -5},
        },
    ]
    path = tmp_path / "posts.jsonl"
    path.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
        + '\n{"id": "inf", "text": "QC5 续航虚标,已投诉到消协要求赔偿", '
        '"engagement": {"likes": Infinity}}\n',
        encoding="utf-8",
    )
    config_path = write_config(tmp_path, database_url, [demo_source(path)])

    first = run_cli(config_path, "once")
    second = run_cli(config_path, "once")

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    with Store(database_url) as store:
        assert store.count_posts() == 5
        assert store.unassessed_posts() == []


def test_long_ids_do_not_collide(tmp_path, database_url):
    records = [
        {"id": "L" * 1999 + "X", "text": "启程QC7 一号"},
        {"id": "L" * 1999 + "Y", "text": "启程QC7 二号"},
        {"id": {"nested": 1}, "text": "启程QC7 三号"},
    ]
    config_path = write_config(
        tmp_path,
        database_url,
        [demo_source(write_jsonl(tmp_path / "p.jsonl", records))],
    )

    result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    with Store(database_url) as store:
        assert store.count_posts() == 2


def test_bom_at_start_of_jsonl(tmp_path, database_url):
    path = tmp_path / "p.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"id": "1", "text": "QC7"}).encode() + b"\n"
    )
    config_path = write_config(tmp_path, database_url, [demo_source(path)])

    result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    assert "1 new posts" in result.output


def test_second_job_on_same_database_stops(tmp_path, database_url):
    posts = write_jsonl(tmp_path / "posts.jsonl", POSTS)
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])
    config = pipeline.config_module.load(config_path)

    with pipeline.open_store(config, lock=True):
        result = run_cli(config_path, "once")

    assert result.exit_code == 1
    assert "another Fenghuo job" in result.output
    assert run_cli(config_path, "once").exit_code == 0


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://fenghuo@127.0.0.1:1/nothing",
        "sqlite:///{tmp}/afile/sub/x.db",
    ],
)
def test_unreachable_database_is_one_line(tmp_path, url):
    (tmp_path / "afile").write_text("not a folder")
    posts = write_jsonl(tmp_path / "posts.jsonl", POSTS)
    config_path = write_config(tmp_path, url.format(tmp=tmp_path), [demo_source(posts)])

    result = run_cli(config_path, "once")

    assert result.exit_code == 1
    assert "storage.url: cannot open the database" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_trained_classifier_trains_on_first_use(tmp_path):
    posts = write_jsonl(tmp_path / "posts.jsonl", POSTS)
    config_path = write_config(
        tmp_path, f"sqlite:///{tmp_path / 'x.db'}", [demo_source(posts)]
    )
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data["classifier"] = "trained"
    data["model_path"] = str(tmp_path / "model.joblib")
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    assert (tmp_path / "model.joblib").is_file()
    with Store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        post = store.get_post(1)
    assert post.classification.model_version != "lexicon-1"
    assert post.classification.kind == "complaint"


def test_hostile_json_structures_rejected(tmp_path, database_url):
    deep = (
        '{"id": "deep", "text": "启程QC7", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    )
    digits = (
        '{"id": "digits", "text": "启程QC7", "engagement": {"likes": '
        + "9" * 5000
        + "}}"
    )
    surrogates = [
        '{"id": "a\\ud800", "text": "启程QC7 \\ud800 一号"}',
        '{"id": "a\\ud801", "text": "启程QC7 二号"}',
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join([deep, digits, *surrogates]) + "\n", encoding="utf-8")
    config_path = write_config(tmp_path, database_url, [demo_source(path)])

    result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    with Store(database_url) as store:
        assert store.count_posts() == 2
        assert store.unassessed_posts() == []


def test_incomplete_last_line_waits(tmp_path, database_url):
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"id": "1", "text": "启程QC7 一"}\n{"id": "2", "text": "启程', encoding="utf-8"
    )
    config_path = write_config(tmp_path, database_url, [demo_source(path)])
    run_cli(config_path, "once")

    path.write_text(
        '{"id": "1", "text": "启程QC7 一"}\n{"id": "2", "text": "启程QC7 二"}\n',
        encoding="utf-8",
    )
    result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    with Store(database_url) as store:
        assert store.count_posts() == 2


def test_status_without_database(tmp_path):
    posts = write_jsonl(tmp_path / "posts.jsonl", POSTS)
    config_path = write_config(
        tmp_path, f"sqlite:///{tmp_path / 'none' / 'x.db'}", [demo_source(posts)]
    )

    result = run_cli(config_path, "status")

    assert result.exit_code == 1
    assert "no database at" in result.output
    assert not (tmp_path / "none").exists()


def test_outbox_failure_is_reported(tmp_path, database_url):
    posts = write_jsonl(tmp_path / "posts.jsonl", POSTS)
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])
    (tmp_path / "outbox").write_text("a file where the outbox folder should be")

    result = CliRunner().invoke(pipeline.cli, ["--config", str(config_path), "once"])

    assert result.exit_code == 0, result.output
    assert "alert deliveries failed" in result.output
    with Store(database_url) as store:
        assert store.status().pending_alerts >= 1


def stored_notice(store: Store, key: str) -> int:
    composed = compose_notice(
        key,
        f"【烽火】{key}",
        "正文\n",
        sender="fenghuo@localhost",
        recipients=("ops@qicheng.example",),
        now=datetime.now(UTC),
    )
    message = NewMessage(
        reason="new",
        message_id=composed.message_id,
        subject=composed.subject,
        message=composed.message,
        deliveries=(NewDelivery("eml", "ops@qicheng.example"),),
    )
    alert = NewAlert(None, key, "normal", "source", composed.subject, message)
    return store.add_alerts([alert])[0]


def test_once_leaves_interrupted_delivery_unconfirmed(tmp_path, database_url):
    posts = write_jsonl(tmp_path / "posts.jsonl", [])
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])
    with Store(database_url) as store:
        store.migrate()
        interrupted = stored_notice(store, "interrupted")
        # A job that stopped after claiming, before recording, leaves this.
        store.claim_deliveries(datetime.now(UTC), mail_channel="eml")
        waiting = stored_notice(store, "waiting")

    result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    with Store(database_url) as store:
        [lost] = store.get_alert(interrupted).deliveries
        [sent] = store.get_alert(waiting).deliveries
        report = store.status()
    assert lost.status == "unconfirmed"
    assert sent.status == "sent"
    assert report.unconfirmed_alerts == 1
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert [path.name.endswith(f"-{waiting}.eml") for path in files] == [True]


# Problems: the repost chain of one brake fault, posted an hour apart.

CHAIN_ORIGINAL = "启程QC7提车两周，刹车偶发失灵，4S店说正常"
CHAIN_TEXTS = [
    (CHAIN_ORIGINAL, "车主A"),
    ("同款问题！//@车主A:" + CHAIN_ORIGINAL, "用户B"),
    ("转发微博 //@用户B:同款问题！//@车主A:" + CHAIN_ORIGINAL, "用户C"),
]


def chain_records() -> list[dict]:
    """Return the chain as replay records, posted in the last three hours."""
    start = datetime.now(UTC) - timedelta(hours=3)
    return [
        {
            "id": f"chain-{number}",
            "source": "weibo",
            "text": text,
            "created_at": (start + timedelta(hours=number)).isoformat(),
            "author": {"name": author, "followers": 10, "verified": "none"},
            "engagement": {"likes": 0, "reposts": 0, "comments": 0},
        }
        for number, (text, author) in enumerate(CHAIN_TEXTS)
    ]


def grouping_rows(database_url: str) -> dict[str, list[dict]]:
    tables = {
        "problems": problems,
        "incidents": incidents,
        "problem_posts": problem_posts,
    }
    with Store(database_url) as store, store.engine.connect() as connection:
        return {
            name: [
                dict(row)
                for row in connection.execute(
                    select(table).order_by(*table.primary_key)
                ).mappings()
            ]
            for name, table in tables.items()
        }


def assert_one_chain_problem(rows: dict[str, list[dict]]) -> None:
    [problem] = rows["problems"]
    assert problem["label"] == "QC7 · 刹车失灵"
    assert problem["root_cause"] == "product"
    assert problem["posts"] == 3
    assert problem["reports"] == 2
    assert problem["reporters"] == 2
    assert problem["incidents"] == 1
    assert len(rows["incidents"]) == 1
    assert [row["report"] for row in rows["problem_posts"]] == [True, True, False]


def test_repost_chain_grouped_end_to_end(tmp_path, database_url):
    posts = write_jsonl(tmp_path / "chain.jsonl", chain_records())
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])

    result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    assert "problems: 1 new, 0 updated" in result.output
    assert_one_chain_problem(grouping_rows(database_url))


def test_repost_chain_second_run_changes_nothing(tmp_path, database_url):
    posts = write_jsonl(tmp_path / "chain.jsonl", chain_records())
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])
    run_cli(config_path, "once")
    before = grouping_rows(database_url)
    with Store(database_url) as store:
        store.set_cursor("posts", None)

    result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    assert "problems: 0 new, 0 updated" in result.output
    assert grouping_rows(database_url) == before


def test_restarted_job_continues_problem(tmp_path, database_url):
    records = chain_records()
    posts = write_jsonl(tmp_path / "chain.jsonl", records[:1])
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])
    first = run_cli(config_path, "once")

    write_jsonl(posts, records)
    second = run_cli(config_path, "once")

    assert "problems: 1 new, 0 updated" in first.output
    assert second.exit_code == 0, second.output
    assert "problems: 0 new, 1 updated" in second.output
    assert_one_chain_problem(grouping_rows(database_url))


def test_recovered_posts_are_grouped(tmp_path, database_url):
    records = chain_records()
    posts = write_jsonl(tmp_path / "chain.jsonl", records)
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])
    config = pipeline.config_module.load(config_path)
    collector = build_collector(config.sources[0], config)
    # A job that died after storing the posts and before analysing them.
    with Store(database_url) as store:
        store.migrate()
        for batch in collector.collect(None):
            store.add_items(batch.items)

    result = run_cli(config_path, "once")

    assert result.exit_code == 0, result.output
    assert "recovery" in result.output
    assert "problems: 1 new, 0 updated" in result.output
    assert_one_chain_problem(grouping_rows(database_url))


def test_status_lists_top_problems(tmp_path, database_url):
    posts = write_jsonl(tmp_path / "chain.jsonl", chain_records())
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])
    run_cli(config_path, "once")

    result = run_cli(config_path, "status")
    one_day = run_cli(config_path, "status", "--days", "1")

    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if "刹车失灵" in line]
    assert line.split()[:4] == ["2", "3", "2", "product"]
    assert line.endswith("QC7 · 刹车失灵")
    assert "刹车失灵" in one_day.output


def test_status_without_recent_problems(tmp_path, database_url):
    records = chain_records()
    for record in records:
        record["created_at"] = "2020-01-01T08:00:00+08:00"
    posts = write_jsonl(tmp_path / "chain.jsonl", records)
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])
    run_cli(config_path, "once")

    result = run_cli(config_path, "status", "--days", "7")

    assert result.exit_code == 0, result.output
    assert "problems: none reported in the last 7 days" in result.output


def reject_problem_post(store: Store, post_id: int) -> None:
    """Make the database reject the problem row of one post, so its batch fails."""
    with store.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER reject_post BEFORE INSERT ON problem_posts "
                f"WHEN NEW.post_id = {post_id} "
                "BEGIN SELECT RAISE(ABORT, 'rejected by test trigger'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION reject_post() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.post_id = {post_id} THEN "
                "RAISE EXCEPTION 'rejected by test trigger'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER reject_post BEFORE INSERT ON problem_posts "
                "FOR EACH ROW EXECUTE FUNCTION reject_post()"
            )


def drop_reject_trigger(store: Store) -> None:
    with store.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("DROP TRIGGER reject_post")
        else:
            connection.exec_driver_sql("DROP TRIGGER reject_post ON problem_posts")


def test_failed_save_rebuilds_grouper(tmp_path, database_url, caplog):
    posts = write_jsonl(tmp_path / "chain.jsonl", chain_records())
    config_path = write_config(tmp_path, database_url, [demo_source(posts)])
    config = pipeline.config_module.load(config_path)
    with Store(database_url) as store:
        store.migrate()
        reject_problem_post(store, post_id=2)
        job = pipeline.Job(config, store)

        with caplog.at_level(logging.ERROR, logger="job"):
            summary = job.run_source(config.sources[0])

        assert summary.unanalysed == 1
        assert "post analysis failed" in caplog.text
        saved = store.load_problem_state()
        [problem] = saved["problems"]
        assert problem["posts"] == 2
        drop_reject_trigger(store)
        assert job.recover() == 1

    assert_one_chain_problem(grouping_rows(database_url))
