"""Helpers of the review page's tests: config, a settable clock, logging in."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bs4 import BeautifulSoup
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import config as config_module
from config import Config, Storage, Web
from web.csv_export import BYTE_ORDER_MARK

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
# NOW is Sunday 17:00 in Shanghai, so the report's last week starts on
# Monday 2026-02-23, at this time.
WEEK_START = NOW - timedelta(days=6, hours=8)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Clock:
    """A settable time source for the app."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, span: timedelta) -> None:
        self.now += span


def make_config(database_url: str, **web: object) -> Config:
    loaded = config_module.load(ROOT / "config.yaml")
    return dataclasses.replace(
        loaded, storage=Storage(url=database_url), web=Web(**web)
    )


def form_token(response: TestResponse) -> str:
    """Return the CSRF token of the first form on a page."""
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    field = soup.find("input", attrs={"name": "csrf_token"})
    assert field is not None, "no csrf_token field on the page"
    return field["value"]


def log_in(
    client: FlaskClient,
    name: str,
    password: str = PASSWORD,
    next_target: str | None = None,
) -> TestResponse:
    """Open the login page and submit it, as a browser does."""
    page = client.get("/login")
    form = {"csrf_token": form_token(page), "name": name, "password": password}
    if next_target is not None:
        form["next"] = next_target
    return client.post("/login", data=form)


def read_csv(response: TestResponse) -> list[list[str]]:
    """Return the rows of a CSV download, checking its status and byte order mark."""
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_data()
    assert body.startswith(BYTE_ORDER_MARK.encode("utf-8"))
    text = body.decode("utf-8")[1:]
    return list(csv.reader(io.StringIO(text)))
