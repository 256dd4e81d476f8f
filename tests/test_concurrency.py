"""Sources running in parallel threads while another connection writes."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from model_cache import shipped_model_path

import pipeline
from items import Signal
from job import SourceSummary
from storage import Store

ROOT = Path(__file__).resolve().parents[1]
POSTS_PER_SOURCE = 500
TEXTS = [
    "启程QC7刹车异响，4S店说正常，第{n}位车主也遇到了",
    "QC5车机又黑屏了，真是服了，第{n}次",
    "启程QC9续航还不错，第{n}天通勤",
    "明天一早启程去大理，第{n}个周末",
]


def write_source(folder: Path, name: str) -> dict:
    start = datetime.now(UTC) - timedelta(days=2)
    lines = [
        json.dumps(
            {
                "id": f"{name}-{n}",
                "text": TEXTS[n % len(TEXTS)].format(n=n),
                "created_at": (start + timedelta(minutes=n)).isoformat(),
                "author": {"name": f"{name}车主{n}", "followers": 10},
            },
            ensure_ascii=False,
        )
        for n in range(POSTS_PER_SOURCE)
    ]
    path = folder / f"{name}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    demo = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    return {**demo["sources"][0], "name": name, "path": str(path)}


def test_parallel_sources_and_a_second_writer_store_everything(
    tmp_path, database_url, caplog
):
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": database_url, "batch_size": 50}
    data["alerts"]["outbox"] = str(tmp_path / "outbox")
    data["model_path"] = str(shipped_model_path())
    data["sources"] = [write_source(tmp_path, name) for name in ("a", "b", "c")]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = pipeline.config_module.load(path)

    done = threading.Event()
    written: list[int] = []
    failures: list[BaseException] = []

    def other_writer() -> None:
        # A second process's connection, as the review page will have.
        with Store(database_url) as other:
            while not done.is_set():
                try:
                    other.add_signals([writer_signal(len(written))])
                    written.append(1)
                except BaseException as exc:  # reported by the assert below
                    failures.append(exc)
                    return

    with Store(database_url) as store, caplog.at_level(logging.WARNING):
        store.migrate()
        job = pipeline.Job(config, store)
        writer = threading.Thread(target=other_writer)
        writer.start()
        summaries: dict[str, SourceSummary] = {}
        threads = [
            threading.Thread(
                target=lambda s=s: summaries.__setitem__(s.name, job.run_source(s))
            )
            for s in config.sources
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        writer.join()
        posts = store.count_posts()
        kinds = sum(store.status().kinds.values())

    assert failures == []
    assert written, "the second writer never wrote"
    assert {name: s.status for name, s in summaries.items()} == dict.fromkeys(
        "abc", "ok"
    )
    assert posts == kinds == 3 * POSTS_PER_SOURCE
    assert "locked" not in caplog.text


def writer_signal(number: int) -> Signal:
    return Signal(
        kind="escalation",
        key=f"writer:{number}",
        subject="brand",
        reason="另一连接写入",
        occurred_at=datetime.now(UTC),
    )
