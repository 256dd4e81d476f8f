"""Fixtures of the review page: an app over a migrated SQLite store, users,
a clock the tests can move, and logged-in test clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from review_client import NOW, PASSWORD, Clock, log_in, make_config

from storage import Store
from storage.accounts import Accounts
from web.app import create_app
from web.passwords import hash_password


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'fenghuo.db'}")
    store.migrate()
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def app(sqlite_store: Store, clock: Clock) -> Flask:
    config = make_config(str(sqlite_store.engine.url))
    return create_app(config, sqlite_store, now=clock)


@pytest.fixture
def accounts(sqlite_store: Store) -> Accounts:
    return Accounts(sqlite_store.engine)


@pytest.fixture
def users(accounts: Accounts) -> dict[str, str]:
    """One user per role, named after it; all share PASSWORD."""
    password_hash = hash_password(PASSWORD)
    for role in ("viewer", "analyst", "lead"):
        accounts.add_user(role, f"{role} 用户", role, password_hash, NOW)
    return {role: role for role in ("viewer", "analyst", "lead")}


@pytest.fixture
def logged_in(app: Flask, users: dict[str, str]):
    """Return a function that gives a test client logged in as a role."""

    def log_in_as(role: str) -> FlaskClient:
        client = app.test_client()
        response = log_in(client, users[role])
        assert response.status_code == 303, response.get_data(as_text=True)
        return client

    return log_in_as
