"""Measure the nlp stage against labelled posts.

Records use the labelled-post layout: ``id``, ``source``, ``created_at``,
``text``, ``author`` {name, followers, verified, role}, ``engagement`` {likes,
reposts, comments} and ``labels`` {kind, level, factors, demands, channels,
root_cause, safety}. Levels in the label sets were derived under the balanced
strategy, so the default analyzer grades with the balanced thresholds.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import config
from items import KINDS, Assessment, Author, Engagement, Item

CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.yaml"
_EPOCH = datetime(2026, 3, 1, tzinfo=timezone.utc)


class RecordError(ValueError):
    """A labelled record that cannot be evaluated; the message names the record."""


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall and F1 of one kind, with its number of true records."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Report:
    """Figures of one evaluation run.

    ``confusion`` maps (true kind, predicted kind) to a count. Recall-type
    figures are None when the set has no record of that sort.
    """

    total: int
    per_kind: dict[str, ClassScores]
    macro_f1: float
    confusion: dict[tuple[str, str], int]
    complaint_f1_vs_grievance: float
    level_accuracy: float | None
    level_support: int
    critical_recall: float | None
    critical_support: int
    high_risk_recall: float | None
    high_risk_support: int
    demands_f1: float
    channels_f1: float
    root_cause_accuracy: float | None
    root_cause_support: int


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Read labelled records from a JSON Lines file, skipping blank lines."""
    records = []
    with open(path, encoding="utf-8-sig") as handle:
        try:
            lines = list(handle)
        except UnicodeDecodeError as exc:
            raise RecordError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            raise RecordError(f"{path}:{number}: invalid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise RecordError(f"{path}:{number}: expected a JSON object")
        records.append(record)
    return records


def evaluate(records: Sequence[Mapping[str, Any]], analyzer=None) -> Report:
    """Run ``analyzer`` over labelled records and compare with their labels.

    Without an analyzer, one is built from the project's config.yaml brand and
    the balanced thresholds, the stance the label sets were graded under.
    """
    if analyzer is None:
        analyzer = default_analyzer()
    items, labels = [], []
    for index, record in enumerate(records):
        try:
            items.append(record_to_item(record, index))
            labels.append(_labels(record, index))
        except (AttributeError, TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, RecordError):
                raise
            name = record.get("id", f"#{index}") if isinstance(record, Mapping) else f"#{index}"
            raise RecordError(f"record {name}: invalid field value ({exc})") from None
    assessments = analyzer.analyse(items)

    per_kind, confusion = _kind_scores(labels, assessments)
    flagged, high_risk = _high_risk_counts(labels, assessments)
    return Report(
        total=len(records),
        per_kind=per_kind,
        macro_f1=sum(s.f1 for s in per_kind.values()) / len(per_kind),
        confusion=confusion,
        complaint_f1_vs_grievance=_complaint_vs_grievance(confusion),
        **_level_figures(labels, assessments),
        high_risk_recall=_ratio(flagged, high_risk),
        high_risk_support=high_risk,
        demands_f1=_micro_f1(labels, assessments, "demands"),
        channels_f1=_micro_f1(labels, assessments, "channels"),
        **_root_cause_figures(labels, assessments),
    )


def default_analyzer():
    """Build the analyzer for the label sets: project brand, balanced thresholds."""
    from nlp import Analyzer

    loaded = config.load(CONFIG_PATH)
    thresholds = (
        loaded.strategies.get("balanced") or config.DEFAULT_STRATEGIES["balanced"]
    )
    return Analyzer(loaded.brand, thresholds, "balanced")


def record_to_item(record: Mapping[str, Any], index: int = 0) -> Item:
    """Turn one labelled record into the Item a collector would produce."""
    name = record.get("id", f"#{index}")
    text = record.get("text")
    if not isinstance(text, str):
        raise RecordError(f"record {name}: missing or non-text 'text'")
    author = record.get("author") or {}
    engagement = record.get("engagement") or {}
    created = _parse_time(record.get("created_at"), name)
    return Item(
        source=str(record.get("source") or "labelled"),
        platform=str(record.get("source") or "unknown"),
        external_id=str(name),
        text=text,
        collected_at=created or _EPOCH,
        created_at=created,
        author=Author(
            name=author.get("name"),
            followers=author.get("followers"),
            verified=author.get("verified") or "none",
            role=author.get("role"),
        ),
        engagement=Engagement(
            likes=int(engagement.get("likes") or 0),
            reposts=int(engagement.get("reposts") or 0),
            comments=int(engagement.get("comments") or 0),
        ),
        location=f"record {name}",
    )


def _parse_time(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise RecordError(f"record {name}: invalid created_at {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _labels(record: Mapping[str, Any], index: int) -> Mapping[str, Any]:
    labels = record.get("labels")
    name = record.get("id", f"#{index}")
    if not isinstance(labels, Mapping) or labels.get("kind") not in KINDS:
        raise RecordError(
            f"record {name}: missing labels.kind; expected one of {KINDS}"
        )
    return labels


def _kind_scores(
    labels: Sequence[Mapping[str, Any]], assessments: Sequence[Assessment]
) -> tuple[dict[str, ClassScores], dict[tuple[str, str], int]]:
    confusion = Counter(
        (label["kind"], assessment.classification.kind)
        for label, assessment in zip(labels, assessments, strict=True)
    )
    per_kind = {}
    for kind in KINDS:
        true_positive = confusion[(kind, kind)]
        predicted = sum(n for (_, p), n in confusion.items() if p == kind)
        support = sum(n for (t, _), n in confusion.items() if t == kind)
        precision = _ratio(true_positive, predicted) or 0.0
        recall = _ratio(true_positive, support) or 0.0
        per_kind[kind] = ClassScores(precision, recall, _f1(precision, recall), support)
    return per_kind, dict(confusion)


def _complaint_vs_grievance(confusion: Mapping[tuple[str, str], int]) -> float:
    """Return the complaint F1 among grievance-or-complaint posts, both sides."""
    pair = ("grievance", "complaint")
    true_positive = confusion.get(("complaint", "complaint"), 0)
    predicted = sum(confusion.get((t, "complaint"), 0) for t in pair)
    actual = sum(confusion.get(("complaint", p), 0) for p in pair)
    return _f1(
        _ratio(true_positive, predicted) or 0.0, _ratio(true_positive, actual) or 0.0
    )


def _level_figures(labels, assessments) -> dict[str, Any]:
    """Return level accuracy and critical recall over true complaints.

    A complaint predicted as another kind counts as a wrong level. Critical
    recall counts any critical grading, since a critical grievance alerts too.
    """
    correct = total = critical_hit = critical_total = 0
    for label, assessment in zip(labels, assessments, strict=True):
        if label["kind"] != "complaint":
            continue
        grading = assessment.grading
        predicted = grading.level if grading else None
        total += 1
        correct += predicted is not None and predicted == label.get("level")
        if label.get("level") == "critical":
            critical_total += 1
            critical_hit += predicted == "critical"
    return {
        "level_accuracy": _ratio(correct, total),
        "level_support": total,
        "critical_recall": _ratio(critical_hit, critical_total),
        "critical_support": critical_total,
    }


def _high_risk_counts(labels, assessments) -> tuple[int, int]:
    """Return (flagged, total) over true high-risk grievances.

    A post counts as flagged when predicted a high-risk grievance or a complaint.
    """
    flagged = total = 0
    for label, assessment in zip(labels, assessments, strict=True):
        if label["kind"] != "grievance" or not _is_high_risk_label(label):
            continue
        total += 1
        kind = assessment.classification.kind
        grading = assessment.grading
        flagged += kind == "complaint" or bool(grading and grading.high_risk)
    return flagged, total


def _is_high_risk_label(label: Mapping[str, Any]) -> bool:
    factors = label.get("factors") or {}
    return (
        (factors.get("public_impact") or 0) >= 2
        or (factors.get("customer_identity") or 0) >= 2
        or bool(label.get("safety"))
        or bool(label.get("demands"))
    )


def _micro_f1(labels, assessments, key: str) -> float:
    true_positive = predicted = actual = 0
    for label, assessment in zip(labels, assessments, strict=True):
        truth = set(label.get(key) or ())
        guess = set(getattr(assessment.classification, key))
        true_positive += len(truth & guess)
        predicted += len(guess)
        actual += len(truth)
    return _f1(
        _ratio(true_positive, predicted) or 0.0, _ratio(true_positive, actual) or 0.0
    )


def _root_cause_figures(labels, assessments) -> dict[str, Any]:
    pairs = [
        (label.get("root_cause"), a.classification.root_cause)
        for label, a in zip(labels, assessments, strict=True)
        if label["kind"] in ("grievance", "complaint") and label.get("root_cause")
    ]
    correct = sum(truth == guess for truth, guess in pairs)
    return {
        "root_cause_accuracy": _ratio(correct, len(pairs)),
        "root_cause_support": len(pairs),
    }


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def format_report(report: Report) -> str:
    """Format a report as a plain-text table for a terminal."""
    lines = [
        f"records: {report.total}",
        "",
        "kind        precision  recall     f1  support",
    ]
    for kind, scores in report.per_kind.items():
        lines.append(
            f"{kind:<11} {scores.precision:9.3f} {scores.recall:7.3f} "
            f"{scores.f1:6.3f} {scores.support:8d}"
        )
    lines += [f"macro-F1    {report.macro_f1:.3f}", ""]
    lines += _confusion_lines(report.confusion)
    lines += [
        f"complaint-vs-grievance F1: {report.complaint_f1_vs_grievance:.3f}",
        f"level accuracy on true complaints: {_percent(report.level_accuracy)}"
        f" (n={report.level_support})",
        f"critical recall: {_percent(report.critical_recall)}"
        f" (n={report.critical_support})",
        f"high-risk grievance recall: {_percent(report.high_risk_recall)}"
        f" (n={report.high_risk_support})",
        f"demands micro-F1: {report.demands_f1:.3f}",
        f"channels micro-F1: {report.channels_f1:.3f}",
        f"root cause accuracy: {_percent(report.root_cause_accuracy)}"
        f" (n={report.root_cause_support})",
    ]
    return "\n".join(lines)


def _confusion_lines(confusion: Mapping[tuple[str, str], int]) -> list[str]:
    lines = ["grievance vs complaint (rows true, columns predicted)"]
    lines.append(f"{'':<11} {'grievance':>9} {'complaint':>9} {'other':>6}")
    for truth in ("grievance", "complaint"):
        row = {kind: confusion.get((truth, kind), 0) for kind in KINDS}
        other = sum(
            n for kind, n in row.items() if kind not in ("grievance", "complaint")
        )
        lines.append(
            f"{truth:<11} {row['grievance']:>9} {row['complaint']:>9} {other:>6}"
        )
    lines.append("")
    return lines


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
