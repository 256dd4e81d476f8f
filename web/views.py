"""The pages: the review queue, one post, and the audit log."""

from __future__ import annotations

import re

from flask import Blueprint, abort, render_template, request

from items import FACTORS, KINDS
from storage.queue import QUEUE_LEVELS, QueueFilter

from .auth import requires
from .cursors import decode_key, encode_key
from .post_review import review_context
from .state import state

blueprint = Blueprint("review", __name__)

QUEUE_PAGE_SIZE = 50
# The kinds offered in the queue's filter: the graded ones. The others are
# still accepted in the query string.
QUEUE_KINDS = ("complaint", "grievance")
AUDIT_PAGE_SIZE = 100
# The largest id of a BIGINT column.
MAX_ID = 2**63 - 1
_SOURCE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@blueprint.get("/")
def queue() -> str:
    queue_filter = _queue_filter()
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
    return render_template(
        "queue.html",
        rows=rows,
        queue_filter=queue_filter,
        next_after=next_after,
        first_page=key is None,
        levels=QUEUE_LEVELS,
        kinds=QUEUE_KINDS,
        sources=[source.name for source in state().config.sources],
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


def _queue_filter() -> QueueFilter:
    """Read the filters from the query string; 400 for a value out of range."""
    level = request.args.get("level") or None
    kind = request.args.get("kind") or None
    source = request.args.get("source") or None
    if level is not None and level not in QUEUE_LEVELS:
        abort(400, f"未知的级别：{level}")
    if kind is not None and kind not in KINDS:
        abort(400, f"未知的类型：{kind}")
    if source is not None and not _SOURCE_NAME.fullmatch(source):
        abort(400, f"无效的来源名：{source}")
    return QueueFilter(level=level, kind=kind, source=source)
