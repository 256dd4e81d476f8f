"""The problem pages' queries on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from graded_posts import T0, regrade
from problem_posts import ProblemFiler

from storage.problem_pages import EXCERPT_CHARS, TIMELINE_DAYS, ProblemPages

ZONE = ZoneInfo("Asia/Shanghai")


def test_problem_page_rows(store) -> None:
    filer = ProblemFiler(store)
    first = filer.file("a", 1, 11, posted=T0, author="车主小王", text="长" * 200)
    second = filer.file(
        "b", 1, 11, posted=T0 + timedelta(hours=1), author=None, report=False
    )
    third = filer.file(
        "c", 1, 12, posted=T0 + timedelta(days=1), author="车主小王", kind="grievance"
    )
    regrade(store, third, "critical", None)
    filer.file("d", 2, 21, posted=T0 + timedelta(days=2), label="QC5 · 异响")
    pages = ProblemPages(store.engine)

    detail = pages.detail(1, ZONE, limit=10)

    assert [post.post_id for post in detail.posts] == [third, second, first]
    newest, repost, oldest = detail.posts
    assert (newest.kind, newest.level) == ("grievance", "critical")
    assert repost.report is False
    assert repost.author_name is None
    assert oldest.truncated is True
    assert len(oldest.excerpt) == EXCERPT_CHARS
    assert [incident.id for incident in detail.incidents] == [12, 11]
    assert detail.incidents[1].first_seen == T0
    assert [(a.name, a.posts) for a in detail.authors] == [("车主小王", 2), (None, 1)]
    assert detail.problem.models == {"QC7": 3}
    assert detail.posts_by_day == (2, 1)
    assert [row.id for row in pages.page(10)] == [2, 1]
    assert [row.id for row in pages.page(10, offset=1)] == [1]
    assert pages.count() == 2
    assert pages.find(3) is None
    assert pages.detail(3, ZONE, limit=10) is None
    assert len(pages.all_posts(1)) == 3


def test_problem_detail_limits(store) -> None:
    filer = ProblemFiler(store)
    for number in range(5):
        filer.file(str(number), 1, number, posted=T0 + timedelta(days=number * 40))

    detail = ProblemPages(store.engine).detail(1, ZONE, limit=2)

    assert len(detail.posts) == 2
    assert len(detail.incidents) == 2
    assert len(detail.days) == TIMELINE_DAYS
    assert sum(detail.posts_by_day) == 3
