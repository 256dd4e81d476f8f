"""Charts for the daily and weekly digest mails, drawn as PNG bytes.

Each chart function takes plain data and returns a PNG. The charts are drawn
with matplotlib's object API (a ``Figure`` on an Agg canvas) and never through
pyplot, so threads may draw at the same time and nothing keeps a figure after
its call.

A chart is meant to be shown at ``DISPLAY_SIZE`` CSS pixels (600 x 300), for
example ``<img width="600" height="300">``. The PNG has ``PIXEL_RATIO``
times as many pixels each way, so it stays sharp on high-density screens.
Empty data, and counts that are all zero, give a lower chart
(``EMPTY_DISPLAY_SIZE``) that reads 暂无数据 ("no data").

Chinese text needs a CJK font. The first chart looks for one through
matplotlib's font manager (Noto Sans CJK, Source Han Sans, WenQuanYi and
others, or any installed font that has the charts' Chinese words). Without one
the charts are still drawn, every character that no font has shows as □, and
one warning names the Debian package to install (``CJK_FONT_PACKAGE``).

Labels are drawn as plain text: ``$`` starts no math text, control characters
become spaces, and labels longer than ``LABEL_CHARS`` characters are cut.
"""

from __future__ import annotations

import io
import logging
import math
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ft2font import FT2Font
from matplotlib.ticker import MaxNLocator, PercentFormatter

from config import DEFAULT_STRATEGIES
from items import LEVEL_NAMES_ZH, LEVELS, ROOT_CAUSES

logger = logging.getLogger(__name__)

DISPLAY_SIZE = (600, 300)
EMPTY_DISPLAY_SIZE = (600, 120)
PIXEL_RATIO = 2
MAX_LINES = 8
LABEL_CHARS = 14
MAX_LABELLED_BARS = 14
CJK_FONT_PACKAGE = "fonts-wqy-microhei"
NO_DATA = "暂无数据"
ROOT_CAUSE_NAMES_ZH = {"product": "产品", "service": "服务", "process": "流程"}
LEVEL_COLOURS = {"normal": "#5b8db8", "medium": "#f0a030", "critical": "#d62728"}

# Families tried first, in order. A font that is not listed is used only when
# it has every character of _PROBE_TEXT.
_PREFERRED_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK JP",
    "Source Han Sans",
    "Droid Sans Fallback",
)
_PROBE_TEXT = "普通中等危机产品服务流程暂无数据同类投诉发生率时限超时"
# matplotlib ships DejaVu Sans, so it is always there for the Latin letters
# and symbols that a CJK font lacks.
_LATIN_FAMILY = "DejaVu Sans"
_CSS_DPI = 100
_GREY = "#666666"


@dataclass(frozen=True)
class _Fonts:
    """The font families the charts ask for and the characters they cover."""

    families: tuple[str, ...]
    code_points: frozenset[int]

    def props(self, size: float) -> FontProperties:
        return FontProperties(family=list(self.families), size=size)

    def plain(self, text: str, limit: int | None = None) -> str:
        """Return ``text`` with control characters as spaces and □ for the
        characters that no font has, cut to ``limit`` characters."""
        characters = []
        for char in text:
            category = unicodedata.category(char)
            if category in ("Cc", "Zl", "Zp"):
                characters.append(" ")
            elif ord(char) in self.code_points:
                characters.append(char)
            elif category not in ("Cf", "Mn", "Me"):
                characters.append("□")
        plain = " ".join("".join(characters).split())
        if limit is not None and len(plain) > limit:
            plain = plain[: limit - 1] + "…"
        return plain


_fonts_lock = threading.Lock()
_fonts: _Fonts | None = None


def find_cjk_font() -> str | None:
    """Return the family name of the CJK font the charts use, or None.

    The font is looked up once per process, by this function or the first
    chart. When none is found, that lookup logs one warning naming the Debian
    package to install.
    """
    families = _chart_fonts().families
    return families[0] if len(families) > 1 else None


def _chart_fonts() -> _Fonts:
    global _fonts
    with _fonts_lock:
        if _fonts is None:
            _fonts = _load_fonts()
        return _fonts


