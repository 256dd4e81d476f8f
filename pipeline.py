"""Fenghuo's command line: once, run, status, evaluate, train, model, serve,
users and alerts.

It loads config.yaml, opens the store and hands over to the job (job.py) for
one pass over the sources, or to the scheduled service (service.py). Nothing
imports it.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

import config as config_module
import model_commands
from alert_commands import make_alert_commands
from alerts.digest import digest_key
from alerts.outbox import DeliveryReport
from config import Config, ConfigError, Source
from items import (
    KINDS,
    LEVELS,
    SIGNAL_KINDS,
)
from job import Job, deliver_once, make_analyzer, run_once, store_digest
from model_commands import CORRECTIONS_SOURCE
from nlp import Analyzer
from service import serve
from source_health import format_duration, source_health
from storage import LockHeld, MigrationError, SignalRecord, Store
from storage.rows import ProblemSummary
from web.commands import make_commands

# once exits with this status when no source failed but an alert delivery
# failed for good (1 is a failed source, 2 a usage error).
EXIT_DELIVERY_FAILED = 3

DEV_LABELS = Path(__file__).resolve().parent.parent / "shared" / "eval" / "dev.jsonl"


# The status command lists this many problems, ranked over this many days.
STATUS_PROBLEMS = 10


STATUS_SIGNALS = 10


STATUS_PROBLEM_DAYS = 30


# The sources of the labelled-post layout, which --platform may give every post.
EVALUATION_PLATFORMS = (
    "weibo",
    "reddit",
    "zhihu",
    "tieba",
    "dongchedi",
    "autohome",
    "12365auto",
    "heimao",
    "news",
)


@contextmanager
def open_store(config: Config, *, lock: bool = False) -> Iterator[Store]:
    """Open and migrate the configured database, turning failures into one line.

    With ``lock``, also hold the job lock, so that a second job on the same
    database stops at once with a message instead of racing the first.
    """
    try:
        store = Store(config.database_url)
        store.migrate()
    except (ValueError, SQLAlchemyError, OSError, MigrationError) as exc:
        reason = getattr(exc, "orig", None) or exc
        first_line = (
            str(reason).strip().splitlines()[0] if str(reason).strip() else repr(reason)
        )
        raise click.ClickException(
            f"storage.url: cannot open the database {_display_url(config.database_url)}: "
            f"{first_line}"
        ) from None
    with ExitStack() as stack:
        stack.enter_context(store)
        if lock:
            try:
                stack.enter_context(store.job_lock())
            except LockHeld as exc:
                raise click.ClickException(str(exc)) from None
        yield store


def _display_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs each request's URL at INFO, and robot webhook URLs carry
    # their keys, so its requests stay out of the log at every verbosity.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # jieba prints its dictionary loading at INFO through its own logger.
    logging.getLogger("jieba").setLevel(logging.WARNING)


def _start(ctx: click.Context) -> Config:
    """Set up logging and load the config, from options given before or after
    the command name."""
    _setup_logging(ctx.meta.get("fenghuo.verbose", 0))
    path = ctx.meta.get("fenghuo.config", "config.yaml")
    try:
        return config_module.load(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _remember_config(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> None:
    if value is not None:
        ctx.meta["fenghuo.config"] = value


def _remember_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    ctx.meta["fenghuo.verbose"] = ctx.meta.get("fenghuo.verbose", 0) + value


def common_options(command):
    """Accept --config and -v both before and after the command name."""
    command = click.option(
        "--config",
        type=click.Path(dir_okay=False),
        expose_value=False,
        callback=_remember_config,
        help="Config file to read.  [default: config.yaml]",
    )(command)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_remember_verbose,
        help="Log more: -v for progress, -vv for debug.",
    )(command)


@click.group()
@common_options
def cli() -> None:
    """Fenghuo: early warning of customer grievances and complaints."""


@cli.command()
@common_options
@click.pass_context
def once(ctx: click.Context) -> None:
    """Run every enabled source once through the whole pipeline, then exit.

    Exits with status 1 when a source failed, else 3 when an alert delivery
    failed for good, else 0.
    """
    config = _start(ctx)
    started = time.monotonic()
    with open_store(config, lock=True) as store:
        summaries, deliveries = run_once(
            config, store, show_progress=sys.stderr.isatty()
        )
        pending = store.status().pending_alerts
    click.echo(_format_summary(summaries, time.monotonic() - started, config, pending))
    for line in _delivery_warnings(deliveries, config.alerts.retry_hours):
        click.echo(line, err=True)
    if any(summary.status == "failed" for summary in summaries):
        ctx.exit(1)
    if deliveries.failed:
        ctx.exit(EXIT_DELIVERY_FAILED)


def _delivery_warnings(deliveries: DeliveryReport, retry_hours: float) -> list[str]:
    """Return one line per kind of unsuccessful delivery, saying what comes next."""
    lines = []
    if deliveries.failed:
        lines.append(
            f"error: {deliveries.failed} alert deliveries failed for good (see the "
            "log); 'python pipeline.py alerts list' shows their alerts, and "
            "'alerts resend ID' sends an alert again once the cause is fixed"
        )
    if deliveries.retrying:
        lines.append(
            f"warning: {deliveries.retrying} alert deliveries failed for a "
            "temporary reason; they are retried at later runs until they are "
            f"{retry_hours:g} h old"
        )
    if deliveries.unconfirmed:
        lines.append(
            f"warning: {deliveries.unconfirmed} alert deliveries are unconfirmed: "
            "the message may have arrived, so they are not sent again. Check the "
            "recipient's mailbox, then run 'alerts confirm DELIVERY_ID' if it "
            "arrived or 'alerts resend ALERT_ID' if not"
        )
    return lines


@cli.command()
@click.argument("kind", type=click.Choice(["daily", "weekly"]))
@common_options
@click.pass_context
def digest(ctx: click.Context, kind: str) -> None:
    """Send the daily or weekly digest of the last complete day or week now.

    Each period's digest is stored once, whether by this command or on the
    service's schedule. Without a running job the due deliveries (the
    digest's, and any other alert's) are made at once; with one, the job
    makes them.
    """
    config = _start(ctx)
    now = datetime.now(UTC)
    key = digest_key(kind, now, config.timezone)
    with open_store(config) as store:
        alert_id = store_digest(config, store, kind, now)
        if alert_id is not None:
            head = f"{kind} digest stored as alert {alert_id}"
        elif store.known_alerts({key}):
            head = f"the {kind} digest {key} was stored before"
        else:
            click.echo(
                "no digest sent: alerts.digests names no department or recipient"
            )
            return
        try:
            with store.job_lock():
                sent, failed = deliver_once(config, store, now)
        except LockHeld:
            click.echo(f"{head}; the running job sends it")
            return
    click.echo(f"{head}; due deliveries: {sent} sent, {failed} not sent")
    if failed:
        ctx.exit(1)


@cli.command()
@common_options
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the scheduled service until SIGINT or SIGTERM.

    Each source runs on its own schedule from config.yaml. On a signal the
    batch in hand is finished and stored, then the service exits.
    """
    config = _start(ctx)
    with open_store(config, lock=True) as store:
        job = Job(config, store)
        for name in (signal.SIGINT, signal.SIGTERM):
            signal.signal(name, lambda signum, frame: job.stop.set())
        serve(job, config)


