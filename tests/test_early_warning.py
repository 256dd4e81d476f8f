"""Early warnings through the job: context raises, regrading, signals and bursts."""

from __future__ import annotations

import dataclasses
import email
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from click.testing import CliRunner
from model_cache import shipped_model_path
from sqlalchemy import func, select

import pipeline
from config import Config
from items import Author, Engagement, Item
from job import SourceSummary
from storage import Store
from storage.tables import gradings

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime.now(UTC).replace(microsecond=0)


def load_config(
    tmp_path: Path, database_url: str, records: Path | None = None
) -> Config:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url}
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    data["model_path"] = str(shipped_model_path())
    source = data["sources"][0]
    data["sources"] = [{**source, "name": "posts", "path": str(records or "none")}]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return pipeline.config_module.load(path)


@pytest.fixture
def job(tmp_path, database_url):
    config = load_config(tmp_path, database_url)
    with Store(database_url) as store:
        store.migrate()
        yield pipeline.Job(config, store)


def collect(job: pipeline.Job, items: list[Item]) -> SourceSummary:
    """Store items as a collector's batch and run them through the job."""
    summary = SourceSummary("posts")
    stored = job.store.add_batch(items)
    new = [(i, item) for i, item in zip(stored.ids, items, strict=True) if i]
    job.process(new, summary)
    job.refresh(stored.refreshed, summary)
    return summary


def signals_by_kind(store: Store) -> dict[str, list]:
    found: dict[str, list] = {}
    for record in store.recent_signals(limit=1000):
        found.setdefault(record.signal.kind, []).append(record.signal)
    return found


# -- A grievance going viral ---------------------------------------------------------

MEDIA_TEXT = "我的启程QC7车机三天两头死机，售后只会让等升级，这品控真让人失望"
PUBLISHED = NOW - timedelta(hours=1)


def media_post(minutes: int, reposts: int) -> Item:
    return Item(
        source="posts",
        platform="weibo",
        external_id="media-1",
        text=MEDIA_TEXT,
        created_at=PUBLISHED,
        collected_at=PUBLISHED + timedelta(minutes=minutes),
        author=Author(name="某媒体", followers=2_000_000, verified="media"),
        engagement=Engagement(likes=reposts // 2, reposts=reposts, comments=10),
    )


def grading_rows(store: Store) -> int:
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(gradings)).scalar()


def test_viral_media_grievance_raised(job):
    first = collect(job, [media_post(10, 50)])
    [post_id] = [r.signal.post_id for r in job.store.recent_signals()]
    before = job.store.get_post(post_id)
    assert before.classification.kind == "grievance"
    assert before.grading.factor("customer_identity").score == 3
    assert "viral" not in first.signals

    second = collect(job, [media_post(60, 2_000)])

    after = job.store.get_post(post_id)
    impact = after.grading.factor("public_impact")
    assert impact.score == 3
    assert impact.evidence[0].startswith("预计24小时转发")
    assert after.grading.factor("customer_identity").score == 3
    assert "公共影响3" in after.grading.reason
    assert "客户身份3" in after.grading.reason
    assert (second.refreshed, second.regraded) == (1, 1)
    assert second.signals == {"viral": 1}
    [viral] = signals_by_kind(job.store)["viral"]
    assert viral.post_id == post_id
    assert viral.detail["observed_reposts"] == 2_000
    assert viral.detail["forecast_reposts"] > 2_000
    assert len(signals_by_kind(job.store)["critical"]) == 1


def test_growth_that_changes_nothing_stores_nothing_new(job):
    collect(job, [media_post(10, 50)])
    collect(job, [media_post(60, 2_000)])
    rows = grading_rows(job.store)
    signals = len(job.store.recent_signals(limit=1000))

    again = collect(job, [media_post(60, 2_000)])
    more = collect(job, [media_post(70, 2_400)])

    assert again.refreshed == 0
    assert (more.refreshed, more.regraded, sum(more.signals.values())) == (1, 0, 0)
    assert grading_rows(job.store) == rows
    assert len(job.store.recent_signals(limit=1000)) == signals


def test_regrade_old_post_no_forecast(job):
    old = [
        Item(
            source="posts",
            platform="weibo",
            external_id="old-1",
            text=MEDIA_TEXT,
            created_at=NOW - timedelta(days=3),
            collected_at=NOW - timedelta(days=3) + timedelta(minutes=minutes),
            author=Author(name="车主", followers=300),
            engagement=Engagement(reposts=reposts),
        )
        for minutes, reposts in ((30, 40), (3 * 24 * 60 - 10, 4_000))
    ]
    collect(job, old[:1])
    summary = collect(job, old[1:])
    assert summary.refreshed == 1
    assert "viral" not in summary.signals


