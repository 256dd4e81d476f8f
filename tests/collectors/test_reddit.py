"""Reddit collector: real praw against a loopback fake of Reddit's API."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from fake_reddit import (
    CLIENT_ID,
    CLIENT_SECRET,
    INSTALLED_GRANT,
    FakeReddit,
    FakeRedditServer,
    Throttle,
    seed_qicheng,
)

import config as config_module
from collectors.base import CollectorError
from collectors.reddit import RedditCollector
from config import Brand, Config, Http, RedditOptions, Source

ID_ENV = "FENGHUO_REDDIT_CLIENT_ID"
SECRET_ENV = "FENGHUO_REDDIT_CLIENT_SECRET"
USER_AGENT = "Fenghuo-test/1.0 (brand monitoring tests)"


@pytest.fixture
def fake() -> FakeReddit:
    fake = FakeReddit()
    seed_qicheng(fake)
    return fake


@pytest.fixture
def api(fake: FakeReddit):
    with FakeRedditServer(fake) as api:
        yield api


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ID_ENV, CLIENT_ID)
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)


class Sleeps(list):
    """An injected sleep that records each delay instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_collector(
    api: FakeRedditServer,
    sleeps: Sleeps | None = None,
    deadline: float = 600.0,
    **options,
) -> RedditCollector:
    options.setdefault("subreddits", ("qicheng",))
    reddit = RedditOptions(oauth_url=api.url, reddit_url=api.url, **options)
    source = Source(name="reddit-test", kind="reddit", reddit=reddit)
    config = Config(
        brand=Brand(name="启程汽车"),
        sources=(source,),
        http=Http(
            user_agent=USER_AGENT,
            retries=2,
            backoff_seconds=1.0,
            run_deadline_seconds=deadline,
        ),
    )
    return RedditCollector(
        source, config, sleep=sleeps if sleeps is not None else Sleeps()
    )


def collect(collector: RedditCollector, cursor: str | None = None):
    """Return the batches of one run, all their items by id, and the last cursor."""
    batches = list(collector.collect(cursor))
    items = {}
    for batch in batches:
        for item in batch.items:
            assert item.external_id not in items, f"{item.external_id} yielded twice"
            items[item.external_id] = item
    return batches, items, batches[-1].cursor if batches else cursor


def listing_requests(fake: FakeReddit, path: str) -> list:
    return [request for request in fake.requests if request.path == path]


# Submissions


def test_submission_fields(api, fake):
    _, items, _ = collect(make_collector(api))

    item = items["t3_qc7ota"]
    thing = fake.things["t3_qc7ota"]
    assert item.platform == "reddit"
    assert item.source == "reddit-test"
    assert item.title == "QC7 OTA update broke lane keeping"
    assert item.text.startswith("QC7 OTA update broke lane keeping\n\n")
    assert "drifts out of lane" in item.text
    assert item.url == api.url + thing["permalink"]
    assert item.author.name == "lane_drifter"
    assert item.author.id == "t2_drifter"
    assert item.created_at == datetime.fromtimestamp(thing["created_utc"], UTC)
    assert item.created_at.tzinfo is not None
    assert item.engagement.likes == 42
    assert item.engagement.comments == 7
    assert item.engagement.reposts == 2
    assert item.raw["subreddit"] == "qicheng"
    assert item.raw["kind"] == "submission"


def test_submission_chinese_and_link_post(api):
    _, items, _ = collect(make_collector(api))

    chinese = items["t3_qc5week"]
    assert chinese.title == "启程QC5 提车一周感受"
    assert "续航比宣传的少了快一百公里" in chinese.text
    assert chinese.author.name == "北京车主小王"
    link = items["t3_qc9link"]
    assert link.text == "Review: 启程QC9 long-range test"
    assert link.raw["link_url"] == "https://example.com/qc9-review"
    assert link.engagement.likes == 0


def test_deleted_author_is_none(api):
    _, items, _ = collect(make_collector(api))

    item = items["t3_qc9brake"]
    assert item.author.name is None
    assert item.author.id is None
    assert "brake noise" in item.text


def test_removed_before_capture_skipped(api):
    _, items, _ = collect(make_collector(api))

    assert "t3_qc7scam" not in items
    assert set(items) == {"t3_qc7ota", "t3_qc5week", "t3_qc9brake", "t3_qc9link"}
    for item in items.values():
        assert "[removed]" not in item.text
        assert "[deleted]" not in item.text


