"""Login, logout, sessions, CSRF, roles and redirects of the review page."""

from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

import pytest
from flask import Flask
from itsdangerous import URLSafeTimedSerializer
from review_client import PASSWORD, form_token, log_in, make_config
from sqlalchemy import func, select

from storage.web_tables import audit_log, sessions
from web import throttle
from web.app import create_app
from web.auth import LOGIN_CSRF_COOKIE, LOGIN_FORM_SECONDS, SESSION_COOKIE


def cookie_header(response, name: str) -> str:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no Set-Cookie for {name}")


def without_token(response) -> str:
    """Return the page with its random CSRF token blanked out."""
    return response.get_data(as_text=True).replace(form_token(response), "")


def audit_actions(accounts) -> list[str]:
    return [entry.action for entry in reversed(accounts.audit_entries(1000))]


def test_pages_redirect_to_login(app: Flask) -> None:
    client = app.test_client()
    for path in ("/", "/posts/1", "/audit", "/no-such-page"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next="), path


def test_login_page_and_static_are_public(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/login").status_code == 200
    assert client.get("/static/style.css").status_code == 200


def test_login_then_queue(app: Flask, users, accounts) -> None:
    client = app.test_client()

    response = log_in(client, "analyst")

    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    queue = client.get("/")
    assert queue.status_code == 200
    assert "待处理队列" in queue.get_data(as_text=True)
    assert "analyst 用户" in queue.get_data(as_text=True)
    assert audit_actions(accounts) == ["login"]


def test_login_name_ignores_case_and_spaces(app: Flask, users) -> None:
    response = log_in(app.test_client(), "  Analyst ")

    assert response.status_code == 303


def test_unknown_name_same_answer(app: Flask, users) -> None:
    wrong = log_in(app.test_client(), "analyst", "wrong password 1")
    unknown = log_in(app.test_client(), "nobody", "wrong password 1")

    assert wrong.status_code == unknown.status_code == 200
    assert "用户名或密码不正确" in wrong.get_data(as_text=True)
    assert without_token(wrong) == without_token(unknown)
    assert SESSION_COOKIE not in str(wrong.headers)


def test_disabled_user_cannot_log_in(app: Flask, users, accounts) -> None:
    accounts.set_disabled("analyst", True)

    response = log_in(app.test_client(), "analyst")

    assert response.status_code == 200
    assert "用户名或密码不正确" in response.get_data(as_text=True)


def test_disabling_ends_sessions(logged_in, accounts) -> None:
    client = logged_in("analyst")

    accounts.set_disabled("analyst", True)

    assert client.get("/").status_code == 302


def test_logout_ends_session(logged_in, accounts, sqlite_store) -> None:
    client = logged_in("analyst")
    token = form_token(client.get("/"))

    response = client.post("/logout", data={"csrf_token": token})

    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert "Max-Age=0" in cookie_header(response, SESSION_COOKIE)
    assert client.get("/").status_code == 302
    with sqlite_store.engine.connect() as connection:
        left = connection.execute(select(func.count()).select_from(sessions))
        assert left.scalar_one() == 0
    assert audit_actions(accounts) == ["login", "logout"]


def test_old_cookie_fails_after_logout(app: Flask, users) -> None:
    client = app.test_client()
    log_in(client, "analyst")
    stolen = client.get_cookie(SESSION_COOKIE).value
    client.post("/logout", data={"csrf_token": form_token(client.get("/"))})

    other = app.test_client()
    other.set_cookie(SESSION_COOKIE, stolen)

    assert other.get("/").status_code == 302


def test_logout_needs_post(logged_in) -> None:
    client = logged_in("viewer")

    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200


def test_session_expires(logged_in, clock) -> None:
    client = logged_in("analyst")

    clock.advance(timedelta(hours=11, minutes=59))
    assert client.get("/").status_code == 200
    clock.advance(timedelta(minutes=1))
    assert client.get("/").status_code == 302


def test_expiry_from_config(sqlite_store, clock, users) -> None:
    config = make_config(str(sqlite_store.engine.url), session_hours=1)
    client = create_app(config, sqlite_store, now=clock).test_client()
    log_in(client, "analyst")

    clock.advance(timedelta(minutes=59))
    assert client.get("/").status_code == 200
    clock.advance(timedelta(minutes=1))
    assert client.get("/").status_code == 302


def test_session_cookie_flags(app: Flask, users) -> None:
    response = log_in(app.test_client(), "analyst")

    header = cookie_header(response, SESSION_COOKIE)
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Path=/" in header
    assert "Max-Age=43200" in header
    assert "Secure" not in header


def test_session_cookie_secure_over_tls(app: Flask, users) -> None:
    client = app.test_client()
    page = client.get("/login", base_url="https://localhost")
    form = {"csrf_token": form_token(page), "name": "analyst", "password": PASSWORD}

    response = client.post("/login", data=form, base_url="https://localhost")

    assert "Secure" in cookie_header(response, SESSION_COOKIE)
    assert "Secure" in cookie_header(page, LOGIN_CSRF_COOKIE)


def test_secure_cookies_true_over_http(sqlite_store, clock, users) -> None:
    config = make_config(str(sqlite_store.engine.url), secure_cookies=True)
    app = create_app(config, sqlite_store, now=clock)
    page = app.test_client().get("/login")

    assert "Secure" in cookie_header(page, LOGIN_CSRF_COOKIE)


def test_proxy_headers_need_behind_proxy(sqlite_store, clock, users) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    for behind_proxy in (False, True):
        config = make_config(str(sqlite_store.engine.url), behind_proxy=behind_proxy)
        client = create_app(config, sqlite_store, now=clock).test_client()
        page = client.get("/login", headers=headers)
        secure = "Secure" in cookie_header(page, LOGIN_CSRF_COOKIE)
        assert secure is behind_proxy


def test_session_token_stored_hashed(logged_in, sqlite_store, app) -> None:
    client = app.test_client()
    log_in(client, "analyst")
    token = client.get_cookie(SESSION_COOKIE).value

    with sqlite_store.engine.connect() as connection:
        stored = connection.execute(select(sessions.c.id_hash)).scalars().all()

    assert len(stored) == 1
    assert token not in stored[0]
    assert len(stored[0]) == 64


def test_new_login_replaces_old_session(app: Flask, users, sqlite_store) -> None:
    client = app.test_client()
    log_in(client, "analyst")
    first = client.get_cookie(SESSION_COOKIE).value
    # A logged-in browser is sent away from the login page, so the form of
    # another browser is posted with this one's cookies.
    other = app.test_client()
    token = form_token(other.get("/login"))
    signed = other.get_cookie(LOGIN_CSRF_COOKIE, path="/login").value
    client.set_cookie(LOGIN_CSRF_COOKIE, signed, path="/login")
    form = {"csrf_token": token, "name": "lead", "password": PASSWORD}

    response = client.post("/login", data=form)

    assert response.status_code == 303
    assert client.get_cookie(SESSION_COOKIE).value != first
    with sqlite_store.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(sessions))
        assert count.scalar_one() == 1


def test_login_page_redirects_when_logged_in(logged_in) -> None:
    response = logged_in("viewer").get("/login?next=/posts/2")

    assert response.status_code == 302
    assert response.headers["Location"] == "/posts/2"


@pytest.mark.parametrize("token", [None, "", "x" * 43])
def test_login_without_matching_csrf(app: Flask, users, token) -> None:
    client = app.test_client()
    client.get("/login")
    form = {"name": "analyst", "password": PASSWORD}
    if token is not None:
        form["csrf_token"] = token

    response = client.post("/login", data=form)

    assert response.status_code == 403
    assert client.get_cookie(SESSION_COOKIE) is None


def test_login_csrf_needs_its_cookie(app: Flask, users) -> None:
    token = form_token(app.test_client().get("/login"))
    form = {"csrf_token": token, "name": "analyst", "password": PASSWORD}

    response = app.test_client().post("/login", data=form)

    assert response.status_code == 403


def test_login_csrf_cookie_is_signed(app: Flask, users) -> None:
    client = app.test_client()
    page = client.get("/login")
    cookie = client.get_cookie(LOGIN_CSRF_COOKIE, path="/login").value

    signer = URLSafeTimedSerializer(app.secret_key, salt=LOGIN_CSRF_COOKIE)
    assert cookie != form_token(page)
    assert signer.loads(cookie) == form_token(page)


@pytest.mark.parametrize("signed", [False, True])
def test_forged_login_csrf_pair_fails(app: Flask, users, signed) -> None:
    """A cookie and field that match but were not signed by this server fail."""
    token = "f" * 43
    cookie = token
    if signed:
        cookie = URLSafeTimedSerializer(b"another key", salt=LOGIN_CSRF_COOKIE).dumps(
            token
        )
    client = app.test_client()
    client.set_cookie(LOGIN_CSRF_COOKIE, cookie, path="/login")
    form = {"csrf_token": token, "name": "analyst", "password": PASSWORD}

    response = client.post("/login", data=form)

    assert response.status_code == 403
    assert client.get_cookie(SESSION_COOKIE) is None


def test_login_csrf_cookie_expires(app: Flask, users) -> None:
    client = app.test_client()
    token = form_token(client.get("/login"))
    form = {"csrf_token": token, "name": "analyst", "password": PASSWORD}
    later = time.time() + LOGIN_FORM_SECONDS + 60

    with mock.patch("itsdangerous.timed.time.time", return_value=later):
        response = client.post("/login", data=form)

    assert response.status_code == 403


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_post_without_matching_csrf(logged_in, token) -> None:
    client = logged_in("analyst")
    form = {} if token is None else {"csrf_token": token}

    response = client.post("/logout", data=form)

    assert response.status_code == 403
    assert "校验码" in response.get_data(as_text=True)
    assert client.get("/").status_code == 200


def test_csrf_token_of_other_session(logged_in) -> None:
    mine = logged_in("analyst")
    theirs = logged_in("analyst")

    response = mine.post("/logout", data={"csrf_token": form_token(theirs.get("/"))})

    assert response.status_code == 403


def test_viewer_post_forbidden(logged_in) -> None:
    viewer = logged_in("viewer")
    analyst = logged_in("analyst")

    viewed = viewer.post("/posts/1", data={"csrf_token": form_token(viewer.get("/"))})
    acted = analyst.post("/posts/1", data={"csrf_token": form_token(analyst.get("/"))})

    assert viewed.status_code == 403
    assert "只读账号" in viewed.get_data(as_text=True)
    # The analyst passes the role check and meets the route's method check.
    assert acted.status_code == 405


def test_viewer_may_log_out(logged_in) -> None:
    viewer = logged_in("viewer")

    response = viewer.post("/logout", data={"csrf_token": form_token(viewer.get("/"))})

    assert response.status_code == 303


def test_audit_page_for_leads_only(logged_in) -> None:
    assert logged_in("viewer").get("/audit").status_code == 403
    assert logged_in("analyst").get("/audit").status_code == 403
    page = logged_in("lead").get("/audit")
    assert page.status_code == 200
    assert "操作记录" in page.get_data(as_text=True)


def test_audit_page_lists_logins(logged_in, app) -> None:
    log_in(app.test_client(), "analyst", "wrong password 1")

    text = logged_in("lead").get("/audit").get_data(as_text=True)

    assert "login.failed" in text
    assert "127.0.0.1" in text


def test_audit_page_cursor_checked(logged_in) -> None:
    lead = logged_in("lead")

    assert lead.get("/audit?before=").status_code == 200
    assert lead.get("/audit?before=abc").status_code == 400
    assert lead.get("/audit?before=0").status_code == 400
    assert lead.get("/audit?before=1.5").status_code == 400
    assert lead.get("/audit?before=%EF%BC%91").status_code == 400
    assert lead.get("/audit?before=" + "9" * 5000).status_code == 400
    assert lead.get(f"/audit?before={2**63}").status_code == 400
    assert lead.get("/audit?before=-1").status_code == 400


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "//evil.example/path",
        "https://evil.example",
        "http:evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "evil.example",
        "",
    ],
)
def test_login_redirect_stays_local(app: Flask, users, target: str) -> None:
    response = log_in(app.test_client(), "analyst", next_target=target)

    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_login_redirect_to_local_path(app: Flask, users) -> None:
    client = app.test_client()
    first = client.get("/posts/7?x=1")
    assert first.headers["Location"] == "/login?next=/posts/7?x%3D1"

    response = log_in(client, "analyst", next_target="/posts/7?x=1")

    assert response.headers["Location"] == "/posts/7?x=1"


