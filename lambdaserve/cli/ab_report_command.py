"""``lambdaserve ab report``: each arm's quality on ground-truth feedback (POST /feedback), the
challenger against the champion, and whether traffic split as intended."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from lambdaserve.cli.backends import open_registry
from lambdaserve.cli.console import fail, out
from lambdaserve.cli.options import JsonOption, StoreOption, open_store, parse_time
from lambdaserve.core.errors import LambdaserveError
from lambdaserve.core.registry import CHAMPION
from lambdaserve.lifecycle.ab_report import ABReport, Interval, ab_report, split_stream
from lambdaserve.local.capture_log import read_stream
from lambdaserve.local.rollout_state_file import RolloutStateFile


def _estimate(value: float | None, interval: Interval | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" ({interval.low:.3f}-{interval.high:.3f})" if interval else "")


def print_ab_report(report: ABReport) -> None:
    """One column per arm (it fits a terminal with two or three arms)."""
    table = Table(title=f"A/B report: {report.model_name} (baseline v{report.baseline})")
    table.add_column("")
    for arm in report.arms:
        table.add_column(f"v{arm.version}", justify="right")
    rows = {
        "served": [str(arm.served) for arm in report.arms],
        "labelled": [str(arm.labelled) for arm in report.arms],
        "accuracy (95% CI)": [_estimate(a.accuracy, a.accuracy_ci) for a in report.arms],
        "log loss (95% CI)": [_estimate(a.log_loss, a.log_loss_ci) for a in report.arms],
        "Brier (95% CI)": [_estimate(a.brier, a.brier_ci) for a in report.arms],
        "ROC AUC": [_estimate(a.roc_auc) for a in report.arms],
        "observed positive rate": [_estimate(a.observed_positive_rate) for a in report.arms],
        "mean predicted score": [_estimate(a.mean_score) for a in report.arms],
    }
    for label, cells in rows.items():
        table.add_row(label, *cells)
    out.print(table)
    for c in report.comparisons:
        ci = c.log_loss_difference_ci
        out.print(
            f"v{c.version} vs v{c.baseline}: log loss {c.log_loss_difference:+.4f} "
            f"({ci.low:+.4f} to {ci.high:+.4f}, p = {c.log_loss_p_value:.3g}), accuracy "
            f"{c.accuracy_difference:+.4f} (p = {c.accuracy_p_value:.3g}): {c.verdict}",
            highlight=False,
        )
    if report.sample_ratio is not None:
        ratio = report.sample_ratio
        shares = ", ".join(
            f"v{v} {ratio.observed_share[v]:.3f} (intended {ratio.expected_share[v]:.3f})"
            for v in ratio.expected_share
        )
        verdict = "MISMATCH" if ratio.mismatch else "ok"
        out.print(f"sample ratio: {shares}; p = {ratio.p_value:.3g}: {verdict}", highlight=False)
    out.print(
        f"feedback: {report.feedback_received} received, {report.feedback_unmatched} for "
        f"predictions outside the window, {report.feedback_duplicates} repeated",
        highlight=False,
    )
    for note in report.notes:
        out.print(f"[yellow]note:[/] {note}", highlight=False)


def _shares(values: list[str] | None) -> dict[str, float] | None:
    """``["1=0.5", "2=0.5"]`` → ``{"1": 0.5, "2": 0.5}``."""
    if not values:
        return None
    shares: dict[str, float] = {}
    for value in values:
        version, _, share = value.partition("=")
        try:
            shares[version] = float(share)
        except ValueError:
            shares[version] = -1.0
        if not version or not shares[version] >= 0:
            raise typer.BadParameter(f"expected VERSION=SHARE, got {value!r}", param_hint="--split")
    if sum(shares.values()) <= 0:
        raise typer.BadParameter("the shares add up to 0", param_hint="--split")
    return shares


def report(
    name: Annotated[str, typer.Argument(help="Model name")],
    since: Annotated[
        str | None,
        typer.Option(help="Predictions from this time, ISO 8601 (default: 24 h before --until)"),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Predictions until this time (default: now)")
    ] = None,
    feedback_days: Annotated[
        int, typer.Option(min=0, help="Feedback may arrive this many days after --until")
    ] = 7,
    baseline: Annotated[
        str | None,
        typer.Option(
            help="Bundle version to compare against (default: the A/B's or registry's champion)"
        ),
    ] = None,
    split: Annotated[
        list[str] | None,
        typer.Option(
            help="Intended share VERSION=SHARE, repeatable (default: the A/B's current split)"
        ),
    ] = None,
    min_labelled: Annotated[int, typer.Option(min=2, help="Fewer per arm: not compared")] = 100,
    capture_bucket: Annotated[
        str | None,
        typer.Option(help="Read captures and feedback from this S3 bucket (AWS) instead"),
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Quality of every arm on ground-truth feedback, compared with the champion, plus an SRM
    check of the split."""
    end = parse_time(until, "--until") if until else datetime.now(UTC)
    start = parse_time(since, "--since") if since else end - timedelta(hours=24)
    if start >= end:
        fail("--since must be before --until", code=2)
    local = open_store(store)
    state = RolloutStateFile(local.root).load(name)
    if state is not None and state.plan.kind == "ab":
        baseline = baseline or state.champion.bundle_version or None
        if split is None and state.champion.bundle_version and state.challenger.bundle_version:
            split = [
                f"{state.champion.bundle_version}={1 - state.weight}",
                f"{state.challenger.bundle_version}={state.weight}",
            ]
    try:
        if baseline is None:
            champion = open_registry(local.root).by_alias(name, CHAMPION)
            baseline = champion.bundle_version if champion is not None else None
        positive_class = local.get(name).manifest.positive_class
        feedback_end = end + timedelta(days=feedback_days)
        if capture_bucket:
            from lambdaserve.aws.s3_drift_io import S3CaptureReader

            stream = S3CaptureReader(capture_bucket).stream(start, feedback_end)
        else:
            stream = read_stream(local.root, start, feedback_end)
        captures, feedback = split_stream(stream, start, end)
        result = ab_report(
            name,
            captures,
            feedback,
            positive_class=positive_class,
            baseline=baseline,
            expected_share=_shares(split),
            min_labelled=min_labelled,
        )
    except LambdaserveError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(asdict(result)))
    else:
        print_ab_report(result)