def test_user_agent_and_token_sent(api, fake):
    collect(make_collector(api))

    token = fake.requests[0]
    assert token.path == "/api/v1/access_token"
    assert token.params["grant_type"] == "client_credentials"
    for request in fake.requests:
        assert request.user_agent.startswith(USER_AGENT)


def test_second_run_yields_nothing(api, fake):
    fake.page_size = 2
    collector = make_collector(api)
    _, first, cursor = collect(collector)
    requests_before = len(listing_requests(fake, "/r/qicheng/new"))

    batches, second, _ = collect(collector, cursor)

    assert len(first) == 4
    assert second == {}
    assert batches == []
    # The newest post is the previous run's mark, so one page is enough.
    assert len(listing_requests(fake, "/r/qicheng/new")) == requests_before + 1


def test_next_run_yields_only_new(api, fake):
    collector = make_collector(api)
    _, _, cursor = collect(collector)
    fake.add_submission(
        "qc7new", "qicheng", "启程QC7 新车机体验", "语音助手终于能听懂方言了"
    )

    _, items, cursor = collect(collector, cursor)
    _, again, _ = collect(collector, cursor)

    assert set(items) == {"t3_qc7new"}
    assert again == {}


@pytest.mark.parametrize("bad_time", [4.0e9, float("nan"), "soon"])
def test_bad_created_time_keeps_listing_moving(api, fake, bad_time):
    collector = make_collector(api)
    odd = fake.add_submission("qc7odd", "qicheng", "QC7 odd clock", created_utc=0.0)
    fake.things[odd]["created_utc"] = bad_time
    fake.things[odd]["order"] = time.time()
    _, first, cursor = collect(collector)
    # Reddit lists by submission time: the next post comes above the odd one.
    fake.add_submission("qc7after", "qicheng", "QC7 after", created_utc=time.time() + 5)

    _, later, _ = collect(collector, cursor)

    assert "t3_qc7odd" in first
    assert set(later) == {"t3_qc7after"}


def test_limit_bounds_first_run(api, fake):
    fake.page_size = 2
    collector = make_collector(api, limit=3)

    _, items, cursor = collect(collector)
    fake.add_submission("qc5new", "qicheng", "QC5 winter range test", "Lost 30%.")
    _, later, _ = collect(collector, cursor)

    # The three newest entries include the removed one.
    assert set(items) == {"t3_qc9link", "t3_qc9brake"}
    assert set(later) == {"t3_qc5new"}


def test_limit_leaves_backlog_for_next_run(api, fake):
    _, _, cursor = collect(make_collector(api))
    for number in range(1, 4):
        fake.add_submission(f"qc7n{number}", "qicheng", f"QC7 delivery delay {number}")
    bounded = make_collector(api, limit=2)

    _, second, cursor = collect(bounded, cursor)
    _, third, cursor = collect(bounded, cursor)
    _, fourth, _ = collect(bounded, cursor)

    assert set(second) == {"t3_qc7n3", "t3_qc7n2"}
    assert set(third) == {"t3_qc7n1"}
    assert fourth == {}


# Searches


def test_search_across_subreddits(api, fake):
    collector = make_collector(
        api, subreddits=("qicheng", "chinacars"), queries=("Qicheng",)
    )

    _, items, _ = collect(collector)

    search = listing_requests(fake, "/r/qicheng+chinacars/search")
    assert len(search) == 1
    assert search[0].params["q"] == "Qicheng"
    assert search[0].params["sort"] == "new"
    assert "t3_vsseal" in items
    assert "t3_tyres" in items
    assert items["t3_vsseal"].raw["subreddit"] == "chinacars"


def test_search_all_of_reddit(api, fake):
    collector = make_collector(api, subreddits=(), queries=("QC9",))

    _, items, cursor = collect(collector)

    assert listing_requests(fake, "/r/all/search")
    assert set(items) == {"t3_qc9brake", "t3_qc9link"}
    assert "search/all/QC9" in json.loads(cursor)["listings"]


def test_post_in_two_listings_yielded_once(api):
    collector = make_collector(api, queries=("QC7",))

    _, items, _ = collect(collector)

    assert "t3_qc7ota" in items


# Comments


