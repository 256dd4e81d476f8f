"""Jinja filters and globals that show times, levels and kinds in Chinese."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import Flask, g
from markupsafe import Markup

from items import FACTOR_NAMES_ZH, KIND_NAMES_ZH, LEVEL_NAMES_ZH

from .auth import csrf_token, has_role
from .state import state

ROLE_NAMES_ZH = {"viewer": "只读", "analyst": "分析员", "lead": "主管"}
VERIFIED_NAMES_ZH = {
    "none": "未认证",
    "personal": "个人认证",
    "media": "媒体认证",
    "government": "政府认证",
    "enterprise": "企业认证",
}
SAFE_LINK_SCHEMES = ("http://", "https://")
# The embedding, override and isolate controls (U+202A to U+202E, U+2066 to
# U+2069) and the marks U+200E, U+200F and U+061C. In a post or a name they
# would reorder the text after them, the page's own words included, so every
# value a template prints loses them.
BIDI_CONTROLS = dict.fromkeys(
    [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]
)
REVIEW_STATUS_NAMES_ZH = {"open": "待处理", "assigned": "已分派", "closed": "已关闭"}
# The queue's level filter: a normal level is queued only for a high-risk
# grievance.
QUEUE_LEVEL_NAMES_ZH = {
    "critical": "危机",
    "medium": "中等",
    "normal": "普通（高风险抱怨）",
}


def register(app: Flask) -> None:
    """Add the filters and template globals to ``app``, and strip bidi
    controls from every value its templates print."""
    app.jinja_env.finalize = strip_bidi
    app.add_template_filter(local_time)
    app.add_template_filter(time_left)
    app.add_template_filter(one_line)
    app.add_template_filter(web_link)
    app.add_template_filter(as_json)
    app.add_template_global(csrf_token)
    app.add_template_global(has_role)
    app.add_template_global(LEVEL_NAMES_ZH, "level_names")
    app.add_template_global(KIND_NAMES_ZH, "kind_names")
    app.add_template_global(FACTOR_NAMES_ZH, "factor_names")
    app.add_template_global(ROLE_NAMES_ZH, "role_names")
    app.add_template_global(VERIFIED_NAMES_ZH, "verified_names")
    app.add_template_global(REVIEW_STATUS_NAMES_ZH, "review_status_names")
    app.add_template_global(QUEUE_LEVEL_NAMES_ZH, "queue_level_names")
    app.context_processor(lambda: {"current_user": g.get("user")})


def strip_bidi(value: Any) -> Any:
    """Return a string without the characters of :data:`BIDI_CONTROLS`.
    Other values are returned unchanged."""
    if isinstance(value, Markup):
        return Markup(str.translate(value, BIDI_CONTROLS))
    if isinstance(value, str):
        return value.translate(BIDI_CONTROLS)
    return value


def local_time(moment: datetime | None) -> str:
    """Format an aware datetime in the configured time zone."""
    if moment is None:
        return "—"
    return moment.astimezone(state().zone).strftime("%Y-%m-%d %H:%M")


def time_left(deadline: datetime | None) -> str:
    """Describe the time until ``deadline``, or how long ago it passed."""
    if deadline is None:
        return ""
    seconds = (deadline - state().now()).total_seconds()
    minutes = int(abs(seconds) // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        span = f"{days} 天 {hours} 小时"
    elif hours:
        span = f"{hours} 小时 {minutes} 分"
    else:
        span = f"{minutes} 分"
    return f"剩 {span}" if seconds >= 0 else f"已超时 {span}"


def one_line(text: str | None) -> str:
    """Collapse line breaks and runs of white space into single spaces."""
    return " ".join((text or "").split())


def web_link(url: str | None) -> str | None:
    """Return ``url`` when it is an http or https address, else None.

    Other schemes (``javascript:``, ``data:``) are shown as text, never linked.
    """
    if url and url.strip().lower().startswith(SAFE_LINK_SCHEMES):
        candidate = url.strip()
        if candidate.isprintable():
            return candidate
    return None


def as_json(value: Any) -> str:
    """Return ``value`` as compact JSON with Chinese left readable (escaped by Jinja)."""
    if not value:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
