"""Tests for the evaluate command on small invented label files."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import yaml
from click.testing import CliRunner
from model_cache import shipped_model_path

import pipeline

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config.yaml"

LABELLED = [
    {
        "id": "l1",
        "source": "weibo",
        "text": "明天启程回老家",
        "labels": {"kind": "irrelevant"},
    },
    {
        "id": "l2",
        "source": "weibo",
        "text": "QC5落地价多少?",
        "labels": {"kind": "neutral"},
    },
    {
        "id": "l3",
        "source": "weibo",
        "text": "QC5提车一个月,续航扎实,很满意",
        "labels": {"kind": "praise"},
    },
    {
        "id": "l4",
        "source": "weibo",
        "text": "QC7车机三天两头死机,服了",
        "labels": {"kind": "grievance"},
    },
    {
        "id": "l5",
        "source": "weibo",
        "text": "QC9漏水修了三次还漏,已向12315投诉,要求退车",
        "labels": {
            "kind": "complaint",
            "channels": ["12315"],
            "demands": ["return_car"],
        },
    },
]

SENTIMENT = [
    {"text": "QC7车机三天两头死机,服了", "label": "negative"},
    {"text": "QC5提车一个月,续航扎实,很满意", "label": "positive"},
    {"text": "QC5落地价多少?", "label": "neutral"},
]

# Another brand's post: irrelevant unless every post is assumed about the brand.
OTHER_BRAND = [
    {"id": "o1", "text": "比亚迪车机三天两头死机,服了,真无语", "label": "negative"}
]

COMPLAINTS = [
    "My order arrived broken and support keeps ignoring me",
    "Third time my train is late this week, terrible service",
    "Still no refund after two weeks, this is ridiculous",
    "The app crashes every time I open it, fix it please",
    "Worst delivery ever, package left in the rain again",
    "Charged twice for one order and nobody answers my emails",
]
NOT_COMPLAINTS = [
    "Thanks for the quick reply, have a nice day",
    "What time does the store open on Sunday?",
    "Loving the new jacket I bought last week",
    "Is the summer sale starting soon?",
    "Great chat with your team today, thank you",
    "Where can I find the size guide for shoes?",
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@functools.cache
def project_config() -> Path:
    """Return a copy of the project config that reads the session's model."""
    data = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    data["model_path"] = str(shipped_model_path())
    path = shipped_model_path().with_name("config.yaml")
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def run_evaluate(*args: str):
    arguments = ["--config", str(project_config()), "evaluate", *args]
    return CliRunner().invoke(pipeline.cli, arguments)


def test_labelled_layout_prints_every_figure(tmp_path):
    data = write_jsonl(tmp_path / "labelled.jsonl", LABELLED)

    result = run_evaluate("--data", str(data))

    assert result.exit_code == 0, result.output
    for phrase in (
        "label set: kinds",
        "macro-F1",
        "confusion",
        "complaint-vs-grievance F1",
        "brand relevance",
        "level accuracy",
    ):
        assert phrase in result.output, phrase


def test_labels_option_is_alias_of_data(tmp_path):
    data = write_jsonl(tmp_path / "labelled.jsonl", LABELLED)

    by_data = run_evaluate("--data", str(data), "--json")
    by_labels = run_evaluate("--labels", str(data), "--json")

    assert by_labels.exit_code == 0, by_labels.output
    assert json.loads(by_labels.output) == json.loads(by_data.output)


def test_json_has_required_keys(tmp_path):
    data = write_jsonl(tmp_path / "labelled.jsonl", LABELLED)

    result = run_evaluate("--data", str(data), "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in (
        "n",
        "macro_f1",
        "per_kind",
        "confusion",
        "complaint_vs_grievance_f1",
        "relevance",
    ):
        assert key in report, key
    assert report["n"] == len(LABELLED)
    scores = report["per_kind"]["complaint"]
    assert set(scores) == {"precision", "recall", "f1", "support"}
    assert report["per_kind"]["complaint"]["support"] == 1
    assert report["confusion"]["complaint"] == {"complaint": 1}
    assert set(report["relevance"]) == {"precision", "recall"}
    assert report["relevance"]["precision"] == 1.0


def test_json_reports_levels_and_factors(tmp_path):
    graded = dict(LABELLED[4])
    graded["labels"] = {
        **graded["labels"],
        "level": "medium",
        "factors": {
            "customer_loss": 2,
            "company_fault": 2,
            "public_impact": 0,
            "customer_identity": 0,
        },
    }
    data = write_jsonl(tmp_path / "labelled.jsonl", [*LABELLED[:4], graded])

    report = json.loads(run_evaluate("--data", str(data), "--json").output)

    assert report["level"]["support"] == 1
    assert set(report["level"]["per_level"]) == {"normal", "medium", "critical"}
    assert report["level"]["per_level"]["medium"]["support"] == 1
    assert set(report["factors"]) == {
        "customer_loss",
        "company_fault",
        "public_impact",
        "customer_identity",
    }