def test_comments_with_more_stub_expanded(api, fake):
    collector = make_collector(api, comments=True, more_comments=1)

    _, items, _ = collect(collector)

    comments = {name for name in items if name.startswith("t1_")}
    assert comments == {
        "t1_c_same",
        "t1_c_reply",
        "t1_c_under",
        "t1_c_more1",
        "t1_c_more2",
    }
    assert len(listing_requests(fake, "/api/morechildren")) == 1
    comment = items["t1_c_reply"]
    assert comment.text == "Rolled back? 启程客服 said no."
    assert comment.raw["submission"] == "t3_qc7ota"
    assert comment.raw["parent"] == "t1_c_same"
    assert comment.raw["kind"] == "comment"
    assert comment.url == api.url + fake.things["t1_c_reply"]["permalink"]
    assert comment.engagement.likes == 1
    assert items["t1_c_same"].engagement.likes == 9


def test_more_stubs_never_comments(api, fake):
    collector = make_collector(api, comments=True, more_comments=5)

    _, items, _ = collect(collector)

    assert {"t1_c_more1", "t1_c_more2", "t1_c_more3"} <= set(items)
    assert "t1_more_big" not in items
    assert "t1_more_small" not in items
    assert len(listing_requests(fake, "/api/morechildren")) == 2


def test_more_stubs_skipped_without_bound(api, fake):
    collector = make_collector(api, comments=True, more_comments=0)

    _, items, _ = collect(collector)

    assert not listing_requests(fake, "/api/morechildren")
    assert "t1_c_more1" not in items
    assert "t1_c_same" in items


def test_deleted_comment_skipped_reply_kept(api):
    collector = make_collector(api, comments=True)

    _, items, _ = collect(collector)

    assert "t1_c_gone" not in items
    assert items["t1_c_under"].raw["parent"] == "t1_c_gone"


# Removal and engagement after capture


def test_removed_after_capture_marked(api, fake):
    collector = make_collector(api, comments=True)
    _, first, cursor = collect(collector)
    fake.remove("t3_qc5week")
    fake.remove("t1_c_same", "[deleted]")

    _, second, cursor = collect(collector, cursor)
    _, third, _ = collect(collector, cursor)

    assert set(second) == {"t3_qc5week", "t1_c_same"}
    submission = second["t3_qc5week"]
    assert submission.removed is True
    assert submission.raw["removed_by"] == "moderator"
    assert submission.text == "启程QC5 提车一周感受"
    comment = second["t1_c_same"]
    assert comment.removed is True
    assert comment.text == ""
    assert comment.author.name is None
    assert third == {}


def test_removed_after_capture_keeps_stored_text(api, fake, store):
    collector = make_collector(api)
    post_ids = {}
    for batch in collect(collector)[0]:
        stored = store.add_batch(batch.items, cursor=("reddit-test", batch.cursor))
        for item, post_id in zip(batch.items, stored.ids, strict=True):
            post_ids[item.external_id] = post_id
    text = store.get_post(post_ids["t3_qc5week"]).item.text
    fake.remove("t3_qc5week")

    batches, second, _ = collect(collector, store.get_cursor("reddit-test"))
    for batch in batches:
        stored = store.add_batch(batch.items, cursor=("reddit-test", batch.cursor))
        assert stored.ids == [None] * len(batch.items)

    assert second["t3_qc5week"].removed is True
    record = store.get_post(post_ids["t3_qc5week"])
    assert record.item.text == text
    assert record.item.removed is True
    assert "续航比宣传的少了快一百公里" in text


def test_engagement_change_yields_post_again(api, fake):
    collector = make_collector(api)
    _, _, cursor = collect(collector)
    fake.things["t3_qc7ota"]["score"] = 130
    fake.things["t3_qc7ota"]["num_crossposts"] = 5

    _, second, cursor = collect(collector, cursor)
    _, third, _ = collect(collector, cursor)

    assert set(second) == {"t3_qc7ota"}
    assert second["t3_qc7ota"].engagement.likes == 130
    assert second["t3_qc7ota"].engagement.reposts == 5
    assert second["t3_qc7ota"].removed is False
    assert third == {}


# Rate limits


def test_rate_limit_then_recovery(api, fake):
    sleeps = Sleeps()
    fake.throttle = Throttle(count=2)

    _, items, _ = collect(make_collector(api, sleeps))

    assert len(items) == 4
    assert len(sleeps) == 2
    assert 1.0 <= sleeps[0] <= 1.25
    assert 2.0 <= sleeps[1] <= 2.5