def test_login_page_keeps_next(app: Flask) -> None:
    page = app.test_client().get("/login?next=/posts/3")

    assert 'name="next" value="/posts/3"' in page.get_data(as_text=True)


def test_login_page_drops_foreign_next(app: Flask) -> None:
    page = app.test_client().get("/login?next=//evil.example")

    assert "evil.example" not in page.get_data(as_text=True)


def test_security_headers(app: Flask, logged_in) -> None:
    for response in (app.test_client().get("/login"), logged_in("viewer").get("/")):
        headers = response.headers
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "script-src" not in policy
        assert "unsafe-inline" not in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"


def test_pages_carry_no_script(logged_in) -> None:
    client = logged_in("lead")
    for path in ("/", "/audit", "/login"):
        assert "<script" not in client.get(path).get_data(as_text=True)


def test_name_locked_after_failures(app: Flask, users, clock, accounts) -> None:
    for _ in range(throttle.MAX_NAME_FAILURES):
        response = log_in(app.test_client(), "analyst", "wrong password 1")
        assert response.status_code == 200

    locked = log_in(app.test_client(), "analyst")

    assert locked.status_code == 429
    assert "登录失败次数过多" in locked.get_data(as_text=True)
    # 09:00 UTC plus the lock is 17:15 in Shanghai.
    assert "17:15" in locked.get_data(as_text=True)
    assert "login.locked" in audit_actions(accounts)

    clock.advance(throttle.LOCK_TIME - timedelta(seconds=1))
    assert log_in(app.test_client(), "analyst").status_code == 429
    clock.advance(timedelta(seconds=1))
    assert log_in(app.test_client(), "analyst").status_code == 303


