"""The pages: the review queue, one post, and the audit log."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from items import FACTORS
from storage.queue import QUEUE_LEVELS
from storage.web_tables import REVIEW_STATUSES

from .auth import requires
from .cursors import decode_key, encode_key
from .post_review import review_context
from .queue_filter import MAX_ID, QUEUE_KINDS, read_queue_filter
from .state import state

blueprint = Blueprint("review", __name__)

QUEUE_PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 100


@blueprint.get("/")
def queue() -> str:
    queue_filter, filter_args = read_queue_filter(request.args, state().zone)
    after = request.args.get("after")
    try:
        key = None if not after else decode_key(after)
    except ValueError as exc:
        abort(400, f"翻页参数无效：{exc}")

    rows = state().queue.page(QUEUE_PAGE_SIZE + 1, queue_filter, key)
    next_after = None
    if len(rows) > QUEUE_PAGE_SIZE:
        rows = rows[:QUEUE_PAGE_SIZE]
        next_after = encode_key(rows[-1].key)
    brand = state().config.brand
    return render_template(
        "queue.html",
        rows=rows,
        filter_args=filter_args,
        next_after=next_after,
        first_page=key is None,
        levels=QUEUE_LEVELS,
        kinds=QUEUE_KINDS,
        statuses=REVIEW_STATUSES,
        sources=[source.name for source in state().config.sources],
        brands=[brand.name, *(c.name for c in brand.competitors)],
        models=[*brand.models, *(m for c in brand.competitors for m in c.models)],
    )


@blueprint.get(f"/posts/<int(max={MAX_ID}):post_id>")
def post(post_id: int) -> str:
    record = state().store.get_post(post_id)
    if record is None:
        abort(404, f"没有编号为 {post_id} 的帖子。")
    return render_template(
        "post.html", record=record, factors=FACTORS, **review_context(post_id)
    )


@blueprint.get("/audit")
@requires("lead")
def audit() -> str:
    before = _positive_id(request.args.get("before"))
    entries = state().accounts.audit_entries(AUDIT_PAGE_SIZE + 1, before)
    next_before = None
    if len(entries) > AUDIT_PAGE_SIZE:
        entries = entries[:AUDIT_PAGE_SIZE]
        next_before = entries[-1].id
    return render_template(
        "audit.html", entries=entries, next_before=next_before, first_page=not before
    )


def _positive_id(value: str | None) -> int | None:
    """Read an id parameter: None when absent or empty, else 400 when invalid."""
    if not value:
        return None
    digits = value.isascii() and value.isdigit() and len(value) <= len(str(MAX_ID))
    if not digits or not 0 < int(value) <= MAX_ID:
        abort(400, f"翻页参数无效：{value[:40]}")
    return int(value)