def test_rate_limit_honours_retry_after(api, fake):
    sleeps = Sleeps()
    fake.throttle = Throttle(count=1, retry_after="7")

    collect(make_collector(api, sleeps))

    assert len(sleeps) == 1
    assert 7.0 <= sleeps[0] <= 8.75


def test_rate_limit_caps_long_retry_after(api, fake):
    sleeps = Sleeps()
    fake.throttle = Throttle(count=1, retry_after="3600")

    collect(make_collector(api, sleeps))

    assert len(sleeps) == 1
    assert 120.0 <= sleeps[0] <= 150.0


def test_rate_limit_persisting_ends_partial(api, fake):
    fake.page_size = 2
    sleeps = Sleeps()
    collector = make_collector(api, sleeps)
    fake.throttle = Throttle(count=1000, when=lambda m, p, params: "after" in params)

    batches, first, cursor = collect(collector)

    assert collector.partial is True
    assert len(sleeps) == 2
    assert set(first) == {"t3_qc9link"}
    assert len(batches) == 1

    fake.throttle = None
    fake.add_submission(
        "qc7new", "qicheng", "QC7 seat heater recall?", "Letter came today."
    )
    _, second, cursor = collect(collector, cursor)
    _, third, _ = collect(collector, cursor)

    assert collector.partial is False
    assert set(second) == {"t3_qc9brake", "t3_qc5week", "t3_qc7ota", "t3_qc7new"}
    assert third == {}


def test_rate_limit_in_comments_resumes_submission(api, fake):
    sleeps = Sleeps()
    collector = make_collector(api, sleeps, comments=True)
    fake.throttle = Throttle(
        count=1000, when=lambda m, p, params: p == "/comments/qc5week"
    )

    _, first, cursor = collect(collector)
    fake.throttle = None
    _, second, _ = collect(collector, cursor)

    assert collector.partial is False
    assert "t3_qc5week" not in first
    assert "t3_qc9link" in first
    assert "t3_qc5week" in second
    assert "t1_c_same" in second
    assert not set(first) & set(second)


def test_run_deadline_fails_run(api, fake):
    collector = make_collector(api, deadline=1e-9)

    with pytest.raises(CollectorError, match="run deadline of 1e-09 s reached"):
        collect(collector)

    assert collector.partial is True
    assert not listing_requests(fake, "/r/qicheng/new")


# Credentials and errors


@pytest.mark.parametrize("variable", [ID_ENV, SECRET_ENV])
def test_missing_credentials_named(api, fake, monkeypatch, variable):
    monkeypatch.delenv(variable)

    with pytest.raises(CollectorError, match=variable):
        collect(make_collector(api))

    assert fake.requests == []


def test_installed_app_without_secret(api, fake, monkeypatch):
    monkeypatch.delenv(SECRET_ENV)

    _, items, _ = collect(make_collector(api, client_secret_env=""))

    assert len(items) == 4
    assert fake.requests[0].params["grant_type"] == INSTALLED_GRANT


def test_rejected_credentials(api, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "wrong-secret")

    with pytest.raises(CollectorError, match="rejected the app credentials"):
        collect(make_collector(api))


def test_private_subreddit_fails_after_others(api, fake):
    fake.private_subreddits.add("secretclub")
    collector = make_collector(api, subreddits=("secretclub", "qicheng"))
    batches = []

    with pytest.raises(CollectorError, match="r/secretclub/new") as error:
        for batch in collector.collect(None):
            batches.append(batch)

    assert "403" in str(error.value)
    assert {item.external_id for batch in batches for item in batch.items} == {
        "t3_qc7ota",
        "t3_qc5week",
        "t3_qc9brake",
        "t3_qc9link",
    }


def test_unreadable_cursor_starts_over(api):
    _, items, _ = collect(make_collector(api), "not json")

    assert len(items) == 4


def test_reddit_source_from_config_file(api, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""
brand: {{name: 启程汽车}}
alerts: {{alert_levels: []}}
sources:
  - name: reddit
    kind: reddit
    reddit:
      subreddits: [qicheng]
      queries: [启程]
      comments: true
      more_comments: 2
      limit: 50
      oauth_url: {api.url}
      reddit_url: {api.url}
""",
        encoding="utf-8",
    )
    config = config_module.load(path)

    collector = RedditCollector(config.sources[0], config, sleep=Sleeps())
    _, items, _ = collect(collector)

    assert "t3_qc5week" in items
    assert "t1_c_more3" in items
