"""Virality forecast error: 24-hour repost cascade size from the first hour.

Reads the Weibo cascade sample of the shared data folder
(weibo_cascades_sample/cascades.jsonl: 30 cascades published on 2016-06-01, a
sample of the DeepHawkes data set, each with its retweet times in ``t_seconds``,
``size_at_1h`` and ``size_at_24h``). Sizes count the original post, so a size is
reposts + 1. For each cascade the forecasters see only the retweets of the first
hour and forecast the size at 24 hours. The command prints the mean squared error
of ln(1 + size) over the 30 cascades for:

- (i) the plain guess "final = observed";
- (ii) the log-linear model of signals.virality, its a(1 h) fitted by
  leave-one-out: each cascade is scored by a model fitted on the other 29;
- (iii) the SEISMIC-style estimate of signals.virality with its default
  parameters (count by 24 h), then the same with the final-size formula and with
  other weights for the original poster. The sample has no follower counts, so
  every resharer gets the default count and the original poster the default
  root count. These rows show how much the estimate hinges on that ratio.

It also prints the mean error of ln(1 + size) (positive: forecasts too high) and
how many estimates were supercritical or capped. A capped forecast is scored at
its cap, which dominates the mean, so the last column leaves capped ones out.

Thirty cascades are a unit-scale check that the forecasters run on real cascades
and land in a sensible range, not a measurement of their accuracy. The default
root weight was chosen after looking at this sample, so row (iii) is not an
out-of-sample figure.

    .venv/bin/python bench/virality.py [--data PATH] [--age SECONDS]

Without the file the command prints that it skipped and exits with status 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from signals.virality import (
    DAY_SECONDS,
    DEFAULT_SEISMIC,
    Forecast,
    Snapshot,
    fit_log_linear,
    log_linear_forecast,
    seismic_forecast,
    snapshots_from_reshare_times,
)

SHARED_DATA = Path(os.environ.get("FENGHUO_SHARED", ROOT.parent / "shared")) / "data"
CASCADES = SHARED_DATA / "weibo_cascades_sample" / "cascades.jsonl"


@dataclass(frozen=True, slots=True)
class Cascade:
    """One repost cascade: reshare times in seconds and its sizes, post included."""

    id: str
    reshare_times: tuple[float, ...]
    size_at_1h: int
    size_at_24h: int

    def history(self) -> list[Snapshot]:
        """Return cumulative repost snapshots, with a last one at 24 hours."""
        snapshots = snapshots_from_reshare_times(self.reshare_times)
        snapshots.append((DAY_SECONDS, self.size_at_24h - 1))
        return snapshots


@dataclass(frozen=True, slots=True)
class Score:
    """Errors of one forecaster over all cascades."""

    msle: float
    bias: float
    supercritical: int
    capped: int
    msle_uncapped: float


def read_cascades(path: Path) -> list[Cascade]:
    """Return the cascades of a JSONL file.

    The original post is the entry whose path has one user, so it is left out of
    the reshare times.
    """
    cascades = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            times = tuple(
                float(retweet["t_seconds"])
                for retweet in record["retweets"]
                if len(retweet["path"]) > 1
            )
            cascades.append(
                Cascade(
                    record["id"],
                    times,
                    record["size_at_1h"],
                    record["size_at_24h"],
                )
            )
    return cascades


def score(cascades: Sequence[Cascade], forecasts: Sequence[Forecast]) -> Score:
    """Score forecast reposts against the 24-hour sizes in ln(1 + size)."""
    errors = [
        math.log(2 + forecast.reposts) - math.log(1 + cascade.size_at_24h)
        for cascade, forecast in zip(cascades, forecasts, strict=True)
    ]
    uncapped = [
        error**2
        for error, forecast in zip(errors, forecasts, strict=True)
        if not forecast.capped
    ]
    return Score(
        msle=sum(error**2 for error in errors) / len(errors),
        bias=sum(errors) / len(errors),
        supercritical=sum(forecast.supercritical for forecast in forecasts),
        capped=sum(forecast.capped for forecast in forecasts),
        msle_uncapped=sum(uncapped) / len(uncapped) if uncapped else math.nan,
    )


def observed_forecasts(cascades: Sequence[Cascade], age: float) -> list[Forecast]:
    """Forecast each cascade at its observed size."""
    forecasts = []
    for cascade in cascades:
        observed = sum(1 for seconds in cascade.reshare_times if seconds <= age)
        reason = "final = observed"
        forecasts.append(
            Forecast("observed", observed, observed, age, DAY_SECONDS, reason)
        )
    return forecasts


def log_linear_forecasts(cascades: Sequence[Cascade], age: float) -> list[Forecast]:
    """Forecast each cascade with a(age) fitted on all the other cascades."""
    forecasts = []
    for index, cascade in enumerate(cascades):
        others = [c.history() for i, c in enumerate(cascades) if i != index]
        model = fit_log_linear(others, ages=(age,))
        snapshots = snapshots_from_reshare_times(
            seconds for seconds in cascade.reshare_times if seconds <= age
        )
        forecasts.append(log_linear_forecast(snapshots, age, model))
    return forecasts


def seismic_forecasts(
    cascades: Sequence[Cascade], age: float, **changes: float | None
) -> list[Forecast]:
    """Forecast each cascade with the SEISMIC-style estimate and changed defaults."""
    parameters = replace(DEFAULT_SEISMIC, **changes)
    return [
        seismic_forecast(cascade.reshare_times, age, parameters=parameters)
        for cascade in cascades
    ]


def rows(
    cascades: Sequence[Cascade], age: float
) -> list[tuple[str, Callable[[], list[Forecast]]]]:
    """Return the label and forecaster of each printed row."""
    resharer = DEFAULT_SEISMIC.default_followers
    ratio = DEFAULT_SEISMIC.default_root_followers / resharer
    return [
        ("(i) final = observed", lambda: observed_forecasts(cascades, age)),
        (
            "(ii) log-linear, a(t) leave-one-out",
            lambda: log_linear_forecasts(cascades, age),
        ),
        (
            f"(iii) SEISMIC-style, by 24 h, root = {ratio:,.0f}x",
            lambda: seismic_forecasts(cascades, age),
        ),
        (
            f"      final size, root = {ratio:,.0f}x",
            lambda: seismic_forecasts(cascades, age, horizon_seconds=None),
        ),
        *(
            (
                f"      by 24 h, root = {weight:,}x",
                lambda weight=weight: seismic_forecasts(
                    cascades, age, default_root_followers=resharer * weight
                ),
            )
            for weight in (1, 100)
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=CASCADES,
        help="cascades JSONL file (default: the Weibo sample of the shared data)",
    )
    parser.add_argument(
        "--age",
        type=float,
        default=3600.0,
        help="observation age in seconds (default 3600)",
    )
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"skipped: {args.data} not found", file=sys.stderr)
        return 0

    cascades = read_cascades(args.data)
    print(
        f"{len(cascades)} cascades from {args.data.name}, observed for "
        f"{args.age:.0f} s, forecast size at 24 h"
    )
    header = f"{'forecaster':<44} {'MSLE':>7} {'bias':>7} {'super':>5} {'capped':>6}"
    print(f"{header} {'MSLE uncapped':>13}")
    for label, forecaster in rows(cascades, args.age):
        result = score(cascades, forecaster())
        print(
            f"{label:<44} {result.msle:>7.3f} {result.bias:>+7.3f} "
            f"{result.supercritical:>5} {result.capped:>6} "
            f"{result.msle_uncapped:>13.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
