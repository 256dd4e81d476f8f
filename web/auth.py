"""Login, logout, sessions, CSRF tokens and roles.

A session is a random token in an HttpOnly, SameSite=Lax cookie. The
database keeps only its SHA-256, with the session's CSRF token, which every
form carries and every POST must return. The login form, used before any
session exists, gets its CSRF token from a cookie of its own instead
(double submit), signed with the application's secret key. Viewers read, analysts also act on posts, and leads also
see the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from itsdangerous import BadData, URLSafeTimedSerializer

from storage.accounts import NAME_PATTERN, SessionRecord, UserRecord

from . import throttle
from .audit import record
from .passwords import hash_password, needs_rehash, verify_password
from .redirects import local_target
from .state import state

logger = logging.getLogger(__name__)

blueprint = Blueprint("auth", __name__)

SESSION_COOKIE = "fenghuo_session"
LOGIN_CSRF_COOKIE = "fenghuo_login_csrf"
CSRF_FIELD = "csrf_token"
LOCKED_ACTION = "login.locked"
ROLE_RANKS = {"viewer": 0, "analyst": 1, "lead": 2}
# Endpoints that need no session. The acknowledgement link checks its own
# signed token and CSRF cookie.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "static", "ack.confirm"})
# Endpoints that a viewer may post to; every other POST needs an analyst.
VIEWER_POSTS = frozenset({"auth.logout"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A session's last use is written at most this often.
TOUCH_INTERVAL = timedelta(minutes=1)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
# The login form's cookie is signed with the application's secret key, so
# that a cookie set by someone else (a sibling subdomain, a network on plain
# HTTP) does not match any form field they can plant. A signature older than
# this is rejected and the page hands out a new one.
LOGIN_FORM_SECONDS = 24 * 3600
MAX_SIGNED_COOKIE = 200

WRONG_LOGIN = "用户名或密码不正确。"
LOCKED_LOGIN = "登录失败次数过多，已暂时锁定。请在 {until} 之后再试。"
BAD_FORM = "表单已失效（缺少或不匹配的校验码）。请刷新页面后重试。"
VIEWER_FORBIDDEN = "只读账号（viewer）不能执行此操作。"


def new_token() -> str:
    """Return a random URL-safe token of 256 bits."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Return the hex SHA-256 of a session token, as the database stores it."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def has_role(role: str) -> bool:
    """Tell whether the logged-in user has ``role`` or a higher one."""
    user = g.get("user")
    return user is not None and ROLE_RANKS[user.role] >= ROLE_RANKS[role]