# -- Escalation and people reporting one problem -------------------------------------


def owner_post(number: int, text: str, hours_ago: float, author: str | None = None):
    return Item(
        source="posts",
        platform="weibo",
        external_id=f"owner-{number}",
        text=text,
        created_at=NOW - timedelta(hours=hours_ago),
        collected_at=NOW,
        author=Author(name=author or f"车主{number}", followers=30),
    )


def test_threatening_grievance_signals_escalation_once(job):
    text = "启程QC5交车一拖再拖，销售天天画饼，再不解决就去12315"
    first = collect(job, [owner_post(1, text, 2)])
    assert first.kinds["grievance"] == 1
    assert first.signals["escalation"] == 1
    [signal] = signals_by_kind(job.store)["escalation"]
    assert "12315" in signal.reason
    assert signal.post_id is not None


BRAKE_NOISES = [
    "启程QC7刹车异响，低速一踩就咯吱咯吱，4S店说正常，真闹心",
    "提车一个月QC7刹车异响越来越明显，售后让再观察，无语",
    "我家QC7也是刹车异响，早上起步踩刹车嘎吱一声，修了也没用",
    "QC7刹车异响有人遇到吗？倒车时特别响，店里查不出问题",
    "刹车异响第三次进店了，QC7这个毛病到底管不管",
    "新车QC7刹车异响，雨天更严重，4S店一直推诿",
]


def test_many_owners_reporting_one_problem_raise_its_impact(job):
    summary = collect(
        job, [owner_post(n, text, 10 - n) for n, text in enumerate(BRAKE_NOISES)]
    )
    assert len(summary.changed_problems) == 1, "one brake-noise problem expected"
    raised = []
    for post_id in range(1, len(BRAKE_NOISES) + 1):
        grading = job.store.get_post(post_id).grading
        impact = grading.factor("public_impact")
        if impact.evidence and impact.evidence[0].startswith("同类投诉"):
            raised.append((impact.score, impact.evidence[0]))
    # The fifth person to report the problem is the first to cross the line.
    assert raised[0] == (2, "同类投诉5人(30天内)")
    assert len(raised) == 2


# -- Bursts --------------------------------------------------------------------------


def burst_records() -> list[Item]:
    """A week of one report a day, then eight reports in the last three hours."""
    quiet = [
        owner_post(n, BRAKE_NOISES[n % len(BRAKE_NOISES)] + f" 第{n}天", 24 * (8 - n))
        for n in range(8)
    ]
    storm = [
        owner_post(
            100 + n, BRAKE_NOISES[n % len(BRAKE_NOISES)] + f" 今天{n}", 3 - n / 3
        )
        for n in range(8)
    ]
    return quiet + storm


