"""Segmentation agreement: rjieba against jieba, same user words, HMM off.

Cuts every post of the shared car corpora with the project's Segmenter
(rjieba) and with JiebaSegmenter (jieba 0.42.1), both with the brand config's
user dictionary and negation joining, and prints per corpus:

- the share of posts whose token lists are identical;
- the share of jieba's tokens that rjieba also returns at the same position.

The corpora are the car-forum posts of CCF BDCI 2018, the NEV Weibo posts and
the 车质网 complaints from ../shared/data.

    .venv/bin/python bench/segment_agreement.py [--examples N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import config
from nlp.segment import JiebaSegmenter, Segmenter

SHARED_DATA = Path(os.environ.get("FENGHUO_SHARED", ROOT.parent / "shared")) / "data"
CORPORA = {
    "ccf_bdci2018_car_reviews": ["car_reviews.jsonl"],
    "nev_weibo_2019_2021": [
        "hot_posts_with_engagement.jsonl",
        "posts_weak_sentiment.jsonl",
    ],
    "auto12365_complaints": ["complaints.jsonl"],
}


def read_texts(folder: str) -> list[str]:
    """Return the non-empty texts of one corpus folder, in file order."""
    texts = []
    for name in CORPORA[folder]:
        with (SHARED_DATA / folder / name).open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    text = json.loads(line).get("text") or ""
                    if text.strip():
                        texts.append(text)
    return texts


def token_spans(tokens: Sequence[str]) -> set[tuple[int, int]]:
    """Return the (start, end) of each token in the concatenation of ``tokens``.

    Both segmenters drop the same whitespace tokens, so their tokens join to
    strings of the same length, and equal spans mean the same cut.
    """
    spans, position = set(), 0
    for token in tokens:
        spans.add((position, position + len(token)))
        position += len(token)
    return spans


def compare(texts: Sequence[str], fast: Segmenter, reference: Segmenter):
    """Return (identical posts, identical tokens, reference tokens, differing)."""
    same_posts, same_tokens, total_tokens, differing = 0, 0, 0, []
    for text in texts:
        folded = fast.fold(text)
        expected = reference.segment_folded(folded)
        found = fast.segment_folded(folded)
        same_posts += found == expected
        if sum(map(len, found)) != sum(map(len, expected)):
            raise ValueError("the segmenters returned different numbers of characters")
        expected_spans = token_spans(expected)
        same_tokens += len(expected_spans & token_spans(found))
        total_tokens += len(expected_spans)
        if found != expected:
            differing.append((expected, found))
    return same_posts, same_tokens, total_tokens, differing


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--examples", type=int, default=0, help="print N differing token lists"
    )
    args = parser.parse_args(argv)

    brand = config.load(ROOT / "config.yaml").brand
    fast, reference = Segmenter.for_brand(brand), JiebaSegmenter.for_brand(brand)
    print(f"{fast.engine_version()} against {reference.engine_version()}, HMM off")
    totals = [0, 0, 0, 0]
    for folder in CORPORA:
        if not (SHARED_DATA / folder).is_dir():
            print(f"note: {SHARED_DATA / folder} not found, skipped", file=sys.stderr)
            continue
        texts = read_texts(folder)
        same_posts, same_tokens, tokens, differing = compare(texts, fast, reference)
        print_row(folder, len(texts), same_posts, same_tokens, tokens)
        for index, value in enumerate((len(texts), same_posts, same_tokens, tokens)):
            totals[index] += value
        for expected, found in differing[: args.examples]:
            print(f"  jieba:  {' '.join(expected)}\n  rjieba: {' '.join(found)}")
    if totals[0]:
        print_row("all", *totals)


def print_row(name: str, posts: int, same_posts: int, same: int, tokens: int) -> None:
    print(
        f"{name:<26} {posts:>6} posts  {same_posts / posts:8.4%} identical lists  "
        f"{tokens:>8} tokens  {same / tokens:8.4%} identical tokens"
    )


if __name__ == "__main__":
    main()