def _load_fonts() -> _Fonts:
    latin_path = font_manager.findfont(FontProperties(family=_LATIN_FAMILY))
    code_points = set(FT2Font(latin_path).get_charmap())
    cjk = _listed_cjk_font() or _unlisted_cjk_font()
    if cjk is None:
        logger.warning(
            "cjk font not found, charts draw Chinese as boxes package=%s",
            CJK_FONT_PACKAGE,
        )
        return _Fonts((_LATIN_FAMILY,), frozenset(code_points))
    logger.debug("cjk font found family=%s path=%s", cjk.name, cjk.fname)
    code_points.update(FT2Font(cjk.fname).get_charmap())
    return _Fonts((cjk.name, _LATIN_FAMILY), frozenset(code_points))


def _listed_cjk_font() -> font_manager.FontEntry | None:
    entries = font_manager.fontManager.ttflist
    by_name = {entry.name: entry for entry in entries}
    for family in _PREFERRED_FAMILIES:
        if family in by_name:
            return by_name[family]
    return next((entry for entry in entries if _is_cjk_font(entry.fname)), None)


def _unlisted_cjk_font() -> font_manager.FontEntry | None:
    """Add a CJK font installed after matplotlib cached its font list.

    matplotlib reads its font list from a cache file and does not notice fonts
    installed later, so the font that the warning names would stay unseen.
    """
    known = {entry.fname for entry in font_manager.fontManager.ttflist}
    for path in font_manager.findSystemFonts():
        if path not in known and _is_cjk_font(path):
            added = len(font_manager.fontManager.ttflist)
            font_manager.fontManager.addfont(path)
            return font_manager.fontManager.ttflist[added]
    return None


def _is_cjk_font(path: str) -> bool:
    try:
        font = FT2Font(path)
    except (OSError, RuntimeError, ValueError):
        return False
    # matplotlib 3.11 ships Last Resort, whose character map lists nearly every
    # code point but whose glyphs are placeholder boxes.
    if font.family_name.startswith("Last Resort"):
        return False
    charmap = font.get_charmap()
    return all(ord(char) in charmap for char in _PROBE_TEXT)


def levels_by_day(days: Sequence[date], counts: Mapping[str, Sequence[int]]) -> bytes:
    """Draw the new grievances and complaints of each day, stacked by level.

    :param counts: a list per level code (``normal``, ``medium``, ``critical``)
        with one count per day of ``days``; a missing level counts 0.
    :raises ValueError: on an unknown level, a list whose length differs from
        ``days``, or a negative count.
    """
    title = "每日新增抱怨与投诉（按级别）"
    _check_keys(counts, LEVELS, "level")
    rows = {level: _checked_row(counts, level, len(days)) for level in LEVELS}
    if not days or sum(row.sum() for row in rows.values()) == 0:
        return _empty_chart(title)

    fonts = _chart_fonts()
    figure, ax = _new_chart(fonts, title)
    positions = np.arange(len(days))
    bottom = np.zeros(len(days))
    for level in LEVELS:
        ax.bar(
            positions,
            rows[level],
            width=0.7,
            bottom=bottom,
            color=LEVEL_COLOURS[level],
            label=fonts.plain(LEVEL_NAMES_ZH[level]),
        )
        bottom += rows[level]

    _show_totals(ax, positions, bottom, fonts)
    _set_date_ticks(ax, days)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = ax.get_legend_handles_labels()
    _add_legend(ax, handles[::-1], labels[::-1], fonts, outside=False)
    return _png(figure)


def recurrence(weeks: Sequence[date], rates: Mapping[str, Sequence[float]]) -> bytes:
    """Draw the weekly recurrence rate (同类投诉发生率) of the top problems.

    :param rates: per problem label, one rate per week of ``weeks`` as a
        fraction (0.12 is drawn as 12%). NaN and infinite rates leave a gap.
    :raises ValueError: on a list whose length differs from ``weeks`` or a
        negative rate.

    At most ``MAX_LINES`` problems are drawn, those with the highest mean rate
    first; a note under the legend counts the others (其他).
    """
    return _rate_lines("同类投诉发生率（每周）", weeks, rates)