@cli.command()
@click.option(
    "--days",
    type=click.IntRange(min=1, max=36_500),
    default=STATUS_PROBLEM_DAYS,
    show_default=True,
    help="Rank problems by their reports posted in the last DAYS days.",
)
@common_options
@click.pass_context
def status(ctx: click.Context, days: int) -> None:
    """Show each source's last run, the counts by kind and level, pending
    alerts, the most reported problems and the latest early-warning signals."""
    config = _start(ctx)
    url = make_url(config.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database).exists():
        raise click.ClickException(
            f"no database at {url.database} yet; run 'python pipeline.py once' first"
        )
    with open_store(config) as store:
        report = store.status()
        problems = store.top_problems(days=days, limit=STATUS_PROBLEMS)
        since = datetime.now(UTC) - timedelta(days=days)
        signals = store.recent_signals(limit=STATUS_SIGNALS, since=since)
        job_running = _job_running(store)
    click.echo(_format_status(report, job_running, config))
    click.echo(_format_problems(problems, days))
    click.echo(_format_signals(signals, days))


def _job_running(store: Store) -> bool:
    try:
        with store.job_lock():
            return False
    except LockHeld:
        return True


@cli.command()
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True, dir_okay=False),
    help="JSONL file of labelled posts: the labelled-post layout (labels.kind) or "
    "the plain layout (text, label).",
)
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Alias of --data.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--cross-validate",
    "folds",
    type=click.IntRange(min=2),
    metavar="K",
    help="Train and test the trained model's recipe on FILE itself in K "
    "stratified folds (fixed seed) instead of scoring the configured classifier.",
)
@click.option(
    "--assume-relevant",
    is_flag=True,
    help="Score every post as about the brand, for corpora about other brands.",
)
@click.option(
    "--classifier",
    "classifier_name",
    type=click.Choice(["lexicon", "trained"]),
    help="Classifier to score.  [default: classifier from the config file]",
)
@click.option(
    "--platform",
    type=click.Choice(EVALUATION_PLATFORMS),
    help="Platform to give every post (12365auto and heimao are complaint "
    "platforms, itself a complaint cue).  [default: each record's source]",
)
@common_options
@click.pass_context
def evaluate(
    ctx: click.Context,
    data_path: str | None,
    labels_path: str | None,
    as_json: bool,
    folds: int | None,
    assume_relevant: bool,
    classifier_name: str | None,
    platform: str | None,
) -> None:
    """Score a classifier on labelled posts.

    Prints precision, recall, F1 and support per class, macro-F1, the
    confusion matrix and, where the labels allow, complaint-vs-grievance F1
    and brand-relevance precision and recall (against the config's brand).
    Plain-layout labels of other corpora are mapped as follows. complaint is
    scored as complaint and not_complaint as any other kind. negative is
    scored as grievance or complaint, positive as praise, neutral as neutral.
    """
    from nlp import evaluation

    path = _evaluation_path(data_path, labels_path)
    if folds is not None and classifier_name == "lexicon":
        raise click.UsageError(
            "--cross-validate trains the trained model's recipe on the file; "
            "the lexicon classifier has nothing to train"
        )
    config = _start(ctx)
    if classifier_name is not None:
        config = replace(config, classifier=classifier_name)
    try:
        records = evaluation.read_records(path)
        if not records:
            raise click.ClickException(f"{path}: no records to evaluate")
        if folds is not None:
            report = evaluation.cross_validate_corpus(
                records, config.brand, folds, platform
            )
        else:
            report = evaluation.score_corpus(
                records,
                make_analyzer(config),
                assume_relevant=assume_relevant,
                platform=platform,
            )
    except evaluation.RecordError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        payload = evaluation.corpus_report_json(report)
        click.echo(json.dumps(payload, ensure_ascii=False, sort_keys=False))
    else:
        click.echo(evaluation.format_corpus_report(report))


