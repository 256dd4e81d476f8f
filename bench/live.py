"""Live benchmark: the feed collector under `pipeline.py once` and `run`.

Serves Weibo-like RSS feeds from 127.0.0.1 (bench/feeds.py) and runs the
product in a child process, each time into a fresh SQLite file:

1. `once` over N feed sources of M items each: posts per second over the
   whole command and the child's peak resident memory.
2. `run` with one feed source polled every 10 seconds: 20 posts appear one at
   a time at random moments. Each is timed from appearing on the server to the
   server's response that carried it (fetch) and to the commit of its grading
   row, which this process detects by polling the database read-only.
3. `run` over N feed sources with a fast clock: the source runs that H hours
   of 10-minute polling would make, in short real intervals, while new posts
   appear on the feeds, with the child's resident memory along the way.

    .venv/bin/python bench/live.py [--sources N] [--items M] [--hours H]
        [--skip-memory] [--poll-seconds S] [--keep]

The loopback host's minimum interval between requests is set to 0, so that
the figures measure the product and not its politeness delay.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from feeds import FeedServer, Post, PostWriter, utc
from replay import train_model

ROOT = Path(__file__).resolve().parents[1]
SIMULATED_INTERVAL_MINUTES = 10
LIVE_INTERVAL_MINUTES = 1 / 6
LIVE_POSTS = 20
GRADED_TARGET_SECONDS = 2.0
MEMORY_TARGET_MB = 300
MEMORY_SAMPLES = 12
DB_POLL_SECONDS = 0.02
GRADE_TIMEOUT_SECONDS = 60.0
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 60.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=50, help="feed sources")
    parser.add_argument("--items", type=int, default=200, help="items per feed")
    parser.add_argument(
        "--hours", type=float, default=4.0, help="simulated hours of the memory run"
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=24.0,
        help="real seconds that stand for one 10-minute poll interval in the "
        "memory run; below the time one round of runs takes, runs are skipped",
    )
    parser.add_argument(
        "--new-per-hour",
        type=float,
        default=2.0,
        help="new posts per feed per simulated hour in the memory run",
    )
    parser.add_argument("--skip-once", action="store_true", help="skip the once pass")
    parser.add_argument(
        "--skip-latency", action="store_true", help="skip the latency measurement"
    )
    parser.add_argument(
        "--skip-memory", action="store_true", help="skip the memory run"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the posts")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser.parse_args()


def child_prefix() -> list[str]:
    """Pin the child to the first CPU and this process to the others.

    The feed server and the database polling then do not take CPU time from
    the product. With one CPU nothing is pinned.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or not shutil.which("taskset"):
        return []
    os.sched_setaffinity(0, cpus[1:])
    return ["taskset", "-c", str(cpus[0])]


def backlog(writer: PostWriter, count: int, end: datetime, per_hour: float):
    """Return ``count`` posts published before ``end`` at ``per_hour``, oldest first."""
    span = count / per_hour * 3600
    moments = sorted(
        end.timestamp() - writer.rng.uniform(0, span) for _ in range(count)
    )
    return [writer.post(utc(moment)) for moment in moments]


def write_config(
    folder: Path, sources: list[tuple[str, str]], minutes: float, model: Path | None
) -> Path:
    """Write a config of feed sources, each polled every ``minutes``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": f"sqlite:///{folder / 'bench.db'}"}
    data["alerts"]["outbox"] = str(folder / "outbox")
    if model is not None:
        data["model_path"] = str(model)
    data["sources"] = [
        {
            "name": name,
            "kind": "feed",
            "platform": "weibo",
            "feed": {"urls": [url]},
            "schedule": {"interval_minutes": minutes},
        }
        for name, url in sources
    ]
    data["http"] = {"hosts": {"127.0.0.1": {"min_interval_seconds": 0}}}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


class Database:
    """Read-only queries on the child's SQLite file, which may not exist yet."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connection: sqlite3.Connection | None = None

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.connection is None:
            if not self.path.exists():
                return []
            uri = f"file:{self.path}?mode=ro"
            self.connection = sqlite3.connect(uri, uri=True, isolation_level=None)
        try:
            return self.connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            # The tables are not migrated yet, or a checkpoint locks the file.
            return []

    def count(self, sql: str, params: tuple = ()) -> int:
        rows = self.rows(sql, params)
        return int(rows[0][0]) if rows else 0

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


