"""The sources page: each collector's health, last success, lag, next run and
recent errors, computed as the ``status`` command computes them."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template

from source_health import SourceHealth, format_duration, source_health
from storage import RunRecord, SourceStatus

from .state import state

blueprint = Blueprint("sources", __name__)

# Latest runs read per source for the list of recent errors.
RECENT_RUNS = 20
HEALTH_NAMES_ZH = {"ok": "正常", "failing": "失败中", "stale": "已停滞"}
RUN_STATUS_NAMES_ZH = {
    "running": "运行中",
    "ok": "成功",
    "partial": "部分成功",
    "failed": "失败",
}


@dataclass(frozen=True, slots=True)
class SourceView:
    """One row of the sources page."""

    status: SourceStatus
    health: SourceHealth
    errors: tuple[RunRecord, ...]


@blueprint.get("/sources")
def sources() -> str:
    shared = state()
    now = shared.now()
    configured = {source.name: source for source in shared.config.sources}
    report = shared.store.status()
    statuses = {row.name: row for row in report.sources}
    # A configured source that never ran has no row in the report.
    for name in configured:
        statuses.setdefault(name, SourceStatus(name=name, posts=0))

    views = []
    for name in sorted(statuses):
        row = statuses[name]
        runs = shared.store.recent_runs(name, RECENT_RUNS)
        views.append(
            SourceView(
                status=row,
                health=source_health(row, configured.get(name), shared.config, now),
                errors=tuple(run for run in runs if run.error),
            )
        )
    # NOTE: unlike the status command, the page does not take the job lock to
    # tell a run still marked "running" from one whose job died, because
    # holding that lock, even briefly, could stop a job from starting.
    return render_template(
        "sources.html",
        sources=views,
        health_names=HEALTH_NAMES_ZH,
        run_status_names=RUN_STATUS_NAMES_ZH,
        duration=format_duration,
        recent_runs=RECENT_RUNS,
    )
