"""Analysts' actions on a post: confirm or correct its kind and level, assign,
note, acknowledge its alert, close and reopen.

Each action is a POST form. The change and its audit entry are written in one
transaction, so neither is stored without the other. Values are checked
before anything is written. An unknown choice, a user who cannot be
assigned, an over-long note or invisible control characters get 400 with a
message in Chinese. A change that does not fit the post's state gets 409.
Viewers are turned away with 403 by :func:`web.auth.load_session`.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, g, redirect, request, url_for
from sqlalchemy import Connection

from items import KINDS, LEVELS
from storage import alert_store
from storage.accounts import NAME_PATTERN, enabled_user
from storage.reviews import (
    MAX_NOTE_LENGTH,
    PostClosed,
    PostNotClosed,
    PostReviews,
    add_correction,
    add_note,
    close,
    current_value,
    post_alert,
    reopen,
    review_state,
    set_assignee,
)
from storage.web_tables import RESOLUTIONS

from .audit import record_in
from .state import state
from .views import MAX_ID

logger = logging.getLogger(__name__)

blueprint = Blueprint("actions", __name__)

POST_PATH = f"/posts/<int(max={MAX_ID}):post_id>"
SATISFACTION = {"yes": True, "no": False, "unknown": None}
# Characters shown of a rejected value in an error message.
DISPLAYED_VALUE_LENGTH = 32
# Line breaks and tabs are the only control characters a note may contain.
NOTE_WHITESPACE = frozenset("\n\t")

CLOSED_CONFLICT = "此帖已关闭，请先重新打开。"
NOT_CLOSED_CONFLICT = "此帖没有关闭，无需重新打开。"


@blueprint.post(f"{POST_PATH}/kind")
def correct_kind(post_id: int) -> Response:
    kind = _choice("kind", KINDS, "类型")
    return _act(post_id, lambda c: _correct(c, post_id, "kind", kind))


@blueprint.post(f"{POST_PATH}/level")
def correct_level(post_id: int) -> Response:
    level = _choice("level", LEVELS, "级别")
    return _act(post_id, lambda c: _correct(c, post_id, "level", level))


@blueprint.post(f"{POST_PATH}/assign")
def assign(post_id: int) -> Response:
    name = request.form.get("assignee", "")
    if not NAME_PATTERN.fullmatch(name):
        abort(400, f"无效的用户名：{_display_value(name)}")

    def change(connection: Connection) -> None:
        user = enabled_user(connection, name)
        if user is None:
            abort(400, f"没有名为 {name} 的可用账号（不存在或已停用）。")
        if user.role == "viewer":
            abort(400, f"{name} 是只读账号，不能被指派。")
        before = review_state(connection, post_id).assignee
        _settle(set_assignee, connection, post_id, name)
        record_in(
            connection,
            "post.assign",
            ("post", post_id),
            {"assignee": name, "previous": before},
        )

    return _act(post_id, change)


@blueprint.post(f"{POST_PATH}/unassign")
def unassign(post_id: int) -> Response:
    def change(connection: Connection) -> None:
        before = review_state(connection, post_id).assignee
        _settle(set_assignee, connection, post_id, None)
        record_in(connection, "post.unassign", ("post", post_id), {"previous": before})

    return _act(post_id, change)


@blueprint.post(f"{POST_PATH}/notes")
def note(post_id: int) -> Response:
    text = _note_text(request.form.get("text", ""))

    def change(connection: Connection) -> None:
        note_id = add_note(connection, post_id, g.user.name, text, state().now())
        record_in(
            connection,
            "post.note",
            ("post", post_id),
            {"note_id": note_id, "characters": len(text)},
        )

    return _act(post_id, change)


@blueprint.post(f"{POST_PATH}/acknowledge")
def acknowledge(post_id: int) -> Response:
    def change(connection: Connection) -> None:
        alert = post_alert(connection, post_id)
        if alert is None:
            abort(400, "此帖没有预警，无需确认。")
        changed = alert_store.acknowledge(
            connection, alert.id, g.user.name, state().now()
        )
        if not changed:
            acknowledged_by = alert.acknowledged_by or "他人"
            abort(409, f"预警 {alert.id} 已由 {acknowledged_by} 确认或已关闭。")
        record_in(
            connection, "alert.acknowledge", ("post", post_id), {"alert_id": alert.id}
        )

    return _act(post_id, change)


@blueprint.post(f"{POST_PATH}/close")
def close_post(post_id: int) -> Response:
    resolution = _choice("resolution", RESOLUTIONS, "处理结果")
    answer = request.form.get("satisfied") or "unknown"

    def change(connection: Connection) -> None:
        satisfied = _satisfaction(answer, current_value(connection, post_id, "kind"))
        _settle(close, connection, post_id, resolution, satisfied)
        details = {"resolution": resolution, "satisfied": satisfied}
        record_in(connection, "post.close", ("post", post_id), details)

    return _act(post_id, change)


@blueprint.post(f"{POST_PATH}/reopen")
def reopen_post(post_id: int) -> Response:
    def change(connection: Connection) -> None:
        before = review_state(connection, post_id).resolution
        _settle(reopen, connection, post_id)
        record_in(connection, "post.reopen", ("post", post_id), {"previous": before})

    return _act(post_id, change)


def _act(post_id: int, change: Callable[[Connection], None]) -> Response:
    """Run ``change`` and its audit entry in one transaction, then show the post."""
    shared = state()
    if shared.store.get_post(post_id) is None:
        abort(404, f"没有编号为 {post_id} 的帖子。")
    with PostReviews(shared.store.engine).write() as connection:
        change(connection)
    logger.info(
        "post action done endpoint=%s post_id=%s user_id=%s",
        request.endpoint,
        post_id,
        g.user.id,
    )
    target = url_for("review.post", post_id=post_id, _anchor="review")
    return redirect(target, 303)


def _correct(connection: Connection, post_id: int, field: str, value: str) -> None:
    correction = add_correction(
        connection, post_id, field, value, g.user.name, state().now()
    )
    confirmed = correction.old_value == correction.new_value
    record_in(
        connection,
        "post.confirm" if confirmed else "post.correct",
        ("post", post_id),
        {
            "field": field,
            "old": correction.old_value,
            "new": correction.new_value,
            "correction_id": correction.id,
        },
    )


def _settle(action: Callable[..., Any], connection: Connection, *args: Any) -> None:
    """Run a review-state change as the logged-in user; 409 on a conflict."""
    try:
        action(connection, *args, g.user.name, state().now())
    except PostNotClosed:
        abort(409, NOT_CLOSED_CONFLICT)
    except PostClosed:
        abort(409, CLOSED_CONFLICT)


def _choice(field: str, allowed: tuple[str, ...], label: str) -> str:
    value = request.form.get(field, "")
    if value not in allowed:
        abort(
            400, f"未知的{label}：{_display_value(value)}。可选值：{'、'.join(allowed)}"
        )
    return value


def _satisfaction(answer: str, kind: str | None) -> bool | None:
    if answer not in SATISFACTION:
        abort(400, f"未知的满意度：{_display_value(answer)}。可选值：yes、no、unknown")
    if kind != "complaint" and answer != "unknown":
        abort(400, "只有投诉才记录客户是否满意；此帖不是投诉。")
    return SATISFACTION[answer]


def _note_text(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    if not text:
        abort(400, "笔记不能为空。")
    if len(text) > MAX_NOTE_LENGTH:
        abort(400, f"笔记过长：{len(text)} 个字符，最多 {MAX_NOTE_LENGTH} 个。")
    for position, character in enumerate(text, start=1):
        if character in NOTE_WHITESPACE:
            continue
        if unicodedata.category(character) in ("Cc", "Cf", "Co", "Cs", "Cn"):
            abort(
                400,
                f"笔记的第 {position} 个字符是不可见的控制字符"
                f"（U+{ord(character):04X}），请删除后重试。",
            )
    return text


def _display_value(value: str) -> str:
    """Return the start of a rejected value with invisible characters escaped."""
    head = value[:DISPLAYED_VALUE_LENGTH]
    shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in head)
    return shown + ("…" if len(value) > DISPLAYED_VALUE_LENGTH else "")
