"""Digest charts: PNGs of the right size, Chinese glyphs, hostile labels."""

from __future__ import annotations

import gc
import io
import json
import math
import os
import struct
import subprocess
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from alerts import charts

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHART_PIXELS = (600 * charts.PIXEL_RATIO, 300 * charts.PIXEL_RATIO)
EMPTY_PIXELS = (600 * charts.PIXEL_RATIO, 120 * charts.PIXEL_RATIO)
CJK_FONT_MISSING = (
    "no CJK font found by matplotlib (Debian package fonts-wqy-microhei); "
    "install it to check that Chinese text renders as glyphs"
)
REPO = Path(__file__).resolve().parents[2]

DAYS = [date(2026, 11, 1) + timedelta(days=offset) for offset in range(7)]
WEEKS = [date(2026, 9, 7) + timedelta(weeks=offset) for offset in range(6)]
HOSTILE_LABELS = [
    r"$\frac{1}{$ 数学公式",
    "$x^{$",
    "<script>alert('启程')</script>",
    "超长标签" * 125,
    "😀 车机死机 👨‍👩‍👧 🚗",
    "换行\n制表\t空字符\x00",
    "\u202e反向文字",
    "",
]


def level_counts() -> dict[str, list[int]]:
    return {
        "normal": [5, 3, 8, 2, 6, 4, 7],
        "medium": [2, 1, 3, 0, 2, 1, 2],
        "critical": [0, 1, 0, 0, 2, 0, 1],
    }


def rates_for(labels: list[str]) -> dict[str, list[float]]:
    return {
        label: [0.02 * (index + 1) + 0.01 * week for week in range(len(WEEKS))]
        for index, label in enumerate(labels)
    }


SAMPLE_CHARTS: dict[str, Callable[[], bytes]] = {
    "levels_by_day": lambda: charts.levels_by_day(DAYS, level_counts()),
    "recurrence": lambda: charts.recurrence(
        WEEKS, rates_for(["QC7 · 刹车失灵", "QC9 · 交付延迟", "QC5 · 续航虚标"])
    ),
    "root_causes": lambda: charts.root_causes(
        {"product": 120, "service": 45, "process": 30}
    ),
    "time_to_acknowledge": lambda: charts.time_to_acknowledge(
        {"critical": [0.2, 0.5, 1.5], "medium": [3.0, 30.0], "normal": [40.0]}
    ),
}

EMPTY_CHARTS: dict[str, Callable[[], bytes]] = {
    "levels no days": lambda: charts.levels_by_day([], {}),
    "levels all zero": lambda: charts.levels_by_day(DAYS, {"normal": [0] * 7}),
    "recurrence no weeks": lambda: charts.recurrence([], {}),
    "recurrence all nan": lambda: charts.recurrence(
        WEEKS, {"QC7 · 刹车失灵": [math.nan] * len(WEEKS)}
    ),
    "root causes none": lambda: charts.root_causes({}),
    "root causes zero": lambda: charts.root_causes({"product": 0}),
    "acknowledge none": lambda: charts.time_to_acknowledge({}),
    "acknowledge nan": lambda: charts.time_to_acknowledge(
        {"critical": [math.nan], "normal": []}
    ),
}


