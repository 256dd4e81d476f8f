"""NLP benchmark: posts per second of the language stage on one core.

Times, on the same texts and pinned to one CPU with os.sched_setaffinity:

- jieba.lcut alone (the global tokenizer, HMM on, jieba's default);
- the project's Segmenter alone (rjieba with the user dictionary, HMM off,
  negation joining);
- the nlp stage with the lexicon classifier, in batches of 500;
- the nlp stage with the trained classifier, in batches of 500.

The nlp stage is ``Analyzer.analyse``: normalise, brand relevance, classify
(the trained model segments inside its vectorizer) and grade. Each text gets
a model name in front, so that every post is classified instead of leaving at
the relevance check. The texts are the car-forum posts of CCF BDCI 2018 from
../shared/data when present, else the bundled demo posts.

    .venv/bin/python bench/nlp.py [--posts N] [--repeat R] [--model PATH]

Without --model the trained classifier is trained in memory from the
training files first (a few seconds, not timed). Each figure is the median of
R timed passes after one warm-up pass. A pass is timed in CPU seconds of this
process (time.process_time), which on an idle machine equal wall-clock seconds
and which other processes on a busy machine distort less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jieba

import config
from items import Item
from nlp import Analyzer
from nlp.segment import Segmenter

SHARED_DATA = Path(os.environ.get("FENGHUO_SHARED", ROOT.parent / "shared")) / "data"
CAR_REVIEWS = SHARED_DATA / "ccf_bdci2018_car_reviews" / "car_reviews.jsonl"
DEMO_POSTS = ROOT / "demo" / "posts.jsonl"
BATCH_SIZE = 500
MODEL_PREFIX = "QC7 "


def load_texts(limit: int | None) -> tuple[list[str], Path]:
    """Return the benchmark texts and the file they came from."""
    path = CAR_REVIEWS if CAR_REVIEWS.is_file() else DEMO_POSTS
    if path is DEMO_POSTS:
        print(f"note: {CAR_REVIEWS} not found, using the demo posts", file=sys.stderr)
    texts = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                texts.append(MODEL_PREFIX + json.loads(line)["text"])
    return texts[:limit] if limit else texts, path


def pin_to_one_cpu() -> int:
    """Pin this process to the first CPU it may run on and return that CPU."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def make_items(texts: Sequence[str]) -> list[Item]:
    now = datetime.now(UTC)
    return [
        Item(
            source="bench",
            platform="autohome",
            external_id=str(i),
            text=text,
            collected_at=now,
        )
        for i, text in enumerate(texts)
    ]


def posts_per_second(run: Callable[[], None], count: int, repeat: int) -> float:
    """Warm up once, then return count over the median CPU time of ``repeat`` runs."""
    run()
    seconds = []
    for _ in range(repeat):
        started = time.process_time()
        run()
        seconds.append(time.process_time() - started)
    return count / statistics.median(seconds)


def in_batches(analyzer: Analyzer, items: Sequence[Item]) -> Callable[[], None]:
    def run() -> None:
        for start in range(0, len(items), BATCH_SIZE):
            analyzer.analyse(items[start : start + BATCH_SIZE])

    return run


def trained_classifier(brand: config.Brand, model_path: str | None):
    from nlp import training
    from nlp.trained import TrainedClassifier

    if model_path:
        return TrainedClassifier.load(model_path, brand)
    data = training.read_training(training.training_files(ROOT))
    return training.train(data, brand)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=None, help="use the first N texts")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per row")
    parser.add_argument("--model", help="model file of the trained classifier")
    args = parser.parse_args(argv)

    cpu = pin_to_one_cpu()
    texts, path = load_texts(args.posts)
    loaded = config.load(ROOT / "config.yaml")
    segmenter = Segmenter.for_brand(loaded.brand)
    items = make_items(texts)
    lexicon = Analyzer(loaded.brand, loaded.thresholds, loaded.strategy)
    trained = Analyzer(
        loaded.brand,
        loaded.thresholds,
        loaded.strategy,
        trained_classifier(loaded.brand, args.model),
    )
    rows = [
        ("jieba.lcut alone", lambda: [jieba.lcut(t) for t in texts]),
        ("Segmenter alone (user dictionary)", lambda: [segmenter(t) for t in texts]),
        ("nlp stage, lexicon classifier", in_batches(lexicon, items)),
        ("nlp stage, trained classifier", in_batches(trained, items)),
    ]
    characters = sum(len(t) for t in texts)
    print(
        f"{len(texts)} posts from {path}, {characters / len(texts):.0f} characters "
        f"on average, CPU {cpu}, median of {args.repeat}, jieba {jieba.__version__}, "
        f"{Segmenter.engine_version()}"
    )
    baseline = None
    for name, run in rows:
        rate = posts_per_second(run, len(texts), args.repeat)
        baseline = baseline or rate
        print(f"{name:<36} {rate:>9,.0f} posts/s  {rate / baseline:5.2f} of jieba")


if __name__ == "__main__":
    main()
