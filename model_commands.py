"""The analysts' corrections as training data, and the ``model promote`` command.

``python pipeline.py train`` adds the latest kind correction of each post in
the configured database to the training files, and records in the model
metadata how many it used, from whom, and the development-set figures.
Nothing here trains by itself: a person runs ``train`` and then
``model promote``. ``pipeline.py`` passes in its config loading and store
opening, as for :mod:`web.commands`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from config import Config
from storage import Store
from storage.accounts import insert_audit
from storage.engine import write_transaction
from storage.reviews import PostReviews, TrainingLabels

logger = logging.getLogger(__name__)

Start = Callable[[click.Context], Config]
OpenStore = Callable[[Config], AbstractContextManager[Store]]
# The name under which corrections appear among the training files.
CORRECTIONS_SOURCE = "analyst corrections in the database"


@dataclass(frozen=True)
class CorrectionData:
    """Labelled records made from corrections, and what was left out.

    ``excluded`` counts the corrected posts whose text is also in the
    development set, which is for evaluation only. ``irrelevant`` counts the
    posts corrected to irrelevant, a kind that relevance matching decides and
    the model does not learn.
    """

    records: list[dict[str, Any]]
    labels: TrainingLabels
    excluded: int
    irrelevant: int = 0

    def metadata(self) -> dict[str, Any]:
        """Return the summary that the model metadata keeps under "corrections"."""
        used = [r["id"] for r in self.records]
        return {
            "used": len(used),
            "analysts": _analysts(self.labels, set(used)),
            "level_posts": self.labels.level_posts,
            "excluded_dev": self.excluded,
            "irrelevant": self.irrelevant,
            "last_id": self.labels.last_id,
        }


def read_corrections(store: Store, dev_path: Path) -> CorrectionData:
    """Return the latest kind correction of each post as labelled records.

    Posts whose text is also in the development set at ``dev_path`` are left
    out and counted.
    """
    labels = PostReviews(store.engine).training_labels()
    dev_texts = _dev_texts(dev_path)
    records, excluded, irrelevant = [], 0, 0
    for label in labels.kinds:
        if label.post["text"].strip() in dev_texts:
            excluded += 1
        elif label.kind == "irrelevant":
            irrelevant += 1
        else:
            records.append(_record(label))
    logger.info("corrections read used=%s excluded=%s", len(records), excluded)
    return CorrectionData(records, labels, excluded, irrelevant)


def evaluation_metadata(report: Any, dev_path: Path) -> dict[str, Any]:
    """Return the development-set figures that the model metadata keeps."""
    return {
        "data": dev_path.name,
        "posts": report.total,
        "macro_f1": round(report.macro_f1, 4),
        "per_kind": {
            kind: {
                "precision": round(scores.precision, 4),
                "recall": round(scores.recall, 4),
                "f1": round(scores.f1, 4),
                "support": scores.support,
            }
            for kind, scores in report.per_kind.items()
        },
    }


def format_corrections(data: CorrectionData) -> str:
    """Return the lines that ``train`` prints about the corrections it used."""
    summary = data.metadata()
    analysts = ", ".join(f"{name} {n}" for name, n in summary["analysts"].items())
    return (
        f"corrections: {summary['used']} kind labels used"
        f"{f' (by {analysts})' if analysts else ''}, "
        f"{summary['level_posts']} posts with level corrections and "
        f"{summary['irrelevant']} corrected to irrelevant not used by the kind "
        f"model, {summary['excluded_dev']} left out as development-set posts"
    )


def make_model_command(
    start: Start, open_store: OpenStore, options: Any
) -> click.Group:
    """Build the ``model`` group with its ``promote`` command."""
    group = options(
        click.Group("model", help="Switch the kind model that the job reads.")
    )

    @group.command()
    @options
    @click.pass_context
    def promote(ctx: click.Context) -> None:
        """Replace the model file with the candidate that train wrote.

        The candidate is loaded first as the job would load it. The old model
        file is kept as model.previous.joblib, and the switch is recorded in
        the review page's audit log. A running service reads the new model
        when it is started again.
        """
        from nlp import promotion
        from nlp.modelfile import ModelError

        config = start(ctx)
        model_path = config.resolve(config.model_path)
        try:
            metadata = promotion.check_candidate(model_path, config.brand)
        except ModelError as exc:
            raise click.ClickException(str(exc)) from None
        version = promotion.model_version(metadata)
        replaced = _version_of(Path(model_path))
        details = {"version": version, "replaced": replaced, "via": "command line"}

        with open_store(config) as store, write_transaction(store.engine) as connection:
            insert_audit(
                connection,
                None,
                "model.promote",
                ("model", version),
                details,
                datetime.now(UTC),
            )
            try:
                promotion.replace_with_candidate(model_path)
            except ModelError as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(f"model {version} promoted to {model_path} (replaced: {replaced})")

    return group


def _record(label: Any) -> dict[str, Any]:
    """Return a correction in the labelled-post layout that training reads."""
    post = label.post
    created = post["created_at"]
    return {
        "id": f"correction-{label.correction_id}",
        "text": post["text"],
        "title": post["title"],
        "source": post["platform"],
        "created_at": None if created is None else created.isoformat(),
        "author": {
            "name": post["author_name"],
            "followers": post["author_followers"],
            "verified": post["author_verified"],
            "role": post["author_role"],
        },
        "labels": {"kind": label.kind},
    }


def _analysts(labels: TrainingLabels, used_ids: set[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in labels.kinds:
        if f"correction-{label.correction_id}" in used_ids:
            counts[label.corrected_by] = counts.get(label.corrected_by, 0) + 1
    return dict(sorted(counts.items()))


def _dev_texts(path: Path) -> set[str]:
    if not path.exists():
        return set()
    texts = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("text"), str):
                texts.add(record["text"].strip())
    return texts


def _version_of(path: Path) -> str | None:
    from nlp import promotion
    from nlp.modelfile import ModelError, read_metadata

    try:
        return promotion.model_version(read_metadata(path))
    except ModelError:
        return None
