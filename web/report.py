"""The report page for fire-prevention work: the weekly recurrence rate of
each problem, the split by root cause, the share handled within the deadline
and the time to acknowledge, each with a chart and a CSV download."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
from flask import Blueprint, Response, abort, render_template, request

from alerts import charts
from items import LEVEL_NAMES_ZH, LEVELS, ROOT_CAUSES
from storage.report import NOT_COUNTED_RESOLUTIONS, ReportFigures, read_report, week_of

from .csv_export import csv_response
from .images import png_response
from .state import state

blueprint = Blueprint("report", __name__)

# Problems listed on the page. The CSV has every problem of the weeks.
LISTED_PROBLEMS = 50
# The range of weeks a request may name. Outside it the eight weeks before a week
# could leave the range of dates that Python and the databases handle.
FIRST_WEEK = date(2000, 1, 3)
LAST_WEEK = date(2100, 12, 27)
ROOT_CAUSE_COLUMNS = tuple(charts.ROOT_CAUSE_NAMES_ZH[cause] for cause in ROOT_CAUSES)


@blueprint.get("/report")
def report() -> str:
    figures = _figures()
    listed = figures.problems[:LISTED_PROBLEMS]
    return render_template(
        "report.html",
        figures=figures,
        listed=listed,
        last_day=figures.week + timedelta(days=6),
        previous_week=figures.week - timedelta(weeks=1),
        next_week=figures.week + timedelta(weeks=1),
        deadline_hours=state().config.thresholds.response_hours,
        acknowledge_rows=list(_acknowledge_rows(figures)),
        not_counted=NOT_COUNTED_RESOLUTIONS,
        percent=percent,
        root_cause_order=ROOT_CAUSES,
        level_order=tuple(reversed(LEVELS)),
    )


@blueprint.get("/report/<name>.png")
def chart(name: str) -> Response:
    if name not in CHARTS:
        abort(404, f"没有名为 {name} 的图。")
    figures = _figures()
    return png_response(CHARTS[name](figures))


@blueprint.get("/report/<name>.csv")
def table(name: str) -> Response:
    if name not in TABLES:
        abort(404, f"没有名为 {name} 的表格。")
    figures = _figures()
    header, rows = TABLES[name](figures)
    file_name = f"report-{name}-{figures.week.isoformat()}.csv"
    return csv_response(file_name, header, rows)


def percent(rate: float) -> str:
    """Format a fraction as a whole percentage, or a dash when it is NaN."""
    if not math.isfinite(rate):
        return "—"
    return f"{rate:.0%}"


def _figures() -> ReportFigures:
    shared = state()
    week = _requested_week() or week_of(shared.now(), shared.config.timezone)
    return read_report(
        shared.store, week, timezone=shared.config.timezone, now=shared.now()
    )


def _requested_week() -> date | None:
    """Read ``week`` (any date of the week) from the query string, or abort
    with 400 when it is not a date in range."""
    value = request.args.get("week")
    if not value:
        return None
    try:
        day = date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        day = None
    if day is None:
        abort(400, f"日期无效：{value[:40]}，应为 YYYY-MM-DD")
    monday = day - timedelta(days=day.weekday())
    if not FIRST_WEEK <= monday <= LAST_WEEK:
        abort(400, f"日期超出范围：{value}")
    return monday


# Charts


def _recurrence_chart(figures: ReportFigures) -> bytes:
    rates = {
        f"#{problem.problem_id} {problem.label}": list(problem.rates)
        for problem in figures.problems
    }
    return charts.recurrence(figures.weeks, rates)


def _root_cause_chart(figures: ReportFigures) -> bytes:
    totals = {
        cause: sum(new.root_causes[cause] for new in figures.new)
        for cause in ROOT_CAUSES
    }
    return charts.root_causes(totals)


def _deadline_chart(figures: ReportFigures) -> bytes:
    shares = {
        level: [week[level].share for week in figures.deadlines] for level in LEVELS
    }
    return charts.deadline_shares(figures.weeks, shares)


def _acknowledge_chart(figures: ReportFigures) -> bytes:
    hours = {
        level: [value for week in figures.acknowledge_hours for value in week[level]]
        for level in LEVELS
    }
    return charts.time_to_acknowledge(hours, state().config.thresholds.response_hours)


CHARTS: dict[str, Callable[[ReportFigures], bytes]] = {
    "recurrence": _recurrence_chart,
    "root-causes": _root_cause_chart,
    "deadlines": _deadline_chart,
    "acknowledge": _acknowledge_chart,
}


# Tables for CSV

Table = tuple[Sequence[str], Iterator[Sequence[Any]]]


def _recurrence_table(figures: ReportFigures) -> Table:
    header = ["问题编号", "问题", "根因"]
    for week in figures.weeks:
        header += [f"{week.isoformat()} 新增事件", f"{week.isoformat()} 发生率"]

    def rows() -> Iterator[Sequence[Any]]:
        brand: list[Any] = ["", "全部问题", ""]
        for count in figures.brand_incidents:
            brand += [count, ""]
        yield brand
        for problem in figures.problems:
            row: list[Any] = [
                problem.problem_id,
                problem.label,
                charts.ROOT_CAUSE_NAMES_ZH.get(problem.root_cause or "", ""),
            ]
            for count, rate in zip(problem.incidents, problem.rates, strict=True):
                row += [count, round(rate, 4) if math.isfinite(rate) else None]
            yield row

    return header, rows()


def _root_cause_table(figures: ReportFigures) -> Table:
    header = ["周（周一）", *ROOT_CAUSE_COLUMNS, "未判定", "合计"]
    rows = (
        [
            week.isoformat(),
            *(new.root_causes[cause] for cause in ROOT_CAUSES),
            new.unknown_root_cause,
            new.total,
        ]
        for week, new in zip(figures.weeks, figures.new, strict=True)
    )
    return header, rows


def _deadline_table(figures: ReportFigures) -> Table:
    header = [
        "周（周一）",
        "级别",
        "有处理时限",
        "时限内处理",
        "超时处理",
        "已关闭未处理",
        "未关闭已超时",
        "未到期",
        "误报或重复",
        "计入比例",
        "时限内处理比例",
    ]
    return header, _deadline_rows(figures)


def _deadline_rows(figures: ReportFigures) -> Iterator[list[Any]]:
    for week, levels in zip(figures.weeks, figures.deadlines, strict=True):
        for level in reversed(LEVELS):
            item = levels[level]
            yield [
                week.isoformat(),
                LEVEL_NAMES_ZH[level],
                item.due,
                item.in_time,
                item.late,
                item.closed_other,
                item.overdue,
                item.not_due,
                item.not_counted,
                item.counted,
                round(item.share, 4) if item.counted else None,
            ]


def _acknowledge_table(figures: ReportFigures) -> Table:
    header = [
        "周（周一）",
        "级别",
        "确认数",
        "中位用时（小时）",
        "90% 用时（小时）",
        "最长用时（小时）",
        "处理时限（小时）",
        "超过时限",
    ]
    return header, _acknowledge_rows(figures)


def _acknowledge_rows(figures: ReportFigures) -> Iterator[list[Any]]:
    deadline_hours = state().config.thresholds.response_hours
    for week, levels in zip(figures.weeks, figures.acknowledge_hours, strict=True):
        for level in reversed(LEVELS):
            hours = np.asarray(levels[level], dtype=float)
            deadline = deadline_hours.get(level)
            late = None if deadline is None else int((hours > deadline).sum())
            yield [
                week.isoformat(),
                LEVEL_NAMES_ZH[level],
                int(hours.size),
                _hours(np.median(hours)) if hours.size else None,
                _hours(np.percentile(hours, 90)) if hours.size else None,
                _hours(hours.max()) if hours.size else None,
                deadline,
                late,
            ]


def _hours(value: float) -> float:
    return round(float(value), 2)


TABLES: dict[str, Callable[[ReportFigures], Table]] = {
    "recurrence": _recurrence_table,
    "root-causes": _root_cause_table,
    "deadlines": _deadline_table,
    "acknowledge": _acknowledge_table,
}
