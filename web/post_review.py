"""The review section of the post page: review state, notes, corrections,
the post's alert and the choices of the action forms."""

from __future__ import annotations

from typing import Any

from items import KINDS, LEVELS
from storage.reviews import MAX_NOTE_LENGTH, PostReviews
from storage.web_tables import RESOLUTIONS

from .state import state

RESOLUTION_NAMES_ZH = {
    "handled": "已处理",
    "no_action": "无需处理",
    "false_alarm": "误报",
    "duplicate": "重复",
}
STATUS_NAMES_ZH = {"open": "待处理", "assigned": "已指派", "closed": "已关闭"}
ALERT_STATUS_NAMES_ZH = {"open": "待确认", "acknowledged": "已确认", "closed": "已关闭"}


def review_context(post_id: int) -> dict[str, Any]:
    """Return the template values of the post page's review section."""
    shared = state()
    users = [
        user
        for user in shared.accounts.list_users()
        if not user.disabled and user.role != "viewer"
    ]
    return {
        "review": PostReviews(shared.store.engine).overview(post_id),
        "assignable_users": users,
        "kinds": KINDS,
        "levels": LEVELS,
        "resolutions": RESOLUTIONS,
        "resolution_names": RESOLUTION_NAMES_ZH,
        "status_names": STATUS_NAMES_ZH,
        "alert_status_names": ALERT_STATUS_NAMES_ZH,
        "max_note_length": MAX_NOTE_LENGTH,
    }