def _evaluation_path(data_path: str | None, labels_path: str | None) -> str:
    if data_path and labels_path and data_path != labels_path:
        raise click.UsageError("give either --data or --labels (its alias), not both")
    path = data_path or labels_path
    if path is None:
        raise click.UsageError("missing option --data FILE")
    return path


@cli.command()
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Model file to write.  [default: model.candidate.joblib beside model_path]",
)
@click.option(
    "--no-corrections",
    is_flag=True,
    help="Train on the training files alone, without reading the database.",
)
@common_options
@click.pass_context
def train(ctx: click.Context, output: str | None, no_corrections: bool) -> None:
    """Train the kind classifier on training/*.jsonl, demo/posts.jsonl and the
    analysts' kind corrections in the database, then save it as the candidate.

    Prints the training counts, the corrections used, the cross-validated
    macro-F1 on the training data, the development-set figures when that label
    set is present, and the model path. The job keeps reading model_path
    until the candidate is promoted with: python pipeline.py model promote.
    """
    from nlp import model, promotion, training

    config = _start(ctx)
    model_path = config.resolve(config.model_path)
    path = Path(output) if output else promotion.candidate_path(model_path)
    data = training.read_training(training.training_files())
    corrections = None
    if not no_corrections:
        with open_store(config) as store:
            corrections = model_commands.read_corrections(store, DEV_LABELS)
        training.add_records(data, corrections.records, CORRECTIONS_SOURCE)
    try:
        trained = training.train(data, config.brand)
        folds = training.cross_validate(data, config.brand)
    except training.TrainingError as exc:
        raise click.ClickException(str(exc)) from None
    if corrections is not None:
        trained.metadata["corrections"] = corrections.metadata()
    reports = _dev_reports(config, trained) if DEV_LABELS.exists() else None
    if reports is not None:
        trained.metadata["evaluation"] = model_commands.evaluation_metadata(
            reports["trained"], DEV_LABELS
        )
    try:
        model.save(trained.classifier, trained.metadata, path)
    except model.ModelError as exc:
        raise click.ClickException(str(exc)) from None

    click.echo(_format_training(data, trained.metadata, folds))
    if corrections is not None:
        click.echo(model_commands.format_corrections(corrections))
    if reports is not None:
        click.echo(_format_dev_comparison(reports))
    click.echo(f"model: {path}")


