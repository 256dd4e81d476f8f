"""The acknowledgement link of alert mails: the one page reachable without a
session.

The link carries a token that signs the alert's id (see
:func:`alerts.policy.ack_token`), and the token is the credential. Opening
the link shows a small form and acknowledges nothing, because mail scanners
follow links. Submitting the form acknowledges the alert. The form has a
CSRF token of its own in a cookie (double submit), like the login form. The
page shows only the alert's id, level and subject.
"""

from __future__ import annotations

import hmac
import logging
import re

from flask import Blueprint, Response, abort, render_template, request

from alerts import policy
from alerts.escalation import ack_secret

from .audit import record
from .auth import BAD_FORM, CSRF_FIELD, new_token, set_cookie
from .state import state
from .views import MAX_ID

logger = logging.getLogger(__name__)

blueprint = Blueprint("ack", __name__)

ACK_CSRF_COOKIE = "fenghuo_ack_csrf"
COOKIE_PATH = "/alerts/"
MAX_TOKEN_LENGTH = 64
MAX_NAME_LENGTH = 64
# The name recorded when the person who acknowledged leaves the field empty.
ANONYMOUS = "确认链接"
_CSRF_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

NO_SECRET = "确认链接未启用：服务器没有设置签名密钥。请登录烽火，或联系管理员。"
BAD_TOKEN = "确认链接无效或不完整。请打开预警邮件中的完整链接，或登录烽火处理。"


@blueprint.route(f"/alerts/<int(max={MAX_ID}):alert_id>/ack", methods=["GET", "POST"])
def confirm(alert_id: int) -> Response:
    """Show the confirmation form (GET) or acknowledge the alert (POST)."""
    values = request.args if request.method == "GET" else request.form
    token = values.get("token", "")
    _check_token(alert_id, token)
    shared = state()
    detail = shared.store.get_alert(alert_id)
    if detail is None:
        abort(404, f"没有编号为 {alert_id} 的预警。")
    if request.method == "GET":
        return _page(detail.alert, token)

    if not _same(request.form.get(CSRF_FIELD), request.cookies.get(ACK_CSRF_COOKIE)):
        logger.warning("ack form csrf token rejected alert=%s", alert_id)
        abort(403, BAD_FORM)
    by = _clean_name(request.form.get("name", "")) or ANONYMOUS
    try:
        changed = shared.store.acknowledge_alert(alert_id, by, now=shared.now())
    except LookupError:
        abort(404, f"没有编号为 {alert_id} 的预警。")
    if changed:
        address = request.remote_addr or "unknown"
        details = {"by": by, "via": "link", "address": address}
        record("alert.acknowledge", ("alert", alert_id), details)
        logger.info("alert acknowledged by link alert=%s address=%s", alert_id, address)
    alert = shared.store.get_alert(alert_id).alert
    return _page(alert, token, just_acknowledged=changed)


def _check_token(alert_id: int, token: str) -> None:
    secret = ack_secret(state().config.alerts)
    if not secret:
        abort(403, NO_SECRET)
    valid = len(token) <= MAX_TOKEN_LENGTH and policy.ack_token_valid(
        secret, alert_id, token
    )
    if not valid:
        logger.warning("ack link token rejected alert=%s", alert_id)
        abort(403, BAD_TOKEN)


def _page(alert, token: str, *, just_acknowledged: bool = False) -> Response:
    csrf = request.cookies.get(ACK_CSRF_COOKIE, "")
    if not _CSRF_TOKEN.fullmatch(csrf):
        csrf = new_token()
    body = render_template(
        "ack.html",
        alert=alert,
        token=token,
        form_token=csrf,
        just_acknowledged=just_acknowledged,
    )
    response = Response(body)
    set_cookie(response, ACK_CSRF_COOKIE, csrf, max_age=None, path=COOKIE_PATH)
    return response


def _clean_name(name: str) -> str:
    flat = " ".join(_UNSAFE.sub(" ", name).split())
    return flat[:MAX_NAME_LENGTH]


def _same(submitted: str | None, expected: str | None) -> bool:
    if not submitted or not expected:
        return False
    return hmac.compare_digest(submitted.encode(), expected.encode())