def test_locked_attempts_audited_once(app: Flask, users, clock, accounts) -> None:
    for _ in range(throttle.MAX_NAME_FAILURES):
        log_in(app.test_client(), "analyst", "wrong password 1")

    for _ in range(5):
        assert log_in(app.test_client(), "analyst").status_code == 429
        clock.advance(timedelta(minutes=1))

    assert audit_actions(accounts).count("login.locked") == 1

    clock.advance(throttle.LOCK_TIME)
    for _ in range(throttle.MAX_NAME_FAILURES):
        log_in(app.test_client(), "analyst", "wrong password 1")
    assert log_in(app.test_client(), "analyst").status_code == 429
    assert log_in(app.test_client(), "analyst").status_code == 429

    assert audit_actions(accounts).count("login.locked") == 2


def test_locked_address_audited_once(app: Flask, users, accounts) -> None:
    for number in range(throttle.MAX_ADDRESS_FAILURES):
        log_in(app.test_client(), f"name{number}", "wrong password 1")

    for number in range(5):
        response = log_in(app.test_client(), f"other{number}")
        assert response.status_code == 429

    assert audit_actions(accounts).count("login.locked") == 1


def test_unknown_name_locked_alike(app: Flask, users) -> None:
    for _ in range(throttle.MAX_NAME_FAILURES):
        log_in(app.test_client(), "nobody", "wrong password 1")

    assert log_in(app.test_client(), "nobody").status_code == 429


