"""Jinja filters and globals that show times, levels and kinds in Chinese."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import Flask, g

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


def register(app: Flask) -> None:
    """Add the filters and template globals to ``app``."""
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
    app.context_processor(lambda: {"current_user": g.get("user")})


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
