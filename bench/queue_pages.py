"""Queue benchmark: how long the review queue takes to read its first and a deep page.

Stores N graded posts (90,000 by default, two thirds of them medium or
critical) in a fresh SQLite file through the real Store, then times the queue
query for page 1 and for the pages given by --pages. A deep page is reached
by walking the keyset from page 1, and only the query of that page is timed.
Each figure is the median of --repeat runs.

    .venv/bin/python bench/queue_pages.py [--posts N] [--pages 100 500] [--url URL]

--url runs it on another empty database, such as a PostgreSQL one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from graded_posts import make_assessment

from items import Author, Engagement, Item
from storage import Store
from storage.queue import QueueFilter, ReviewQueue
from web.views import QUEUE_PAGE_SIZE

BATCH = 2000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEVELS = ("normal", "medium", "critical")


def fill(store: Store, count: int) -> None:
    for start in range(0, count, BATCH):
        numbers = range(start, min(start + BATCH, count))
        items = [
            Item(
                source=f"source-{number % 4}",
                platform="weibo",
                external_id=str(number),
                text=f"QC7 刹车异响，第{number}次去4S店，要求退车。" * 3,
                collected_at=T0 + timedelta(minutes=number),
                created_at=T0 + timedelta(minutes=number),
                author=Author(name=f"车主{number}"),
                engagement=Engagement(likes=number % 50),
            )
            for number in numbers
        ]
        post_ids = store.add_items(items)
        assessments = [
            make_assessment(
                "complaint" if number % 2 else "grievance",
                LEVELS[number % 3],
                T0 + timedelta(hours=number % 97),
            )
            for number in numbers
        ]
        store.save_assessments(post_ids, assessments)


def time_page(queue: ReviewQueue, page: int, repeat: int, queue_filter) -> float:
    after = None
    for _ in range(page - 1):
        rows = queue.page(QUEUE_PAGE_SIZE, queue_filter, after)
        after = rows[-1].key
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = queue.page(QUEUE_PAGE_SIZE + 1, queue_filter, after)
        timings.append(time.perf_counter() - started)
    assert len(rows) == QUEUE_PAGE_SIZE + 1, f"the queue has no page {page + 1}"
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=90_000)
    parser.add_argument("--pages", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", help="Empty database to fill.  [default: SQLite]")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = options.url or f"sqlite:///{Path(folder) / 'queue.db'}"
        with Store(url) as store:
            store.migrate()
            started = time.perf_counter()
            fill(store, options.posts)
            print(
                f"stored {options.posts} graded posts in {time.perf_counter() - started:.1f} s"
            )
            queue = ReviewQueue(store.engine)
            for name, queue_filter in (
                ("all", None),
                ("critical", QueueFilter(level="critical")),
            ):
                for page in (1, *options.pages):
                    seconds = time_page(queue, page, options.repeat, queue_filter)
                    print(f"{name:<8} page {page:>4}: {seconds * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