def png_size(data: bytes) -> tuple[int, int]:
    """Return the width and height from a PNG's IHDR chunk."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG signature"
    assert data[12:16] == b"IHDR", "first chunk is not IHDR"
    return struct.unpack(">II", data[16:24])


def draw_recording_warnings(draw: Callable[[], bytes]) -> tuple[bytes, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = draw()
    return data, [str(warning.message) for warning in caught]


@pytest.fixture(scope="module")
def cjk_font() -> str:
    family = charts.find_cjk_font()
    if family is None:
        if os.environ.get("FENGHUO_REQUIRE_SERVICES") == "1":
            pytest.fail(CJK_FONT_MISSING)
        pytest.skip(CJK_FONT_MISSING)
    return family


@pytest.mark.parametrize("name", SAMPLE_CHARTS)
def test_chart_is_png_of_display_size(name: str) -> None:
    data = SAMPLE_CHARTS[name]()

    assert png_size(data) == CHART_PIXELS
    pixels = imread(io.BytesIO(data), format="png")
    assert pixels.shape[:2] == (CHART_PIXELS[1], CHART_PIXELS[0])
    assert pixels[..., :3].min() < 0.5, "chart has no dark pixels"


@pytest.mark.parametrize("name", EMPTY_CHARTS)
def test_empty_data_gives_small_chart(name: str) -> None:
    data = EMPTY_CHARTS[name]()

    assert png_size(data) == EMPTY_PIXELS


def test_empty_chart_same_for_no_days_and_zeros() -> None:
    assert EMPTY_CHARTS["levels no days"]() == EMPTY_CHARTS["levels all zero"]()


@pytest.mark.parametrize("name", [*SAMPLE_CHARTS, *EMPTY_CHARTS])
def test_chinese_text_has_no_missing_glyphs(name: str, cjk_font: str) -> None:
    draw = SAMPLE_CHARTS.get(name) or EMPTY_CHARTS[name]

    _, messages = draw_recording_warnings(draw)

    missing = [message for message in messages if "missing from font" in message]
    assert missing == [], f"font {cjk_font} lacks glyphs: {missing[:3]}"


def test_chinese_label_drawn_as_glyphs(cjk_font: str) -> None:
    glyphs = charts.recurrence(WEEKS, rates_for(["刹车失灵"]))
    other_glyphs = charts.recurrence(WEEKS, rates_for(["异响顿挫"]))
    boxes = charts.recurrence(WEEKS, rates_for(["□□□□"]))

    assert glyphs != boxes, f"font {cjk_font} drew 刹车失灵 as boxes"
    assert glyphs != other_glyphs


def test_hostile_labels_drawn_as_plain_text(cjk_font: str) -> None:
    data, messages = draw_recording_warnings(
        lambda: charts.recurrence(WEEKS, rates_for(HOSTILE_LABELS))
    )

    assert png_size(data) == CHART_PIXELS
    assert [message for message in messages if "missing from font" in message] == []


@pytest.mark.parametrize("label", HOSTILE_LABELS)
def test_hostile_label_alone_draws(label: str) -> None:
    data = charts.recurrence(WEEKS, rates_for([label]))

    assert png_size(data) == CHART_PIXELS


def test_dollar_signs_are_not_math_text() -> None:
    # Parsed as math text, this label would raise ValueError while drawing.
    data = charts.recurrence(WEEKS, rates_for([r"$\undefinedcommand{$"]))

    assert png_size(data) == CHART_PIXELS


def test_long_label_cut_to_label_chars() -> None:
    cut = "A" * (charts.LABEL_CHARS - 1) + "…"

    long_label = charts.recurrence(WEEKS, rates_for(["A" * 500]))
    cut_label = charts.recurrence(WEEKS, rates_for([cut]))

    assert long_label == cut_label


def test_control_characters_become_spaces() -> None:
    with_controls = charts.recurrence(WEEKS, rates_for(["QC7\n刹车\t\x00失灵"]))
    with_spaces = charts.recurrence(WEEKS, rates_for(["QC7 刹车 失灵"]))

    assert with_controls == with_spaces


def test_recurrence_draws_top_eight_problems() -> None:
    top = [f"问题{index}" for index in range(charts.MAX_LINES)]
    extra = {f"其他问题{index}": [0.001] * len(WEEKS) for index in range(4)}
    other_extra = {label: [0.002] * len(WEEKS) for label in extra}

    with_extra = charts.recurrence(WEEKS, rates_for(top) | extra)
    with_other_extra = charts.recurrence(WEEKS, rates_for(top) | other_extra)
    without_extra = charts.recurrence(WEEKS, rates_for(top))

    assert with_extra == with_other_extra, "a problem below the top eight was drawn"
    assert with_extra != without_extra, "the note on other problems is missing"


def test_recurrence_nan_and_inf_leave_gaps() -> None:
    rates = {
        "QC7 · 刹车失灵": [0.1, math.nan, 0.2, math.inf, 0.15, 0.1],
        "QC9 · 交付延迟": [math.nan, math.nan, 0.05, math.nan, math.nan, math.nan],
    }

    data = charts.recurrence(WEEKS, rates)

    assert png_size(data) == CHART_PIXELS


def test_recurrence_all_nan_problem_not_counted() -> None:
    rates = rates_for(["QC7 · 刹车失灵"])
    with_blank = rates | {"QC9 · 交付延迟": [math.nan] * len(WEEKS)}

    assert charts.recurrence(WEEKS, with_blank) == charts.recurrence(WEEKS, rates)


def test_acknowledge_deadline_is_drawn() -> None:
    hours = {"critical": [0.2, 0.5, 1.5], "medium": [3.0, 30.0]}

    default = charts.time_to_acknowledge(hours)
    stricter = charts.time_to_acknowledge(hours, {"critical": 0.5, "medium": 12.0})
    none = charts.time_to_acknowledge(hours, {})

    assert default != stricter
    assert default != none
    assert png_size(none) == CHART_PIXELS


@pytest.mark.parametrize(
    "draw",
    [
        lambda: charts.recurrence(WEEKS, {"问题": [0.0] * len(WEEKS)}),
        lambda: charts.recurrence(WEEKS[:1], {"问题": [0.3]}),
        lambda: charts.levels_by_day(DAYS[:1], {"critical": [1]}),
        lambda: charts.time_to_acknowledge({"critical": [0.0, 0.0]}, {}),
        lambda: charts.time_to_acknowledge({"normal": [9000.0]}, {"normal": 8760}),
        lambda: charts.root_causes({"process": 10**9}),
    ],
)
def test_edge_values_draw_without_warnings(draw: Callable[[], bytes]) -> None:
    data, messages = draw_recording_warnings(draw)

    assert png_size(data) == CHART_PIXELS
    assert messages == []


@pytest.mark.parametrize(
    ("draw", "message"),
    [
        (lambda: charts.levels_by_day(DAYS, {"high": [1] * 7}), "unknown level"),
        (lambda: charts.levels_by_day(DAYS, {"normal": [1, 2]}), "2 values for 7"),
        (lambda: charts.levels_by_day(DAYS, {"normal": [-1] * 7}), "negative"),
        (lambda: charts.recurrence(WEEKS, {"问题": [0.1]}), "1 values for 6"),
        (lambda: charts.recurrence(WEEKS, {"问题": [-0.1] * 6}), "negative"),
        (lambda: charts.root_causes({"price": 3}), "unknown root cause"),
        (lambda: charts.root_causes({"product": -3}), "negative"),
        (lambda: charts.time_to_acknowledge({"urgent": [1.0]}), "unknown level"),
        (lambda: charts.time_to_acknowledge({"medium": [-1.0]}), "negative"),
    ],
)
def test_invalid_data_raises(draw: Callable[[], bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        draw()


def test_threads_draw_same_bytes() -> None:
    names = list(SAMPLE_CHARTS) * 4
    serial = [SAMPLE_CHARTS[name]() for name in names]

    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda name: SAMPLE_CHARTS[name](), names))

    assert threaded == serial


def count_figures() -> int:
    gc.collect()
    return sum(isinstance(item, Figure) for item in gc.get_objects())


def test_figures_released_after_drawing() -> None:
    # Counted before, because a failed test's traceback may still hold figures.
    before = count_figures()
    for draw in SAMPLE_CHARTS.values():
        draw()

    assert count_figures() == before


NO_FONT_SCRIPT = """
import json, logging, warnings
from datetime import date
import matplotlib
from matplotlib import font_manager