def test_success_resets_name_failures(app: Flask, users) -> None:
    for _ in range(throttle.MAX_NAME_FAILURES - 1):
        log_in(app.test_client(), "analyst", "wrong password 1")
    assert log_in(app.test_client(), "analyst").status_code == 303

    for _ in range(throttle.MAX_NAME_FAILURES - 1):
        log_in(app.test_client(), "analyst", "wrong password 1")

    assert log_in(app.test_client(), "analyst").status_code == 303


def test_failures_outside_window_forgotten(app: Flask, users, clock) -> None:
    for _ in range(throttle.MAX_NAME_FAILURES - 1):
        log_in(app.test_client(), "analyst", "wrong password 1")
    clock.advance(throttle.FAILURE_WINDOW)
    log_in(app.test_client(), "analyst", "wrong password 1")

    assert log_in(app.test_client(), "analyst").status_code == 303


def test_address_locked_across_names(app: Flask, users) -> None:
    for i in range(throttle.MAX_ADDRESS_FAILURES):
        log_in(app.test_client(), f"guess{i}", "wrong password 1")

    locked = log_in(app.test_client(), "analyst")
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "127.0.0.2"

    assert locked.status_code == 429
    assert log_in(elsewhere, "analyst").status_code == 303


def test_audit_log_never_changes(logged_in, sqlite_store, app) -> None:
    logged_in("lead")
    log_in(app.test_client(), "lead", "wrong password 1")
    with sqlite_store.engine.connect() as connection:
        before = connection.execute(select(audit_log)).all()

    logged_in("analyst")
    with sqlite_store.engine.connect() as connection:
        after = connection.execute(select(audit_log)).all()

    assert after[: len(before)] == before
    assert len(after) == len(before) + 1


def test_large_form_rejected(app: Flask, users) -> None:
    client = app.test_client()
    token = form_token(client.get("/login"))
    form = {"csrf_token": token, "name": "analyst", "password": "x" * 300_000}

    response = client.post("/login", data=form)

    assert response.status_code == 413
    assert client.get_cookie(SESSION_COOKIE) is None
