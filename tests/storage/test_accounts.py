"""Accounts, sessions, login attempts and the audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from storage import Store
from storage.accounts import Accounts, UserExists
from storage.engine import downgrade

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


@pytest.fixture
def accounts(store: Store) -> Accounts:
    return Accounts(store.engine)


def test_add_and_find_user(accounts: Accounts) -> None:
    added = accounts.add_user("wang.li", "王丽", "analyst", HASH, NOW)

    found = accounts.find_user("wang.li")

    assert found == added
    assert found.display_name == "王丽"
    assert found.role == "analyst"
    assert found.password_hash == HASH
    assert found.created_at == NOW
    assert found.disabled is False
    assert accounts.find_user("nobody") is None


def test_duplicate_user_rejected(accounts: Accounts) -> None:
    accounts.add_user("wang", "王", "viewer", HASH, NOW)

    with pytest.raises(UserExists, match="already exists"):
        accounts.add_user("wang", "另一个王", "lead", HASH, NOW)


@pytest.mark.parametrize(
    ("name", "display_name", "role", "message"),
    [
        ("Wang", "王", "viewer", "invalid user name"),
        ("", "王", "viewer", "invalid user name"),
        ("a" * 65, "王", "viewer", "invalid user name"),
        ("-wang", "王", "viewer", "invalid user name"),
        ("wang li", "王", "viewer", "invalid user name"),
        ("wang", "王", "admin", "invalid role"),
        ("wang", " ", "viewer", "invalid display name"),
        ("wang", "王\n丽", "viewer", "invalid display name"),
        ("wang", "王" * 101, "viewer", "invalid display name"),
    ],
)
def test_invalid_user_fields(
    accounts: Accounts, name: str, display_name: str, role: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        accounts.add_user(name, display_name, role, HASH, NOW)
    assert accounts.list_users() == []


def test_role_checked_by_database(accounts: Accounts, store: Store) -> None:
    from sqlalchemy import insert

    from storage.web_tables import users

    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(
            insert(users).values(
                name="x",
                display_name="x",
                role="admin",
                password_hash=HASH,
                created_at=NOW,
            )
        )


def test_list_users_by_name(accounts: Accounts) -> None:
    for name in ("zhao", "li", "wang"):
        accounts.add_user(name, name, "viewer", HASH, NOW)

    assert [user.name for user in accounts.list_users()] == ["li", "wang", "zhao"]


def test_session_lifecycle(accounts: Accounts) -> None:
    user = accounts.add_user("wang", "王", "analyst", HASH, NOW)
    expires = NOW + timedelta(hours=12)
    accounts.start_session(user, "h" * 64, "csrf", NOW, expires, "127.0.0.1")

    found = accounts.find_session("h" * 64, NOW)
    assert found is not None
    assert found.user == user
    assert found.csrf_token == "csrf"
    assert found.expires_at == expires

    accounts.touch_session("h" * 64, NOW + timedelta(minutes=5))
    touched = accounts.find_session("h" * 64, NOW + timedelta(minutes=5))
    assert touched.last_seen_at == NOW + timedelta(minutes=5)

    assert accounts.find_session("h" * 64, expires) is None
    assert accounts.find_session("x" * 64, NOW) is None
    accounts.end_session("h" * 64)
    assert accounts.find_session("h" * 64, NOW) is None


def test_new_session_deletes_expired(accounts: Accounts, store: Store) -> None:
    from sqlalchemy import func, select

    from storage.web_tables import sessions

    user = accounts.add_user("wang", "王", "analyst", HASH, NOW)
    accounts.start_session(user, "a" * 64, "t", NOW, NOW + timedelta(hours=1), "a")
    later = NOW + timedelta(hours=2)
    accounts.start_session(user, "b" * 64, "t", later, later + timedelta(hours=1), "a")

    with store.engine.connect() as connection:
        left = connection.execute(select(sessions.c.id_hash)).scalars().all()
        count = connection.execute(select(func.count()).select_from(sessions))
        assert count.scalar_one() == 1
    assert left == ["b" * 64]


@pytest.mark.parametrize(
    "change",
    [
        lambda accounts: accounts.set_password("wang", "$argon2id$new"),
        lambda accounts: accounts.set_disabled("wang", True),
        lambda accounts: accounts.remove_user("wang"),
    ],
    ids=["passwd", "disable", "remove"],
)
def test_user_changes_end_sessions(accounts: Accounts, change) -> None:
    user = accounts.add_user("wang", "王", "analyst", HASH, NOW)
    accounts.start_session(user, "h" * 64, "t", NOW, NOW + timedelta(hours=1), "a")

    assert change(accounts) is True

    assert accounts.find_session("h" * 64, NOW) is None


def test_changes_to_unknown_user(accounts: Accounts) -> None:
    assert accounts.set_password("nobody", HASH) is False
    assert accounts.set_disabled("nobody", True) is False
    assert accounts.remove_user("nobody") is False


def test_disabled_user_session_hidden(accounts: Accounts) -> None:
    user = accounts.add_user("wang", "王", "analyst", HASH, NOW)
    accounts.start_session(user, "h" * 64, "t", NOW, NOW + timedelta(hours=1), "a")

    accounts.set_disabled("wang", True)
    accounts.set_disabled("wang", False)

    assert accounts.find_user("wang").disabled is False
    assert accounts.find_session("h" * 64, NOW) is None


def test_name_failures_since_last_success(accounts: Accounts) -> None:
    user = accounts.add_user("wang", "王", "analyst", HASH, NOW)
    keep = NOW - timedelta(days=1)
    for minutes in (1, 2):
        accounts.add_failed_attempt("wang", "a", NOW + timedelta(minutes=minutes), keep)
    accounts.start_session(
        user, "h" * 64, "t", NOW + timedelta(minutes=3), NOW + timedelta(hours=1), "a"
    )
    for minutes in (4, 5, 6):
        accounts.add_failed_attempt("wang", "b", NOW + timedelta(minutes=minutes), keep)

    failures = accounts.name_failures("wang", NOW)

    assert failures.count == 3
    assert failures.newest == NOW + timedelta(minutes=6)
    assert accounts.address_failures("a", NOW).count == 2
    assert accounts.address_failures("b", NOW + timedelta(minutes=5)).count == 1
    assert accounts.name_failures("other", NOW).count == 0
    assert accounts.name_failures("other", NOW).newest is None


def test_old_attempts_deleted(accounts: Accounts) -> None:
    accounts.add_failed_attempt("wang", "a", NOW, NOW - timedelta(days=1))
    later = NOW + timedelta(days=2)

    accounts.add_failed_attempt("wang", "a", later, later - timedelta(days=1))

    assert accounts.name_failures("wang", NOW - timedelta(days=1)).count == 1


def test_long_attempt_name_cut(accounts: Accounts) -> None:
    name = "x" * 10_000
    accounts.add_failed_attempt(name, "a" * 300, NOW, NOW - timedelta(days=1))

    assert accounts.name_failures(name, NOW - timedelta(minutes=1)).count == 1
    assert accounts.address_failures("a" * 300, NOW - timedelta(minutes=1)).count == 1


def test_audit_entries_newest_first(accounts: Accounts) -> None:
    ids = [
        accounts.add_audit("wang", "login", ("user", "wang"), {"address": "a"}, NOW),
        accounts.add_audit(None, "user.add", ("user", "li"), {"role": "lead"}, NOW),
        accounts.add_audit("wang", "note", None, {"文本": "<b>中文</b>"}, NOW),
    ]

    entries = accounts.audit_entries(10)

    assert [entry.id for entry in entries] == ids[::-1]
    assert entries[0].subject_type is None
    assert entries[0].details == {"文本": "<b>中文</b>"}
    assert entries[1].actor is None
    assert entries[2].subject_id == "wang"
    assert [entry.id for entry in accounts.audit_entries(1, before_id=ids[2])] == [
        ids[1]
    ]


def test_audit_subject_id_cut(accounts: Accounts) -> None:
    accounts.add_audit(None, "login.failed", ("user", "x" * 500), {}, NOW)

    assert accounts.audit_entries(1)[0].subject_id == "x" * 64


def test_downgrade_drops_account_tables(store: Store) -> None:
    downgrade(store.engine, "0009")

    with store.engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
    assert names.isdisjoint({"users", "sessions", "login_attempts", "audit_log"})
    assert "posts" in names

    store.migrate()
    Accounts(store.engine).add_user("wang", "王", "viewer", HASH, NOW)