def deadline_shares(
    weeks: Sequence[date], shares: Mapping[str, Sequence[float]]
) -> bytes:
    """Draw per level the weekly share of posts handled within their deadline.

    :param shares: per level code, one share per week of ``weeks`` as a
        fraction. NaN leaves a gap.
    :raises ValueError: on an unknown level, a list whose length differs from
        ``weeks`` or a negative share.
    """
    _check_keys(shares, LEVELS, "level")
    named = {
        LEVEL_NAMES_ZH[level]: shares[level] for level in LEVELS if level in shares
    }
    return _rate_lines("时限内处理的比例（每周，按级别）", weeks, named)


def posts_by_day(days: Sequence[date], counts: Sequence[int]) -> bytes:
    """Draw one problem's posts per day as bars.

    :raises ValueError: on a list whose length differs from ``days`` or a
        negative count.
    """
    title = "每日帖子数"
    row = np.asarray(counts, dtype=float)
    if row.shape != (len(days),):
        raise ValueError(
            f"invalid counts per day: {row.size} values for {len(days)} days"
        )
    if np.any(row < 0):
        raise ValueError(f"invalid counts per day: negative count {row.min():g}")
    if not days or row.sum() == 0:
        return _empty_chart(title)

    fonts = _chart_fonts()
    figure, ax = _new_chart(fonts, title)
    positions = np.arange(len(days))
    ax.bar(positions, row, width=0.7, color=LEVEL_COLOURS["normal"])
    _show_totals(ax, positions, row, fonts)
    _set_date_ticks(ax, days)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _png(figure)


def _rate_lines(
    title: str, weeks: Sequence[date], rates: Mapping[str, Sequence[float]]
) -> bytes:
    series = _rate_series(rates, len(weeks))
    if not weeks or not series:
        return _empty_chart(title)

    fonts = _chart_fonts()
    figure, ax = _new_chart(fonts, title)
    ranked = sorted(series.items(), key=lambda pair: -np.nanmean(pair[1]))
    positions = np.arange(len(weeks))
    for label, values in ranked[:MAX_LINES]:
        ax.plot(
            positions,
            values,
            marker="o",
            markersize=3.5,
            linewidth=1.6,
            label=fonts.plain(label, LABEL_CHARS),
        )

    _set_date_ticks(ax, weeks)
    ax.set_ylim(bottom=0)
    whole_percents = ax.get_ylim()[1] >= 0.05
    ax.yaxis.set_major_formatter(
        PercentFormatter(xmax=1, decimals=0 if whole_percents else None)
    )
    handles, labels = ax.get_legend_handles_labels()
    _add_legend(ax, handles, labels, fonts, outside=True)
    hidden = len(ranked) - MAX_LINES
    if hidden > 0:
        note = f"其他 {hidden} 个问题未画出"
        _add_text(ax, 1.02, 0.0, note, fonts, size=8, color=_GREY)
    return _png(figure)


def root_causes(counts: Mapping[str, int]) -> bytes:
    """Draw grievances and complaints by root cause, with counts and shares.

    :param counts: per root cause code (``product``, ``service``,
        ``process``); a missing one counts 0.
    :raises ValueError: on an unknown root cause or a negative count.
    """
    title = "抱怨与投诉的根因"
    _check_keys(counts, ROOT_CAUSES, "root cause")
    values = np.array([counts.get(cause, 0) for cause in ROOT_CAUSES], dtype=float)
    if np.any(values < 0):
        raise ValueError(f"invalid root cause counts {dict(counts)}: negative count")
    total = values.sum()
    if total == 0:
        return _empty_chart(title)

    fonts = _chart_fonts()
    figure, ax = _new_chart(fonts, title)
    positions = np.arange(len(ROOT_CAUSES))[::-1]
    ax.barh(positions, values, height=0.6, color=LEVEL_COLOURS["normal"])
    names = [fonts.plain(ROOT_CAUSE_NAMES_ZH[cause]) for cause in ROOT_CAUSES]
    ax.set_yticks(positions, names, fontproperties=fonts.props(10))
    ax.tick_params(axis="y", length=0)
    for position, value in zip(positions, values, strict=True):
        text = f"{value:.0f} ({value / total:.0%})"
        x = value + values.max() * 0.02
        _add_text(ax, x, position, text, fonts, transform=ax.transData, va="center")

    ax.set_xlim(0, values.max() * 1.3)
    ax.xaxis.set_visible(False)
    ax.spines["bottom"].set_visible(False)
    ax.grid(False)
    return _png(figure)


