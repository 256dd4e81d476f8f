"""Virality forecast: a post's repost count 24 hours after publication.

Both estimators read what was observed by the post's age ``t``: engagement snapshots
as ``(seconds since publication, cumulative reposts)``, or the times of single
reshares (``snapshots_from_reshare_times`` turns those into snapshots).

- ``log_linear_forecast`` is the model of Szabo and Huberman ("Predicting the
  popularity of online content", Communications of the ACM 53(8), 2010, and
  arXiv:0811.0405): ``ln N(24 h) = ln N(t) + a(t)`` plus noise. ``N`` here is
  reposts + 1, so that a post without reposts has a logarithm. ``a(t)`` comes from
  ``DEFAULT_LOG_LINEAR`` or from ``fit_log_linear`` over past posts.
- ``seismic_forecast`` and ``seismic_forecast_from_snapshots`` treat reshares as a
  self-exciting point process in the manner of SEISMIC (Zhao, Erdogdu, He,
  Rajaraman and Leskovec, KDD 2015, arXiv:1506.02594). Each reshare exposes its
  author's followers, who reshare after a delay drawn from a power-law memory
  kernel. The cascade's infectiousness is estimated from the recent reshares. The
  final-size formula of the branching process then gives the forecast, unless the
  branching ratio shows the cascade to be supercritical.

``crosses_threshold`` turns a forecast into the yes/no that raises a post's public
impact. Every function is pure: no I/O, no clock.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

logger = logging.getLogger(__name__)

DAY_SECONDS = 86_400.0

Snapshot = tuple[float, int]
"""Seconds since publication and the cumulative repost count at that time."""


@dataclass(frozen=True, slots=True)
class Forecast:
    """A forecast of a post's repost count at the horizon, with its reason.

    ``reposts`` is always finite. ``supercritical`` means that the estimated
    branching ratio is at least 1, so the expected final size is unbounded under
    the model. ``capped`` means that the model gave no finite count by the horizon
    either, and ``reposts`` is the configured cap, not an estimate.
    ``horizon_seconds`` is None for a final-size forecast.
    """

    method: str
    reposts: float
    observed: int
    age_seconds: float
    horizon_seconds: float | None
    reason: str
    branching_ratio: float | None = None
    supercritical: bool = False
    capped: bool = False


def crosses_threshold(
    forecast: Forecast, threshold: float, min_observed: int = 0
) -> bool:
    """Return whether a forecast reaches ``threshold`` reposts.

    A capped forecast always crosses, because the model then expects growth
    without a finite bound within the horizon. A forecast from fewer than
    ``min_observed`` observed reposts never crosses, because a branching ratio
    estimated from a handful of reshares is noisy and a small account's steady
    trickle can come out supercritical.
    """
    if not threshold > 0:
        raise ValueError(f"invalid reach threshold {threshold!r}: expected reposts > 0")
    if forecast.observed < min_observed:
        return False
    return forecast.capped or forecast.reposts >= threshold


# -- Snapshots ---------------------------------------------------------------


def clean_snapshots(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    """Validate snapshots and return them sorted by time.

    Raises ValueError for a negative or non-finite time or a negative count.
    """
    cleaned = []
    for seconds, reposts in snapshots:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(
                f"invalid snapshot time {seconds!r}: expected seconds >= 0 "
                "since publication"
            )
        if reposts < 0:
            raise ValueError(
                f"invalid repost count {reposts!r} at {seconds} s: expected >= 0"
            )
        cleaned.append((float(seconds), int(reposts)))
    cleaned.sort(key=lambda snapshot: snapshot[0])
    return cleaned


def reposts_at(snapshots: Sequence[Snapshot], seconds: float) -> int:
    """Return the count of the last snapshot taken at or before ``seconds``, else 0.

    ``snapshots`` must be sorted by time, as ``clean_snapshots`` returns them.
    """
    count = 0
    for snapshot_seconds, reposts in snapshots:
        if snapshot_seconds > seconds:
            break
        count = reposts
    return count


def snapshots_from_reshare_times(reshare_times: Iterable[float]) -> list[Snapshot]:
    """Turn reshare times (seconds since publication) into cumulative snapshots."""
    times = sorted(float(seconds) for seconds in reshare_times)
    return clean_snapshots((seconds, index + 1) for index, seconds in enumerate(times))


def snapshots_since(
    published_at: datetime, counts: Iterable[tuple[datetime, int]]
) -> list[Snapshot]:
    """Turn ``(taken_at, reposts)`` rows into snapshots relative to publication.

    Both datetimes must be timezone-aware, as the engagement snapshots in storage
    are.
    """
    return clean_snapshots(
        ((taken_at - published_at).total_seconds(), reposts)
        for taken_at, reposts in counts
    )


def _observation(
    snapshots: Iterable[Snapshot], age_seconds: float | None
) -> tuple[list[Snapshot], float]:
    """Return the snapshots taken by the observation age, and the age itself.

    The age defaults to the time of the last snapshot. Storage adds a snapshot
    only when the counts change, so callers that know the post's current age
    should pass it. Otherwise a post that stopped growing looks young.
    """
    cleaned = clean_snapshots(snapshots)
    if age_seconds is None:
        age_seconds = cleaned[-1][0] if cleaned else 0.0
    if not math.isfinite(age_seconds) or age_seconds < 0:
        raise ValueError(f"invalid age {age_seconds!r}: expected seconds >= 0")
    return [s for s in cleaned if s[0] <= age_seconds], float(age_seconds)


def _format_reposts(count: float) -> str:
    return "1 repost" if count == 1 else f"{count:,.0f} reposts"


def _format_age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.3g} h"


# -- Log-linear baseline -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogRatio:
    """The growth term a(t) of the log-linear model for one observation age.

    ``mean`` is the mean over past posts of ``ln(N(horizon) + 1) - ln(N(t) + 1)``
    and ``std`` its sample standard deviation, the spread of the forecast error in
    log space. ``posts`` is the number of posts behind both.
    """

    age_seconds: float
    mean: float
    std: float
    posts: int


@dataclass(frozen=True, slots=True)
class LogLinearModel:
    """The a(t) table of the log-linear model for one horizon, sorted by age."""

    horizon_seconds: float
    ratios: tuple[LogRatio, ...]

    def __post_init__(self) -> None:
        ages = [ratio.age_seconds for ratio in self.ratios]
        if not ages:
            raise ValueError(
                "log-linear model has no a(t) entries: fit at least one age"
            )
        if ages != sorted(set(ages)) or ages[0] <= 0:
            raise ValueError(f"invalid a(t) ages {ages}: expected increasing, > 0")
        if ages[-1] >= self.horizon_seconds:
            raise ValueError(
                f"invalid a(t) age {ages[-1]} s: expected below the horizon "
                f"{self.horizon_seconds} s"
            )

    def log_ratio(self, age_seconds: float) -> float:
        """Return a(t), interpolated linearly in ln(age) between table ages.

        Past the last table age, a(t) falls linearly in ln(age) to 0 at the
        horizon. Below the first table age it stays at the first entry's value,
        which underestimates the growth of younger posts.
        """
        ages = [ratio.age_seconds for ratio in self.ratios]
        means = [ratio.mean for ratio in self.ratios]
        if age_seconds >= self.horizon_seconds:
            return 0.0
        if age_seconds <= ages[0]:
            return means[0]
        points = np.log([*ages, self.horizon_seconds])
        return float(np.interp(math.log(age_seconds), points, [*means, 0.0]))


# Fitted on 30 Sina Weibo repost cascades published on 2016-06-01 (a sample of the
# DeepHawkes data set), sizes counting the original post, so N = reposts + 1.
# NOTE: 30 cascades from one day in 2016 make a unit-scale table. Refit with
# fit_log_linear once the product has stored snapshots of its own posts.
DEFAULT_LOG_LINEAR = LogLinearModel(
    horizon_seconds=DAY_SECONDS,
    ratios=(
        LogRatio(age_seconds=600, mean=2.0983, std=1.0197, posts=30),
        LogRatio(age_seconds=1_800, mean=1.1898, std=0.7503, posts=30),
        LogRatio(age_seconds=3_600, mean=0.7167, std=0.5461, posts=30),
        LogRatio(age_seconds=7_200, mean=0.3803, std=0.2251, posts=30),
        LogRatio(age_seconds=21_600, mean=0.1318, std=0.0932, posts=30),
        LogRatio(age_seconds=43_200, mean=0.0686, std=0.0699, posts=30),
    ),
)


def fit_log_ratio(age_seconds: float, pairs: Iterable[tuple[int, int]]) -> LogRatio:
    """Estimate a(t) from ``(reposts at t, reposts at the horizon)`` pairs.

    The mean of the log ratios is the least-squares estimate of a(t) in log space,
    so it minimises the mean squared log error of the forecasts.
    """
    ratios = [math.log(final + 1) - math.log(early + 1) for early, final in pairs]
    if not ratios:
        raise ValueError(f"no past posts to fit a(t) at {age_seconds} s")
    std = float(np.std(ratios, ddof=1)) if len(ratios) > 1 else 0.0
    return LogRatio(age_seconds, float(np.mean(ratios)), std, len(ratios))


def fit_log_linear(
    histories: Iterable[Iterable[Snapshot]],
    ages: Sequence[float] = (600, 1_800, 3_600, 7_200, 21_600, 43_200),
    horizon_seconds: float = DAY_SECONDS,
) -> LogLinearModel:
    """Fit the a(t) table from the snapshot histories of past posts.

    A history counts only if its last snapshot was taken at or after the horizon,
    because storage adds snapshots only on change and an earlier last snapshot
    does not show the count at the horizon. Callers can append the time the post
    was last seen with its last count. Raises ValueError when no history counts.
    """
    pairs: list[tuple[list[int], int]] = []
    skipped = 0
    for history in histories:
        snapshots = clean_snapshots(history)
        if not snapshots or snapshots[-1][0] < horizon_seconds:
            skipped += 1
            continue
        early = [reposts_at(snapshots, age) for age in ages]
        pairs.append((early, reposts_at(snapshots, horizon_seconds)))
    if not pairs:
        raise ValueError(
            f"no history reaches the horizon of {horizon_seconds} s ({skipped} "
            "skipped): add a last snapshot at or after the horizon"
        )

    ratios = tuple(
        fit_log_ratio(age, ((early[i], final) for early, final in pairs))
        for i, age in enumerate(ages)
    )
    logger.info("log-linear fit posts=%s skipped=%s", len(pairs), skipped)
    return LogLinearModel(horizon_seconds=horizon_seconds, ratios=ratios)


def log_linear_forecast(
    snapshots: Iterable[Snapshot],
    age_seconds: float | None = None,
    model: LogLinearModel = DEFAULT_LOG_LINEAR,
) -> Forecast:
    """Forecast the reposts at the model's horizon as ``(N(t) + 1) e^a(t) - 1``.

    ``age_seconds`` is the post's age at observation, by default the time of the
    last snapshot. Without snapshots or age the forecast is 0.
    """
    observed_snapshots, age = _observation(snapshots, age_seconds)
    observed = reposts_at(observed_snapshots, age)
    horizon = model.horizon_seconds
    if age_seconds is None and not observed_snapshots:
        reason = "no engagement snapshots, so nothing to forecast"
        return Forecast("log_linear", 0.0, 0, age, horizon, reason)

    log_ratio = model.log_ratio(age)
    reposts = max(float(observed), (observed + 1) * math.exp(log_ratio) - 1)
    reason = (
        f"{_format_reposts(observed)} at {_format_age(age)}, a(t) = {log_ratio:.3f} "
        f"gives {reposts:,.0f} at {_format_age(horizon)}"
    )
    if age < model.ratios[0].age_seconds:
        reason += f" (a(t) of {_format_age(model.ratios[0].age_seconds)}, the youngest)"
    return Forecast("log_linear", reposts, observed, age, horizon, reason)


# -- Self-exciting point process ---------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryKernel:
    """Density of the delay between seeing a post and resharing it.

    ``phi(s) = c`` for ``0 < s <= s0`` and ``c (s / s0) ** -(1 + theta)`` beyond.
    The defaults are the values fitted on Twitter reshares in the SEISMIC paper:
    ``s0`` = 5 minutes and ``theta`` = 0.242. ``c`` follows from normalising the
    density to integrate to 1 (about 6.49e-4 per second with the defaults), so
    that infectiousness times followers is the expected number of reshares.
    """

    plateau_seconds: float = 300.0
    theta: float = 0.242

    def __post_init__(self) -> None:
        if not (self.plateau_seconds > 0 and self.theta > 0):
            raise ValueError(
                f"invalid memory kernel s0={self.plateau_seconds!r} "
                f"theta={self.theta!r}: both must be > 0"
            )

    @property
    def height(self) -> float:
        """The constant c, in 1/s."""
        return 1.0 / (self.plateau_seconds * (1.0 + 1.0 / self.theta))

    def cdf(self, seconds: np.ndarray) -> np.ndarray:
        """Return the integral of phi from 0 to ``seconds`` (0 for s <= 0)."""
        s0, theta, c = self.plateau_seconds, self.theta, self.height
        s = np.maximum(np.asarray(seconds, dtype=float), 0.0)
        tail = c * s0 + c * s0 / theta * (1.0 - (np.maximum(s, s0) / s0) ** -theta)
        return np.where(s <= s0, c * s, tail)

    def partial_mean(self, seconds: np.ndarray) -> np.ndarray:
        """Return the integral of ``u * phi(u)`` from 0 to ``seconds``."""
        s0, theta, c = self.plateau_seconds, self.theta, self.height
        s = np.maximum(np.asarray(seconds, dtype=float), 0.0)
        beyond = np.maximum(s, s0)
        if theta == 1.0:
            tail = c * s0 * s0 * np.log(beyond / s0)
        else:
            tail = c * s0**2 / (1.0 - theta) * ((beyond / s0) ** (1.0 - theta) - 1.0)
        return np.where(s <= s0, c * s * s / 2.0, c * s0 * s0 / 2.0 + tail)


@dataclass(frozen=True, slots=True)
class SeismicParameters:
    """Settings of the self-exciting estimate.

    ``default_followers`` is used for a resharer whose follower count is unknown
    and ``default_root_followers`` for an unknown original poster.
    ``mean_followers`` is n*, the mean follower count of future resharers, and
    defaults to ``default_followers``. Scaling every follower count by one factor
    leaves a forecast unchanged. The infectiousness is estimated over the last
    half of the observed age, at least ``s0`` and at most ``max_window_seconds``.
    ``horizon_seconds`` None gives the final size instead of the count at the
    horizon.
    ``max_reposts`` is the value of a capped forecast.
    """

    kernel: MemoryKernel = field(default_factory=MemoryKernel)
    # NOTE: both defaults are guesses. An unknown original poster counts as 10,000
    # resharers, so that the reshares seen are put down to the post itself rather
    # than to self-excitation, and a missing count does not flag a cascade as
    # supercritical. The ratio was set after looking at the 30 Weibo cascades of
    # bench/virality.py, whose reshares mostly come straight from the original
    # post. Pass real follower counts whenever the source provides them.
    default_followers: float = 100.0
    default_root_followers: float = 1_000_000.0
    mean_followers: float | None = None
    max_window_seconds: float = 7_200.0
    horizon_seconds: float | None = DAY_SECONDS
    max_reposts: float = 1_000_000.0

    def __post_init__(self) -> None:
        limits = {
            "default_followers": self.default_followers,
            "default_root_followers": self.default_root_followers,
            "mean_followers": self.n_star,
            "max_window_seconds": self.max_window_seconds,
            "max_reposts": self.max_reposts,
        }
        if self.horizon_seconds is not None:
            limits["horizon_seconds"] = self.horizon_seconds
        for name, value in limits.items():
            if not value > 0:
                raise ValueError(f"invalid SEISMIC {name} {value!r}: expected > 0")

    @property
    def n_star(self) -> float:
        """The mean follower count of future resharers."""
        if self.mean_followers is None:
            return self.default_followers
        return self.mean_followers


DEFAULT_SEISMIC = SeismicParameters()

# Each increment between two snapshots is spread evenly over that interval as at
# most this many weighted reshares, which bounds the work for viral posts.
POINTS_PER_INTERVAL = 32


@dataclass(frozen=True, slots=True)
class _Reshares:
    """Reshare times in seconds, each with a weight (reshares) and followers."""

    times: np.ndarray
    weights: np.ndarray
    followers: np.ndarray


def seismic_forecast(
    reshare_times: Sequence[float],
    age_seconds: float,
    *,
    followers: Sequence[float | None] | None = None,
    root_followers: float | None = None,
    parameters: SeismicParameters = DEFAULT_SEISMIC,
) -> Forecast:
    """Forecast reposts from single reshare times observed by ``age_seconds``.

    ``followers`` gives each resharer's follower count in the order of
    ``reshare_times``. None, for the list or an entry, means unknown. Reshares
    after ``age_seconds`` are ignored.
    """
    times = np.asarray(reshare_times, dtype=float)
    if followers is not None and len(followers) != len(times):
        raise ValueError(
            f"followers has {len(followers)} entries for {len(times)} reshares: "
            "expected one per reshare"
        )
    if not math.isfinite(age_seconds) or age_seconds < 0:
        raise ValueError(f"invalid age {age_seconds!r}: expected seconds >= 0")
    if np.any(~np.isfinite(times)) or np.any(times < 0):
        raise ValueError(
            "invalid reshare time: expected seconds >= 0 since publication"
        )

    counts = np.full(len(times), parameters.default_followers)
    for index, count in enumerate(followers or ()):
        if count is not None and count < 0:
            raise ValueError(f"invalid follower count {count!r}: expected >= 0")
        if count is not None:
            counts[index] = count
    seen = times <= age_seconds
    reshares = _Reshares(times[seen], np.ones(int(seen.sum())), counts[seen])
    return _estimate(reshares, root_followers, float(age_seconds), parameters)


def seismic_forecast_from_snapshots(
    snapshots: Iterable[Snapshot],
    age_seconds: float | None = None,
    *,
    root_followers: float | None = None,
    parameters: SeismicParameters = DEFAULT_SEISMIC,
) -> Forecast:
    """Forecast reposts from cumulative snapshots observed by ``age_seconds``.

    Snapshots carry no reshare times, so the increase between two snapshots is
    spread evenly over the interval, and resharers get the default follower count.
    """
    observed_snapshots, age = _observation(snapshots, age_seconds)
    if age_seconds is None and not observed_snapshots:
        reason = "no engagement snapshots, so nothing to forecast"
        horizon = parameters.horizon_seconds
        return Forecast("seismic", 0.0, 0, age, horizon, reason)

    times: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    previous_time, previous_count = 0.0, 0
    for snapshot_seconds, reposts in observed_snapshots:
        increase = reposts - previous_count
        if increase > 0:
            points = min(increase, POINTS_PER_INTERVAL)
            fractions = (np.arange(points) + 0.5) / points
            span = snapshot_seconds - previous_time
            times.append(previous_time + fractions * span)
            weights.append(np.full(points, increase / points))
            previous_count = reposts
        previous_time = snapshot_seconds

    all_times = np.concatenate(times) if times else np.zeros(0)
    all_weights = np.concatenate(weights) if weights else np.zeros(0)
    followers = np.full(len(all_times), parameters.default_followers)
    reshares = _Reshares(all_times, all_weights, followers)
    observed = reposts_at(observed_snapshots, age)
    return _estimate(reshares, root_followers, age, parameters, observed)


def _estimate(
    reshares: _Reshares,
    root_followers: float | None,
    age: float,
    parameters: SeismicParameters,
    observed: int | None = None,
) -> Forecast:
    if observed is None:
        observed = int(round(float(reshares.weights.sum())))
    horizon = parameters.horizon_seconds
    if horizon is not None and age >= horizon:
        reason = f"{_format_reposts(observed)} at {_format_age(age)}, past the horizon"
        return Forecast("seismic", float(observed), observed, age, horizon, reason)
    if age <= 0:
        reason = "post age 0 s, so nothing to forecast yet"
        return Forecast("seismic", float(observed), observed, age, horizon, reason)

    if root_followers is None:
        root_followers = parameters.default_root_followers
    elif root_followers < 0:
        raise ValueError(
            f"invalid root follower count {root_followers!r}: expected >= 0"
        )
    # A new account with no followers still has its post seen (search, hot lists),
    # and a zero exposure would divide by zero below.
    root_followers = max(float(root_followers), 1.0)
    times = np.concatenate(([0.0], reshares.times))
    weights = np.concatenate(([1.0], reshares.weights))
    followers = np.concatenate(([float(root_followers)], reshares.followers))
    infectiousness = _infectiousness(times, weights, followers, age, parameters)
    return _final_size(
        times, weights * followers, infectiousness, observed, age, parameters
    )


def _infectiousness(
    times: np.ndarray,
    weights: np.ndarray,
    followers: np.ndarray,
    age: float,
    parameters: SeismicParameters,
) -> float:
    """Estimate the current infectiousness p(t), index 0 being the original post.

    A triangular kernel ``K(s) = max(1 - s / w, 0)`` weighs the recent reshares
    against the exposure that every earlier node gave in the same window:
    ``p = sum K(t - t_j) / sum n_i * integral K(t - s) phi(s - t_i) ds``.
    A cascade with no reshare inside the window therefore gets p = 0.
    """
    kernel = parameters.kernel
    window = min(max(age / 2, kernel.plateau_seconds), parameters.max_window_seconds)
    elapsed = age - times
    recent = np.maximum(1.0 - elapsed[1:] / window, 0.0) @ weights[1:]

    # With u = s - t_i and d = t - t_i, K(d - u) = 1 - d / w + u / w on [d - w, d],
    # so the integral splits into the kernel's cdf and partial mean.
    start = np.maximum(elapsed - window, 0.0)
    mass = kernel.cdf(elapsed) - kernel.cdf(start)
    moment = kernel.partial_mean(elapsed) - kernel.partial_mean(start)
    exposure = (1.0 - elapsed / window) * mass + moment / window
    return float(recent / (weights * followers @ exposure))


def _final_size(
    times: np.ndarray,
    reach: np.ndarray,
    infectiousness: float,
    observed: int,
    age: float,
    parameters: SeismicParameters,
) -> Forecast:
    """Apply ``R_t + p * N_e / (1 - p * n_star)`` with the subcritical check.

    ``N_e`` is the exposure still to come from the observed nodes and ``reach``
    their weighted follower counts. With a horizon H, only the kernel mass before
    H counts, for ``N_e`` and for each later generation. A generation's share is
    taken as the mass of ``H - t``, but a reshare at time u > t has only ``H - u``
    left for its own reshares. So the forecast is an upper bound on the model's
    expected count at the horizon.
    """
    kernel = parameters.kernel
    horizon = parameters.horizon_seconds
    elapsed = age - times
    if horizon is None:
        remaining = 1.0 - kernel.cdf(elapsed)
        generation_share = 1.0
    else:
        remaining = kernel.cdf(horizon - times) - kernel.cdf(elapsed)
        generation_share = float(kernel.cdf(np.array(horizon - age)))
    branching_ratio = infectiousness * parameters.n_star
    offspring = branching_ratio * generation_share
    supercritical = branching_ratio >= 1.0

    head = (
        f"{_format_reposts(observed)} at {_format_age(age)}, branching ratio "
        f"{branching_ratio:.2f}"
    )
    if horizon is None:
        target = "final size"
    else:
        target = f"forecast by {_format_age(horizon)}"
    # NOTE: a few reshares late in the window can give a large ratio, so a small
    # cascade may come out capped. crosses_threshold's min_observed guards that.
    capped = offspring >= 1.0
    if capped:
        reposts = max(parameters.max_reposts, float(observed))
        reason = f"{head} (supercritical): no finite {target}, capped at {reposts:,.0f}"
    else:
        spread = infectiousness * float(reach @ remaining) / (1.0 - offspring)
        reposts = observed + spread
        state = "supercritical, keeps growing" if supercritical else "subcritical"
        reason = f"{head} ({state}): {target} is {reposts:,.0f} reposts"
    return Forecast(
        "seismic",
        reposts,
        observed,
        age,
        horizon,
        reason,
        branching_ratio=branching_ratio,
        supercritical=supercritical,
        capped=capped,
    )
