"""Measure the nlp stage against labelled posts.

Two record layouts are read. The labelled-post layout has ``id``, ``source``,
``created_at``, ``text``, ``author`` {name, followers, verified, role},
``engagement`` {likes, reposts, comments} and ``labels`` {kind, level,
factors, demands, channels, root_cause, safety}. Levels in the label sets were
derived under the balanced strategy, so the default analyzer grades with the
balanced thresholds. The plain layout has ``text`` and ``label`` (and
optionally ``id`` and ``source``), with label names from other corpora mapped
by LABEL_TABLE:

=============== ========================= =====================================
corpus label    scored as                 label set
=============== ========================= =====================================
complaint       complaint                 complaint corpora (with not_complaint)
not_complaint   not_complaint             (any other kind)
negative        grievance_or_complaint    sentiment corpora
positive        praise                    (with neutral)
neutral         neutral
a kind name     that kind                 the five kinds
=============== ========================= =====================================

A predicted kind is scored in the label set of the file: in a complaint
corpus every kind but complaint counts as not_complaint, and in a sentiment
corpus grievance and complaint both count as grievance_or_complaint.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import config
from items import KINDS, Assessment, Author, Engagement, Item
from nlp.grade_scores import GradingFigures, grading_figures

CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.yaml"
_EPOCH = datetime(2026, 3, 1, tzinfo=UTC)


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
    grading: GradingFigures | None = None


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Read labelled records from a JSON Lines file, skipping blank lines."""
    records = []
    with open(path, encoding="utf-8-sig") as handle:
        try:
            lines = list(handle)
        except UnicodeDecodeError as exc:
            raise RecordError(
                f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
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
    items, labels = _items_and_labels(records)
    return labelled_report(labels, analyzer.analyse(items))


def _items_and_labels(
    records: Sequence[Mapping[str, Any]], platform: str | None = None
) -> tuple[list[Item], list[Mapping[str, Any]]]:
    items, labels = [], []
    for index, record in enumerate(records):
        try:
            items.append(record_to_item(record, index, platform))
            labels.append(_labels(record, index))
        except (AttributeError, TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, RecordError):
                raise
            raise RecordError(
                f"record {_name(record, index)}: invalid field value ({exc})"
            ) from None
    return items, labels


def _name(record: Any, index: int) -> str:
    if isinstance(record, Mapping):
        return str(record.get("id", f"#{index}"))
    return f"#{index}"


def labelled_report(
    labels: Sequence[Mapping[str, Any]], assessments: Sequence[Assessment]
) -> Report:
    """Compare assessments with the ``labels`` objects of labelled-post records."""
    per_kind, confusion = _kind_scores(labels, assessments)
    flagged, high_risk = _high_risk_counts(labels, assessments)
    return Report(
        total=len(labels),
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
        grading=grading_figures(labels, assessments),
    )


def default_analyzer():
    """Build the analyzer for the label sets: project brand, balanced thresholds."""
    from nlp import Analyzer

    loaded = config.load(CONFIG_PATH)
    thresholds = (
        loaded.strategies.get("balanced") or config.DEFAULT_STRATEGIES["balanced"]
    )
    return Analyzer(loaded.brand, thresholds, "balanced")


def record_to_item(
    record: Mapping[str, Any], index: int = 0, platform: str | None = None
) -> Item:
    """Turn one labelled record into the Item a collector would produce.

    The platform is ``platform`` when given, else the record's ``source``.
    """
    if not isinstance(record, Mapping):
        raise RecordError(f"record #{index}: expected a JSON object")
    name = record.get("id", f"#{index}")
    text = record.get("text")
    if not isinstance(text, str):
        raise RecordError(f"record {name}: missing or non-text 'text'")
    author = record.get("author") or {}
    engagement = record.get("engagement") or {}
    created = _parse_time(record.get("created_at"), name)
    return Item(
        source=str(record.get("source") or "labelled"),
        platform=platform or str(record.get("source") or "unknown"),
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
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
    lines.append(f"complaint-vs-grievance F1: {report.complaint_f1_vs_grievance:.3f}")
    lines += _figure_lines(report)
    return "\n".join(lines)


def _figure_lines(report: Report) -> list[str]:
    """Return the level, factor, demand, channel and root-cause lines of a report."""
    lines = [
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
    if report.grading is not None:
        lines += _grading_lines(report.grading)
    return lines


def _grading_lines(figures: GradingFigures) -> list[str]:
    lines = [
        f"level accuracy on true grievances and complaints: "
        f"{_percent(figures.accuracy)} (n={figures.support})",
        "level       precision  recall     f1  support",
    ]
    for level, scores in figures.per_level.items():
        lines.append(
            f"{level:<11} {scores.precision:9.3f} {scores.recall:7.3f} "
            f"{scores.f1:6.3f} {scores.support:8d}"
        )
    shares = "  ".join(
        f"{name} {_percent(share)}" for name, share in figures.factors.items()
    )
    lines.append(f"factors within one point (n={figures.factor_support}): {shares}")
    return lines


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


# -- corpora in either layout ------------------------------------------------

GRIEVANCE_OR_COMPLAINT = "grievance_or_complaint"
# Label names of other corpora and the class each is scored as. A complaint
# corpus's "complaint" is the speech act of complaining, which covers our
# grievance too, so its reports also give the grievance-or-complaint F1.
LABEL_TABLE: dict[str, str] = {
    "complaint": "complaint",
    "not_complaint": "not_complaint",
    "negative": GRIEVANCE_OR_COMPLAINT,
    "positive": "praise",
    "neutral": "neutral",
}
_FLAGGED_KINDS = frozenset({"grievance", "complaint", GRIEVANCE_OR_COMPLAINT})


@dataclass(frozen=True)
class LabelSet:
    """The labels one file may use, and the classes they are scored as."""

    name: str
    labels: tuple[str, ...]
    classes: tuple[str, ...]

    def class_of(self, label: str) -> str:
        return label if self.name == "kinds" else LABEL_TABLE[label]


# Label sets are tried in this order for plain-layout files. The first that
# contains every label of the file wins, so complaints alone are a complaint
# corpus.
LABEL_SETS = (
    LabelSet(
        "complaint", ("complaint", "not_complaint"), ("complaint", "not_complaint")
    ),
    LabelSet(
        "sentiment",
        ("negative", "positive", "neutral"),
        (GRIEVANCE_OR_COMPLAINT, "praise", "neutral"),
    ),
    LabelSet("kinds", KINDS, KINDS),
)
KNOWN_LABELS = tuple(dict.fromkeys(label for s in LABEL_SETS for label in s.labels))


@dataclass(frozen=True)
class LabelledData:
    """The true classes of a file's records, in the label set the file uses."""

    label_set: LabelSet
    layout: str
    truths: list[str]


@dataclass(frozen=True)
class CorpusReport:
    """Figures of one evaluation of a file in either layout.

    ``per_class`` and ``macro_f1`` are in the classes of ``label_set``;
    ``confusion`` maps true class to predicted kind to a count. ``judged``
    maps each true class to the share judged complaint and the share judged
    grievance or complaint. Figures the data cannot give are None.
    """

    label_set: str
    total: int
    classifier: str
    per_class: dict[str, ClassScores]
    macro_f1: float
    confusion: dict[str, dict[str, int]]
    judged: dict[str, dict[str, float]]
    complaint_vs_grievance_f1: float | None = None
    grievance_or_complaint_f1: float | None = None
    relevance_precision: float | None = None
    relevance_recall: float | None = None
    assume_relevant: bool = False
    folds: int | None = None
    labelled: Report | None = None


def label_records(records: Sequence[Any]) -> LabelledData:
    """Return the label set of ``records`` and the true class of each.

    Raises RecordError naming the record for an unknown or missing label, and
    for a file that mixes layouts or label sets.
    """
    raw = [_raw_label(record, index) for index, record in enumerate(records)]
    layouts = {layout for layout, _ in raw}
    if len(layouts) > 1:
        raise RecordError(
            "the file mixes the labelled-post layout (labels.kind) with the plain "
            "layout (label); use one layout per file"
        )
    names = {name for _, name in raw}
    if layouts == {"labelled"}:
        label_set = LABEL_SETS[-1]
    else:
        label_set = next((s for s in LABEL_SETS if names <= set(s.labels)), None)
    if label_set is None:
        raise RecordError(
            f"the labels {', '.join(sorted(names))} mix label sets; a file uses "
            "complaint/not_complaint, negative/positive/neutral or the five kinds"
        )
    truths = [label_set.class_of(name) for _, name in raw]
    return LabelledData(label_set, layouts.pop() if layouts else "plain", truths)


def _raw_label(record: Any, index: int) -> tuple[str, str]:
    if not isinstance(record, Mapping):
        raise RecordError(f"record #{index}: expected a JSON object")
    name = _name(record, index)
    labels = record.get("labels")
    if isinstance(labels, Mapping):
        if labels.get("kind") not in KINDS:
            raise RecordError(
                f"record {name}: invalid labels.kind {labels.get('kind')!r}; "
                f"expected one of {', '.join(KINDS)}"
            )
        return "labelled", labels["kind"]
    label = record.get("label")
    if label not in KNOWN_LABELS:
        raise RecordError(
            f"record {name}: unknown label {label!r}; expected one of "
            f"{', '.join(KNOWN_LABELS)}"
        )
    return "plain", label


def scored_class(kind: str, label_set: str) -> str:
    """Return the class a predicted kind counts as in ``label_set``."""
    if label_set == "complaint":
        return "complaint" if kind == "complaint" else "not_complaint"
    if label_set == "sentiment" and kind in _FLAGGED_KINDS:
        return GRIEVANCE_OR_COMPLAINT
    return kind


def score_corpus(
    records: Sequence[Any],
    analyzer,
    *,
    assume_relevant: bool = False,
    platform: str | None = None,
) -> CorpusReport:
    """Run ``analyzer`` over records in either layout and compare with the labels.

    With ``assume_relevant`` every post counts as about the brand: the
    classifier runs on the matcher's result with ``relevant`` forced true, and
    no relevance figure is given. Relevance figures need the five kinds: a
    post is about the brand unless labelled irrelevant, and the prediction is
    the relevance matcher's, so spam that names the brand counts against it.
    """
    data = label_records(records)
    items = [
        _checked_item(record, index, platform) for index, record in enumerate(records)
    ]
    assessments = analyse(analyzer, items, assume_relevant=assume_relevant)
    labelled = None
    if data.layout == "labelled":
        labelled = labelled_report([r["labels"] for r in records], assessments)
    relevance: dict[str, float | None] = {}
    if data.label_set.name == "kinds" and not assume_relevant:
        relevance = _relevance_figures(data.truths, assessments)
    return corpus_report(
        data,
        [a.classification.kind for a in assessments],
        classifier=str(getattr(analyzer.classifier, "model_version", "")),
        assume_relevant=assume_relevant,
        labelled=labelled,
        **relevance,
    )


def _checked_item(record: Any, index: int, platform: str | None) -> Item:
    try:
        return record_to_item(record, index, platform)
    except RecordError:
        raise
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise RecordError(
            f"record {_name(record, index)}: invalid field value ({exc})"
        ) from None


def analyse(analyzer, items: Sequence[Item], *, assume_relevant: bool = False):
    """Return the analyzer's assessments, optionally with every post relevant."""
    if not assume_relevant:
        return analyzer.analyse(items)
    normalized = [analyzer.normalize(item) for item in items]
    relevance = [
        replace(analyzer.matcher.match(n, item.text), relevant=True)
        for n, item in zip(normalized, items, strict=True)
    ]
    classified = analyzer.classifier.classify_batch(normalized, relevance, items)
    return [
        Assessment(n, r, c, analyzer.grader.grade(item, n, c))
        for item, n, r, c in zip(items, normalized, relevance, classified, strict=True)
    ]


def _relevance_figures(truths, assessments) -> dict[str, float | None]:
    pairs = [
        (truth != "irrelevant", a.relevance.relevant)
        for truth, a in zip(truths, assessments, strict=True)
    ]
    hits = sum(truth and guess for truth, guess in pairs)
    return {
        "relevance_precision": _ratio(hits, sum(guess for _, guess in pairs)),
        "relevance_recall": _ratio(hits, sum(truth for truth, _ in pairs)),
    }


def corpus_report(
    data: LabelledData, predicted: Sequence[str], *, classifier: str, **extra: Any
) -> CorpusReport:
    """Score predicted kinds (or classes) against the true classes of ``data``."""
    name = data.label_set.name
    scored = [scored_class(kind, name) for kind in predicted]
    per_class = _class_scores(data.truths, scored, data.label_set.classes)
    present = [scores.f1 for scores in per_class.values() if scores.support]
    pairs = Counter(zip(data.truths, predicted, strict=True))
    order = _order((*data.label_set.classes, *KINDS))
    confusion: dict[str, dict[str, int]] = {}
    for (truth, guess), count in sorted(
        pairs.items(), key=lambda pair: _rank(pair[0], order)
    ):
        confusion.setdefault(truth, {})[guess] = count
    complaint_vs_grievance = None
    if name == "kinds" and {"grievance", "complaint"} & set(data.truths):
        complaint_vs_grievance = _complaint_vs_grievance(pairs)
    return CorpusReport(
        label_set=name,
        total=len(data.truths),
        classifier=classifier,
        per_class=per_class,
        macro_f1=sum(present) / len(present) if present else 0.0,
        confusion=confusion,
        judged=_judged_shares(data.truths, predicted, order),
        complaint_vs_grievance_f1=complaint_vs_grievance,
        grievance_or_complaint_f1=_flagged_f1(data.truths, predicted, name),
        **extra,
    )


def _order(names: Sequence[str]) -> dict[str, int]:
    """Map each name to the position of its first occurrence."""
    return {name: i for i, name in enumerate(dict.fromkeys(names))}


def _rank(pair: tuple[str, str], order: Mapping[str, int]) -> tuple:
    """Sort key of class names: label-set order first, then by name."""
    return tuple((order.get(name, len(order)), name) for name in pair)


def _class_scores(truths, scored, classes) -> dict[str, ClassScores]:
    per_class = {}
    for name in classes:
        hits = sum(t == name and s == name for t, s in zip(truths, scored, strict=True))
        predicted = sum(s == name for s in scored)
        support = sum(t == name for t in truths)
        precision = _ratio(hits, predicted) or 0.0
        recall = _ratio(hits, support) or 0.0
        f1 = _f1(precision, recall)
        per_class[name] = ClassScores(precision, recall, f1, support)
    return per_class


def _judged_shares(truths, predicted, order) -> dict[str, dict[str, float]]:
    totals: Counter = Counter(truths)
    complaints: Counter = Counter()
    flagged: Counter = Counter()
    for truth, kind in zip(truths, predicted, strict=True):
        complaints[truth] += kind == "complaint"
        flagged[truth] += kind in _FLAGGED_KINDS
    return {
        truth: {
            "complaint": complaints[truth] / total,
            GRIEVANCE_OR_COMPLAINT: flagged[truth] / total,
        }
        for truth, total in sorted(
            totals.items(), key=lambda pair: _rank((pair[0],), order)
        )
    }


def _flagged_f1(truths, predicted, label_set: str) -> float | None:
    """Return the complaint-class F1 when grievances count as complaints too."""
    if label_set != "complaint":
        return None
    hits = sum(
        t == "complaint" and p in _FLAGGED_KINDS
        for t, p in zip(truths, predicted, strict=True)
    )
    guessed = sum(p in _FLAGGED_KINDS for p in predicted)
    actual = sum(t == "complaint" for t in truths)
    return _f1(_ratio(hits, guessed) or 0.0, _ratio(hits, actual) or 0.0)


def cross_validate_corpus(
    records: Sequence[Any], brand: config.Brand, folds: int, platform: str | None = None
) -> CorpusReport:
    """Train and test the trained model's recipe on ``records`` in stratified folds.

    The model learns the classes of the file's label set (complaint against
    not_complaint in a complaint corpus). Folds are shuffled with the model's
    fixed seed, so a run gives the same figures every time. Only the model is
    measured: no relevance matching, no lexicon decision of irrelevant posts.
    """
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from nlp import model
    from nlp.normalize import normalize, protected_names
    from nlp.segment import Segmenter
    from nlp.trained import model_input, official_handles

    data = label_records(records)
    _check_folds(data.truths, folds)
    official = official_handles(brand)
    protected = protected_names(brand)
    rows = []
    for index, record in enumerate(records):
        item = _checked_item(record, index, platform)
        rows.append(model_input(normalize(item.text, protected), item, official))
    classifier = model.build_classifier(Segmenter.for_brand(brand))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=model.RANDOM_STATE)
    try:
        predicted = cross_val_predict(
            classifier, rows, np.array(data.truths), cv=splitter
        )
    except ValueError as exc:
        # The vectorizers raise "empty vocabulary" when a fold's texts share
        # no word or character pair.
        raise RecordError(
            f"cross-validation failed: {exc}; check that the texts are not empty"
        ) from None
    return corpus_report(
        data,
        [str(kind) for kind in predicted],
        classifier=f"trained recipe, {folds}-fold cross-validation",
        folds=folds,
    )


def _check_folds(truths: Sequence[str], folds: int) -> None:
    counts = Counter(truths)
    if folds < 2:
        raise RecordError(f"cross-validation needs at least 2 folds, not {folds}")
    if len(counts) < 2:
        raise RecordError("cross-validation needs records of at least 2 labels")
    scarce = {name: n for name, n in counts.items() if n < folds}
    if scarce:
        listed = ", ".join(f"{name} ({n})" for name, n in sorted(scarce.items()))
        raise RecordError(
            f"{folds}-fold cross-validation needs at least {folds} records of each "
            f"label, but these have fewer: {listed}; use fewer folds"
        )


def corpus_report_json(report: CorpusReport) -> dict[str, Any]:
    """Return a report as JSON-ready built-in types."""
    result = {
        "n": report.total,
        "label_set": report.label_set,
        "classifier": report.classifier,
        "assume_relevant": report.assume_relevant,
        "folds": report.folds,
        "macro_f1": report.macro_f1,
        "per_kind": {name: asdict(s) for name, s in report.per_class.items()},
        "confusion": report.confusion,
        "complaint_vs_grievance_f1": report.complaint_vs_grievance_f1,
        "grievance_or_complaint_f1": report.grievance_or_complaint_f1,
        "relevance": {
            "precision": report.relevance_precision,
            "recall": report.relevance_recall,
        },
        "judged": report.judged,
    }
    if report.labelled is not None:
        details = asdict(report.labelled)
        for key in ("total", "per_kind", "macro_f1", "confusion", "grading"):
            details.pop(key)
        result["labelled"] = details
        result.update(_grading_json(report.labelled.grading))
    return result


def _grading_json(figures: GradingFigures | None) -> dict[str, Any]:
    if figures is None:
        return {}
    return {
        "level": {
            "accuracy": figures.accuracy,
            "complaint_accuracy": figures.complaint_accuracy,
            "support": figures.support,
            "per_level": {
                level: asdict(scores) for level, scores in figures.per_level.items()
            },
        },
        "factors": figures.factors,
    }


def format_corpus_report(report: CorpusReport) -> str:
    """Format a corpus report as plain-text tables for a terminal."""
    lines = [
        f"records: {report.total}  label set: {report.label_set}  "
        f"classifier: {report.classifier}"
        + ("  (every post assumed about the brand)" if report.assume_relevant else ""),
        "",
        f"{'class':<23} precision  recall     f1  support",
    ]
    for name, scores in report.per_class.items():
        lines.append(
            f"{name:<23} {scores.precision:9.3f} {scores.recall:7.3f} "
            f"{scores.f1:6.3f} {scores.support:8d}"
        )
    lines += [f"macro-F1 over the classes present: {report.macro_f1:.3f}", ""]
    lines += _nested_confusion_lines(report.confusion)
    lines += _headline_lines(report)
    if report.labelled is not None:
        lines += [""] + _figure_lines(report.labelled)
    return "\n".join(lines)


def _nested_confusion_lines(confusion: Mapping[str, Mapping[str, int]]) -> list[str]:
    order = _order((*KINDS, *confusion))
    columns = sorted(
        {guess for row in confusion.values() for guess in row},
        key=lambda name: (order.get(name, len(order)), name),
    )
    width = max([9, *(len(c) for c in columns)])
    lines = ["confusion (rows true, columns predicted)"]
    lines.append(f"{'':<23}" + "".join(f" {c:>{width}}" for c in columns))
    for truth, row in confusion.items():
        cells = "".join(f" {row.get(c, 0):>{width}}" for c in columns)
        lines.append(f"{truth:<23}{cells}")
    return lines + [""]


def _headline_lines(report: CorpusReport) -> list[str]:
    lines = []
    if report.complaint_vs_grievance_f1 is not None:
        lines.append(
            f"complaint-vs-grievance F1: {report.complaint_vs_grievance_f1:.3f}"
        )
    if report.grievance_or_complaint_f1 is not None:
        lines.append(
            "complaint F1 with grievances counted as complaints: "
            f"{report.grievance_or_complaint_f1:.3f}"
        )
    if report.relevance_precision is not None or report.relevance_recall is not None:
        lines.append(
            f"brand relevance: precision {_percent(report.relevance_precision)}, "
            f"recall {_percent(report.relevance_recall)}"
        )
    lines.append("share judged complaint / grievance or complaint, by true class:")
    for truth, shares in report.judged.items():
        lines.append(
            f"  {truth:<23} {shares['complaint']:6.3f} "
            f"{shares[GRIEVANCE_OR_COMPLAINT]:6.3f}"
        )
    if report.label_set == "sentiment":
        lines += _sentiment_lines(report.judged)
    return lines


def _sentiment_lines(judged: Mapping[str, Mapping[str, float]]) -> list[str]:
    lines = []
    negative = judged.get(GRIEVANCE_OR_COMPLAINT)
    positive = judged.get("praise")
    if negative is not None:
        lines.append(
            "recall of grievance or complaint on posts labelled negative: "
            f"{negative[GRIEVANCE_OR_COMPLAINT]:.3f}"
        )
    if positive is not None:
        lines.append(
            "false-flag rate (grievance or complaint) on posts labelled positive: "
            f"{positive[GRIEVANCE_OR_COMPLAINT]:.3f}"
        )
    return lines
