"""The model page: the current kind model and the candidate beside it, and
the lead's button that promotes the candidate.

The figures come from the model files' metadata, recorded when
``python pipeline.py train`` wrote them, so the page never loads
scikit-learn. Promoting loads the candidate once, as the job would, to
refuse a file the job could not use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, g, redirect, render_template, url_for

from items import KINDS
from nlp import promotion
from nlp.modelfile import ModelError, read_metadata
from storage.reviews import PostReviews

from .audit import record_in
from .auth import requires
from .state import state

logger = logging.getLogger(__name__)

blueprint = Blueprint("model", __name__)


@dataclass(frozen=True)
class ModelView:
    """One model file as the page shows it; ``error`` is set when it cannot be read."""

    path: Path
    metadata: dict[str, Any] | None = None
    error: str | None = None

    @property
    def version(self) -> str | None:
        return None if self.metadata is None else promotion.model_version(self.metadata)

    @property
    def evaluation(self) -> dict[str, Any] | None:
        return None if self.metadata is None else self.metadata.get("evaluation")

    @property
    def corrections(self) -> dict[str, Any]:
        return {} if self.metadata is None else self.metadata.get("corrections", {})


@blueprint.get("/model")
def model() -> str:
    shared = state()
    model_path = shared.config.resolve(shared.config.model_path)
    current = _model_view(Path(model_path))
    candidate = _model_view(promotion.candidate_path(model_path))
    last_id = current.corrections.get("last_id", 0)
    since = PostReviews(shared.store.engine).corrections_after(int(last_id))
    return render_template(
        "model.html",
        current=current,
        candidate=candidate,
        corrections_since=since,
        kinds=KINDS,
    )


@blueprint.post("/model/promote")
@requires("lead")
def promote() -> Response:
    shared = state()
    model_path = Path(shared.config.resolve(shared.config.model_path))
    try:
        metadata = promotion.check_candidate(model_path, shared.config.brand)
    except ModelError as exc:
        logger.warning("model promotion rejected user_id=%s error=%s", g.user.id, exc)
        abort(400, f"候选模型无法使用：{exc}")
    replaced = _model_view(model_path).version
    details = {"version": promotion.model_version(metadata), "replaced": replaced}

    with PostReviews(shared.store.engine).write() as connection:
        record_in(connection, "model.promote", ("model", details["version"]), details)
        try:
            promotion.replace_with_candidate(model_path)
        except ModelError as exc:
            logger.error("model promotion failed user_id=%s error=%s", g.user.id, exc)
            abort(500, f"无法替换模型文件：{exc}")
    logger.info("model promoted by user_id=%s", g.user.id)
    return redirect(url_for("model.model"), 303)


def _model_view(path: Path) -> ModelView:
    if not path.exists():
        return ModelView(path)
    try:
        return ModelView(path, metadata=read_metadata(path))
    except ModelError as exc:
        return ModelView(path, error=str(exc))