def _format_training(data, metadata: dict, folds) -> str:
    lines = ["training files:"]
    for name, count in data.per_file.items():
        lines.append(f"  {name}: {count}")
    lines.append(f"records: {len(data.records)} (skipped lines: {data.skipped})")
    counts = metadata["training_counts"]
    lines.append("model kinds: " + "  ".join(f"{k} {n}" for k, n in counts.items()))
    lines.append(
        f"cross-validated on the training data ({folds.folds} folds): "
        f"macro-F1 {folds.macro_f1:.3f}, "
        f"expected calibration error {folds.calibration_error:.3f}"
    )
    return "\n".join(lines)


def _dev_reports(config: Config, trained) -> dict:
    """Score the trained and the lexicon classifier on the development set."""
    from nlp.evaluation import evaluate as score
    from nlp.evaluation import read_records

    records = read_records(DEV_LABELS)
    reports = {}
    for name, classifier in (("trained", trained), ("lexicon", None)):
        analyzer = Analyzer(
            config.brand, config.thresholds, config.strategy, classifier=classifier
        )
        reports[name] = score(records, analyzer)
    return reports


def _format_dev_comparison(reports: dict) -> str:
    lines = [f"development set {DEV_LABELS} ({reports['trained'].total} posts):"]
    lines.append(
        f"{'':<10} {'macro-F1':>8} {'cg-F1':>6}  "
        + " ".join(f"{kind:>10}" for kind in KINDS)
    )
    for name, report in reports.items():
        per_kind = " ".join(f"{report.per_kind[k].f1:>10.3f}" for k in KINDS)
        lines.append(
            f"{name:<10} {report.macro_f1:>8.3f} "
            f"{report.complaint_f1_vs_grievance:>6.3f}  {per_kind}"
        )
    lines.append("(cg-F1: complaint-vs-grievance F1; kind columns: F1)")
    return "\n".join(lines)


def _format_summary(summaries, seconds: float, config: Config, pending: int) -> str:
    lines = [
        f"{'source':<24} {'status':<8} {'fetched':>8} {'new':>8} {'dup':>7} "
        f"{'bad':>6} {'alerts':>7} {'seconds':>8}"
    ]
    kinds: Counter = Counter()
    levels: Counter = Counter()

    for s in summaries:
        lines.append(
            f"{s.source:<24} {s.status:<8} {s.fetched:>8} {s.new:>8} {s.duplicates:>7} "
            f"{s.bad:>6} {s.alerts:>7} {s.seconds:>8.1f}"
        )
        if s.error:
            lines.append(f"  error: {s.error}")
        kinds.update(s.kinds)
        levels.update(s.levels)

    total = sum(s.new for s in summaries)
    rate = total / seconds if seconds > 0 else 0.0
    lines.append("")
    lines.append("kinds:  " + _counts(kinds, KINDS))
    lines.append("levels: " + _counts(levels, LEVELS))
    if config.alerts.smtp is not None:
        where = f"SMTP {config.alerts.smtp.host}"
    else:
        where = str(config.resolve(config.alerts.outbox))
    updates = sum(s.updates for s in summaries)
    lines.append(
        f"alerts: {sum(s.alerts for s in summaries)} new, {updates} updates of "
        f"incidents alerted before, {pending} pending ({where})"
    )
    new_problems = set().union(*(s.new_problems for s in summaries))
    changed = set().union(*(s.changed_problems for s in summaries))
    lines.append(
        f"problems: {len(new_problems)} new, {len(changed - new_problems)} updated"
    )
    signals = sum((s.signals for s in summaries), Counter())
    lines.append("signals: " + _counts(signals, SIGNAL_KINDS))
    refreshed = sum(s.refreshed for s in summaries)
    if refreshed:
        regraded = sum(s.regraded for s in summaries)
        lines.append(
            f"seen again with new engagement: {refreshed}, regraded {regraded}"
        )
    lines.append(f"{total} new posts in {seconds:.1f}s ({rate:,.0f} posts/s)")
    return "\n".join(lines)


def _counts(counter: Counter, order: tuple[str, ...]) -> str:
    return "  ".join(f"{name} {counter.get(name, 0)}" for name in order)


