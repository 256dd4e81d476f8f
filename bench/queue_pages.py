"""Queue benchmark: review-page response times over a million posts.

Fills a fresh database with N posts (1,000,000 by default) by bulk insert,
not through the pipeline: posts with an engagement snapshot, a
classification, a grading for grievances and complaints, a problem, search
terms, and review states for about 30% of the queued posts. The review queue's
table is then filled by the store's own code (storage.queue_index), as a
migration of an existing database does. About 40% of the posts end up in the
queue.

Then it times requests through the Flask app in process (login session,
query, template), 20 of each, and prints the median and the worst in
milliseconds: the queue's first page, page 500 with two filters, a post page,
and full-text searches.

    .venv/bin/python bench/queue_pages.py                    # SQLite and PostgreSQL
    .venv/bin/python bench/queue_pages.py --backend sqlite --posts 100000

PostgreSQL runs in a throwaway cluster on 127.0.0.1, started from Debian's
binaries as the test suite does, unless --postgres-url names a database.
A database named by --sqlite-file or --postgres-url is kept, and one that
already contains posts is timed again without filling.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.append(str(ROOT / "tests" / "web"))

from sqlalchemy import Connection, Table, func, insert, select, text

from storage import Store, search
from storage.accounts import Accounts
from storage.engine import write_transaction
from storage.queue import QueueFilter, ReviewQueue
from storage.queue_index import refresh_queue
from storage.queue_tables import review_queue
from storage.tables import (
    classifications,
    engagement_snapshots,
    gradings,
    incidents,
    posts,
    problem_posts,
    problems,
)
from storage.web_tables import post_reviews

CHUNK = 20_000
REPEAT = 20
PROBLEMS = 2000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SOURCES = tuple(f"source-{i}" for i in range(4))
MODELS = ("QC5", "QC7", "QC9")
COMPETITORS = ("蔚来", "小鹏", "理想")
# Fault phrases and how often a post names each (weights), so that a search
# term matches a realistic share: 刹车失灵 about 18% of posts, 门把手 about 4%.
FAULTS = (
    ("刹车失灵", 10),
    ("刹车异响", 10),
    ("续航虚标", 12),
    ("车机死机", 12),
    ("漆面起泡", 8),
    ("车内异味", 8),
    ("电池衰减", 10),
    ("售后推诿", 12),
    ("门把手冻住", 2),
    ("空调不制冷", 8),
    ("OTA 升级失败", 6),
    ("充电桩坏了", 6),
)
CITIES = ("北京", "上海", "广州", "深圳", "成都", "杭州", "武汉", "西安")
DEMANDS = ("要求退车", "要求赔偿", "要求道歉", "已投诉12315", "再不解决就曝光")
ASSIGNEES = ("wang", "li", "zhang", "liu", "chen")


def post_text(chooser: random.Random, number: int) -> tuple[str, list[str], list[str]]:
    """Return an invented post text, the models it names and the competitors."""
    faults = chooser.choices(
        [f for f, _ in FAULTS], weights=[w for _, w in FAULTS], k=2
    )
    model = MODELS[number % len(MODELS)]
    competitors = [COMPETITORS[number % 3]] if number % 7 == 0 else []
    text = (
        f"{chooser.choice(CITIES)}车主，{model} 提车{number % 36 + 1}个月，"
        f"{faults[0]}，{faults[1]}，4S店第{number % 9 + 1}次也没修好，"
        f"{chooser.choice(DEMANDS)}。"
    )
    if competitors:
        text += f"早知道买{competitors[0]}了。"
    return text, [model], competitors


def chunk_rows(start: int, stop: int) -> dict[str, list[dict[str, Any]]]:
    chooser = random.Random(start)
    tables: dict[str, list[dict[str, Any]]] = {
        name: []
        for name in ("posts", "snapshots", "classifications", "gradings", "problem")
    }
    tables["search"] = []
    for post_id in range(start + 1, stop + 1):
        body, models, competitors = post_text(chooser, post_id)
        moment = T0 + timedelta(seconds=30 * post_id)
        source = SOURCES[post_id % len(SOURCES)]
        tables["posts"].append(
            {
                "id": post_id,
                "identity_key": f"source:{source}:{post_id}",
                "source": source,
                "external_id": str(post_id),
                "platform": "weibo",
                "url": f"https://weibo.example/{post_id}",
                "title": None,
                "text": body,
                "lang": "zh",
                "author_name": f"车主{post_id % 50_000}",
                "author_id": str(post_id % 50_000),
                "author_followers": post_id % 5000,
                "author_verified": "none",
                "author_role": None,
                "created_at": moment,
                "collected_at": moment + timedelta(minutes=2),
                "last_seen_at": moment + timedelta(minutes=2),
                "raw": {},
                "time_estimated": False,
                "removed_at": None,
                "regrade_pending": False,
                "text_checked_at": None,
            }
        )
        tables["search"].append((post_id, None, body))
        tables["snapshots"].append(
            {
                "id": post_id,
                "post_id": post_id,
                "taken_at": moment,
                "likes": post_id % 300,
                "reposts": post_id % 40,
                "comments": post_id % 25,
            }
        )
        kind = ("complaint", "grievance", "grievance", "neutral", "praise")[post_id % 5]
        tables["classifications"].append(
            {
                "id": post_id,
                "post_id": post_id,
                "kind": kind,
                "confidence": 0.9,
                "cues": [],
                "demands": [],
                "channels": [],
                "root_cause": "product",
                "model_version": "bench",
                "relevant": True,
                "brand": "启程汽车",
                "models": models,
                "competitors": competitors,
                "competitor_models": [],
                "truncated": False,
                "created_at": moment,
            }
        )
        if kind in ("complaint", "grievance"):
            tables["gradings"].append(grading_row(chooser, post_id, kind, moment))
            problem_id = post_id % PROBLEMS + 1
            tables["problem"].append(
                {
                    "post_id": post_id,
                    "problem_id": problem_id,
                    "incident_id": problem_id,
                    "report": True,
                    "matched_by": "term",
                    "posted_at": moment,
                    "assigned_at": moment,
                }
            )
    return tables


def grading_row(
    chooser: random.Random, post_id: int, kind: str, moment: datetime
) -> dict[str, Any]:
    level = chooser.choices(("normal", "medium", "critical"), (45, 40, 15))[0]
    scores = [chooser.randint(0, 3) for _ in range(4)]
    hours = {"critical": 2, "medium": 24, "normal": 72}[level]
    return {
        "id": post_id,
        "post_id": post_id,
        "classification_id": post_id,
        "customer_loss": scores[0],
        "company_fault": scores[1],
        "public_impact": scores[2],
        "customer_identity": scores[3],
        "evidence": {},
        "level": level,
        "strategy": "balanced",
        "safety": False,
        "high_risk": kind == "grievance" and post_id % 4 == 0,
        "deadline": None if post_id % 10 == 0 else moment + timedelta(hours=hours),
        "reason": "刹车失灵多次维修未果",
        "created_at": moment,
    }


def bulk_insert(connection: Connection, table: Table, rows: list[dict]) -> None:
    """Insert rows with COPY on PostgreSQL and executemany on SQLite."""
    if not rows:
        return
    if connection.dialect.name == "sqlite":
        connection.execute(insert(table), rows)
        return
    names = list(rows[0])
    cursor = connection.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([_copy_value(row[name]) for name in names])


def _copy_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def bulk_search(connection: Connection, rows: list[tuple[int, None, str]]) -> None:
    if connection.dialect.name == "sqlite":
        search.index_posts(connection, rows)
        return
    cursor = connection.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {search.SEARCH_TABLE} (post_id, terms) FROM STDIN") as copy:
        for post_id, title, body in rows:
            terms = search.search_terms(title, body)
            copy.write_row([post_id, search.tsvector_text(terms)])


def fill(store: Store, count: int) -> None:
    with write_transaction(store.engine) as connection:
        bulk_insert(connection, problems, [problem_row(i) for i in range(PROBLEMS)])
        bulk_insert(connection, incidents, [incident_row(i) for i in range(PROBLEMS)])
    for start in range(0, count, CHUNK):
        tables = chunk_rows(start, min(start + CHUNK, count))
        with write_transaction(store.engine) as connection:
            bulk_insert(connection, posts, tables["posts"])
            bulk_insert(connection, engagement_snapshots, tables["snapshots"])
            bulk_insert(connection, classifications, tables["classifications"])
            bulk_insert(connection, gradings, tables["gradings"])
            bulk_insert(connection, problem_posts, tables["problem"])
            bulk_search(connection, tables["search"])
            refresh_queue(connection, [row["post_id"] for row in tables["gradings"]])
        print(f"\r  stored {min(start + CHUNK, count):,} posts", end="", flush=True)
    print()
    add_reviews(store)


def problem_row(index: int) -> dict[str, Any]:
    return {
        "id": index + 1,
        "model": MODELS[index % 3],
        "term": FAULTS[index % len(FAULTS)][0],
        "label": f"{MODELS[index % 3]} · {FAULTS[index % len(FAULTS)][0]}",
        "root_cause": "product",
        "models": {},
        "posts": 0,
        "reports": 0,
        "incidents": 1,
        "reporters": 0,
        "first_seen": T0,
        "last_seen": T0,
        "profile": {},
        "state_version": 1,
        "updated_at": T0,
    }


def incident_row(index: int) -> dict[str, Any]:
    return {
        "id": index + 1,
        "problem_id": index + 1,
        "posts": 0,
        "reports": 0,
        "authors": 0,
        "reporters": 0,
        "first_seen": T0,
        "last_seen": T0,
        "signatures": [],
        "state_version": 1,
        "updated_at": T0,
    }


def add_reviews(store: Store) -> None:
    """Review the queued posts whose id is a multiple of 5: close those whose id
    is a multiple of 20 and assign the others."""
    with write_transaction(store.engine) as connection:
        queued = connection.execute(select(review_queue.c.post_id)).scalars().all()
        rows = []
        for post_id in queued:
            if post_id % 20 == 0:
                status, assignee = "closed", ASSIGNEES[post_id % 5]
            elif post_id % 5 == 0:
                status, assignee = "assigned", ASSIGNEES[post_id % 5]
            else:
                continue
            rows.append(
                {
                    "post_id": post_id,
                    "status": status,
                    "assignee": assignee,
                    "updated_at": T0,
                    "updated_by": "lead",
                }
            )
        bulk_insert(connection, post_reviews, rows)
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT setval('posts_id_seq', (SELECT max(id) FROM posts))")
            )


def deep_key(queue: ReviewQueue, page: int, queue_filter: QueueFilter) -> bytes:
    """Walk the keyset to the start of ``page``; return the key to read it from."""
    after = None
    for _ in range(page - 1):
        rows = queue.page(50, queue_filter, after)
        assert len(rows) == 50, f"the queue has fewer than {page} pages"
        after = rows[-1].key
    return after


def time_requests(client: Any, paths: Iterator[str]) -> tuple[float, float, int]:
    timings = []
    status = 200
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        timings.append(time.perf_counter() - started)
        status = max(status, response.status_code)
    return statistics.median(timings) * 1000, max(timings) * 1000, status


def run(url: str, count: int, analyze: bool, page: int) -> None:
    from flask.testing import FlaskClient
    from review_client import NOW, PASSWORD, log_in, make_config

    from web.app import create_app
    from web.cursors import encode_key
    from web.passwords import hash_password

    with Store(url) as store:
        store.migrate()
        if store.count_posts() == 0:
            started = time.perf_counter()
            fill(store, count)
            print(f"  filled in {time.perf_counter() - started:.0f} s")
        else:
            print(f"  reusing {store.count_posts():,} stored posts")
        with store.engine.connect() as connection:
            queued = connection.execute(
                select(func.count()).select_from(review_queue)
            ).scalar_one()
        print(f"  queued posts: {queued:,}")
        if analyze:
            with store.engine.connect() as connection:
                connection.execute(text("ANALYZE"))
                connection.commit()

        accounts = Accounts(store.engine)
        if accounts.find_user("lead") is None:
            accounts.add_user("lead", "主管", "lead", hash_password(PASSWORD), NOW)
        app = create_app(make_config(url), store, now=lambda: NOW)
        client: FlaskClient = app.test_client()
        assert log_in(client, "lead").status_code == 303

        queue = ReviewQueue(store.engine)
        two = QueueFilter(kind="complaint", source="source-1")
        key_two = encode_key(deep_key(queue, page, two))
        label = QueueFilter(model="QC7", status="open")
        key_label = encode_key(deep_key(queue, page, label))
        post_ids = [row.post_id for row in queue.page(REPEAT)]

        cases = [
            ("queue, page 1", ["/"] * REPEAT),
            (
                f"queue, page {page}, kind + source",
                [f"/?kind=complaint&source=source-1&after={key_two}"] * REPEAT,
            ),
            (
                f"queue, page {page}, model + status",
                [f"/?model=QC7&status=open&after={key_label}"] * REPEAT,
            ),
            ("post page", [f"/posts/{post_id}" for post_id in post_ids]),
            ("search 刹车失灵 (common)", ["/?q=刹车失灵"] * REPEAT),
            ("search 门把手 (rare)", ["/?q=门把手"] * REPEAT),
            ("search OTA + level", ["/?q=OTA&level=critical"] * REPEAT),
            ("assignee wang", ["/?assignee=wang"] * REPEAT),
        ]
        print(f"  {'request':<34} {'median ms':>10} {'worst ms':>10}")
        for name, paths in cases:
            median, worst, status = time_requests(client, iter(paths))
            assert status == 200, f"{name}: HTTP {status}"
            print(f"  {name:<34} {median:>10.1f} {worst:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument(
        "--backend", choices=("sqlite", "postgres", "both"), default="both"
    )
    parser.add_argument(
        "--page", type=int, default=500, help="Number of the deep page to time."
    )
    parser.add_argument(
        "--sqlite-file",
        help="SQLite file to fill, kept afterwards; a filled one is reused.",
    )
    parser.add_argument(
        "--postgres-url",
        help="PostgreSQL database to fill; a filled one is reused.",
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="Skip ANALYZE after the fill (planner statistics).",
    )
    options = parser.parse_args()

    if options.backend in ("sqlite", "both"):
        print(f"SQLite, {options.posts:,} posts")
        if options.sqlite_file:
            url = f"sqlite:///{options.sqlite_file}"
            run(url, options.posts, not options.no_analyze, options.page)
        else:
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite:///{Path(folder) / 'queue.db'}"
                run(url, options.posts, not options.no_analyze, options.page)
    if options.backend in ("postgres", "both"):
        print(f"PostgreSQL, {options.posts:,} posts")
        if options.postgres_url:
            run(
                options.postgres_url,
                options.posts,
                not options.no_analyze,
                options.page,
            )
        else:
            with postgres_database() as url:
                run(url, options.posts, not options.no_analyze, options.page)


class postgres_database:
    """A throwaway PostgreSQL cluster on 127.0.0.1, as the tests start one."""

    def __enter__(self) -> str:
        from conftest import PostgresCluster, _find_postgres_bin

        bin_dir = _find_postgres_bin()
        if bin_dir is None:
            raise SystemExit(
                "PostgreSQL server binaries not found (package postgresql)"
            )
        self.cluster = PostgresCluster(bin_dir)
        self.cluster.start()
        return self.cluster.url.render_as_string(hide_password=False)

    def __exit__(self, *exc_info: object) -> None:
        self.cluster.stop()


if __name__ == "__main__":
    main()