@dataclass
class Child:
    """A `pipeline.py` command running in a child process."""

    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def pipeline_command(prefix: list[str], config: Path, command: str) -> list[str]:
    script = str(ROOT / "pipeline.py")
    return [*prefix, sys.executable, script, "--config", str(config), "-v", command]


def start_child(prefix: list[str], config: Path, command: str) -> Child:
    log = config.parent / f"{command}.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            pipeline_command(prefix, config, command),
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return Child(process, log)


def stop_child(child: Child) -> tuple[float, int | None]:
    """Send SIGTERM and wait; return the seconds it took and the exit status."""
    started = time.monotonic()
    child.process.send_signal(signal.SIGTERM)
    try:
        status = child.process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()
        status = None
    return time.monotonic() - started, status


def memory_kib(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM of a process in KiB ({} once it has exited)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines:
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def wait_for(database: Database, child: Child, sql: str, timeout: float) -> bool:
    """Poll until ``sql`` counts at least one row; False on timeout or exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if database.count(sql) > 0:
            return True
        if child.process.poll() is not None:
            return False
        time.sleep(0.1)
    return False


_LOG_LINE = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) (\S+): (.*)$")


def log_problems(log: Path) -> Counter:
    """Count the WARNING and ERROR lines of a child's log by level and event text."""
    problems: Counter = Counter()
    for line in log.read_text(errors="replace").splitlines():
        match = _LOG_LINE.match(line)
        if match:
            event = re.split(r" \w+=", match.group(3), maxsplit=1)[0]
            # APScheduler's messages name the job and its next run time.
            event = re.sub(r"\d+", "N", re.sub(r'"[^"]*"', '"..."', event))
            problems[f"{match.group(1)} {match.group(2)}: {event}"] += 1
    return problems


def print_problems(log: Path) -> None:
    problems = log_problems(log)
    if not problems:
        print("  log:          no warnings or errors")
        return
    for event, count in problems.most_common(8):
        print(f"  log:          {count:,} x {event}")


def run_seconds(log: Path) -> list[float]:
    """Return the duration of each source run that the child logged."""
    pattern = re.compile(r"source finished .* seconds=([0-9.]+)")
    text = log.read_text(errors="replace")
    return [float(match.group(1)) for match in pattern.finditer(text)]


def level_counts(database: Database) -> str:
    rows = database.rows("SELECT level, count(*) FROM gradings GROUP BY level")
    counts = dict(rows)
    return ", ".join(
        f"{level} {counts.get(level, 0):,}"
        for level in ("normal", "medium", "critical")
    )


# -- 1. once ------------------------------------------------------------------


def measure_once(args, prefix: list[str], model: Path | None, work: Path) -> bool:
    writer = PostWriter(args.seed)
    server = FeedServer(args.items).start()
    names = [f"{number:03d}" for number in range(args.sources)]
    now = datetime.now(UTC)
    for name in names:
        server.add_feed(name, backlog(writer, args.items, now, args.new_per_hour))
    sources = [(f"feed-{name}", server.url(name)) for name in names]
    config = write_config(work / "once", sources, 60, model)

    started = time.perf_counter()
    result = subprocess.run(
        pipeline_command(prefix, config, "once"),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    server.stop()
    (config.parent / "once.log").write_text(result.stderr)

    database = Database(config.parent / "bench.db")
    posts = database.count("SELECT count(*) FROM posts")
    print(f"1. once over {args.sources} feeds of {args.items} items")
    print(f"  exit status:  {result.returncode}")
    print(f"  posts stored: {posts:,} of {args.sources * args.items:,}")
    print(f"  graded:       {level_counts(database)}")
    print(f"  wall time:    {seconds:.1f} s, including start-up and migrations")
    print(f"  throughput:   {posts / seconds:,.0f} posts/s")
    print(f"  peak memory:  {peak_kib / 1024:.0f} MB (max RSS of the child)")
    print(f"  responses:    {server.responses[200]:,} x 200")
    print_problems(config.parent / "once.log")
    database.close()
    return result.returncode == 0 and posts == args.sources * args.items


# -- 2. latency under run -----------------------------------------------------


@dataclass
class Timing:
    """One watched post's moments (time.monotonic()) and its outcome."""

    appeared: float
    fetched: float | None = None
    seen: float | None = None
    kind: str | None = None
    level: str | None = None
    # From gradings.created_at minus posts.collected_at, the child's own clock.
    collected_to_graded: float | None = None


_OUTCOME = """
SELECT c.kind, g.level, p.collected_at, g.created_at
FROM posts p
JOIN classifications c ON c.post_id = p.id
LEFT JOIN gradings g ON g.post_id = p.id
WHERE p.source = ? AND p.external_id = ?
"""


def wait_outcome(database: Database, child: Child, post: Post, timing: Timing):
    """Poll until the post's classification (and grading) rows are committed.

    The nlp results, grading and alerts of a batch commit in one transaction,
    so a classification row without a grading row means the post is not graded.
    """
    deadline = timing.appeared + GRADE_TIMEOUT_SECONDS
    while time.monotonic() < deadline and child.process.poll() is None:
        rows = database.rows(_OUTCOME, ("live", post.external_id))
        if rows:
            timing.seen = time.monotonic()
            timing.kind, timing.level, collected, graded = rows[0]
            if graded is not None:
                span = datetime.fromisoformat(graded) - datetime.fromisoformat(
                    collected
                )
                timing.collected_to_graded = span.total_seconds()
            return
        time.sleep(DB_POLL_SECONDS)


def measure_latency(args, prefix: list[str], model: Path | None, work: Path) -> bool:
    writer = PostWriter(args.seed + 1)
    server = FeedServer(args.items).start()
    now = datetime.now(UTC)
    server.add_feed("live", backlog(writer, args.items, now, args.new_per_hour))
    config = write_config(
        work / "latency", [("live", server.url("live"))], LIVE_INTERVAL_MINUTES, model
    )
    database = Database(config.parent / "bench.db")
    child = start_child(prefix, config, "run")
    first_run = "SELECT count(*) FROM source_runs WHERE finished_at IS NOT NULL"
    ready = wait_for(database, child, first_run, START_TIMEOUT_SECONDS)

    timings = []
    if ready:
        timings = time_posts(writer, server, database, child)
    rss = memory_kib(child.pid)
    stop_seconds, status = stop_child(child)
    server.stop()
    database.close()

    print(f"2. latency under run: {LIVE_POSTS} posts, one feed polled every 10 s")
    if not ready:
        print("  the service did not finish its first run; see the log")
    print_timings(timings)
    print(f"  memory:       {rss.get('VmRSS', 0) / 1024:.0f} MB resident at the end")
    print(f"  stop:         exit status {status} after {stop_seconds:.1f} s")
    print_problems(child.log)
    graded = [t for t in timings if t.level is not None]
    return ready and status == 0 and len(graded) == LIVE_POSTS


def time_posts(writer, server, database, child) -> list[Timing]:
    """Publish the watched posts one at a time, each at a random moment."""
    rng = random.Random(writer.rng.random())
    interval = LIVE_INTERVAL_MINUTES * 60
    timings = []
    for _ in range(LIVE_POSTS):
        time.sleep(rng.uniform(0, interval))
        post = writer.post(datetime.now(UTC), complaint=True)
        server.publish("live", post, watch=True)
        timing = Timing(server.published[post.external_id])
        wait_outcome(database, child, post, timing)
        timing.fetched = server.fetched.get(post.external_id)
        timings.append(timing)
        if child.process.poll() is not None:
            break
    return timings


def print_timings(timings: list[Timing]) -> None:
    spans = {
        "appear to fetch": [t.fetched - t.appeared for t in timings if t.fetched],
        "fetch to graded": [
            t.seen - t.fetched for t in timings if t.fetched and t.seen and t.level
        ],
        "appear to graded": [
            t.seen - t.appeared for t in timings if t.seen and t.level
        ],
        "collected to graded*": [
            t.collected_to_graded for t in timings if t.collected_to_graded is not None
        ],
    }
    print(f"  {'':22}{'median':>8}{'worst':>8}{'count':>7}")
    for name, values in spans.items():
        if values:
            median, worst = statistics.median(values), max(values)
            print(f"  {name:22}{median:7.2f}s{worst:7.2f}s{len(values):7}")
    within = [s for s in spans["fetch to graded"] if s <= GRADED_TARGET_SECONDS]
    print(
        f"  target:       graded within {GRADED_TARGET_SECONDS:.0f} s of the fetch: "
        f"{len(within)} of {len(timings)}"
    )
    print("  * the child's own timestamps: gradings.created_at - posts.collected_at")
    kinds = Counter(f"{t.kind}/{t.level or 'not graded'}" for t in timings)
    print(f"  outcomes:     {dict(kinds.most_common())}")


# -- 3. memory after simulated hours --------------------------------------------


@dataclass
class Plan:
    """The fast clock of the memory run."""

    hours: float
    poll_seconds: float
    sources: int

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return SIMULATED_INTERVAL_MINUTES * 60 / self.poll_seconds

    @property
    def real_seconds(self) -> float:
        return self.hours * 3600 / self.speed

    @property
    def runs(self) -> int:
        """Source runs that the simulated hours of polling make."""
        return round(self.sources * self.hours * 60 / SIMULATED_INTERVAL_MINUTES)


def new_posts(writer, names, plan: Plan, start: datetime, per_hour: float):
    """Return (real offset in seconds, feed name, post) for the posts to come."""
    count = round(per_hour * plan.hours * len(names))
    offsets = sorted(writer.rng.uniform(0, plan.real_seconds) for _ in range(count))
    schedule = []
    for offset in offsets:
        published = start + timedelta(seconds=offset * plan.speed)
        schedule.append((offset, writer.rng.choice(names), writer.post(published)))
    return schedule


def publish_on_schedule(server, schedule, started: float, stop: threading.Event):
    for offset, name, post in schedule:
        if stop.wait(max(0.0, started + offset - time.monotonic())):
            return
        server.publish(name, post)


def measure_memory(args, prefix: list[str], model: Path | None, work: Path) -> bool:
    plan = Plan(args.hours, args.poll_seconds, args.sources)
    writer = PostWriter(args.seed + 2)
    server = FeedServer(args.items).start()
    names = [f"{number:03d}" for number in range(args.sources)]
    # The simulated day ends about now, so that no post is dated in the future.
    start = datetime.now(UTC) - timedelta(hours=plan.hours)
    for name in names:
        server.add_feed(name, backlog(writer, args.items, start, args.new_per_hour))
    schedule = new_posts(writer, names, plan, start, args.new_per_hour)
    sources = [(f"feed-{name}", server.url(name)) for name in names]
    config = write_config(work / "memory", sources, plan.poll_seconds / 60, model)

    print(
        f"3. memory under run: {args.sources} feeds, {plan.hours:g} simulated hours "
        f"of {SIMULATED_INTERVAL_MINUTES}-minute polling = {plan.runs:,} source runs, "
        f"one poll every {plan.poll_seconds:g} s, {len(schedule):,} new posts"
    )
    database = Database(config.parent / "bench.db")
    child = start_child(prefix, config, "run")
    ready = wait_for(
        database, child, "SELECT count(*) FROM source_runs", START_TIMEOUT_SECONDS
    )
    stop = threading.Event()
    samples = []
    if ready:
        started = time.monotonic()
        publisher = threading.Thread(
            target=publish_on_schedule,
            args=(server, schedule, started, stop),
            daemon=True,
        )
        publisher.start()
        samples = sample_memory(database, child, plan, started)
    stop.set()
    final = memory_kib(child.pid)
    stop_seconds, status = stop_child(child)
    server.stop()

    if not ready:
        print("  the service did not start a run; see the log")
        return False
    report_memory(database, child, plan, samples, final, server)
    print(f"  stop:         exit status {status} after {stop_seconds:.1f} s")
    print_problems(child.log)
    database.close()
    return status == 0 and samples[-1][2] >= plan.runs


_FINISHED = "SELECT count(*) FROM source_runs WHERE finished_at IS NOT NULL"


def sample_memory(database, child, plan: Plan, started: float) -> list[tuple]:
    """Print the child's memory every 1/MEMORY_SAMPLES of the planned time.

    Stops when the planned source runs are done and every new post has
    appeared, after twice the planned time, or when the child exits. Returns (seconds, simulated hours, runs,
    posts, VmRSS KiB) per sample.
    """
    step = plan.real_seconds / MEMORY_SAMPLES
    cap = 2 * plan.real_seconds + 60
    print(f"  {'real s':>7} {'sim h':>6} {'runs':>7} {'posts':>7} {'VmRSS':>8}")
    samples = []
    next_sample = step
    while child.process.poll() is None:
        elapsed = time.monotonic() - started
        runs = database.count(_FINISHED)
        done = (runs >= plan.runs and elapsed >= plan.real_seconds) or elapsed >= cap
        if elapsed >= next_sample or done:
            next_sample += step
            sample = sample_line(database, child, plan, elapsed, runs)
            samples.append(sample)
        if done:
            break
        time.sleep(0.5)
    return samples


def sample_line(database, child, plan: Plan, elapsed: float, runs: int) -> tuple:
    posts = database.count("SELECT count(*) FROM posts")
    rss = memory_kib(child.pid).get("VmRSS", 0)
    hours = elapsed * plan.speed / 3600
    print(
        f"  {elapsed:7.0f} {hours:6.1f} {runs:7,} {posts:7,} {rss / 1024:6.0f} MB",
        flush=True,
    )
    return elapsed, hours, runs, posts, rss


def report_memory(database, child, plan, samples, final, server) -> None:
    rss_mb = final.get("VmRSS", 0) / 1024
    verdict = "met" if rss_mb < MEMORY_TARGET_MB else "missed"
    elapsed, _, runs, posts, _ = samples[-1] if samples else (0, 0, 0, 0, 0)
    print(f"  runs:         {runs:,} of {plan.runs:,} in {elapsed:.0f} s")
    print(f"  posts stored: {posts:,}; graded: {level_counts(database)}")
    statuses = database.rows("SELECT status, count(*) FROM source_runs GROUP BY 1")
    skips = database.rows("SELECT reason, count(*) FROM source_skips GROUP BY 1")
    print(f"  run statuses: {dict(statuses)}; skipped runs: {dict(skips) or 0}")
    seconds = sorted(run_seconds(child.log))
    if seconds:
        p95 = seconds[int(0.95 * (len(seconds) - 1))]
        print(
            f"  run length:   median {statistics.median(seconds):.2f} s, "
            f"95th percentile {p95:.2f} s, max {seconds[-1]:.2f} s"
        )
    print(
        f"  responses:    {server.responses[200]:,} x 200, {server.responses[304]:,} x 304"
    )
    print(
        f"  memory:       {rss_mb:.0f} MB resident at the end, peak "
        f"{final.get('VmHWM', 0) / 1024:.0f} MB; target under {MEMORY_TARGET_MB} MB: "
        f"{verdict}"
    )


# -- main -----------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="fenghuo-live-"))
    prefix = child_prefix()
    load = "load average %.2f %.2f %.2f"
    print(
        load % os.getloadavg()
        + (f", child pinned: {' '.join(prefix)}" if prefix else "")
    )
    model = None
    if (
        yaml.safe_load((ROOT / "config.yaml").read_text("utf-8")).get("classifier")
        != "lexicon"
    ):
        model = train_model(work / "model.joblib")

    passed = True
    if not args.skip_once:
        passed = measure_once(args, prefix, model, work)
    if not args.skip_latency:
        passed = measure_latency(args, prefix, model, work) and passed
    if not args.skip_memory:
        passed = measure_memory(args, prefix, model, work) and passed
    print(load % os.getloadavg())
    if args.keep:
        print(f"work folder: {work}")
    else:
        shutil.rmtree(work)
    if not passed:
        raise SystemExit("a measurement failed or was incomplete; see above")


if __name__ == "__main__":
    main()