def _format_status(report, job_running: bool, config: Config) -> str:
    lines = [
        f"{'source':<24} {'last run (UTC)':<20} {'status':<8} {'posts':>9} {'bad':>6}"
    ]
    now = datetime.now(UTC)
    sources = {source.name: source for source in config.sources}
    for row in report.sources:
        started = _utc(row.last_started_at) or "never"
        last_status = row.last_status or "-"
        if last_status == "running" and not job_running:
            # No job holds the lock, so the run still marked "running" died.
            last_status = "died"
        lines.append(
            f"{row.name:<24} {started:<20} {last_status:<8} {row.posts:>9} "
            f"{row.last_bad:>6}"
        )
        lines.append("  " + _health_line(row, sources.get(row.name), config, now))
        if row.last_error:
            lines.append(f"  last error ({_utc(row.last_error_at)}): {row.last_error}")
    lines.append("")
    lines.append(f"posts:  {report.posts}")
    lines.append("kinds:  " + _counts(Counter(report.kinds), KINDS))
    lines.append("levels: " + _counts(Counter(report.levels), LEVELS))
    for kind in ("grievance", "complaint"):
        if kind in report.levels_by_kind:
            levels = _counts(Counter(report.levels_by_kind[kind]), LEVELS)
            lines.append(f"  {kind + ':':<11} {levels}")
    alerts = [f"{report.pending_alerts} pending"]
    if report.sending_alerts and job_running:
        alerts.append(f"{report.sending_alerts} sending (job running)")
    elif report.sending_alerts:
        # No job holds the lock, so the job that was sending them was killed.
        alerts.append(f"{report.sending_alerts} interrupted")
    alerts += [
        f"{report.failed_alerts} failed",
        f"{report.unconfirmed_alerts} unconfirmed",
    ]
    lines.append("alerts: " + ", ".join(alerts))
    if report.sending_alerts and not job_running:
        lines.append(
            "  interrupted: a job stopped while sending them, so they may have "
            "arrived; the next 'once' or 'run' marks them unconfirmed, and "
            "'alerts confirm' or 'alerts resend' settles them"
        )
    return "\n".join(lines)


def _health_line(row, source: Source | None, config: Config, now: datetime) -> str:
    """Describe a source's health, its last success, the lag and its next run."""
    health = source_health(row, source, config, now)
    state = health.state
    if health.state == "stale":
        state = f"stale ({health.failures_in_row} failed runs in a row)"
    elif health.state == "failing":
        state = (
            f"failing ({health.failures_in_row} of {health.stale_after} before stale)"
        )
    parts = [f"health: {state}"]
    if row.skipped_runs:
        parts.append(f"skipped runs (7 days): {row.skipped_runs}")
    if health.lag is None:
        parts.append("last success: never")
    else:
        lag = format_duration(health.lag)
        parts.append(f"last success: {_utc(row.last_success_at)} ({lag} ago)")
    if health.next_run is None:
        parts.append(f"next run: {health.schedule}")
    else:
        parts.append(f"next run: {health.next_run.isoformat(timespec='minutes')}")
    return ", ".join(parts)


def _format_problems(problems: list[ProblemSummary], days: int) -> str:
    if not problems:
        return f"\nproblems: none reported in the last {days} days"
    lines = [
        "",
        f"problems, ranked by reports in the last {days} days "
        "(posts and reporters of all time):",
        f"  {'reports':>7} {'posts':>7} {'reporters':>9}  {'root cause':<10}  "
        f"{'last seen (UTC)':<19}  problem",
    ]
    # The label goes last, because padding cannot align Chinese characters,
    # which take two columns on a terminal.
    for problem in problems:
        counts = (
            f"{problem.recent_reports:>7} {problem.posts:>7} {problem.reporters:>9}"
        )
        lines.append(
            f"  {counts}  {problem.root_cause or '-':<10}  "
            f"{_utc(problem.last_seen)}  {problem.label}"
        )
    return "\n".join(lines)


def _format_signals(records: list[SignalRecord], days: int) -> str:
    if not records:
        return f"\nsignals: none in the last {days} days"
    lines = ["", f"latest early-warning signals of the last {days} days:"]
    for record in records:
        signal = record.signal
        subject = {"post": f"post {signal.post_id}", "brand": "brand"}.get(
            signal.subject, f"problem {signal.problem_id}"
        )
        lines.append(
            f"  {_utc(record.created_at)}  {signal.kind:<10}  {subject:<12}  "
            f"{signal.reason}"
        )
    return "\n".join(lines)


def _utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# The review page's commands live in web/commands.py, the alerts commands in
# alert_commands.py.
for web_command in make_commands(_start, open_store, common_options):
    cli.add_command(web_command)
cli.add_command(make_alert_commands(_start, open_store, common_options))
cli.add_command(model_commands.make_model_command(_start, open_store, common_options))

if __name__ == "__main__":
    cli()
