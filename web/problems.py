"""The problem pages: the list of problems (同类投诉) and one problem with its
posts, authors, incidents, timeline chart and CSV of posts."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request

from alerts import charts
from storage.problem_pages import ProblemDetail, ProblemPages

from .csv_export import csv_response
from .images import png_response
from .state import state
from .views import MAX_ID

blueprint = Blueprint("problems", __name__)
blueprint.app_context_processor(
    lambda: {"root_cause_names": charts.ROOT_CAUSE_NAMES_ZH}
)

PROBLEMS_PAGE_SIZE = 50
# Posts, incidents and authors shown on a problem's page. The CSV has every post.
DETAIL_ROWS = 200
MAX_PAGE = 100_000
POSTS_CSV_HEADER = (
    "帖子编号",
    "事件编号",
    "发布时间",
    "原创",
    "来源",
    "平台",
    "作者",
    "链接",
    "标题",
    "正文摘录",
    "类型",
    "级别",
)


@blueprint.get("/problems")
def problem_list() -> str:
    page = _page_number()
    pages = ProblemPages(state().store.engine)
    rows = pages.page(PROBLEMS_PAGE_SIZE + 1, (page - 1) * PROBLEMS_PAGE_SIZE)
    has_next = len(rows) > PROBLEMS_PAGE_SIZE
    return render_template(
        "problems.html",
        problems=rows[:PROBLEMS_PAGE_SIZE],
        page=page,
        has_next=has_next,
    )


@blueprint.get(f"/problems/<int(max={MAX_ID}):problem_id>")
def problem(problem_id: int) -> str:
    detail = _detail(problem_id)
    return render_template("problem.html", detail=detail, shown=DETAIL_ROWS)


@blueprint.get(f"/problems/<int(max={MAX_ID}):problem_id>/timeline.png")
def timeline(problem_id: int) -> Response:
    detail = _detail(problem_id)
    return png_response(charts.posts_by_day(detail.days, detail.posts_by_day))


@blueprint.get(f"/problems/<int(max={MAX_ID}):problem_id>/posts.csv")
def posts_csv(problem_id: int) -> Response:
    pages = ProblemPages(state().store.engine)
    if pages.find(problem_id) is None:
        abort(404, f"没有编号为 {problem_id} 的问题。")
    zone = state().zone
    rows = (
        (
            post.post_id,
            post.incident_id,
            post.posted_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            "是" if post.report else "否",
            post.source,
            post.platform,
            post.author_name,
            post.url,
            post.title,
            post.excerpt + ("…" if post.truncated else ""),
            post.kind,
            post.level,
        )
        for post in pages.all_posts(problem_id)
    )
    return csv_response(f"problem-{problem_id}-posts.csv", POSTS_CSV_HEADER, rows)


def _detail(problem_id: int) -> ProblemDetail:
    pages = ProblemPages(state().store.engine)
    detail = pages.detail(problem_id, state().zone, limit=DETAIL_ROWS)
    if detail is None:
        abort(404, f"没有编号为 {problem_id} 的问题。")
    return detail


def _page_number() -> int:
    """Read the page number from the query string, or abort with 400 when invalid."""
    value = request.args.get("page") or "1"
    if not (value.isascii() and value.isdigit() and len(value) <= 6):
        abort(400, f"页码无效：{value[:40]}")
    page = int(value)
    if not 1 <= page <= MAX_PAGE:
        abort(400, f"页码无效：{value}")
    return page
