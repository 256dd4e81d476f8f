"""CSV downloads: formula cells neutralised, UTF-8 with BOM, every CSV route."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from graded_posts import HOSTILE_AUTHOR, HOSTILE_TEXT, HOSTILE_URL
from problem_posts import ProblemFiler
from review_client import WEEK_START, read_csv

from storage import store as store_module
from web.csv_export import FORMULA_STARTS, csv_response, csv_text, safe_cell

CSV_PATHS = (
    "/problems/1/posts.csv",
    "/report/recurrence.csv",
    "/report/root-causes.csv",
    "/report/deadlines.csv",
    "/report/acknowledge.csv",
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+86 138", "'+86 138"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\n=1", "'\n=1"),
        ("车主 =1", "车主 =1"),
        ("'=1", "'=1"),
        ("a\u202eb", "ab"),
        (None, ""),
        (-3, -3),
        (0.25, 0.25),
        (math.nan, ""),
        (True, True),
    ],
)
def test_safe_cell(value, expected) -> None:
    assert safe_cell(value) == expected


def test_csv_text_has_bom_and_crlf() -> None:
    text = csv_text(["列"], [["启程", 1], ['引号"和,逗号', None]])

    assert text == '\ufeff列\r\n启程,1\r\n"引号""和,逗号",\r\n'


def test_csv_file_name_checked(app) -> None:
    with app.test_request_context():
        with pytest.raises(ValueError, match="invalid CSV file name"):
            csv_response('a".csv', ["x"], [])
        with pytest.raises(ValueError, match="invalid CSV file name"):
            csv_response("../a.csv", ["x"], [])


def test_every_csv_neutralised(logged_in, sqlite_store, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "utcnow", lambda: WEEK_START + timedelta(hours=2))
    filer = ProblemFiler(sqlite_store)
    filer.file(
        "evil",
        1,
        11,
        label='=HYPERLINK("http://evil.example") ' + HOSTILE_TEXT,
        text="+" + HOSTILE_TEXT,
        author="-" + HOSTILE_AUTHOR,
        url=HOSTILE_URL,
        title="@evil",
        posted=WEEK_START + timedelta(hours=1),
    )
    client = logged_in("viewer")

    tables = {
        path: read_csv(client.get(path + "?week=2026-02-23")) for path in CSV_PATHS
    }

    for path, rows in tables.items():
        for row in rows:
            for cell in row:
                assert not cell.startswith(FORMULA_STARTS), (path, cell)
    [_, post] = tables["/problems/1/posts.csv"]
    assert post[6] == "'-" + HOSTILE_AUTHOR
    assert post[7] == HOSTILE_URL
    assert post[8] == "'@evil"
    assert post[9] == "'+" + HOSTILE_TEXT[:119] + "…"
    labels = [row[1] for row in tables["/report/recurrence.csv"]]
    assert '\'=HYPERLINK("http://evil.example") ' + HOSTILE_TEXT in labels
