"""Training on analysts' corrections and promoting the candidate model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib
import pytest
import yaml
from click.testing import CliRunner
from graded_posts import T0, add_graded_post
from model_cache import shipped_model_path

import pipeline
from model_commands import read_corrections
from nlp import promotion
from nlp.modelfile import ModelError, read_metadata
from nlp.promotion import candidate_path, previous_path, replace_with_candidate
from storage import Store
from storage.accounts import Accounts
from storage.reviews import PostReviews, add_correction

ROOT = Path(__file__).resolve().parents[1]


def write_config(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": f"sqlite:///{tmp_path / 'fenghuo.db'}"}
    data["model_path"] = str(tmp_path / "model.joblib")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'fenghuo.db'}")
    store.migrate()
    try:
        yield store
    finally:
        store.close()


def correct(store: Store, post_id: int, field: str, value: str, by: str) -> None:
    with PostReviews(store.engine).write() as connection:
        add_correction(connection, post_id, field, value, by, T0)


def add_corrections(store: Store) -> None:
    first = add_graded_post(store, "1", kind="complaint", text="QC7 车机黑屏，烦死了")
    second = add_graded_post(
        store, "2", kind="grievance", text="已向12315投诉，要求退车"
    )
    third = add_graded_post(store, "3", kind="complaint", text="QC5 续航很扎实")
    fourth = add_graded_post(store, "4", kind="complaint", text="比亚迪刹车异响")
    correct(store, first, "kind", "grievance", "ana")
    correct(store, second, "kind", "complaint", "bo")
    correct(store, third, "kind", "praise", "ana")
    correct(store, fourth, "kind", "irrelevant", "bo")
    correct(store, first, "level", "normal", "ana")


def run(config_path: Path, *arguments: str):
    return CliRunner().invoke(pipeline.cli, [*arguments, "--config", str(config_path)])


def test_train_uses_corrections(tmp_path: Path, store: Store) -> None:
    add_corrections(store)
    config_path = write_config(tmp_path)

    result = run(config_path, "train")

    assert result.exit_code == 0, result.output
    candidate = tmp_path / "model.candidate.joblib"
    assert f"model: {candidate}" in result.output
    assert "analyst corrections in the database: 3" in result.output
    assert "corrections: 3 kind labels used (by ana 2, bo 1)" in result.output
    assert "1 posts with level corrections and 1 corrected to irrelevant" in (
        result.output
    )
    assert not (tmp_path / "model.joblib").exists()
    metadata = read_metadata(candidate)
    assert metadata["corrections"] == {
        "used": 3,
        "analysts": {"ana": 2, "bo": 1},
        "level_posts": 1,
        "excluded_dev": 0,
        "irrelevant": 1,
        "last_id": 5,
    }
    if pipeline.DEV_LABELS.exists():
        evaluation = metadata["evaluation"]
        assert evaluation["data"] == "dev.jsonl"
        assert set(evaluation["per_kind"]) == {
            "irrelevant",
            "neutral",
            "praise",
            "grievance",
            "complaint",
        }
        assert 0 <= evaluation["per_kind"]["complaint"]["f1"] <= 1


def test_dev_posts_left_out(tmp_path: Path, store: Store) -> None:
    add_corrections(store)
    dev = tmp_path / "dev.jsonl"
    lines = [
        json.dumps(
            {"text": "已向12315投诉，要求退车", "labels": {"kind": "complaint"}}
        ),
        "not json",
    ]
    dev.write_text("\n".join(lines) + "\n", encoding="utf-8")

    data = read_corrections(store, dev)

    assert [record["text"] for record in data.records] == [
        "QC7 车机黑屏，烦死了",
        "QC5 续航很扎实",
    ]
    assert data.records[0]["labels"] == {"kind": "grievance"}
    assert data.records[0]["source"] == "weibo"
    assert data.excluded == 1
    assert data.irrelevant == 1
    assert data.metadata()["analysts"] == {"ana": 2}


def test_promote_replaces_model(tmp_path: Path, store: Store) -> None:
    config_path = write_config(tmp_path)
    model_path = tmp_path / "model.joblib"
    candidate = promotion.candidate_path(model_path)
    model_path.write_bytes(b"old model")
    shutil.copy(shipped_model_path(), candidate)
    version = promotion.model_version(read_metadata(candidate))

    result = run(config_path, "model", "promote")

    assert result.exit_code == 0, result.output
    assert f"model {version} promoted" in result.output
    assert model_path.read_bytes() == shipped_model_path().read_bytes()
    assert (tmp_path / "model.previous.joblib").read_bytes() == b"old model"
    assert not candidate.exists()
    [entry] = Accounts(store.engine).audit_entries(10)
    assert entry.actor is None
    assert entry.action == "model.promote"
    assert entry.subject_id == version
    assert entry.details == {
        "version": version,
        "replaced": None,
        "via": "command line",
    }


def test_promote_without_candidate(tmp_path: Path, store: Store) -> None:
    result = run(write_config(tmp_path), "model", "promote")

    assert result.exit_code == 1
    assert "no candidate model" in result.output
    assert Accounts(store.engine).audit_entries(10) == []


def test_promote_refuses_broken_candidate(tmp_path: Path, store: Store) -> None:
    config_path = write_config(tmp_path)
    model_path = tmp_path / "model.joblib"
    shutil.copy(shipped_model_path(), model_path)
    envelope = joblib.load(shipped_model_path())
    envelope["metadata"] = {**envelope["metadata"], "sklearn": "0.1"}
    joblib.dump(envelope, promotion.candidate_path(model_path))

    result = run(config_path, "model", "promote")

    assert result.exit_code == 1
    assert "trained with sklearn 0.1" in result.output
    assert model_path.read_bytes() == shipped_model_path().read_bytes()
    assert promotion.candidate_path(model_path).exists()
    assert Accounts(store.engine).audit_entries(10) == []


def test_second_promotion_keeps_previous(tmp_path: Path) -> None:
    model = tmp_path / "model.joblib"
    model.write_bytes(b"old model")
    candidate_path(model).write_bytes(b"new model")

    replace_with_candidate(model)
    with pytest.raises(ModelError, match="no candidate model"):
        replace_with_candidate(model)

    assert model.read_bytes() == b"new model"
    assert previous_path(model).read_bytes() == b"old model"