def time_to_acknowledge(
    levels: Mapping[str, Sequence[float]],
    deadline_hours: Mapping[str, float] | None = None,
) -> bytes:
    """Draw hours to acknowledge as one box plot per level, deadline marked.

    :param levels: per level code, the hours from alert to acknowledgement.
        NaN and infinite values are left out.
    :param deadline_hours: the response deadline of each level in hours, as in
        a strategy's ``response_hours``; by default the balanced strategy's.
        A level without a deadline gets no mark.
    :raises ValueError: on an unknown level or a negative number of hours.
    """
    title = "告警确认用时（小时，按级别）"
    _check_keys(levels, LEVELS, "level")
    hours = {level: _finite_hours(levels, level) for level in LEVELS}
    if all(values.size == 0 for values in hours.values()):
        return _empty_chart(title)
    if deadline_hours is None:
        deadline_hours = DEFAULT_STRATEGIES["balanced"].response_hours

    fonts = _chart_fonts()
    figure = _new_figure(DISPLAY_SIZE)
    _add_title(figure, title, fonts)
    panels = figure.subplots(1, len(LEVELS))
    for ax, level in zip(panels, reversed(LEVELS), strict=True):
        _style_axes(ax)
        _draw_level_box(ax, level, hours[level], deadline_hours.get(level), fonts)
    return _png(figure)


def _draw_level_box(
    ax: Axes, level: str, values: np.ndarray, deadline: float | None, fonts: _Fonts
) -> None:
    ax.set_title(fonts.plain(LEVEL_NAMES_ZH[level]), fontproperties=fonts.props(10))
    ax.set_xticks([])
    if values.size == 0:
        ax.set_yticks([])
        ax.spines[["left", "bottom"]].set_visible(False)
        _add_text(ax, 0.5, 0.5, "无数据", fonts, color=_GREY, ha="center")
        return

    box = ax.boxplot(
        [values],
        widths=0.5,
        patch_artist=True,
        manage_ticks=False,
        medianprops={"color": "black"},
        flierprops={"markersize": 3},
    )
    box["boxes"][0].set(facecolor=LEVEL_COLOURS[level], alpha=0.6)
    top = max(values.max(), deadline or 0.0) * 1.15 or 1.0
    ax.set_xlim(0.25, 1.75)
    ax.set_ylim(0, top)
    summary = f"中位 {_format_hours(np.median(values))}"
    if deadline is not None:
        ax.axhline(deadline, color=LEVEL_COLOURS["critical"], linestyle="--", lw=1)
        label = f"时限 {_format_hours(deadline)}"
        _add_text(
            ax,
            0.98,
            deadline,
            label,
            fonts,
            size=8,
            ha="right",
            va="bottom",
            transform=ax.get_yaxis_transform(),
            color=LEVEL_COLOURS["critical"],
        )
        summary += f" · 超时 {int((values > deadline).sum())}/{values.size}"
    ax.set_xlabel(fonts.plain(summary), fontproperties=fonts.props(8.5), color=_GREY)


def _format_hours(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} 分钟"
    if hours < 10:
        return f"{round(hours, 1):g} 小时"
    return f"{hours:.0f} 小时"


def _check_keys(
    data: Mapping[str, object], allowed: Sequence[str], key_name: str
) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown {key_name} {unknown[0]!r}; expected one of {', '.join(allowed)}"
        )


def _checked_row(
    counts: Mapping[str, Sequence[int]], level: str, size: int
) -> np.ndarray:
    row = np.asarray(counts.get(level, [0] * size), dtype=float)
    if row.shape != (size,):
        raise ValueError(
            f"invalid counts for level {level}: {row.size} values for {size} days"
        )
    if np.any(row < 0):
        raise ValueError(
            f"invalid counts for level {level}: negative count {row.min():g}"
        )
    return row


def _rate_series(
    rates: Mapping[str, Sequence[float]], size: int
) -> dict[str, np.ndarray]:
    """Return the series that have at least one finite rate, infinities as NaN."""
    series = {}
    for label, values in rates.items():
        row = np.asarray(values, dtype=float)
        if row.shape != (size,):
            raise ValueError(
                f"invalid rates for problem {label[:40]!r}: "
                f"{row.size} values for {size} weeks"
            )
        row[~np.isfinite(row)] = np.nan
        if np.any(row < 0):
            raise ValueError(
                f"invalid rates for problem {label[:40]!r}: "
                f"negative rate {np.nanmin(row):g}"
            )
        if not np.all(np.isnan(row)):
            series[label] = row
    return series


