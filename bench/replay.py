"""Replay benchmark: posts per second and peak memory of `pipeline.py once`.

Builds a JSONL file of N posts (100,000 by default) from the bundled demo posts
and, when ../shared/data is present, the real corpora there, then runs
`pipeline.py once` on it in a child process pinned to one core, into a fresh
SQLite file, and prints the figures. When the config uses the trained
classifier, the model is trained first in this process, so that neither its
training time nor its memory counts in the child's figures.

    .venv/bin/python bench/replay.py [--posts N] [--relevant] [--keep]

Most corpus posts do not mention the monitored brand and leave the nlp stage
after the relevance check. --relevant puts a model name in front of every
corpus text, so that every post is classified and graded: the worst case.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FENGHUO_SHARED", ROOT.parent / "shared")) / "data"
CORPORA = (
    ("auto12365_complaints/complaints.jsonl", "12365auto"),
    ("nev_weibo_2019_2021/posts_weak_sentiment.jsonl", "weibo"),
    ("ccf_bdci2018_car_reviews/car_reviews.jsonl", "autohome"),
)


def source_records(relevant: bool) -> list[dict]:
    demo = [
        json.loads(line)
        for line in (ROOT / "demo" / "posts.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
        if line.strip()
    ]
    records = list(demo)
    for relative, platform in CORPORA:
        path = SHARED_DATA / relative
        if not path.is_file():
            print(
                f"note: {path} not found, building from the demo posts only",
                file=sys.stderr,
            )
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            records.append(
                {
                    "source": platform,
                    "text": ("启程QC7 " if relevant else "") + record["text"],
                    "created_at": record.get("created_at"),
                    "author": {
                        "name": None,
                        "followers": 0,
                        "verified": "none",
                        "role": None,
                    },
                    "engagement": {"likes": 0, "reposts": 0, "comments": 0},
                }
            )
    return records


def build_input(path: Path, count: int, relevant: bool) -> int:
    records = source_records(relevant)
    size = 0
    with path.open("w", encoding="utf-8") as handle:
        for number, record in zip(range(count), itertools.cycle(records)):
            line = json.dumps({**record, "id": f"bench-{number}"}, ensure_ascii=False)
            handle.write(line + "\n")
            size += len(line) + 1
    return size


def write_config(folder: Path, posts: Path) -> Path:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": f"sqlite:///{folder / 'bench.db'}"}
    data["alerts"]["outbox"] = str(folder / "outbox")
    data["sources"][0]["path"] = str(posts)
    if data.get("classifier", "trained") == "trained":
        data["model_path"] = str(train_model(folder / "model.joblib"))
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def train_model(path: Path) -> Path:
    """Train the shipped model into ``path`` in this process and return the path."""
    sys.path.insert(0, str(ROOT))
    import config
    from nlp import model, training

    brand = config.load(ROOT / "config.yaml").brand
    data = training.read_training(training.training_files(ROOT))
    trained = training.train(data, brand)
    return model.save(trained.classifier, trained.metadata, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--posts", type=int, default=100_000, help="number of posts to replay"
    )
    parser.add_argument(
        "--relevant",
        action="store_true",
        help="make every corpus post mention the brand",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="fenghuo-bench-"))
    posts = folder / "posts.jsonl"
    size = build_input(posts, args.posts, args.relevant)
    config = write_config(folder, posts)

    command = [
        sys.executable,
        str(ROOT / "pipeline.py"),
        "--config",
        str(config),
        "once",
    ]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

    if result.returncode != 0:
        print(result.stdout, result.stderr, sep="\n", file=sys.stderr)
        raise SystemExit(
            f"pipeline.py once failed with exit status {result.returncode}"
        )
    alerts = len(list((folder / "outbox").glob("*.eml")))
    print(result.stdout)
    print(f"posts:        {args.posts:,} ({size / 1e6:.1f} MB of JSONL)")
    print(f"wall time:    {seconds:.1f} s, including start-up and migrations")
    print(f"throughput:   {args.posts / seconds:,.0f} posts/s end to end on one core")
    print(f"peak memory:  {peak_kib / 1024:.0f} MB (max RSS of the child process)")
    print(f"alert emails: {alerts:,}")
    if args.keep:
        print(f"work folder:  {folder}")
    else:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