def test_plain_sentiment_layout_is_mapped(tmp_path):
    data = write_jsonl(tmp_path / "sentiment.jsonl", SENTIMENT)

    result = run_evaluate("--data", str(data), "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["label_set"] == "sentiment"
    assert set(report["per_kind"]) == {"grievance_or_complaint", "praise", "neutral"}
    assert report["per_kind"]["grievance_or_complaint"]["recall"] == 1.0
    assert report["confusion"]["grievance_or_complaint"] == {"grievance": 1}
    assert report["complaint_vs_grievance_f1"] is None
    assert report["relevance"] == {"precision": None, "recall": None}


def test_sentiment_text_names_negative_and_positive(tmp_path):
    data = write_jsonl(tmp_path / "sentiment.jsonl", SENTIMENT)

    result = run_evaluate("--data", str(data))

    assert result.exit_code == 0, result.output
    assert "posts labelled negative: 1.000" in result.output
    assert "posts labelled positive: 0.000" in result.output


def test_assume_relevant_scores_other_brands(tmp_path):
    data = write_jsonl(tmp_path / "other.jsonl", OTHER_BRAND)

    matched = json.loads(run_evaluate("--data", str(data), "--json").output)
    assumed_run = run_evaluate("--data", str(data), "--json", "--assume-relevant")

    assert assumed_run.exit_code == 0, assumed_run.output
    assumed = json.loads(assumed_run.output)
    assert matched["confusion"]["grievance_or_complaint"] == {"irrelevant": 1}
    assert assumed["confusion"]["grievance_or_complaint"] == {"grievance": 1}
    assert assumed["assume_relevant"] is True


def test_platform_option_sets_complaint_platform(tmp_path):
    records = [{"id": "p1", "text": "QC7刹车异响,希望厂家处理", "label": "complaint"}]
    data = write_jsonl(tmp_path / "filed.jsonl", records)

    result = run_evaluate("--data", str(data), "--json", "--platform", "12365auto")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["label_set"] == "complaint"
    assert report["judged"]["complaint"]["complaint"] == 1.0


def test_cross_validate_on_binary_set(tmp_path):
    records = [{"text": t, "label": "complaint"} for t in COMPLAINTS]
    records += [{"text": t, "label": "not_complaint"} for t in NOT_COMPLAINTS]
    data = write_jsonl(tmp_path / "tweets.jsonl", records)

    first = run_evaluate("--data", str(data), "--json", "--cross-validate", "3")
    second = run_evaluate("--data", str(data), "--json", "--cross-validate", "3")

    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["folds"] == 3
    assert report["n"] == len(records)
    assert set(report["per_kind"]) == {"complaint", "not_complaint"}
    assert report["per_kind"]["complaint"]["support"] == len(COMPLAINTS)
    counted = sum(sum(row.values()) for row in report["confusion"].values())
    assert counted == len(records)
    assert json.loads(second.output) == report


def test_cross_validate_with_too_few_records(tmp_path):
    records = [{"text": "broken again", "label": "complaint"}] * 2
    records += [{"text": "thanks", "label": "not_complaint"}] * 5
    data = write_jsonl(tmp_path / "tiny.jsonl", records)

    result = run_evaluate("--data", str(data), "--cross-validate", "3")

    assert result.exit_code == 1
    assert "complaint (2)" in result.output


def test_cross_validate_empty_texts_error(tmp_path):
    records = [{"text": "", "label": "complaint"}] * 3
    records += [{"text": "", "label": "not_complaint"}] * 3
    data = write_jsonl(tmp_path / "empty.jsonl", records)

    result = run_evaluate("--data", str(data), "--cross-validate", "2")

    assert result.exit_code == 1
    assert "cross-validation failed" in result.output
    assert "Traceback" not in result.output


def test_unknown_platform_rejected(tmp_path):
    data = write_jsonl(tmp_path / "labelled.jsonl", LABELLED)

    result = run_evaluate("--data", str(data), "--platform", "12365")

    assert result.exit_code == 2
    assert "'12365' is not one of" in result.output


def test_lexicon_cross_validation_rejected(tmp_path):
    data = write_jsonl(tmp_path / "labelled.jsonl", LABELLED)
    arguments = ("--data", str(data), "--classifier", "lexicon")

    result = run_evaluate(*arguments, "--cross-validate", "2")

    assert result.exit_code == 2
    assert "nothing to train" in result.output


def test_bad_label_is_one_line_error(tmp_path):
    records = [*SENTIMENT, {"id": "bad-7", "text": "QC5还行", "label": "angry"}]
    data = write_jsonl(tmp_path / "bad.jsonl", records)

    result = run_evaluate("--data", str(data))

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "bad-7" in lines[0]
    assert "'angry'" in lines[0]


def test_mixed_label_sets_rejected(tmp_path):
    records = [
        {"text": "QC7车机死机", "label": "negative"},
        {"text": "已投诉", "label": "not_complaint"},
    ]
    data = write_jsonl(tmp_path / "mixed.jsonl", records)

    result = run_evaluate("--data", str(data))

    assert result.exit_code == 1
    assert "mix label sets" in result.output


def test_missing_data_option():
    result = run_evaluate()

    assert result.exit_code == 2
    assert "--data" in result.output


def test_trained_classifier_option(tmp_path):
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["model_path"] = str(tmp_path / "model.joblib")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    data = write_jsonl(tmp_path / "labelled.jsonl", LABELLED)

    arguments = ["--config", str(config_path), "evaluate", "--data", str(data)]
    arguments += ["--json", "--classifier", "trained"]
    result = CliRunner().invoke(pipeline.cli, arguments)

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["classifier"].startswith("trained-")
    assert (tmp_path / "model.joblib").is_file()