def requires(role: str) -> Callable:
    """Decorate a view so that users below ``role`` get 403."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if not has_role(role):
                abort(403, f"此页面需要 {role} 或更高权限。")
            return view(*args, **kwargs)

        return checked

    return decorate


def load_session() -> Response | None:
    """Load the session of the request, or send the browser to the login page.

    On every POST the CSRF token must match the session's, and the user must
    be an analyst or higher except for the few posts that viewers may make.
    """
    g.user = None
    g.session = None
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    session = _current_session()
    if session is None:
        return _to_login()
    g.session = session
    g.user = session.user
    _touch(session)
    if request.method in SAFE_METHODS:
        return None
    if not _same_token(request.form.get(CSRF_FIELD), session.csrf_token):
        logger.warning("csrf token rejected user_id=%s", session.user.id)
        abort(403, BAD_FORM)
    if request.endpoint not in VIEWER_POSTS and not has_role("analyst"):
        abort(403, VIEWER_FORBIDDEN)
    return None


def csrf_token() -> str:
    """Return the CSRF token that forms on this page must carry."""
    session = g.get("session")
    if session is not None:
        return session.csrf_token
    return g.get("login_csrf", "")


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    target = local_target(request.values.get("next"))
    if request.method == "GET":
        if _current_session() is not None:
            return redirect(target)
        return _login_page(target)
    if not _same_token(request.form.get(CSRF_FIELD), _login_csrf_token()):
        abort(403, BAD_FORM)

    name = request.form.get("name", "").strip().lower()
    password = request.form.get("password", "")
    address = request.remote_addr or "unknown"
    shared = state()
    now = shared.now()
    lock = throttle.active_lock(shared.accounts, name, address, now)
    if lock is not None:
        _record_lock(lock, name, address)
        local_until = lock.until.astimezone(shared.zone).strftime("%H:%M")
        return _login_page(target, LOCKED_LOGIN.format(until=local_until), 429)

    user = shared.accounts.find_user(name) if NAME_PATTERN.fullmatch(name) else None
    active = user if user is not None and not user.disabled else None
    if not verify_password(None if active is None else active.password_hash, password):
        throttle.record_failure(shared.accounts, name, address, now)
        record("login.failed", ("user", name), {"address": address})
        logger.info("login failed address=%s", address)
        return _login_page(target, WRONG_LOGIN, 200)
    return _start_session(active, password, target, address, now)


def _record_lock(lock: throttle.Lock, name: str, address: str) -> None:
    """Audit the first attempt on a locked name or address in each lock period.

    Later attempts in the same period are only logged, so that a client
    that keeps trying cannot fill the audit log.
    """
    accounts = state().accounts
    if not accounts.has_audit(LOCKED_ACTION, lock.subject, lock.started):
        record(LOCKED_ACTION, lock.subject, {"name": name, "address": address})
    logger.warning(
        "login rejected while locked address=%s until=%s", address, lock.until
    )


@blueprint.post("/logout")
def logout() -> Response:
    state().accounts.end_session(g.session.id_hash)
    record("logout", ("user", g.user.name))
    logger.info("logout user_id=%s", g.user.id)
    response = redirect(url_for("auth.login"), 303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=_secure(), httponly=True, samesite="Lax"
    )
    return response


def _start_session(
    user: UserRecord, password: str, target: str, address: str, now: datetime
) -> Response:
    shared = state()
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        shared.accounts.end_session(token_hash(old))
    token = new_token()
    expires_at = now + timedelta(hours=shared.config.web.session_hours)
    shared.accounts.start_session(
        user, token_hash(token), new_token(), now, expires_at, address
    )
    if needs_rehash(user.password_hash):
        shared.accounts.rehash_password(user.id, hash_password(password))
    g.user = user
    record("login", ("user", user.name), {"address": address})
    logger.info("login user_id=%s", user.id)

    response = redirect(target, 303)
    max_age = int((expires_at - now).total_seconds())
    set_cookie(response, SESSION_COOKIE, token, max_age=max_age, path="/")
    response.delete_cookie(
        LOGIN_CSRF_COOKIE, path="/login", secure=_secure(), httponly=True
    )
    return response


def _login_page(target: str, error: str | None = None, status: int = 200) -> Response:
    token = _login_csrf_token() or new_token()
    g.login_csrf = token
    body = render_template("login.html", next=target, error=error)
    response = Response(body, status=status)
    signed = _login_signer().dumps(token)
    set_cookie(response, LOGIN_CSRF_COOKIE, signed, max_age=None, path="/login")
    return response


def _login_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=LOGIN_CSRF_COOKIE)


def _login_csrf_token() -> str | None:
    """Return the token of the login form's signed cookie, or None when the
    cookie is missing, forged, expired or signed by another server process."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or len(cookie) > MAX_SIGNED_COOKIE:
        return None
    try:
        token = _login_signer().loads(cookie, max_age=LOGIN_FORM_SECONDS)
    except BadData:
        return None
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    return token


def _current_session() -> SessionRecord | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not _TOKEN.fullmatch(token):
        return None
    shared = state()
    return shared.accounts.find_session(token_hash(token), shared.now())


def _touch(session: SessionRecord) -> None:
    shared = state()
    now = shared.now()
    if now - session.last_seen_at >= TOUCH_INTERVAL:
        shared.accounts.touch_session(session.id_hash, now)


def _to_login() -> Response:
    if request.method in SAFE_METHODS:
        path = request.full_path if request.query_string else request.path
        return redirect(url_for("auth.login", next=path))
    return redirect(url_for("auth.login"), 303)


def _same_token(submitted: str | None, expected: str | None) -> bool:
    if not submitted or not expected:
        return False
    return hmac.compare_digest(submitted.encode(), expected.encode())


def _secure() -> bool:
    setting = state().config.web.secure_cookies
    return request.is_secure if setting == "auto" else bool(setting)


def set_cookie(
    response: Response, name: str, value: str, max_age: int | None, path: str
) -> None:
    """Set an HttpOnly, SameSite=Lax cookie, Secure as ``web.secure_cookies`` sets."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        secure=_secure(),
        httponly=True,
        samesite="Lax",
    )