def _finite_hours(levels: Mapping[str, Sequence[float]], level: str) -> np.ndarray:
    values = np.asarray(levels.get(level, []), dtype=float).ravel()
    values = values[np.isfinite(values)]
    if np.any(values < 0):
        raise ValueError(
            f"invalid hours for level {level}: negative value {values.min():g}"
        )
    return values


def _new_figure(display_size: tuple[int, int]) -> Figure:
    width, height = display_size
    figure = Figure(
        figsize=(width / _CSS_DPI, height / _CSS_DPI),
        dpi=_CSS_DPI * PIXEL_RATIO,
        layout="constrained",
        facecolor="white",
    )
    FigureCanvasAgg(figure)
    return figure


def _new_chart(fonts: _Fonts, title: str) -> tuple[Figure, Axes]:
    figure = _new_figure(DISPLAY_SIZE)
    _add_title(figure, title, fonts)
    ax = figure.add_subplot()
    _style_axes(ax)
    return figure, ax


def _style_axes(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8.5, colors="#333333")
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)


def _add_title(figure: Figure, title: str, fonts: _Fonts) -> None:
    figure.suptitle(
        fonts.plain(title),
        x=0.01,
        ha="left",
        fontproperties=fonts.props(12),
        parse_math=False,
    )


def _add_text(
    ax: Axes, x: float, y: float, text: str, fonts: _Fonts, size: float = 9, **kwargs
) -> None:
    kwargs.setdefault("transform", ax.transAxes)
    ax.text(
        x,
        y,
        fonts.plain(text),
        fontproperties=fonts.props(size),
        parse_math=False,
        clip_on=False,
        **kwargs,
    )


def _add_legend(
    ax: Axes, handles: list, labels: list[str], fonts: _Fonts, *, outside: bool
) -> None:
    if outside:
        placement = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0)}
    else:
        placement = {
            "loc": "lower right",
            "bbox_to_anchor": (1.0, 1.0),
            "ncols": len(labels),
        }
    legend = ax.legend(
        handles, labels, prop=fonts.props(8.5), frameon=False, **placement
    )
    # Legend labels come from posts: "$" must not start math text.
    for text in legend.get_texts():
        text.set_parse_math(False)


def _show_totals(
    ax: Axes, positions: np.ndarray, totals: np.ndarray, fonts: _Fonts
) -> None:
    """Leave room above the highest bar and write each total over its bar,
    unless there are too many bars for the numbers to fit."""
    ax.set_ylim(0, totals.max() * 1.12)
    if len(positions) > MAX_LABELLED_BARS:
        return
    for position, total in zip(positions, totals, strict=True):
        if total > 0:
            _add_text(
                ax,
                position,
                total,
                f"{total:.0f}",
                fonts,
                size=8,
                transform=ax.transData,
                ha="center",
                va="bottom",
            )


def _set_date_ticks(ax: Axes, days: Sequence[date]) -> None:
    step = max(1, math.ceil(len(days) / 8))
    positions = np.arange(len(days))[::step]
    ax.set_xticks(positions, [day.strftime("%m-%d") for day in days[::step]])
    ax.set_xlim(-0.6, len(days) - 0.4)


def _empty_chart(title: str) -> bytes:
    fonts = _chart_fonts()
    figure = _new_figure(EMPTY_DISPLAY_SIZE)
    figure.set_layout_engine("none")
    figure.text(
        0.01,
        0.92,
        fonts.plain(title),
        fontproperties=fonts.props(12),
        va="top",
        parse_math=False,
    )
    figure.text(
        0.5,
        0.35,
        fonts.plain(NO_DATA),
        fontproperties=fonts.props(11),
        color=_GREY,
        ha="center",
        va="center",
        parse_math=False,
    )
    return _png(figure)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # The Software entry would name the matplotlib version. Without it, equal
    # data drawn by one installation gives equal bytes.
    figure.savefig(buffer, format="png", dpi=figure.dpi, metadata={"Software": None})
    return buffer.getvalue()
