"""The queue and post pages, rendered through the Flask test client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from graded_posts import (
    HOSTILE_AUTHOR,
    HOSTILE_TEXT,
    HOSTILE_URL,
    T0,
    add_graded_post,
    regrade,
)
from review_client import NOW

from web.views import QUEUE_PAGE_SIZE


def soup_of(response) -> BeautifulSoup:
    assert response.status_code == 200, response.get_data(as_text=True)
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def assert_inert(soup: BeautifulSoup) -> None:
    """Check that no element of the page can run script."""
    assert soup.find_all("script") == []
    assert soup.find_all(["img", "svg", "iframe", "object", "embed"]) == []
    for element in soup.find_all(True):
        for attribute, value in element.attrs.items():
            assert not attribute.lower().startswith("on"), (element.name, attribute)
            text = " ".join(value) if isinstance(value, list) else value
            assert "javascript:" not in text.lower(), (element.name, attribute)


def queue_ids(soup: BeautifulSoup) -> list[int]:
    links = soup.select("table.queue td.snippet a")
    return [int(link["href"].rsplit("/", 1)[1]) for link in links]


def test_hostile_post_on_queue(logged_in, sqlite_store) -> None:
    add_graded_post(
        sqlite_store, "evil", text=HOSTILE_TEXT, author=HOSTILE_AUTHOR, url=HOSTILE_URL
    )

    soup = soup_of(logged_in("viewer").get("/"))

    assert_inert(soup)
    row = soup.select_one("table.queue tbody tr")
    assert HOSTILE_AUTHOR in row.get_text()
    snippet = row.select_one("td.snippet").get_text()
    assert snippet == " ".join(HOSTILE_TEXT[:80].split())


def test_hostile_post_page(logged_in, sqlite_store) -> None:
    post_id = add_graded_post(
        sqlite_store, "evil", text=HOSTILE_TEXT, author=HOSTILE_AUTHOR, url=HOSTILE_URL
    )

    soup = soup_of(logged_in("viewer").get(f"/posts/{post_id}"))

    assert_inert(soup)
    assert soup.select_one(".post-text").get_text() == HOSTILE_TEXT
    assert HOSTILE_AUTHOR in soup.select_one(".facts").get_text()
    assert soup.select_one(".unsafe-link").get_text() == HOSTILE_URL


def test_post_page_shows_assessment(logged_in, sqlite_store) -> None:
    post_id = add_graded_post(sqlite_store, "1", level="critical")

    soup = soup_of(logged_in("viewer").get(f"/posts/{post_id}"))
    text = soup.get_text()

    assert "危机" in text
    assert "投诉" in text
    assert "刹车异响多次维修未果，车主要求退车" in soup.select_one(".reason").get_text()
    factors = [row.get_text(" ", strip=True) for row in soup.select("table.factors tr")]
    assert any(
        "客户损失" in row and "2 / 3" in row and "维修费 8000 元" in row
        for row in factors
    )
    assert any("企业过失" in row and "售后推诿三次" in row for row in factors)
    assert "点赞 15 · 转发 7 · 评论 3" in text
    assert "车主小王" in text
    # The deadline, 08:00 UTC, is 16:00 in Shanghai, the config's time zone.
    assert "2026-03-02 16:00" in text
    link = soup.select_one(".facts a")
    assert link["href"] == "https://weibo.example/1"
    assert "noopener" in link["rel"]


def test_unknown_post_is_404(logged_in) -> None:
    client = logged_in("viewer")

    assert client.get("/posts/999").status_code == 404
    assert client.get(f"/posts/{2**63}").status_code == 404


def test_queue_rows_show_columns(logged_in, sqlite_store) -> None:
    long_text = "刹车" * 100
    add_graded_post(sqlite_store, "1", level="critical", text=long_text)

    soup = soup_of(logged_in("viewer").get("/"))
    cells = [cell.get_text(" ", strip=True) for cell in soup.select("tbody tr td")]

    assert cells[0] == "危机"
    assert cells[1] == "投诉"
    assert cells[2] == long_text[:80]
    assert cells[3] == "车主小王"
    assert cells[4].startswith("weibo-rss")
    assert cells[5] == "2026-03-01 16:00"
    # The clock is at 09:00 UTC and the deadline is 24 hours after 08:00.
    assert cells[6] == "2026-03-02 16:00 剩 23 小时 0 分"


def test_queue_order(logged_in, sqlite_store) -> None:
    soon = T0 + timedelta(hours=2)
    late = T0 + timedelta(hours=20)
    ids = {
        "medium-soon": add_graded_post(
            sqlite_store, "1", level="medium", deadline=soon
        ),
        "critical-late": add_graded_post(
            sqlite_store, "2", level="critical", deadline=late
        ),
        "critical-overdue": add_graded_post(
            sqlite_store, "3", level="critical", deadline=NOW - timedelta(hours=1)
        ),
        "critical-late-newer": add_graded_post(
            sqlite_store,
            "4",
            level="critical",
            deadline=late,
            created_at=T0 + timedelta(minutes=30),
        ),
        "medium-none": add_graded_post(
            sqlite_store, "5", level="medium", deadline=None
        ),
        "normal": add_graded_post(sqlite_store, "6", level="normal"),
        "ungraded": add_graded_post(sqlite_store, "7", level=None, kind="praise"),
    }

    soup = soup_of(logged_in("viewer").get("/"))

    assert queue_ids(soup) == [
        ids["critical-overdue"],
        ids["critical-late-newer"],
        ids["critical-late"],
        ids["medium-soon"],
        ids["medium-none"],
    ]
    assert "已超时 1 小时 0 分" in soup.get_text()


def test_queue_uses_latest_grading(logged_in, sqlite_store) -> None:
    raised = add_graded_post(sqlite_store, "1", level="normal")
    lowered = add_graded_post(sqlite_store, "2", level="critical")
    regrade(sqlite_store, raised, "medium", None)
    regrade(sqlite_store, lowered, "normal", None)

    soup = soup_of(logged_in("viewer").get("/"))

    assert queue_ids(soup) == [raised]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("level=critical", ["c-weibo", "c-forum"]),
        ("level=medium", ["m-grievance"]),
        ("kind=grievance", ["m-grievance"]),
        ("source=forum", ["c-forum"]),
        ("level=critical&source=weibo-rss", ["c-weibo"]),
        ("level=&kind=&source=", ["c-weibo", "c-forum", "m-grievance"]),
    ],
)
def test_queue_filters(logged_in, sqlite_store, query, expected) -> None:
    ids = {
        "c-weibo": add_graded_post(sqlite_store, "1", level="critical"),
        "c-forum": add_graded_post(
            sqlite_store,
            "2",
            level="critical",
            source="forum",
            created_at=T0 - timedelta(hours=1),
        ),
        "m-grievance": add_graded_post(
            sqlite_store, "3", level="medium", kind="grievance"
        ),
    }

    soup = soup_of(logged_in("viewer").get(f"/?{query}"))

    assert queue_ids(soup) == [ids[name] for name in expected]


@pytest.mark.parametrize(
    "query",
    [
        "level=low",
        "level=<script>",
        "kind=rant",
        "source=a b",
        "after=not-a-cursor",
        "after=WyJtZWRpdW0iXQ",
        "after=" + "A" * 500,
    ],
)
def test_queue_rejects_bad_parameters(logged_in, query) -> None:
    response = logged_in("viewer").get(f"/?{query}")

    assert response.status_code == 400
    assert "<script>" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "无效的日期"),
        ("to=2026-3-1", "无效的日期"),
        ("from=1900-01-01", "日期超出范围"),
        ("from=2026-03-02&to=2026-03-01", "开始日期晚于结束日期"),
        ("problem=abc", "无效的问题编号"),
        ("problem=0", "无效的问题编号"),
        ("problem=99999999999999999999", "无效的问题编号"),
        ("status=pending", "未知的处理状态"),
        ("assignee=Wang Li", "无效的处理人用户名"),
        ("brand=" + "启" * 65, "无效的品牌名"),
        ("model=Q%0AC7", "无效的车型名"),
        ("q=车", "至少要两个字"),
        ("q=%21%21%21", "没有可搜索的文字"),
        ("q=" + "刹" * 101, "搜索词太长"),
    ],
)
def test_queue_rejects_bad_filters(logged_in, query, message) -> None:
    response = logged_in("viewer").get(f"/?{query}")

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    [
        "q=%27%20OR%201%3D1%20--",
        "q=NEAR(%E5%88%B9%E8%BD%A6%20a)",
        "brand=%27%20OR%20%271%27%3D%271",
        "model=%22%3B%20DROP%20TABLE%20posts%3B",
        "assignee=a%27--",
    ],
)
def test_queue_hostile_filters_match_nothing(logged_in, sqlite_store, query) -> None:
    add_graded_post(sqlite_store, "1", level="critical")
    client = logged_in("viewer")

    response = client.get(f"/?{query}")

    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert queue_ids(soup_of(response)) == []
    assert len(queue_ids(soup_of(client.get("/")))) == 1


def test_queue_search(logged_in, sqlite_store) -> None:
    failing = add_graded_post(sqlite_store, "1", text="QC7 刹车失灵，差点追尾")
    add_graded_post(sqlite_store, "2", text="车机死机三次")
    client = logged_in("viewer")

    found = soup_of(client.get("/?q=刹车"))
    empty = soup_of(client.get("/?q="))

    assert queue_ids(found) == [failing]
    assert found.find("input", attrs={"name": "q"})["value"] == "刹车"
    assert len(queue_ids(empty)) == 2


def test_queue_date_filter_uses_config_zone(logged_in, sqlite_store) -> None:
    # T0 is 08:00 UTC, 16:00 in Shanghai; 17:00 UTC is already the next day.
    early = add_graded_post(sqlite_store, "1", created_at=T0)
    late = add_graded_post(sqlite_store, "2", created_at=T0 + timedelta(hours=9))
    client = logged_in("viewer")

    first_day = soup_of(client.get("/?from=2026-03-01&to=2026-03-01"))
    second_day = soup_of(client.get("/?from=2026-03-02"))

    assert queue_ids(first_day) == [early]
    assert queue_ids(second_day) == [late]


def test_queue_pages_keep_search_and_model(logged_in, sqlite_store) -> None:
    for i in range(QUEUE_PAGE_SIZE + 2):
        add_graded_post(sqlite_store, f"c{i}", text="刹车失灵")
    add_graded_post(sqlite_store, "other", text="车机死机")
    client = logged_in("viewer")

    soup = soup_of(client.get("/?q=刹车&model=QC7"))
    href = soup.find("a", string="下一页")["href"]
    second = soup_of(client.get(href))

    assert "model=QC7" in href
    assert len(queue_ids(second)) == 2


def test_queue_pages(logged_in, sqlite_store) -> None:
    total = QUEUE_PAGE_SIZE * 2 + 5
    for i in range(total):
        add_graded_post(
            sqlite_store,
            str(i),
            level="critical" if i % 3 == 0 else "medium",
            deadline=T0 + timedelta(hours=i % 7),
            created_at=T0 - timedelta(minutes=i % 11),
        )
    client = logged_in("viewer")

    seen: list[int] = []
    path = "/?"
    pages = 0
    while path:
        soup = soup_of(client.get(path))
        seen.extend(queue_ids(soup))
        pages += 1
        link = soup.find("a", string="下一页")
        path = link["href"] if link else None

    assert pages == 3
    assert len(seen) == total
    assert len(set(seen)) == total
    assert soup.find("a", string="第一页") is not None


def test_queue_pages_keep_filters(logged_in, sqlite_store) -> None:
    for i in range(QUEUE_PAGE_SIZE + 1):
        add_graded_post(sqlite_store, f"c{i}", level="critical")
    add_graded_post(sqlite_store, "m", level="medium")

    soup = soup_of(logged_in("viewer").get("/?level=critical"))
    href = soup.find("a", string="下一页")["href"]
    second = soup_of(logged_in("viewer").get(href))

    assert "level=critical" in href
    assert len(queue_ids(second)) == 1


def test_empty_queue(logged_in) -> None:
    soup = soup_of(logged_in("viewer").get("/"))

    assert "没有符合条件的待处理帖子" in soup.get_text()
    assert soup.find("a", string="下一页") is None


BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def test_bidi_controls_stripped(logged_in, sqlite_store) -> None:
    text = "QC7 刹车\u202e失灵 gnp.exe\u202c 要求\u2067退车\u2069"
    author = "车主\u202e小王\u2066"
    post_id = add_graded_post(sqlite_store, "bidi", text=text, author=author)
    client = logged_in("viewer")

    for path in ("/", f"/posts/{post_id}"):
        page = client.get(path).get_data(as_text=True)
        assert not any(control in page for control in BIDI_CONTROLS), path
        assert "车主小王" in page

    soup = soup_of(client.get(f"/posts/{post_id}"))
    assert soup.select_one(".post-text")["dir"] == "auto"
    assert soup.select_one(".post-text").get_text() == "QC7 刹车失灵 gnp.exe 要求退车"
    assert soup.find("bdi", string="车主小王") is not None
