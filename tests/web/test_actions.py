"""Analysts' actions on the post page, through the Flask test client."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from graded_posts import HOSTILE_TEXT, add_graded_post, add_post_alert
from review_client import NOW, form_token
from sqlalchemy import func, select, text

from storage.reviews import MAX_NOTE_LENGTH
from storage.tables import alerts
from storage.web_tables import audit_log, corrections, post_notes, post_reviews

# Each action with a form that is valid on a fresh medium complaint that has
# an open alert.
VALID_ACTIONS = {
    "kind": {"kind": "grievance"},
    "level": {"level": "critical"},
    "assign": {"assignee": "analyst"},
    "unassign": {},
    "notes": {"text": "已联系车主"},
    "acknowledge": {},
    "close": {"resolution": "handled", "satisfied": "yes"},
    "reopen": {},
}


@pytest.fixture
def post_id(sqlite_store) -> int:
    return add_graded_post(sqlite_store, "1", level="medium", kind="complaint")


def act(client, post_id: int, action: str, **fields: str):
    """Submit an action's form with the session's CSRF token."""
    token = form_token(client.get(f"/posts/{post_id}"))
    return client.post(
        f"/posts/{post_id}/{action}", data={"csrf_token": token, **fields}
    )


def count(store, table, *conditions) -> int:
    statement = select(func.count()).select_from(table).where(*conditions)
    with store.engine.connect() as connection:
        return connection.execute(statement).scalar_one()


def post_audit(accounts) -> list:
    """Return the audit entries about posts, oldest first."""
    entries = accounts.audit_entries(1000)
    return [e for e in reversed(entries) if e.subject_type == "post"]


def page_soup(client, post_id: int) -> BeautifulSoup:
    response = client.get(f"/posts/{post_id}")
    assert response.status_code == 200
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def message(response) -> str:
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    return soup.select_one(".error-page").get_text(" ", strip=True)


# Corrections


def test_level_correction_stored(logged_in, sqlite_store, accounts, post_id) -> None:
    client = logged_in("analyst")

    response = act(client, post_id, "level", level="critical")

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/posts/{post_id}#review")
    with sqlite_store.engine.connect() as connection:
        [row] = connection.execute(select(corrections)).mappings().all()
    assert row["post_id"] == post_id
    assert row["field"] == "level"
    assert row["old_value"] == "medium"
    assert row["new_value"] == "critical"
    assert row["corrected_by"] == "analyst"
    assert row["corrected_at"] == NOW
    [entry] = post_audit(accounts)
    assert entry.action == "post.correct"
    assert entry.actor == "analyst"
    assert entry.at == NOW
    assert entry.subject_id == str(post_id)
    assert entry.details == {
        "field": "level",
        "old": "medium",
        "new": "critical",
        "correction_id": row["id"],
    }
    soup = page_soup(client, post_id)
    assert soup.select_one(".level-in-force").get_text() == "危机"
    assert "analyst" in soup.select_one("table.corrections tbody tr").get_text()


def test_confirmation_is_a_correction(
    logged_in, sqlite_store, accounts, post_id
) -> None:
    response = act(logged_in("lead"), post_id, "kind", kind="complaint")

    assert response.status_code == 303
    with sqlite_store.engine.connect() as connection:
        [row] = connection.execute(select(corrections)).mappings().all()
    assert (row["old_value"], row["new_value"]) == ("complaint", "complaint")
    [entry] = post_audit(accounts)
    assert entry.action == "post.confirm"
    assert entry.actor == "lead"


def test_second_correction_starts_from_first(logged_in, sqlite_store, post_id) -> None:
    client = logged_in("analyst")

    act(client, post_id, "kind", kind="grievance")
    act(client, post_id, "kind", kind="praise")

    with sqlite_store.engine.connect() as connection:
        rows = connection.execute(
            select(corrections.c.old_value, corrections.c.new_value).order_by(
                corrections.c.id
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("complaint", "grievance"),
        ("grievance", "praise"),
    ]


@pytest.mark.parametrize(
    ("action", "field", "value"),
    [
        ("kind", "kind", "spam"),
        ("kind", "kind", ""),
        ("kind", "kind", "complaint\u202e"),
        ("level", "level", "urgent"),
        ("level", "level", "critical" * 1000),
        ("level", "level", "<script>alert(1)</script>"),
    ],
)
def test_unknown_label_rejected(
    logged_in, sqlite_store, accounts, post_id, action, field, value
) -> None:
    response = act(logged_in("analyst"), post_id, action, **{field: value})

    assert response.status_code == 400
    assert "未知的" in message(response)
    assert "<script>" not in response.get_data(as_text=True)
    assert count(sqlite_store, corrections) == 0
    assert post_audit(accounts) == []


# Assignment


def test_assign_and_unassign(logged_in, sqlite_store, accounts, post_id) -> None:
    client = logged_in("analyst")

    assigned = act(client, post_id, "assign", assignee="lead")
    soup = page_soup(client, post_id)
    unassigned = act(client, post_id, "unassign")

    assert assigned.status_code == 303
    assert soup.select_one(".assignee").get_text() == "lead"
    assert soup.select_one(".review-status").get_text() == "已指派"
    assert unassigned.status_code == 303
    with sqlite_store.engine.connect() as connection:
        row = connection.execute(select(post_reviews)).mappings().one()
    assert row["status"] == "open"
    assert row["assignee"] is None
    assert row["updated_by"] == "analyst"
    actions = [(e.action, e.details) for e in post_audit(accounts)]
    assert actions == [
        ("post.assign", {"assignee": "lead", "previous": None}),
        ("post.unassign", {"previous": "lead"}),
    ]


def test_assign_to_oneself(logged_in, sqlite_store, post_id) -> None:
    client = logged_in("lead")

    soup = page_soup(client, post_id)
    chosen = soup.select_one("#assignee option[selected]")["value"]
    act(client, post_id, "assign", assignee=chosen)

    with sqlite_store.engine.connect() as connection:
        assignee = connection.execute(select(post_reviews.c.assignee)).scalar_one()
    assert assignee == "lead"


@pytest.mark.parametrize(
    ("assignee", "expected"),
    [
        ("nobody", "没有名为 nobody 的可用账号"),
        ("former", "没有名为 former 的可用账号"),
        ("viewer", "只读账号"),
        ("analyst\u202e", "无效的用户名"),
        ("", "无效的用户名"),
        ("x" * 500, "无效的用户名"),
    ],
)
def test_assign_rejects_user(
    logged_in, sqlite_store, accounts, post_id, assignee, expected
) -> None:
    accounts.add_user("former", "前员工", "analyst", "hash", NOW)
    accounts.set_disabled("former", True)

    response = act(logged_in("analyst"), post_id, "assign", assignee=assignee)

    assert response.status_code == 400
    assert expected in message(response)
    assert count(sqlite_store, post_reviews) == 0
    assert post_audit(accounts) == []


# Notes


def test_note_stored_and_escaped(logged_in, sqlite_store, accounts, post_id) -> None:
    client = logged_in("analyst")
    note = HOSTILE_TEXT + "\r\n第二行"

    response = act(client, post_id, "notes", text=note)

    assert response.status_code == 303
    with sqlite_store.engine.connect() as connection:
        row = connection.execute(select(post_notes)).mappings().one()
    assert row["text"] == note.replace("\r\n", "\n")
    assert row["author"] == "analyst"
    [entry] = post_audit(accounts)
    assert entry.action == "post.note"
    assert entry.details == {"note_id": row["id"], "characters": len(row["text"])}
    soup = page_soup(client, post_id)
    assert soup.select_one(".note-text").get_text() == row["text"]
    assert soup.find_all("script") == []
    assert soup.find_all(["img", "svg"]) == []


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        ("", "笔记不能为空"),
        ("   \n ", "笔记不能为空"),
        ("长" * (MAX_NOTE_LENGTH + 1), "笔记过长"),
        ("退款\u202e已完成", "U+202E"),
        ("隐藏\u2066文字", "U+2066"),
        ("响铃\x07", "U+0007"),
        ("空字符\x00", "U+0000"),
        ("零宽\u200b", "U+200B"),
    ],
)
def test_note_rejected(
    logged_in, sqlite_store, accounts, post_id, note, expected
) -> None:
    response = act(logged_in("analyst"), post_id, "notes", text=note)

    assert response.status_code == 400
    assert expected in message(response)
    assert count(sqlite_store, post_notes) == 0
    assert post_audit(accounts) == []


def test_longest_note_accepted(logged_in, sqlite_store, post_id) -> None:
    response = act(logged_in("analyst"), post_id, "notes", text="长" * MAX_NOTE_LENGTH)

    assert response.status_code == 303
    assert count(sqlite_store, post_notes) == 1


# Alerts


def test_acknowledge_alert(logged_in, sqlite_store, accounts, post_id) -> None:
    alert_id = add_post_alert(sqlite_store, post_id)
    client = logged_in("analyst")

    response = act(client, post_id, "acknowledge")
    again = client.post(
        f"/posts/{post_id}/acknowledge",
        data={"csrf_token": form_token(client.get(f"/posts/{post_id}"))},
    )

    assert response.status_code == 303
    with sqlite_store.engine.connect() as connection:
        row = connection.execute(select(alerts)).mappings().one()
    assert row["status"] == "acknowledged"
    assert row["acknowledged_by"] == "analyst"
    assert row["acknowledged_at"] == NOW
    assert again.status_code == 409
    assert "已由 analyst 确认" in message(again)
    [entry] = post_audit(accounts)
    assert entry.action == "alert.acknowledge"
    assert entry.details == {"alert_id": alert_id}
    soup = page_soup(client, post_id)
    assert "已确认" in soup.select_one(".alert-state").get_text()
    assert soup.select_one("#acknowledge-form") is None


def test_acknowledge_without_alert(logged_in, accounts, post_id) -> None:
    response = act(logged_in("analyst"), post_id, "acknowledge")

    assert response.status_code == 400
    assert "没有预警" in message(response)
    assert post_audit(accounts) == []


# Closing and reopening


def test_close_and_reopen(logged_in, sqlite_store, accounts, post_id) -> None:
    client = logged_in("analyst")
    act(client, post_id, "assign", assignee="analyst")

    closed = act(client, post_id, "close", resolution="handled", satisfied="no")
    with sqlite_store.engine.connect() as connection:
        row = connection.execute(select(post_reviews)).mappings().one()
    reopened = act(client, post_id, "reopen")

    assert closed.status_code == 303
    assert row["status"] == "closed"
    assert row["resolution"] == "handled"
    assert row["satisfied"] is False
    assert row["closed_by"] == "analyst"
    assert row["closed_at"] == NOW
    assert reopened.status_code == 303
    with sqlite_store.engine.connect() as connection:
        row = connection.execute(select(post_reviews)).mappings().one()
    assert row["status"] == "assigned"
    assert row["assignee"] == "analyst"
    assert row["resolution"] is None
    assert row["satisfied"] is None
    actions = [(e.action, e.details) for e in post_audit(accounts)]
    assert actions[1:] == [
        ("post.close", {"resolution": "handled", "satisfied": False}),
        ("post.reopen", {"previous": "handled"}),
    ]


def test_closed_post_refuses_changes(
    logged_in, sqlite_store, accounts, post_id
) -> None:
    client = logged_in("analyst")
    act(client, post_id, "close", resolution="duplicate")

    for action, fields in [
        ("close", {"resolution": "handled"}),
        ("assign", {"assignee": "analyst"}),
        ("unassign", {}),
    ]:
        response = act(client, post_id, action, **fields)
        assert response.status_code == 409, action
        assert "已关闭" in message(response)
    assert [e.action for e in post_audit(accounts)] == ["post.close"]


def test_reopen_open_post_refused(logged_in, accounts, post_id) -> None:
    response = act(logged_in("analyst"), post_id, "reopen")

    assert response.status_code == 409
    assert "没有关闭" in message(response)
    assert post_audit(accounts) == []


def test_satisfaction_only_for_complaints(
    logged_in, sqlite_store, accounts, post_id
) -> None:
    client = logged_in("analyst")
    act(client, post_id, "kind", kind="grievance")

    refused = act(client, post_id, "close", resolution="handled", satisfied="yes")
    accepted = act(client, post_id, "close", resolution="handled")

    assert refused.status_code == 400
    assert "只有投诉" in message(refused)
    assert accepted.status_code == 303
    with sqlite_store.engine.connect() as connection:
        satisfied = connection.execute(select(post_reviews.c.satisfied)).scalar_one()
    assert satisfied is None


@pytest.mark.parametrize(
    "fields",
    [
        {"resolution": "fixed"},
        {"resolution": ""},
        {"resolution": "handled", "satisfied": "maybe"},
        {"resolution": "handled", "satisfied": "yes\x00"},
    ],
)
def test_close_rejects_values(logged_in, sqlite_store, accounts, post_id, fields):
    response = act(logged_in("analyst"), post_id, "close", **fields)

    assert response.status_code == 400
    assert "未知的" in message(response)
    assert count(sqlite_store, post_reviews) == 0
    assert post_audit(accounts) == []


# Who may act


def test_viewer_sees_no_forms(logged_in, sqlite_store, post_id) -> None:
    add_post_alert(sqlite_store, post_id)

    soup = page_soup(logged_in("viewer"), post_id)

    forms = [form["action"] for form in soup.select("main form")]
    assert forms == []
    assert soup.select_one(".review-status").get_text() == "待处理"


def test_analyst_sees_every_form(logged_in, sqlite_store, post_id) -> None:
    add_post_alert(sqlite_store, post_id)

    soup = page_soup(logged_in("analyst"), post_id)

    actions = {form["action"].rsplit("/", 1)[1] for form in soup.select("main form")}
    assert actions == {"kind", "level", "acknowledge", "assign", "close", "notes"}


@pytest.mark.parametrize("action", sorted(VALID_ACTIONS))
def test_viewer_post_forbidden(
    logged_in, sqlite_store, accounts, post_id, action
) -> None:
    add_post_alert(sqlite_store, post_id)
    client = logged_in("viewer")
    token = form_token(client.get("/"))

    response = client.post(
        f"/posts/{post_id}/{action}",
        data={"csrf_token": token, **VALID_ACTIONS[action]},
    )

    assert response.status_code == 403
    assert "只读账号" in message(response)
    assert post_audit(accounts) == []
    for table in (corrections, post_notes, post_reviews):
        assert count(sqlite_store, table) == 0
    assert count(sqlite_store, alerts, alerts.c.status == "open") == 1


@pytest.mark.parametrize("action", sorted(VALID_ACTIONS))
@pytest.mark.parametrize("token", [None, "", "x" * 43])
def test_bad_csrf_forbidden(
    logged_in, sqlite_store, accounts, post_id, action, token
) -> None:
    add_post_alert(sqlite_store, post_id)
    client = logged_in("lead")
    form = dict(VALID_ACTIONS[action])
    if token is not None:
        form["csrf_token"] = token

    response = client.post(f"/posts/{post_id}/{action}", data=form)

    assert response.status_code == 403
    assert "校验码" in message(response)
    assert post_audit(accounts) == []
    assert count(sqlite_store, alerts, alerts.c.status == "open") == 1


@pytest.mark.parametrize("action", sorted(VALID_ACTIONS))
def test_unknown_post_not_found(logged_in, accounts, action) -> None:
    client = logged_in("analyst")
    token = form_token(client.get("/"))

    response = client.post(
        f"/posts/999/{action}", data={"csrf_token": token, **VALID_ACTIONS[action]}
    )

    assert response.status_code == 404
    assert post_audit(accounts) == []


def test_get_not_allowed(logged_in, post_id) -> None:
    response = logged_in("analyst").get(f"/posts/{post_id}/level?level=critical")

    assert response.status_code == 405


# One transaction


def abort_inserts(store, table: str) -> None:
    """Make every insert into ``table`` fail, as a broken database would."""
    with store.engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'insert refused by test trigger'); END"
            )
        )


@pytest.mark.parametrize("table", ["corrections", "post_notes", "post_reviews"])
def test_failed_change_leaves_no_audit_entry(
    logged_in, sqlite_store, accounts, post_id, table
) -> None:
    action = {"corrections": "level", "post_notes": "notes", "post_reviews": "assign"}
    client = logged_in("analyst")
    token = form_token(client.get(f"/posts/{post_id}"))
    abort_inserts(sqlite_store, table)
    fields = VALID_ACTIONS[action[table]]

    response = client.post(
        f"/posts/{post_id}/{action[table]}", data={"csrf_token": token, **fields}
    )

    assert response.status_code == 500
    assert post_audit(accounts) == []


@pytest.mark.parametrize("action", sorted(VALID_ACTIONS))
def test_failed_audit_leaves_no_change(
    logged_in, sqlite_store, accounts, post_id, action
) -> None:
    add_post_alert(sqlite_store, post_id)
    client = logged_in("analyst")
    if action in ("unassign", "reopen"):
        act(client, post_id, "assign", assignee="analyst")
    if action == "reopen":
        act(client, post_id, "close", resolution="handled")
    states = _review_rows(sqlite_store)
    entries = count(sqlite_store, audit_log)
    open_alerts = count(sqlite_store, alerts, alerts.c.status == "open")
    token = form_token(client.get(f"/posts/{post_id}"))
    abort_inserts(sqlite_store, "audit_log")

    response = client.post(
        f"/posts/{post_id}/{action}",
        data={"csrf_token": token, **VALID_ACTIONS[action]},
    )

    assert response.status_code == 500
    assert count(sqlite_store, corrections) == 0
    assert count(sqlite_store, post_notes) == 0
    assert count(sqlite_store, alerts, alerts.c.status == "open") == open_alerts
    assert _review_rows(sqlite_store) == states
    assert count(sqlite_store, audit_log) == entries


def _review_rows(store) -> list:
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(post_reviews))]