# A machine without system fonts: matplotlib lists only the fonts it ships.
manager = font_manager.fontManager
shipped = matplotlib.get_data_path()
manager.ttflist = [entry for entry in manager.ttflist if entry.fname.startswith(shipped)]
font_manager.findSystemFonts = lambda *args, **kwargs: []

records = []
handler = logging.Handler()
handler.emit = records.append
logging.getLogger("alerts.charts").addHandler(handler)
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from alerts import charts
    day = date(2026, 11, 2)
    pngs = [
        charts.levels_by_day([day], {"critical": [2]}),
        charts.recurrence([day], {"QC7 · 刹车失灵": [0.1]}),
        charts.root_causes({"product": 3}),
        charts.time_to_acknowledge({"critical": [0.5], "normal": [30.0]}),
        charts.levels_by_day([], {}),
    ]
print(json.dumps({
    "font": charts.find_cjk_font(),
    "logged": [(r.levelname, r.getMessage()) for r in records],
    "warnings": [str(w.message) for w in caught],
    "signatures": [png[:8].hex() for png in pngs],
}))
"""


def test_missing_cjk_font_logs_one_warning() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", NO_FONT_SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)

    assert result["font"] is None
    assert len(result["logged"]) == 1, result["logged"]
    level, message = result["logged"][0]
    assert level == "WARNING"
    assert charts.CJK_FONT_PACKAGE in message
    assert result["signatures"] == [PNG_SIGNATURE.hex()] * 5
    missing = [text for text in result["warnings"] if "missing from font" in text]
    assert missing == [], "characters without a font must be drawn as □"


STALE_CACHE_SCRIPT = """
import json
from matplotlib import font_manager

# A font list cached before the CJK font was installed.
manager = font_manager.fontManager
cjk = {{entry.fname for entry in manager.ttflist if entry.name == {family!r}}}
manager.ttflist = [entry for entry in manager.ttflist if entry.fname not in cjk]

from alerts import charts
png = charts.root_causes({{"product": 3}})
print(json.dumps({{"font": charts.find_cjk_font(), "signature": png[:8].hex()}}))
"""


def test_font_missing_from_stale_cache_found(cjk_font: str) -> None:
    script = STALE_CACHE_SCRIPT.format(family=cjk_font)

    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["font"] == cjk_font, "installed CJK font not found"
    assert result["signature"] == PNG_SIGNATURE.hex()
    assert "cjk font not found" not in completed.stderr


def test_level_counts_accept_numpy_arrays() -> None:
    counts = {level: np.array(row) for level, row in level_counts().items()}

    assert charts.levels_by_day(DAYS, counts) == SAMPLE_CHARTS["levels_by_day"]()
