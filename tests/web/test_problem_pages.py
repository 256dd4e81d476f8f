"""The problem list, a problem's page, its timeline chart and its CSV."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from graded_posts import HOSTILE_AUTHOR, HOSTILE_TEXT, HOSTILE_URL, T0
from problem_posts import ProblemFiler
from review_client import PNG_SIGNATURE, read_csv
from test_pages import assert_inert, soup_of


@pytest.fixture
def filer(sqlite_store) -> ProblemFiler:
    return ProblemFiler(sqlite_store)


def test_problem_list(logged_in, filer) -> None:
    filer.file("a1", 1, 11, label="QC7 · 刹车失灵", posted=T0)
    filer.file("b1", 2, 21, label="QC5 · 续航虚标", root_cause="service", posted=T0)
    filer.file(
        "b2",
        2,
        22,
        label="QC5 · 续航虚标",
        root_cause="service",
        posted=T0 + timedelta(days=1),
    )

    soup = soup_of(logged_in("viewer").get("/problems"))

    rows = soup.select("table.problems tbody tr")
    assert [row.a.get_text() for row in rows] == ["QC5 · 续航虚标", "QC7 · 刹车失灵"]
    assert rows[0].a["href"] == "/problems/2"
    assert "服务" in rows[0].get_text()
    cells = [cell.get_text() for cell in rows[0].find_all("td")]
    assert cells[3:7] == ["2", "2", "2", "0"]


def test_problem_list_pages_checked(logged_in) -> None:
    client = logged_in("viewer")

    assert client.get("/problems?page=2").status_code == 200
    for page in ("0", "abc", "-1", "1.5", "9" * 40, "１"):
        assert client.get(f"/problems?page={page}").status_code == 400, page


def test_problem_page(logged_in, filer) -> None:
    first = filer.file("a1", 1, 11, posted=T0, author="车主小王")
    second = filer.file(
        "a2", 1, 11, posted=T0 + timedelta(hours=1), author="车主小李", report=False
    )
    third = filer.file(
        "a3", 1, 12, posted=T0 + timedelta(days=2), author="车主小王", level="critical"
    )

    soup = soup_of(logged_in("viewer").get("/problems/1"))

    assert "QC7 · 刹车失灵" in soup.h1.get_text()
    facts = soup.select_one("dl.facts").get_text()
    assert "产品" in facts
    assert "QC7（3 帖）" in facts
    links = [a["href"] for a in soup.select("table.problem-posts td.snippet a")]
    assert links == [f"/posts/{third}", f"/posts/{second}", f"/posts/{first}"]
    authors = {
        row.find_all("td")[0].get_text(): row.find_all("td")[2].get_text()
        for row in soup.select("table.authors tbody tr")
    }
    assert authors == {"车主小王": "2", "车主小李": "1"}
    incidents = [row.td.get_text() for row in soup.select("table.incidents tbody tr")]
    assert incidents == ["12", "11"]
    assert soup.select_one("img.chart")["src"] == "/problems/1/timeline.png"


def test_problem_timeline_png(logged_in, filer) -> None:
    filer.file("a1", 1, 11, posted=T0)
    filer.file("a2", 1, 11, posted=T0 + timedelta(days=3))
    client = logged_in("viewer")

    response = client.get("/problems/1/timeline.png")

    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.get_data().startswith(PNG_SIGNATURE)
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_problem_timeline_counts_days(sqlite_store, filer) -> None:
    from zoneinfo import ZoneInfo

    from storage.problem_pages import ProblemPages

    filer.file("a1", 1, 11, posted=T0)
    filer.file("a2", 1, 11, posted=T0 + timedelta(hours=1))
    filer.file("a3", 1, 12, posted=T0 + timedelta(days=3))

    detail = ProblemPages(sqlite_store.engine).detail(1, ZoneInfo("Asia/Shanghai"), 10)

    assert len(detail.days) == 4
    assert detail.posts_by_day == (2, 0, 0, 1)


def test_unknown_problem_404(logged_in) -> None:
    client = logged_in("viewer")

    assert client.get("/problems/99").status_code == 404
    assert client.get("/problems/99/timeline.png").status_code == 404
    assert client.get("/problems/99/posts.csv").status_code == 404
    assert client.get(f"/problems/{2**63}").status_code == 404


def test_hostile_post_on_problem_page(logged_in, filer) -> None:
    filer.file(
        "evil",
        1,
        11,
        label='<script>alert("label")</script>',
        text=HOSTILE_TEXT,
        author=HOSTILE_AUTHOR,
        url=HOSTILE_URL,
        title="<img src=x onerror=alert(4)>",
    )

    response = logged_in("viewer").get("/problems/1")
    soup = soup_of(response)

    # The only image is the chart from the page's own route.
    images = soup.find_all("img")
    assert [image["src"] for image in images] == ["/problems/1/timeline.png"]
    for image in images:
        image.decompose()
    assert_inert(soup)
    text = soup.get_text()
    assert '<script>alert("label")</script>' in text
    assert HOSTILE_AUTHOR in text
    assert HOSTILE_URL in text
    assert "<img src=x onerror=alert(4)>" in text
    list_soup = soup_of(logged_in("viewer").get("/problems"))
    assert_inert(list_soup)
    assert '<script>alert("label")</script>' in list_soup.get_text()


def test_problem_posts_csv(logged_in, filer) -> None:
    filer.file(
        "evil",
        1,
        11,
        text='=HYPERLINK("http://evil.example","点我") ' + HOSTILE_TEXT,
        author="@SUM(1+1)",
        url=HOSTILE_URL,
        title="-2+3",
    )
    filer.file("plain", 1, 12, posted=T0 + timedelta(hours=2), author="+86 车主")

    response = logged_in("viewer").get("/problems/1/posts.csv")
    rows = read_csv(response)

    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="problem-1-posts.csv"'
    )
    header, newest, evil = rows
    assert header[0] == "帖子编号"
    assert newest[6] == "'+86 车主"
    assert evil[6] == "'@SUM(1+1)"
    assert evil[7] == HOSTILE_URL
    assert evil[8] == "'-2+3"
    assert evil[9].startswith("'=HYPERLINK(")
    assert "<script>" in evil[9]


@pytest.mark.parametrize(
    "path",
    ["/problems", "/problems/1", "/problems/1/timeline.png", "/problems/1/posts.csv"],
)
def test_problem_pages_need_login(app, path) -> None:
    response = app.test_client().get(path)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_problem_page_read_only(logged_in, filer) -> None:
    filer.file("a1", 1, 11)
    client = logged_in("viewer")
    soup = BeautifulSoup(
        client.get("/problems/1").get_data(as_text=True), "html.parser"
    )
    token = soup.find("input", attrs={"name": "csrf_token"})["value"]

    for path in ("/problems", "/problems/1", "/problems/1/posts.csv"):
        response = client.post(path, data={"csrf_token": token})
        assert response.status_code in (403, 405), path