def test_problem_burst_is_signalled_once(tmp_path, database_url):
    config = load_config(tmp_path, database_url)
    with Store(database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        summary = collect(job, burst_records())
        job._watch_bursts(summary)
        bursts = signals_by_kind(store).get("burst", [])
        problem_bursts = [s for s in bursts if s.subject == "problem"]
        assert len(problem_bursts) == 1, [s.reason for s in bursts]
        [burst] = problem_bursts
        assert burst.problem_id in summary.changed_problems
        assert NOW - burst.occurred_at <= timedelta(hours=4)
        assert "突发" in burst.reason
        local = burst.occurred_at.astimezone(ZoneInfo("Asia/Shanghai"))
        assert f"{local:%m-%d %H:00}" in burst.reason
        assert burst.reason.endswith("(时间为UTC+08:00)")

        job._watch_bursts(summary)
        assert len(signals_by_kind(store)["burst"]) == len(bursts)


def test_problem_burst_alerts_once(tmp_path, database_url):
    config = load_config(tmp_path, database_url)
    with Store(database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        summary = collect(job, burst_records())
        before = {a.alert.dedup_key for a in store.list_alerts(limit=500)}
        job._watch_bursts(summary)
        job._watch_bursts(summary)

        new = [
            a for a in store.list_alerts(limit=500) if a.alert.dedup_key not in before
        ]
        [burst] = [s for s in signals_by_kind(store)["burst"] if s.subject == "problem"]
        [alert] = [a for a in new if a.alert.kind == "burst"]
        assert alert.alert.dedup_key == burst.key
        assert alert.alert.level == "medium"
        assert alert.alert.post_id is None
        detail = store.get_alert(alert.alert.id)
        mail = email.message_from_string(detail.messages[0].message, policy=default)
        assert f"/problems/{burst.problem_id}" in mail.get_content()
        assert "问题突发" in mail["Subject"]
        recipients = {d.recipient for d in detail.deliveries}
        assert recipients >= {"pr@qicheng.example", "cr@qicheng.example"}


def test_burst_alert_waits_for_quiet_hours(tmp_path, database_url):
    config = load_config(tmp_path, database_url)
    quiet = pipeline.config_module.QuietHours(start="00:00", end="23:59")
    config = dataclasses.replace(
        config, alerts=dataclasses.replace(config.alerts, quiet_hours=quiet)
    )
    with Store(database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        summary = collect(job, burst_records())
        job._watch_bursts(summary)

        [alert] = [a for a in store.list_alerts(limit=500) if a.alert.kind == "burst"]
        due = {d.next_attempt_at for d in store.get_alert(alert.alert.id).deliveries}
        assert min(due) > datetime.now(UTC)


def test_burst_without_signal_setting_no_alert(tmp_path, database_url):
    config = load_config(tmp_path, database_url)
    config = dataclasses.replace(
        config, alerts=dataclasses.replace(config.alerts, signals=("viral",))
    )
    with Store(database_url) as store:
        store.migrate()
        job = pipeline.Job(config, store)
        summary = collect(job, burst_records())
        job._watch_bursts(summary)

        assert "burst" in signals_by_kind(store)
        assert not [a for a in store.list_alerts(limit=500) if a.alert.kind == "burst"]


def test_status_lists_the_latest_signals(tmp_path, job):
    text = "启程QC5交车一拖再拖，销售天天画饼，再不解决就去12315"
    collect(job, [owner_post(1, text, 2)])
    result = CliRunner().invoke(
        pipeline.cli, ["--config", str(tmp_path / "config.yaml"), "status"]
    )
    assert result.exit_code == 0, result.output
    assert "latest early-warning signals of the last 30 days:" in result.output
    [line] = [row for row in result.output.splitlines() if "escalation" in row]
    assert "post 1" in line
    assert "再不解决就去12315" in line


def test_no_burst_before_a_baseline_exists(job):
    """A first collection has no baseline, however many posts one problem has."""
    storm = [
        owner_post(n, BRAKE_NOISES[n % len(BRAKE_NOISES)] + f" 今天{n}", 3 - n / 3)
        for n in range(8)
    ]
    summary = collect(job, storm)
    job._watch_bursts(summary)
    assert "burst" not in signals_by_kind(job.store)


def test_recover_pending_regrade(job):
    collect(job, [media_post(10, 50)])
    # The job died after storing the new counts and before grading them.
    job.store.add_batch([media_post(60, 2_000)])

    restarted = pipeline.Job(job.config, job.store)
    restarted.recover()

    assert restarted.recovery.regraded == 1
    assert restarted.recovery.signals["viral"] == 1
    assert job.store.pending_regrades() == []


def test_falling_counts_do_not_lower_the_grade(job):
    collect(job, [media_post(10, 50)])
    collect(job, [media_post(60, 2_000)])
    [post_id] = {r.signal.post_id for r in job.store.recent_signals()}
    before = job.store.get_post(post_id).grading

    fallen = collect(job, [media_post(70, 3)])

    after = job.store.get_post(post_id).grading
    assert fallen.regraded == 0
    assert after.level == before.level
    assert after.factor("public_impact").score == 3


def test_one_old_post_is_no_baseline(job):
    old = owner_post(999, "启程QC9的座椅加热不热", 24 * 300, author="老车主")
    storm = [
        owner_post(n, BRAKE_NOISES[n % len(BRAKE_NOISES)] + f" 今天{n}", 3 - n / 3)
        for n in range(8)
    ]
    summary = collect(job, [old, *storm])
    job._watch_bursts(summary)
    assert "burst" not in signals_by_kind(job.store)


def test_recover_finds_missed_burst(job):
    collect(job, burst_records())
    # The run died before its burst check; the next start looks again.
    restarted = pipeline.Job(job.config, job.store)
    restarted.recover()
    bursts = signals_by_kind(job.store).get("burst", [])
    assert [s.subject for s in bursts if s.subject == "problem"] == ["problem"]
