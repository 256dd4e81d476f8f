"""Feed collector against a loopback server: parsing, identity, encodings, failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from loopback import Reply, conditional, feed_reply, fixture

from collectors import build_collector
from collectors.base import CollectorError
from collectors.feed import (
    FeedCollector,
    decode_document,
    entry_time,
    identify_link,
)
from collectors.http import DeadlineExceeded, HttpClient
from config import Config, FeedOptions, HostLimit, Http, Source

SHANGHAI = ZoneInfo("Asia/Shanghai")
NO_WAIT = Http(retries=0, default_host=HostLimit(min_interval_seconds=0))


def feed_source(*urls: str, **options) -> Source:
    return Source(name="feeds", kind="feed", feed=FeedOptions(urls=urls), **options)


def collect(source: Source, cursor: str | None = None, settings: Http = NO_WAIT):
    with HttpClient(settings) as client:
        collector = FeedCollector(source, client, "Asia/Shanghai")
        batches = list(collector.collect(cursor))
    items = [item for batch in batches for item in batch.items]
    return batches, items


def by_id(items):
    return {item.external_id: item for item in items}


def test_rss_entries_parsed(server):
    server.route("/weibo", feed_reply("weibo_rss.xml"))

    _, items = collect(feed_source(server.url("/weibo")))

    first = by_id(items)["weibo:5101234567890123"]
    assert first.platform == "weibo"
    assert first.url == "https://weibo.com/6012345678/P0w7ex6A3"
    assert first.author.id == "6012345678"
    assert first.author.name == "启程车主小王"
    assert first.created_at == datetime(2026, 11, 1, 2, 48, 13, tzinfo=UTC)
    assert "QC7刹车异响" in first.text
    assert 'alt="[怒]"' in first.text
    assert first.raw["native_id"] == "5101234567890123"


def test_rss_title_repeating_body_dropped(server):
    server.route("/weibo", feed_reply("weibo_rss.xml"))

    _, items = collect(feed_source(server.url("/weibo")))

    found = by_id(items)
    assert found["weibo:5101234567890123"].title is None
    assert found["weibo:5101234567890456"].title is None
    assert found["qicheng-news-20261104"].title == "启程汽车发布QC5冬季续航说明"


def test_repost_title_kept_for_nlp(server):
    server.route("/weibo", feed_reply("weibo_rss.xml"))

    _, items = collect(feed_source(server.url("/weibo")))

    repost = by_id(items)["weibo:5101234567891789"]
    assert repost.title == "[围观] - 转发 @启程汽车: QC9正式上市，首批车主专享终身质保"


def test_rss_offset_time_read(server):
    server.route("/weibo", feed_reply("weibo_rss.xml"))

    _, items = collect(feed_source(server.url("/weibo")))

    second = by_id(items)["weibo:5101234567890456"]
    assert second.created_at == datetime(2026, 11, 2, 1, 15, tzinfo=UTC)


def test_atom_entries_parsed(server):
    server.route("/zhihu", feed_reply("zhihu_atom.xml", "application/atom+xml"))

    _, items = collect(feed_source(server.url("/zhihu")))

    found = by_id(items)
    answer = found["zhihu:answer:3000000001"]
    assert answer.platform == "zhihu"
    assert answer.title == "如何评价启程QC9？"
    assert answer.author.name == "知乎用户甲"
    assert answer.created_at == datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
    assert "底盘扎实" in answer.text
    assert "zhihu:article:700000001" in found
    assert "bilibili:video:BV1Qc7411Tst" in found
    assert "xiaohongshu:note:6540a1b2c3d4e5f6a7b8c9d0" in found


def test_naive_time_in_source_zone(server):
    server.route("/zhihu", feed_reply("zhihu_atom.xml", "application/atom+xml"))

    _, items = collect(feed_source(server.url("/zhihu"), timezone="Asia/Shanghai"))

    naive = by_id(items)["zhihu:answer:3000000002"]
    assert naive.created_at == datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    assert naive.time_estimated is False


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        ("Mon, 02 Nov 2026 10:00:00 +0800", datetime(2026, 11, 2, 2, 0, tzinfo=UTC)),
        ("Mon, 02 Nov 2026 10:00:00 GMT", datetime(2026, 11, 2, 10, 0, tzinfo=UTC)),
        ("Mon, 02 Nov 2026 10:00:00 CST", datetime(2026, 11, 2, 2, 0, tzinfo=UTC)),
        ("Mon, 02 Nov 2026 10:00:00", datetime(2026, 11, 2, 2, 0, tzinfo=UTC)),
        ("Mon, 02 Nov 2026 10:00:00 -0000", datetime(2026, 11, 2, 10, 0, tzinfo=UTC)),
        ("2026-11-02T10:00:00Z", datetime(2026, 11, 2, 10, 0, tzinfo=UTC)),
        ("2026年11月2日 10:00", datetime(2026, 11, 2, 2, 0, tzinfo=UTC)),
        ("Mon, 02 Nov 2099 10:00:00 GMT", None),
        ("soon", None),
    ],
)
def test_entry_time_formats(published, expected):
    assert entry_time({"published": published}, SHANGHAI) == expected


def test_missing_time_estimated(server):
    server.route("/weibo", feed_reply("weibo_rss.xml"))

    before = datetime.now(UTC)
    _, items = collect(feed_source(server.url("/weibo")))

    undated = by_id(items)["weibo:5101234567892012"]
    assert undated.time_estimated is True
    assert undated.created_at >= before
    assert undated.created_at == undated.collected_at
    dated = by_id(items)["weibo:5101234567890123"]
    assert dated.time_estimated is False


def test_unreadable_time_estimated(server):
    body = fixture("weibo_rss.xml").replace(
        b"Sun, 01 Nov 2026 02:48:13 GMT", b"yesterday evening"
    )
    server.route("/weibo", Reply(200, body, {"Content-Type": "application/xml"}))

    _, items = collect(feed_source(server.url("/weibo")))

    assert by_id(items)["weibo:5101234567890123"].time_estimated is True


def test_truncated_weibo_marked(server):
    server.route("/weibo", feed_reply("weibo_rss.xml"))

    _, items = collect(feed_source(server.url("/weibo")))

    found = by_id(items)
    cut = found["weibo:5101234567890456"]
    assert cut.raw["truncated"] is True
    assert "OTA之后好一些" in cut.text
    assert found["weibo:5101234567892012"].raw["truncated"] is True
    assert "truncated" not in found["weibo:5101234567890123"].raw


def test_duplicate_entry_in_fetch_dropped(server):
    server.route("/weibo", feed_reply("weibo_rss.xml"))

    _, items = collect(feed_source(server.url("/weibo")))

    ids = [item.external_id for item in items]
    assert len(ids) == len(set(ids))
    assert ids.count("weibo:5101234567890123") == 1
    assert len(items) == 5


def test_unknown_link_falls_back_to_guid(server):
    server.route("/weibo", feed_reply("weibo_rss.xml"))

    _, items = collect(feed_source(server.url("/weibo"), platform="news"))

    news = by_id(items)["qicheng-news-20261104"]
    assert news.platform == "news"
    assert news.url == "https://news.example.org/qicheng/20261104"


def test_ids_stable_across_mirrors(server):
    mirror = fixture("weibo_rss.xml").replace(
        b'<guid isPermaLink="false">https://weibo.com/',
        b'<guid isPermaLink="false">https://rsshub-mirror.example.org/weibo.com/',
    )
    server.route("/instance-a/weibo", feed_reply("weibo_rss.xml"))
    server.route("/instance-b/weibo", Reply(200, mirror, {"Content-Type": "text/xml"}))

    _, from_a = collect(feed_source(server.url("/instance-a/weibo")))
    _, from_b = collect(feed_source(server.url("/instance-b/weibo")))

    assert sorted(i.external_id for i in from_a) == sorted(
        i.external_id for i in from_b
    )


@pytest.mark.parametrize(
    ("link", "external_id", "author_id"),
    [
        ("https://weibo.com/1195230310/z0JH2lOMb", "weibo:3501756485200075", "1195230310"),
        ("https://www.weibo.com/1195230310/3501756485200075", "weibo:3501756485200075", "1195230310"),
        ("https://m.weibo.cn/status/3501756485200075", "weibo:3501756485200075", None),
        ("https://m.weibo.cn/status/z0JH2lOMb?sudaref=x", "weibo:3501756485200075", None),
        ("https://m.weibo.cn/detail/3501756485200075", "weibo:3501756485200075", None),
        ("https://weibo.com/u/1195230310", None, None),
        ("https://weibo.com/1195230310/profile", None, None),
        ("https://www.zhihu.com/question/600000001/answer/3000000001", "zhihu:answer:3000000001", None),
        ("https://www.zhihu.com/question/600000001", "zhihu:question:600000001", None),
        ("https://zhuanlan.zhihu.com/p/700000001", "zhihu:article:700000001", None),
        ("https://www.bilibili.com/video/BV1Qc7411Tst/?spm=1", "bilibili:video:BV1Qc7411Tst", None),
        ("https://m.bilibili.com/video/av170001", "bilibili:video:av170001", None),
        ("https://t.bilibili.com/900000000000000001", "bilibili:dynamic:900000000000000001", None),
        ("https://www.bilibili.com/opus/900000000000000001", "bilibili:dynamic:900000000000000001", None),
        ("https://www.xiaohongshu.com/explore/6540a1b2c3d4e5f6a7b8c9d0", "xiaohongshu:note:6540a1b2c3d4e5f6a7b8c9d0", None),
        ("https://www.xiaohongshu.com/discovery/item/6540a1b2c3d4e5f6a7b8c9d0", "xiaohongshu:note:6540a1b2c3d4e5f6a7b8c9d0", None),
        ("https://example.org/weibo.com/1195230310/z0JH2lOMb", None, None),
        ("not a link", None, None),
    ],
)  # fmt: skip
def test_link_identity(link, external_id, author_id):
    identity = identify_link(link)

    if external_id is None:
        assert identity is None
    else:
        assert identity.external_id == external_id
        assert identity.author_id == author_id


def test_conditional_get_round_trip(server):
    etag = '"v1-qicheng"'
    modified = "Sun, 01 Nov 2026 03:00:00 GMT"
    server.respond(
        "/weibo",
        conditional(fixture("weibo_rss.xml"), etag, modified, "application/rss+xml"),
    )
    source = feed_source(server.url("/weibo"))

    first_batches, first_items = collect(source)
    cursor = first_batches[-1].cursor
    second_batches, second_items = collect(source, cursor)

    first_request, second_request = server.requests_to("/weibo")
    assert len(first_items) == 5
    assert json.loads(cursor)["feeds"][server.url("/weibo")] == {
        "etag": etag,
        "last_modified": modified,
    }
    assert "if-none-match" not in first_request.headers
    assert second_request.headers["if-none-match"] == etag
    assert second_request.headers["if-modified-since"] == modified
    assert second_batches == []
    assert second_items == []


def test_unreadable_cursor_fetches_in_full(server):
    server.route("/weibo", feed_reply("weibo_rss.xml", ETag='"v1"'))

    _, items = collect(feed_source(server.url("/weibo")), "not json")

    assert len(items) == 5
    assert "if-none-match" not in server.requests_to("/weibo")[0].headers


def test_gbk_declared_feed(server):
    server.route("/forum", feed_reply("forum_gbk.xml", "text/xml"))

    _, items = collect(feed_source(server.url("/forum")))

    assert [item.title for item in items] == [
        "QC7空调异味，4S店说要换滤芯",
        "启程QC5冬季续航实测",
    ]
    assert "自费换滤芯" in items[0].text


def test_gb2312_header_read_as_gb18030(server):
    # 啰 is in GBK and GB18030 but not in GB2312, as in many real "gb2312" pages.
    body = fixture("forum_gbk_undeclared.xml").replace(
        "大约".encode("gbk"), "啰嗦一句大约".encode("gbk")
    )
    server.route(
        "/forum", Reply(200, body, {"Content-Type": "text/xml; charset=gb2312"})
    )

    _, items = collect(feed_source(server.url("/forum")))

    assert "啰嗦一句" in items[1].text


def test_undeclared_gbk_feed(server):
    server.route("/forum", feed_reply("forum_gbk_undeclared.xml", "text/xml"))

    _, items = collect(feed_source(server.url("/forum")))

    assert items[0].title == "QC7空调异味，4S店说要换滤芯"


def test_meta_charset_used():
    page = '<html><head><meta charset="gbk"></head><body>启程QC7</body></html>'

    decoded = decode_document(page.encode("gbk"), None)

    assert decoded.encoding == "gb18030"
    assert "启程QC7" in decoded.text


def test_latin1_header_on_utf8_body_ignored():
    body = '<?xml version="1.0" encoding="utf-8"?><rss>启程QC9</rss>'.encode()

    decoded = decode_document(body, "ISO-8859-1")

    assert "启程QC9" in decoded.text


def test_mojibake_entry_set_aside(server):
    server.route("/forum", feed_reply("forum_mojibake.xml", "text/xml"))

    batches, items = collect(feed_source(server.url("/forum")))

    assert [item.title for item in items] == ["启程QC5冬季续航实测"]
    [rejected] = [r for batch in batches for r in batch.rejected]
    assert "U+FFFD" in rejected.reason
    assert rejected.location.endswith("entry 1")


def test_mojibake_feed_fails(server):
    body = fixture("forum_mojibake.xml").replace(
        "QC5冬季".encode(), "QC5\ufffd".encode()
    )
    server.route("/forum", Reply(200, body, {"Content-Type": "text/xml"}))

    with pytest.raises(CollectorError, match="U\\+FFFD") as error:
        collect(feed_source(server.url("/forum")))

    assert server.url("/forum") in str(error.value)


def test_surrogate_reference_sets_entry_aside(server):
    body = fixture("forum_mojibake.xml").replace("空��味".encode(), b"&#xD800;")
    server.route("/forum", Reply(200, body, {"Content-Type": "text/xml"}))

    batches, items = collect(feed_source(server.url("/forum")))

    assert len(items) == 1
    assert len([r for batch in batches for r in batch.rejected]) == 1


def test_wrongly_declared_bytes_fail(server):
    body = fixture("forum_gbk_undeclared.xml")
    server.route(
        "/forum", Reply(200, body, {"Content-Type": "text/xml; charset=utf-8"})
    )

    with pytest.raises(CollectorError, match="does not decode as utf-8"):
        collect(feed_source(server.url("/forum")))


def test_login_wall_fails(server):
    server.route(
        "/weibo",
        Reply(200, fixture("login_wall.html"), {"Content-Type": "text/html"}),
    )

    with pytest.raises(CollectorError, match="HTML page") as error:
        collect(feed_source(server.url("/weibo")))

    assert server.url("/weibo") in str(error.value)
    assert "请登录" in str(error.value)


def test_html_error_page_without_type_fails(server):
    server.route("/weibo", Reply(200, "<html><body>Looks like something went wrong"))

    with pytest.raises(CollectorError, match="expected an RSS or Atom feed"):
        collect(feed_source(server.url("/weibo")))


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(403, "Forbidden"), "HTTP 403"),
        (Reply(404, "no such route"), "HTTP 404"),
        (Reply(503, "maintenance"), "HTTP 503"),
        (Reply(200, "", {"Content-Type": "application/rss+xml"}), "empty body"),
        (Reply(200, "  \n ", {"Content-Type": "application/rss+xml"}), "empty body"),
    ],
)
def test_bad_answers_fail(server, reply, reason):
    server.route("/feed", reply)

    with pytest.raises(CollectorError, match=reason) as error:
        collect(feed_source(server.url("/feed")))

    assert f"feed {server.url('/feed')} failed" in str(error.value)


def test_failed_feed_keeps_other_feeds(server):
    server.route("/broken", Reply(500, "oops"))
    server.route("/weibo", feed_reply("weibo_rss.xml"))
    source = feed_source(server.url("/broken"), server.url("/weibo"))
    batches = []

    with HttpClient(NO_WAIT) as client:
        collector = FeedCollector(source, client, "Asia/Shanghai")
        with pytest.raises(CollectorError, match="HTTP 500") as error:
            for batch in collector.collect(None):
                batches.append(batch)

    assert server.url("/broken") in str(error.value)
    assert sum(len(batch.items) for batch in batches) == 5


def test_deadline_ends_run_with_earlier_feeds(server):
    server.route("/weibo", feed_reply("weibo_rss.xml", ETag='"w1"'))
    server.route("/slow", Reply(200, fixture("zhihu_atom.xml"), delay=3))
    server.route("/never", feed_reply("zhihu_atom.xml"))
    source = feed_source(
        server.url("/weibo"), server.url("/slow"), server.url("/never")
    )
    settings = Http(
        run_deadline_seconds=0.5, default_host=HostLimit(min_interval_seconds=0)
    )
    batches = []

    with HttpClient(settings) as client:
        collector = FeedCollector(source, client, "Asia/Shanghai")
        with pytest.raises(DeadlineExceeded):
            for batch in collector.collect(None):
                batches.append(batch)

    assert sum(len(batch.items) for batch in batches) == 5
    assert json.loads(batches[-1].cursor)["feeds"] == {
        server.url("/weibo"): {"etag": '"w1"'}
    }
    assert server.requests_to("/never") == []


def test_batches_split_and_validators_last(server):
    server.route("/weibo", feed_reply("weibo_rss.xml", ETag='"w1"'))

    with HttpClient(NO_WAIT) as client:
        source = feed_source(server.url("/weibo"))
        collector = FeedCollector(source, client, "Asia/Shanghai", batch_size=2)
        batches = list(collector.collect(None))

    assert [len(batch.items) for batch in batches] == [2, 2, 1]
    assert json.loads(batches[0].cursor)["feeds"] == {}
    assert json.loads(batches[-1].cursor)["feeds"][server.url("/weibo")] == {
        "etag": '"w1"'
    }


def test_limit_caps_items(server):
    server.route("/weibo", feed_reply("weibo_rss.xml"))

    _, items = collect(feed_source(server.url("/weibo"), limit=2))

    assert len(items) == 2


def test_hostile_entry_cleaned(server):
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        "<title>t</title><item><title>QC7</title>"
        "<description><![CDATA[启程QC7\x01车机<script>alert(1)</script>死机]]>"
        "</description><link>https://weibo.com/6012345678/P0w7ex6A3</link></item>"
        "<item><title></title><description></description>"
        "<link>https://weibo.com/6012345678/P0w7ex6Fq</link></item>"
        "</channel></rss>"
    )
    server.route("/feed", Reply(200, body, {"Content-Type": "application/xml"}))

    batches, items = collect(feed_source(server.url("/feed")))

    assert len(items) == 1
    assert "\x01" not in items[0].text
    assert "<script" not in items[0].text
    assert "死机" in items[0].text
    assert [r.reason for r in batches[-1].rejected] == [
        "entry has no text and no title"
    ]


def test_build_collector_feed(server):
    config = Config(brand=None, sources=())

    collector = build_collector(feed_source(server.url("/weibo")), config)

    assert isinstance(collector, FeedCollector)


def test_unsafe_validator_not_stored(server):
    server.route("/weibo", feed_reply("weibo_rss.xml", ETag='"v1-é"'))
    source = feed_source(server.url("/weibo"))

    batches, _ = collect(source)
    collect(source, batches[-1].cursor)

    assert json.loads(batches[-1].cursor)["feeds"] == {}
    assert "if-none-match" not in server.requests_to("/weibo")[1].headers
