"""The sources page: health, last success, lag, next run and recent errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from review_client import NOW
from test_pages import assert_inert, soup_of

from storage import store as store_module


class StoreClock:
    def __init__(self) -> None:
        self.now = NOW - timedelta(hours=5)

    def __call__(self):
        return self.now


@pytest.fixture
def store_clock(monkeypatch) -> StoreClock:
    clock = StoreClock()
    monkeypatch.setattr(store_module, "utcnow", clock)
    return clock


def run(store, clock: StoreClock, source: str, status: str, error=None) -> None:
    run_id = store.start_run(source)
    clock.now += timedelta(minutes=10)
    store.finish_run(
        run_id, status=status, fetched=3, new=1, duplicates=2, bad=0, error=error
    )
    clock.now += timedelta(minutes=10)


def rows_by_source(soup) -> dict[str, list[str]]:
    rows = soup.select("table.sources tbody tr[class^=health-]")
    return {
        row.td.get_text(): [
            cell.get_text(" ", strip=True) for cell in row.find_all("td")
        ]
        for row in rows
    }


def test_sources_page_health(logged_in, sqlite_store, store_clock) -> None:
    run(sqlite_store, store_clock, "demo", "ok")
    run(sqlite_store, store_clock, "weibo-rss", "ok")
    for _ in range(3):
        run(sqlite_store, store_clock, "weibo-rss", "failed", "HTTP 503 from feed")

    soup = soup_of(logged_in("viewer").get("/sources"))
    rows = rows_by_source(soup)

    assert rows["demo"][1] == "正常"
    # The demo's run finished 4 h 50 min before NOW; it runs every 15 minutes.
    assert rows["demo"][4] == "4 h 50 min"
    assert rows["demo"][5] == "2026-03-01 17:00"
    assert rows["weibo-rss"][1].startswith("已停滞")
    assert "连续失败 3 次" in rows["weibo-rss"][1]
    assert rows["weibo-rss"][5] == "不在配置中"
    errors = soup.select("tr.errors li .run-error")
    assert [error.get_text() for error in errors] == ["HTTP 503 from feed"] * 3
    assert soup.select_one("tr.errors details").has_attr("open")


def test_sources_page_never_run(logged_in) -> None:
    soup = soup_of(logged_in("viewer").get("/sources"))

    assert rows_by_source(soup)["demo"][2] == "从未运行"


def test_sources_page_hostile_error(logged_in, sqlite_store, store_clock) -> None:
    error = '<script>alert("run")</script><img src=x onerror=alert(6)>\u202eevil'
    run(sqlite_store, store_clock, "demo", "failed", error)

    page = logged_in("viewer").get("/sources")
    soup = soup_of(page)

    assert_inert(soup)
    assert "\u202e" not in page.get_data(as_text=True)
    shown = soup.select_one(".run-error").get_text()
    assert shown == '<script>alert("run")</script><img src=x onerror=alert(6)>evil'


def test_sources_page_read_only(logged_in) -> None:
    client = logged_in("viewer")
    soup = soup_of(client.get("/sources"))
    token = soup.find("input", attrs={"name": "csrf_token"})["value"]

    assert client.post("/sources", data={"csrf_token": token}).status_code == 403
    assert "<form" not in str(soup.main)
