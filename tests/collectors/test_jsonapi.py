"""JSON API collector against a loopback server: paging, headers, bad records."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from loopback import Reply

from collectors import build_collector
from collectors.base import CollectorError
from collectors.http import HttpClient
from collectors.jsonapi import JsonCollector
from collectors.records import MAX_RECORD_BYTES
from config import Config, HostLimit, Http, JsonOptions, Pagination, Source

NO_WAIT = Http(retries=0, default_host=HostLimit(min_interval_seconds=0))
FIELDS = {
    "id": "mid",
    "text": "content.text",
    "created_at": "created",
    "author_name": "user.name",
    "followers": "user.fans",
    "likes": "stats.likes",
}
POSTS = [
    {
        "mid": f"p{n}",
        "content": {"text": f"启程QC{5 + 2 * (n % 3)}第{n}条帖子"},
        "created": "2026-11-01 08:00:00",
        "user": {"name": f"车主{n}", "fans": "1.2万"},
        "stats": {"likes": n},
    }
    for n in range(1, 8)
]


def json_reply(data, ensure_ascii: bool = False) -> Reply:
    body = json.dumps(data, ensure_ascii=ensure_ascii)
    return Reply(200, body, {"Content-Type": "application/json"})


def api_source(url: str, pagination: Pagination | None = None, **options) -> Source:
    json_options = JsonOptions(
        url=url,
        items=options.pop("items", "data.list"),
        pagination=pagination or Pagination(),
        params=options.pop("params", {}),
        headers=options.pop("headers", {}),
        headers_env=options.pop("headers_env", {}),
    )
    return Source(name="api", kind="json", json=json_options, fields=FIELDS, **options)


def collect(source: Source):
    with HttpClient(NO_WAIT) as client:
        batches = list(JsonCollector(source, client, "Asia/Shanghai").collect(None))
    items = [item for batch in batches for item in batch.items]
    rejected = [r for batch in batches for r in batch.rejected]
    return batches, items, rejected


def serve_pages(server, path: str, page_of) -> None:
    """Respond to ``path`` with the slice of POSTS that ``page_of(request)`` picks."""

    def answer(request):
        start, size = page_of(request)
        return json_reply({"data": {"list": POSTS[start : start + size]}})

    server.respond(path, answer)


def test_records_mapped(server):
    server.route("/api", json_reply({"data": {"list": POSTS[:1]}}))

    _, items, rejected = collect(api_source(server.url("/api")))

    assert rejected == []
    item = items[0]
    assert item.external_id == "p1"
    assert item.text == "启程QC7第1条帖子"
    assert item.author.name == "车主1"
    assert item.author.followers == 12_000
    assert item.engagement.likes == 1
    assert item.created_at == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    assert item.location == f"{server.url('/api')} page 1 record 1"


def test_page_style(server):
    serve_pages(server, "/api", lambda r: ((int(r.param("page")) - 1) * 3, 3))
    pagination = Pagination(style="page", param="page", size_param="size", size=3)

    batches, items, _ = collect(api_source(server.url("/api"), pagination))

    requests = server.requests_to("/api")
    assert [r.param("page") for r in requests] == ["1", "2", "3"]
    assert {r.param("size") for r in requests} == {"3"}
    assert [len(batch.items) for batch in batches] == [3, 3, 1]
    assert [item.external_id for item in items] == [f"p{n}" for n in range(1, 8)]


def test_page_style_custom_start(server):
    serve_pages(server, "/api", lambda r: (int(r.param("p")) * 4, 4))
    pagination = Pagination(style="page", param="p", start=0)

    _, items, _ = collect(api_source(server.url("/api"), pagination))

    assert [r.param("p") for r in server.requests_to("/api")] == ["0", "1", "2"]
    assert len(items) == 7


def test_offset_style(server):
    serve_pages(server, "/api", lambda r: (int(r.param("offset")), 2))
    pagination = Pagination(style="offset", param="offset", size_param="n", size=2)

    _, items, _ = collect(api_source(server.url("/api"), pagination))

    offsets = [r.param("offset") for r in server.requests_to("/api")]
    assert offsets == ["0", "2", "4", "6"]
    assert len(items) == 7


def test_cursor_style(server):
    pages = {
        None: (POSTS[:3], "c2"),
        "c2": (POSTS[3:6], "c3"),
        "c3": (POSTS[6:], None),
    }

    def answer(request):
        records, following = pages[request.param("cursor")]
        return json_reply({"data": {"list": records}, "paging": {"next": following}})

    server.respond("/api", answer)
    pagination = Pagination(style="cursor", param="cursor", next_field="paging.next")

    _, items, _ = collect(api_source(server.url("/api"), pagination))

    sent = [r.param("cursor") for r in server.requests_to("/api")]
    assert sent == [None, "c2", "c3"]
    assert len(items) == 7


def test_cursor_repeated_value_stops(server):
    server.route("/api", json_reply({"data": {"list": POSTS[:2]}, "next": "same"}))
    pagination = Pagination(style="cursor", param="after", next_field="next")

    collect(api_source(server.url("/api"), pagination))

    assert [r.param("after") for r in server.requests_to("/api")] == [None, "same"]


def test_cursor_style_needs_next_field(server):
    source = api_source(server.url("/api"), Pagination(style="cursor"))

    with pytest.raises(CollectorError, match="next_field"):
        JsonCollector(source, HttpClient(NO_WAIT), "Asia/Shanghai")


def test_no_pagination_single_request(server):
    server.route("/api", json_reply({"data": {"list": POSTS}}))

    _, items, _ = collect(api_source(server.url("/api")))

    assert len(server.requests_to("/api")) == 1
    assert len(items) == 7


def test_max_pages_bounds_run(server):
    serve_pages(server, "/api", lambda r: (0, 2))
    pagination = Pagination(style="page", max_pages=3)

    collect(api_source(server.url("/api"), pagination))

    assert len(server.requests_to("/api")) == 3


def test_limit_stops_paging(server):
    serve_pages(server, "/api", lambda r: ((int(r.param("page")) - 1) * 2, 2))
    pagination = Pagination(style="page", size_param="size", size=2)

    _, items, _ = collect(api_source(server.url("/api"), pagination, limit=3))

    assert len(items) == 3
    assert len(server.requests_to("/api")) == 2


def test_top_level_list(server):
    server.route("/api", json_reply(POSTS[:2]))

    _, items, _ = collect(api_source(server.url("/api"), items=""))

    assert [item.external_id for item in items] == ["p1", "p2"]


def test_params_and_headers_sent(server, monkeypatch):
    monkeypatch.setenv("FENGHUO_TEST_API_TOKEN", "Bearer test-token")
    server.route("/api", json_reply({"data": {"list": []}}))
    source = api_source(
        server.url("/api"),
        params={"q": "启程"},
        headers={"Accept": "application/json"},
        headers_env={"Authorization": "FENGHUO_TEST_API_TOKEN"},
    )

    collect(source)

    request = server.requests_to("/api")[0]
    assert request.param("q") == "启程"
    assert request.headers["accept"] == "application/json"
    assert request.headers["authorization"] == "Bearer test-token"


def test_missing_header_variable_named(server, monkeypatch):
    monkeypatch.delenv("FENGHUO_TEST_MISSING_TOKEN", raising=False)
    server.route("/api", json_reply({"data": {"list": []}}))
    source = api_source(
        server.url("/api"), headers_env={"X-Token": "FENGHUO_TEST_MISSING_TOKEN"}
    )

    with pytest.raises(CollectorError, match="FENGHUO_TEST_MISSING_TOKEN"):
        collect(source)

    assert server.requests_to("/api") == []


def test_hostile_records_rejected_or_cleaned(server):
    huge = "启" * (MAX_RECORD_BYTES // 3 + 10)
    records = [
        POSTS[0],
        {"mid": "huge", "content": {"text": huge}},
        {"mid": "nul", "content": {"text": "QC9\u0000车机\u0007死机"}},
        {"mid": "number", "content": {"text": 12345}},
        {"mid": {"nested": 1}, "content": {"text": "QC5"}},
        "not an object",
        None,
        {"mid": "lone", "content": {"text": "QC7 \ud800 异响"}},
        POSTS[1],
    ]
    # A lone surrogate survives only as a JSON escape.
    server.route("/api", json_reply({"data": {"list": records}}, ensure_ascii=True))

    _, items, rejected = collect(api_source(server.url("/api")))

    found = {item.external_id: item for item in items}
    assert sorted(found) == ["lone", "nul", "p1", "p2"]
    assert found["nul"].text == "QC9车机死机"
    assert "\ud800" not in found["lone"].text
    reasons = {r.location.rsplit(" ", 1)[-1]: r.reason for r in rejected}
    assert reasons["2"] == f"record larger than {MAX_RECORD_BYTES} bytes"
    assert reasons["4"] == "text is not a string"
    assert reasons["5"] == "id is not a string or number: dict"
    assert reasons["6"] == "expected a JSON object, got str"
    assert reasons["7"] == "expected a JSON object, got nothing (null)"


def test_nan_becomes_null(server):
    body = '{"data": {"list": [{"mid": "n", "content": {"text": "QC7"}, "x": NaN}]}}'
    server.route("/api", Reply(200, body, {"Content-Type": "application/json"}))

    _, items, _ = collect(api_source(server.url("/api")))

    assert items[0].raw["x"] is None


def test_non_json_body_fails(server):
    server.route(
        "/api", Reply(200, "<html>请登录</html>", {"Content-Type": "text/html"})
    )

    with pytest.raises(CollectorError, match="not JSON") as error:
        collect(api_source(server.url("/api")))

    assert server.url("/api") in str(error.value)
    assert "text/html" in str(error.value)


def test_error_status_fails(server):
    server.route("/api", Reply(401, '{"error": "invalid token"}'))

    with pytest.raises(CollectorError, match="HTTP 401") as error:
        collect(api_source(server.url("/api")))

    assert "invalid token" in str(error.value)


def test_error_on_later_page_keeps_earlier(server):
    server.route("/api", json_reply({"data": {"list": POSTS[:2]}}), Reply(500))
    pagination = Pagination(style="page", size=2, size_param="size")
    batches = []

    with HttpClient(NO_WAIT) as client:
        collector = JsonCollector(
            api_source(server.url("/api"), pagination), client, "Asia/Shanghai"
        )
        with pytest.raises(CollectorError, match="HTTP 500"):
            for batch in collector.collect(None):
                batches.append(batch)

    assert [item.external_id for item in batches[0].items] == ["p1", "p2"]


def test_wrong_items_path_fails(server):
    server.route("/api", json_reply({"data": {"list": {"not": "a list"}}}))

    with pytest.raises(CollectorError, match="expected a list of records"):
        collect(api_source(server.url("/api")))


def test_build_collector_json(server):
    config = Config(brand=None, sources=())

    collector = build_collector(api_source(server.url("/api")), config)

    assert isinstance(collector, JsonCollector)
