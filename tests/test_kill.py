"""A job killed mid-run loses and doubles nothing once it runs again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from model_cache import shipped_model_path
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from storage import Store
from storage.tables import alerts, classifications, gradings, problem_posts, signals

ROOT = Path(__file__).resolve().parents[1]
POSTS = 3_000
TEXTS = [
    "启程QC7刹车异响，4S店说正常，已经打400投诉要求换刹车片 #{n}",
    "QC5车机又黑屏了，再不解决就去12315，第{n}次",
    "启程QC9续航还不错，第{n}天通勤",
    "明天一早启程去大理，第{n}个周末",
    "QC7高速上刹车失灵差点追尾，要求退车，已向12315投诉 #{n}",
]


def write_run(folder: Path, database_url: str, posts: Path) -> Path:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url, "batch_size": 100}
    data["alerts"]["outbox"] = str(folder / "outbox")
    data["model_path"] = str(shipped_model_path())
    data["sources"][0]["path"] = str(posts)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def write_posts(path: Path) -> Path:
    start = datetime.now(UTC) - timedelta(days=3)
    with path.open("w", encoding="utf-8") as handle:
        for n in range(POSTS):
            record = {
                "id": f"k-{n}",
                "text": TEXTS[n % len(TEXTS)].format(n=n // len(TEXTS)),
                "created_at": (start + timedelta(minutes=n)).isoformat(),
                "author": {"name": f"车主{n}", "followers": 50},
                "engagement": {"likes": n % 40, "reposts": n % 7, "comments": 1},
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def once(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "pipeline.py"), "--config", str(config), "once"],
        cwd=config.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def counts(database_url: str) -> dict[str, int]:
    with Store(database_url) as store, store.engine.connect() as connection:

        def distinct_posts(table) -> int:
            statement = select(func.count(func.distinct(table.c.post_id)))
            return connection.execute(statement).scalar_one()

        def rows(table) -> int:
            statement = select(func.count()).select_from(table)
            return connection.execute(statement).scalar_one()

        return {
            "posts": store.count_posts(),
            "classified": distinct_posts(classifications),
            "classifications": rows(classifications),
            "graded": distinct_posts(gradings),
            "grouped": rows(problem_posts),
            "alerts": rows(alerts),
            "signals": rows(signals),
        }


def test_killed_run_resumes_exactly(tmp_path, database_url):
    posts = write_posts(tmp_path / "posts.jsonl")
    clean_folder = tmp_path / "clean"
    clean_folder.mkdir()
    clean_url = database_url
    killed_folder = tmp_path / "killed"
    killed_folder.mkdir()
    killed_url = _second_database(database_url, tmp_path)

    clean = once(write_run(clean_folder, clean_url, posts))
    assert clean.wait(timeout=300) == 0, clean.stderr.read()

    config = write_run(killed_folder, killed_url, posts)
    victim = once(config)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and victim.poll() is None:
        if _stored(killed_url) >= POSTS // 3:
            break
        time.sleep(0.05)
    assert victim.poll() is None, "the run ended before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert counts(killed_url)["posts"] < POSTS

    again = once(config)
    assert again.wait(timeout=300) == 0, again.stderr.read()

    assert counts(killed_url) == counts(clean_url)


def _stored(database_url: str) -> int:
    """Return how many posts are stored, 0 before the job created its tables."""
    try:
        with Store(database_url) as store:
            return store.count_posts()
    except SQLAlchemyError:
        return 0


def _second_database(database_url: str, tmp_path: Path) -> str:
    """Return another empty database on the same backend."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'killed.db'}"
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    name = f"{url.database}_killed"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)
