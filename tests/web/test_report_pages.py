"""The report page: its tables, charts and CSV downloads, and hostile labels."""

from __future__ import annotations

from datetime import timedelta

import pytest
from graded_posts import HOSTILE_TEXT
from problem_posts import ProblemFiler
from review_client import PNG_SIGNATURE, WEEK_START, read_csv
from test_pages import assert_inert, soup_of

from storage import store as store_module

CHART_NAMES = ("recurrence", "root-causes", "deadlines", "acknowledge")
HOSTILE_LABEL = "=cmd|' /C calc'!A0 <script>alert(5)</script>"


@pytest.fixture
def filer(sqlite_store, monkeypatch) -> ProblemFiler:
    # Gradings are stamped with the store's clock; the report counts a post
    # in the week of its first grading.
    monkeypatch.setattr(store_module, "utcnow", lambda: WEEK_START + timedelta(hours=2))
    return ProblemFiler(sqlite_store)


@pytest.fixture
def reported(filer) -> ProblemFiler:
    posted = WEEK_START + timedelta(hours=1)
    filer.file("a", 1, 11, posted=posted, label=HOSTILE_LABEL, text=HOSTILE_TEXT)
    filer.file("b", 2, 21, posted=posted, label="QC5 · 异响", root_cause="service")
    filer.file("c", 2, 22, posted=posted, label="QC5 · 异响", root_cause="service")
    return filer


def test_report_page(logged_in, reported) -> None:
    soup = soup_of(logged_in("viewer").get("/report"))

    assert "2026-01-05 至 2026-03-01" in soup.h1.get_text()
    rows = soup.select("#recurrence table tbody tr")
    assert [cell.get_text() for cell in rows[0].find_all("td")][-1] == "3"
    by_label = {
        row.td.get_text(): row.find_all("td")[-1].get_text() for row in rows[1:]
    }
    assert by_label["QC5 · 异响"] == "67%2 起"
    assert by_label[HOSTILE_LABEL] == "33%1 起"
    causes = soup.select("#root-causes table tbody tr")[-1].find_all("td")
    assert [cell.get_text() for cell in causes] == [
        "2026-02-23",
        "1",
        "2",
        "0",
        "0",
        "3",
    ]
    deadline_text = soup.select_one("#deadlines").get_text()
    assert "handled" in deadline_text
    assert "不计入比例" in deadline_text


def test_report_charts_are_png(logged_in, reported) -> None:
    client = logged_in("viewer")
    soup = soup_of(client.get("/report?week=2026-02-25"))
    sources = [image["src"] for image in soup.find_all("img")]

    assert sources == [f"/report/{name}.png?week=2026-02-23" for name in CHART_NAMES]
    for source in sources:
        response = client.get(source)
        assert response.status_code == 200, source
        assert response.mimetype == "image/png"
        assert response.get_data().startswith(PNG_SIGNATURE)


def test_report_csv_tables(logged_in, reported) -> None:
    client = logged_in("viewer")

    recurrence = read_csv(client.get("/report/recurrence.csv?week=2026-02-23"))
    causes = read_csv(client.get("/report/root-causes.csv?week=2026-02-23"))
    deadlines = read_csv(client.get("/report/deadlines.csv?week=2026-02-23"))
    acknowledge = read_csv(client.get("/report/acknowledge.csv?week=2026-02-23"))

    assert recurrence[0][:3] == ["问题编号", "问题", "根因"]
    assert recurrence[1][1] == "全部问题"
    assert recurrence[1][-2:] == ["3", ""]
    labels = {row[1]: row[-1] for row in recurrence[2:]}
    assert labels["'" + HOSTILE_LABEL] == "0.3333"
    assert labels["QC5 · 异响"] == "0.6667"
    assert causes[-1] == ["2026-02-23", "1", "2", "0", "0", "3"]
    assert len(deadlines) == 1 + 8 * 3
    assert deadlines[-2][:3] == ["2026-02-23", "中等", "3"]
    assert len(acknowledge) == 1 + 8 * 3
    assert acknowledge[-1][2] == "0"


def test_report_csv_file_name(logged_in) -> None:
    response = logged_in("viewer").get("/report/deadlines.csv?week=2026-02-26")

    assert response.headers["Content-Disposition"] == (
        'attachment; filename="report-deadlines-2026-02-23.csv"'
    )


def test_report_hostile_label_inert(logged_in, reported) -> None:
    soup = soup_of(logged_in("viewer").get("/report"))

    for image in soup.find_all("img"):
        assert image["src"].startswith("/report/")
        image.decompose()
    assert_inert(soup)
    assert HOSTILE_LABEL in soup.get_text()


@pytest.mark.parametrize(
    "week",
    ["abc", "2026-02-30", "1999-12-31", "2101-01-03", "2026-2-3", "２０２６-02-23"],
)
def test_report_week_checked(logged_in, week) -> None:
    client = logged_in("viewer")

    assert client.get(f"/report?week={week}").status_code == 400
    assert client.get(f"/report/deadlines.csv?week={week}").status_code == 400
    assert client.get(f"/report/deadlines.png?week={week}").status_code == 400


def test_report_unknown_table_404(logged_in) -> None:
    client = logged_in("viewer")

    assert client.get("/report/other.csv").status_code == 404
    assert client.get("/report/other.png").status_code == 404


def test_report_empty_store(logged_in) -> None:
    client = logged_in("viewer")

    soup = soup_of(client.get("/report"))

    assert "这几周没有归类的问题" in soup.get_text()
    for name in CHART_NAMES:
        assert client.get(f"/report/{name}.png").status_code == 200
        assert len(read_csv(client.get(f"/report/{name}.csv"))) >= 1
