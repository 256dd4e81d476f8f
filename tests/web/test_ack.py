"""The acknowledgement link, through the Flask client, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from flask.testing import FlaskClient
from review_client import NOW, Clock, make_config
from stored_alerts import add_stored_alert

from alerts.policy import ack_token
from storage import Store
from storage.accounts import Accounts
from web.app import create_app

SECRET = "secret-of-the-ack-links"
HOSTILE_SUBJECT = '[烽火·危机] <script>alert("x")</script> 刹车失灵'


@pytest.fixture
def ack_client(store: Store, monkeypatch) -> FlaskClient:
    monkeypatch.setenv("FENGHUO_ACK_SECRET", SECRET)
    config = make_config("sqlite://")
    return create_app(config, store, now=Clock(NOW)).test_client()


def add_alert(store: Store, key: str = "post:7") -> int:
    return add_stored_alert(
        store, key, subject=HOSTILE_SUBJECT, created=NOW, deadline=NOW
    )


def link(alert_id: int, token: str | None = None) -> str:
    return f"/alerts/{alert_id}/ack?token={token or ack_token(SECRET, alert_id)}"


def submit(client: FlaskClient, alert_id: int, name: str = "王丽", **form):
    page = client.get(link(alert_id))
    soup = BeautifulSoup(page.get_data(as_text=True), "html.parser")
    fields = {
        field["name"]: field.get("value", "")
        for field in soup.select("form input[type=hidden]")
    }
    return client.post(f"/alerts/{alert_id}/ack", data={**fields, "name": name, **form})


def test_opening_link_acknowledges_nothing(ack_client, store):
    alert_id = add_alert(store)

    page = ack_client.get(link(alert_id))

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("form")["method"] == "post"
    assert f"<dd>{alert_id}</dd>" in html
    assert "危机" in soup.select_one(".badge").text
    assert store.get_alert(alert_id).alert.status == "open"
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_form_acknowledges_and_audits(ack_client, store):
    alert_id = add_alert(store)

    response = submit(ack_client, alert_id, name="王丽\r\nX-Injected: 1")

    assert response.status_code == 200
    assert "已确认，升级已停止" in response.get_data(as_text=True)
    alert = store.get_alert(alert_id).alert
    assert alert.status == "acknowledged"
    assert alert.acknowledged_by == "王丽 X-Injected: 1"
    assert alert.acknowledged_at == NOW
    [entry] = Accounts(store.engine).audit_entries(10)
    assert entry.action == "alert.acknowledge"
    assert (entry.subject_type, entry.subject_id) == ("alert", str(alert_id))
    assert entry.details["by"] == "王丽 X-Injected: 1"
    assert entry.actor is None


def test_empty_name_recorded_as_link(ack_client, store):
    alert_id = add_alert(store)

    submit(ack_client, alert_id, name="  ")

    assert store.get_alert(alert_id).alert.acknowledged_by == "确认链接"


def test_post_without_csrf_rejected(ack_client, store):
    alert_id = add_alert(store)
    token = ack_token(SECRET, alert_id)

    response = ack_client.post(
        f"/alerts/{alert_id}/ack", data={"token": token, "name": "x"}
    )

    assert response.status_code == 403
    assert "表单已失效" in response.get_data(as_text=True)
    assert store.get_alert(alert_id).alert.status == "open"


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?token=",
        "?token=0123456789abcdef0123456789abcdef",
        "?token=" + "a" * 5000,
        "?token=%C3%A9",
    ],
)
def test_bad_or_missing_token_403(ack_client, store, query):
    alert_id = add_alert(store)

    response = ack_client.get(f"/alerts/{alert_id}/ack{query}")

    assert response.status_code == 403
    assert "确认链接无效或不完整" in response.get_data(as_text=True)


def test_token_of_another_alert_403(ack_client, store):
    alert_id = add_alert(store)
    other = add_alert(store, "post:8")

    response = ack_client.get(link(alert_id, ack_token(SECRET, other)))

    assert response.status_code == 403


def test_post_with_bad_token_changes_nothing(ack_client, store):
    alert_id = add_alert(store)

    response = submit(ack_client, alert_id, token="f" * 32)

    assert response.status_code == 403
    assert store.get_alert(alert_id).alert.status == "open"


def test_unknown_alert_404(ack_client, store):
    response = ack_client.get(link(4242))

    assert response.status_code == 404
    assert "没有编号为 4242 的预警" in response.get_data(as_text=True)


def test_already_acknowledged_says_by_whom(ack_client, store):
    alert_id = add_alert(store)
    store.acknowledge_alert(alert_id, "zhang", now=NOW - timedelta(hours=1))

    page = ack_client.get(link(alert_id))
    csrf = ack_client.get_cookie("fenghuo_ack_csrf", path="/alerts/").value
    again = ack_client.post(
        f"/alerts/{alert_id}/ack",
        data={"token": ack_token(SECRET, alert_id), "csrf_token": csrf, "name": "li"},
    )

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "这条预警已经确认过" in html
    assert "确认人：zhang" in html
    assert "2026-03-01 16:00" in html
    assert BeautifulSoup(html, "html.parser").find("form", method="post") is None
    assert again.status_code == 200
    assert "确认人：zhang" in again.get_data(as_text=True)
    assert store.get_alert(alert_id).alert.acknowledged_by == "zhang"


def test_link_disabled_without_secret(ack_client, store, monkeypatch):
    alert_id = add_alert(store)
    monkeypatch.delenv("FENGHUO_ACK_SECRET")

    response = ack_client.get(link(alert_id))

    assert response.status_code == 403
    assert "确认链接未启用" in response.get_data(as_text=True)


def test_other_pages_still_need_login(ack_client, store):
    add_alert(store)

    response = ack_client.get("/")

    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
