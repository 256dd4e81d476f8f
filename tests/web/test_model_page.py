"""The model page and the lead's promotion of the candidate model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import joblib
import pytest
from bs4 import BeautifulSoup
from graded_posts import T0, add_graded_post
from model_cache import shipped_model_path
from review_client import form_token, make_config

from nlp import promotion
from nlp.modelfile import read_metadata
from storage.reviews import PostReviews, add_correction
from web.app import create_app


def evaluation(f1: float) -> dict:
    per_kind = {
        kind: {"precision": f1, "recall": f1, "f1": f1, "support": 10}
        for kind in ("irrelevant", "neutral", "praise", "grievance", "complaint")
    }
    return {"data": "dev.jsonl", "posts": 50, "macro_f1": f1, "per_kind": per_kind}


def write_model(path: Path, data_hash: str, **metadata) -> None:
    """Write the shipped model with changed metadata, as train would."""
    envelope = joblib.load(shipped_model_path())
    envelope["metadata"] = {
        **envelope["metadata"],
        "data_hash": data_hash,
        **metadata,
    }
    joblib.dump(envelope, path)


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    return tmp_path / "models" / "model.joblib"


@pytest.fixture
def app(sqlite_store, clock, model_path: Path):
    config = make_config(str(sqlite_store.engine.url))
    config = dataclasses.replace(config, model_path=str(model_path))
    return create_app(config, sqlite_store, now=clock)


@pytest.fixture
def models(model_path: Path) -> Path:
    model_path.parent.mkdir()
    write_model(
        model_path,
        "a" * 64,
        evaluation=evaluation(0.5),
        corrections={"used": 0, "analysts": {}, "last_id": 1},
    )
    write_model(
        promotion.candidate_path(model_path),
        "b" * 64,
        evaluation=evaluation(0.75),
        corrections={"used": 2, "analysts": {"ana": 2}, "last_id": 3},
    )
    return model_path


def soup_of(response) -> BeautifulSoup:
    assert response.status_code == 200, response.get_data(as_text=True)
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def add_corrections(store, count: int) -> None:
    post_id = add_graded_post(store, "1")
    for _ in range(count):
        with PostReviews(store.engine).write() as connection:
            add_correction(connection, post_id, "kind", "grievance", "ana", T0)


def promote(client):
    token = form_token(client.get("/model"))
    return client.post("/model/promote", data={"csrf_token": token})


def test_page_shows_both_models(logged_in, sqlite_store, models) -> None:
    add_corrections(sqlite_store, 3)

    soup = soup_of(logged_in("viewer").get("/model"))

    versions = [tag.get_text() for tag in soup.select(".model-version")]
    assert versions == ["trained-aaaaaaaaaaaa", "trained-bbbbbbbbbbbb"]
    assert "新增人工标注：2 条" in soup.select_one(".corrections-since").get_text()
    used = [tag.get_text() for tag in soup.select(".corrections-used")]
    assert used == ["0 条类型更正", "2 条类型更正（ana 2）"]
    complaint = soup.select("table.model-figures tbody tr")[4]
    cells = [td.get_text() for td in complaint.select("td")]
    assert cells == ["投诉", *["0.500"] * 3, *["0.750"] * 3, "10"]
    assert soup.select_one("#promote-form") is None


def test_page_without_model_files(logged_in, sqlite_store) -> None:
    add_corrections(sqlite_store, 2)

    soup = soup_of(logged_in("analyst").get("/model"))

    assert soup.select(".model-version") == []
    assert "新增人工标注：2 条" in soup.select_one(".corrections-since").get_text()
    assert "都没有记录开发集上的表现" in soup.get_text()


def test_page_with_broken_file(logged_in, model_path) -> None:
    model_path.parent.mkdir()
    model_path.write_bytes(b"not a model")

    soup = soup_of(logged_in("analyst").get("/model"))

    assert "无法读取" in soup.select_one(".model-file .error").get_text()


def test_lead_promotes_candidate(logged_in, accounts, models) -> None:
    client = logged_in("lead")
    assert soup_of(client.get("/model")).select_one("#promote-form") is not None

    response = promote(client)

    assert response.status_code == 303
    assert promotion.model_version(read_metadata(models)) == "trained-bbbbbbbbbbbb"
    previous = read_metadata(promotion.previous_path(models))
    assert promotion.model_version(previous) == "trained-aaaaaaaaaaaa"
    assert not promotion.candidate_path(models).exists()
    entry = accounts.audit_entries(1)[0]
    assert entry.actor == "lead"
    assert entry.action == "model.promote"
    assert entry.details == {
        "version": "trained-bbbbbbbbbbbb",
        "replaced": "trained-aaaaaaaaaaaa",
    }


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_promote_needs_lead(logged_in, accounts, models, role) -> None:
    client = logged_in(role)
    token = form_token(client.get("/model"))

    response = client.post("/model/promote", data={"csrf_token": token})

    assert response.status_code == 403
    assert promotion.candidate_path(models).exists()
    assert accounts.audit_entries(1)[0].action == "login"


def test_promote_refuses_unusable_candidate(logged_in, accounts, models) -> None:
    candidate = promotion.candidate_path(models)
    candidate.write_bytes(b"broken")
    client = logged_in("lead")
    token = form_token(client.get("/"))

    response = client.post("/model/promote", data={"csrf_token": token})

    assert response.status_code == 400
    assert "候选模型无法使用" in response.get_data(as_text=True)
    assert candidate.read_bytes() == b"broken"
    assert promotion.model_version(read_metadata(models)) == "trained-aaaaaaaaaaaa"
    assert accounts.audit_entries(1)[0].action == "login"


def test_promote_bad_csrf(logged_in, accounts, models) -> None:
    response = logged_in("lead").post("/model/promote", data={"csrf_token": "x"})

    assert response.status_code == 403
    assert promotion.candidate_path(models).exists()
